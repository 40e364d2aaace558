"""The NumPy float64 reference results, computed once per case and cached."""

from __future__ import annotations

from functools import cache

import numpy as np

from regcore import ModelSpec, Network, ParamInfo, Plan, Rule, Select, Spec
from regcore_adapters.numpy import NumpyBackend, layers
from regcore_conformance.cases import TERM_CASES, scenario_specs
from regcore_conformance.scenarios import SCENARIOS

REFERENCE = NumpyBackend()


def term_plan(case_name: str) -> Plan:
    case = TERM_CASES[case_name]
    return Spec(penalties=(Rule(case.term, Select()),)).resolve(
        [ParamInfo("w", case.shape, "weight")]
    )


def scenario_plan(scenario: str, spec: str) -> Plan:
    model = SCENARIOS[scenario].model
    return scenario_specs(scenario)[spec].resolve(model.params(), model.layer_names())


def loss_value(model: ModelSpec | Network, plan: Plan, params: dict[str, np.ndarray],
               x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The value of ``REFERENCE.loss_and_grads``: data loss (with the plan's activity terms) plus
    penalty; a network's by its forward pass alone, as finite differences call it many times."""
    if isinstance(model, Network):
        return layers.loss(model, params, x, y, plan.activity) + REFERENCE.penalty(plan, params)[0]
    return REFERENCE.loss_and_grads(model, plan, params, x, y)[0]


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
