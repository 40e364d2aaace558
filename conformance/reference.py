"""The NumPy float64 reference results, computed once per case and cached."""

from __future__ import annotations

from functools import cache

import numpy as np

from regcore import ParamInfo, Plan, Rule, Select, Spec
from regcore_adapters.numpy import NumpyBackend
from regcore_conformance.cases import TERM_CASES, scenario_specs
from regcore_conformance.scenarios import SCENARIOS

REFERENCE = NumpyBackend()


def term_plan(case_name: str) -> Plan:
    case = TERM_CASES[case_name]
    return Spec(penalties=(Rule(case.term, Select()),)).resolve(
        [ParamInfo("w", case.shape, "weight")]
    )


def scenario_plan(scenario: str, spec: str) -> Plan:
    return scenario_specs(scenario)[spec].resolve(SCENARIOS[scenario].model.params())


@cache
def term_penalty(case_name: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return REFERENCE.penalty(term_plan(case_name), {"w": TERM_CASES[case_name].array()})


@cache
def scenario_penalty(scenario: str, spec: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return REFERENCE.penalty(scenario_plan(scenario, spec), SCENARIOS[scenario].initial_params())


@cache
def loss_and_grads(scenario: str, spec: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    s = SCENARIOS[scenario]
    x, y = s.data()
    return REFERENCE.loss_and_grads(s.model, scenario_plan(scenario, spec),
                                    s.initial_params(), x, y)


@cache
def train(scenario: str, spec: str, optimizer: str) -> dict[str, np.ndarray]:
    s = SCENARIOS[scenario]
    x, y = s.data()
    return REFERENCE.train(s.model, scenario_plan(scenario, spec), s.initial_params(), x, y,
                           optimizer=s.optimizer(optimizer), steps=s.steps)


@cache
def proximal_train(scenario: str, spec: str) -> dict[str, np.ndarray]:
    """The parameters after the scenario's K proximal gradient steps of its SGD ``lr``."""
    s = SCENARIOS[scenario]
    x, y = s.data()
    return REFERENCE.proximal_train(s.model, scenario_plan(scenario, spec), s.initial_params(),
                                    x, y, lr=s.lr, steps=s.steps)
