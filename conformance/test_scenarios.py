"""Scenario models with every penalty spec: the penalty alone, loss, every gradient, and SGD and
Adam trajectories. Every call's returned dict is checked against the protocol's promises too
(:func:`regcore_conformance.protocol.returned`)."""

from __future__ import annotations

import numpy as np
import pytest

from regcore_conformance import reference
from regcore_conformance.inputs import check_inputs_unchanged, compare_trajectory, inputs
from regcore_conformance.protocol import returned
from regcore_conformance.scenarios import SCENARIOS
from regcore_conformance.tolerance import Tolerance, model_chain, penalty_chain


def test_scenario_penalty(backend, device, dtype, scenario_case, checker):
    """``penalty()`` on a whole model: the value, and a gradient for every parameter, zeros where
    no term applies (the term cases give it one parameter, always penalized)."""
    name, spec = scenario_case
    scenario = SCENARIOS[name]
    check = checker(device=device, dtype=dtype, scenario=name, case=spec)
    params, _, _ = inputs(backend, scenario, device, dtype)
    value, grads = backend.penalty(reference.scenario_plan(name, spec), params)
    returned(check, backend, "penalty", grads, params, value=value)
    ref_value, ref_grads = reference.scenario_penalty(name, spec)
    shapes = [np.shape(p) for p in ref_grads.values()]
    tol = Tolerance(dtype, sum(int(np.prod(s)) for s in shapes)
                    + max(penalty_chain(s) for s in shapes))
    check.compare("penalty", backend.to_numpy(value), ref_value, tol)
    floor = max([float(np.max(np.abs(g))) for g in ref_grads.values()] + [0.0])
    for pname, ref in ref_grads.items():
        if pname in grads:  # a missing one is returns:penalty's failure
            check.compare(f"penalty_grad:{pname}", backend.to_numpy(grads[pname]), ref, tol,
                          scale_floor=floor)
    check.verify()


@pytest.mark.regcore_needs("Harness")
def test_loss_and_gradients(backend, device, dtype, scenario_case, checker):
    name, spec = scenario_case
    scenario = SCENARIOS[name]
    check = checker(device=device, dtype=dtype, scenario=name, case=spec)
    params, x, y = inputs(backend, scenario, device, dtype)
    loss, grads = backend.loss_and_grads(scenario.model, reference.scenario_plan(name, spec),
                                         params, x, y)
    check_inputs_unchanged(check, backend, scenario, dtype, params, x, y)
    returned(check, backend, "loss_and_grads", grads, params, value=loss)
    ref_loss, ref_grads = reference.loss_and_grads(name, spec)
    tol = Tolerance(dtype, model_chain(scenario.model, scenario.batch_size))
    check.compare("loss", backend.to_numpy(loss), ref_loss, tol)
    floor = max(float(np.max(np.abs(g))) for g in ref_grads.values())
    for pname, ref in ref_grads.items():
        check.compare(f"grad:{pname}", backend.to_numpy(grads[pname]), ref, tol,
                      scale_floor=floor)
    check.verify()


@pytest.mark.regcore_needs("Harness")
def test_trajectory(backend, device, dtype, optimizer, scenario_case, checker):
    """K full-batch steps of plain SGD or Adam (decoupled decay before each update)."""
    name, spec = scenario_case
    scenario = SCENARIOS[name]
    check = checker(device=device, dtype=dtype, scenario=name, case=spec)
    params, x, y = inputs(backend, scenario, device, dtype)
    final = backend.train(scenario.model, reference.scenario_plan(name, spec), params, x, y,
                          optimizer=scenario.optimizer(optimizer), steps=scenario.steps)
    check_inputs_unchanged(check, backend, scenario, dtype, params, x, y)
    returned(check, backend, "train", final, params)
    compare_trajectory(check, backend, f"{optimizer}_{scenario.steps}_steps", final,
                       reference.train(name, spec, optimizer), scenario, dtype)
    check.verify()
