"""Determinism: the same inputs give bitwise-identical losses, gradients and trained parameters
when a call is repeated, on CPU.

Only CPU is promised: on GPUs reductions may use atomics or split-K matmuls whose summation
order changes between runs (torch documents it under "Reproducibility"), so GPU rows skip with
that reason. Each check compares a second run against the first with a tolerance of
0: any difference in the last bit fails.
"""

from __future__ import annotations

import pytest

from regcore_conformance import reference
from regcore_conformance.cases import scenario_specs
from regcore_conformance.inputs import inputs
from regcore_conformance.scenarios import SCENARIOS
from regcore_conformance.tolerance import Bound

REPEATS = 2
BITWISE = Bound(0.0, "bitwise equal to the first run")


def _cpu_only(device: str) -> None:
    if device != "cpu":
        pytest.skip(f"{device}: bitwise run-to-run determinism is promised on CPU only (GPU "
                    "reductions may reorder sums between runs)")


def _same(check, backend, label: str, runs: list) -> None:
    first, *rest = runs
    for i, other in enumerate(rest, start=2):
        check.compare(f"{label}:run{i}", backend.to_numpy(other), backend.to_numpy(first),
                      BITWISE)


@pytest.mark.regcore_needs("Harness")
def test_repeated_loss_and_gradients_are_bitwise_identical(backend, device, dtype,
                                                           scenario_case, checker):
    _cpu_only(device)
    name, spec = scenario_case
    scenario = SCENARIOS[name]
    check = checker(device=device, dtype=dtype, scenario=name, case=spec)
    plan = reference.scenario_plan(name, spec)
    runs = [backend.loss_and_grads(scenario.model, plan, *inputs(backend, scenario, device,
                                                                  dtype))
            for _ in range(REPEATS)]
    _same(check, backend, "loss", [loss for loss, _ in runs])
    for pname in runs[0][1]:
        _same(check, backend, f"grad:{pname}", [grads[pname] for _, grads in runs])
    check.verify()


def _richest_spec(name: str) -> str:
    """The scenario's spec with the most parts (terms, selections and decoupled decay): the
    optimizer steps are what training adds to the loss-and-gradient path checked above."""
    specs = scenario_specs(name)
    return max(specs, key=lambda s: len(specs[s].penalties) + len(specs[s].weight_decay))


@pytest.mark.regcore_needs("Harness")
@pytest.mark.parametrize("scenario_name", list(SCENARIOS))
def test_repeated_training_is_bitwise_identical(backend, device, dtype, optimizer, scenario_name,
                                                checker):
    _cpu_only(device)
    scenario, spec = SCENARIOS[scenario_name], _richest_spec(scenario_name)
    check = checker(device=device, dtype=dtype, scenario=scenario_name, case=spec)
    plan = reference.scenario_plan(scenario_name, spec)
    runs = [backend.train(scenario.model, plan, *inputs(backend, scenario, device, dtype),
                          optimizer=scenario.optimizer(optimizer), steps=scenario.steps)
            for _ in range(REPEATS)]
    for pname in runs[0]:
        _same(check, backend, f"{optimizer}_{scenario.steps}_steps:{pname}",
              [final[pname] for final in runs])
    check.verify()
