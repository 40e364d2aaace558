"""Native translations (a framework's own model object, loss terms, optimizer settings) give the
reference's penalty and gradients, and train exactly like the functional path: same parameters
after K steps as the reference."""

from __future__ import annotations

import numpy as np
import pytest

from regcore import SpecError, UnsupportedError
from regcore_conformance import reference
from regcore_conformance.cases import scenario_specs
from regcore_conformance.scenarios import SCENARIOS
from regcore_conformance.test_scenarios import (
    _inputs,
    check_inputs_unchanged,
    compare_trajectory,
)
from regcore_conformance.tolerance import Tolerance, penalty_chain


def test_native_training(backend, device, dtype, native_path, optimizer, scenario_case,
                         checker):
    name, spec_name = scenario_case
    scenario = SCENARIOS[name]
    params, x, y = _inputs(backend, scenario, device, dtype)
    try:
        final = backend.native_train(native_path, scenario.model, scenario_specs(name)[spec_name],
                                     params, x, y, optimizer=scenario.optimizer(optimizer),
                                     steps=scenario.steps)
    except (SpecError, UnsupportedError) as exc:
        pytest.skip(f"{backend.name} {native_path} cannot run {spec_name}: {exc}")
    check = checker(device=device, dtype=dtype, scenario=name, case=spec_name)
    check_inputs_unchanged(check, backend, scenario, dtype, params, x, y)
    compare_trajectory(check, backend, f"native_{native_path}_{optimizer}", final,
                       reference.train(name, spec_name, optimizer), scenario, dtype)
    check.verify()


def test_native_penalty(backend, device, dtype, native_penalty_path, scenario_case, checker):
    """The penalty a native translation adds (e.g. Keras ``model.losses``) and its gradient on
    the scenario's initial parameters equal the reference's and the backend's functional
    :meth:`~regcore.Backend.penalty`."""
    name, spec_name = scenario_case
    scenario = SCENARIOS[name]
    params, _, _ = _inputs(backend, scenario, device, dtype)
    plan = reference.scenario_plan(name, spec_name)
    try:
        value, grads = backend.native_penalty(native_penalty_path, scenario.model,
                                              scenario_specs(name)[spec_name], params)
    except (SpecError, UnsupportedError) as exc:
        pytest.skip(f"{backend.name} {native_penalty_path} cannot run {spec_name}: {exc}")
    check = checker(device=device, dtype=dtype, scenario=name, case=spec_name)
    ref_value, ref_grads = reference.REFERENCE.penalty(plan, scenario.initial_params())
    functional = backend.to_numpy(backend.penalty(plan, params)[0])
    # the sum over every parameter, after the longest single term's own chain
    shapes = [np.shape(p) for p in ref_grads.values()]
    tol = Tolerance(dtype, sum(int(np.prod(s)) for s in shapes)
                    + max(penalty_chain(s) for s in shapes))
    label = f"native_{native_penalty_path}"
    check.compare(f"{label}:penalty", backend.to_numpy(value), ref_value, tol)
    check.compare(f"{label}:penalty_vs_functional", backend.to_numpy(value),
                  np.asarray(functional, dtype=np.float64), tol)
    floor = max([float(np.max(np.abs(g))) for g in ref_grads.values()] + [0.0])
    for pname, ref in ref_grads.items():
        check.compare(f"{label}:grad:{pname}", backend.to_numpy(grads[pname]), ref, tol,
                      scale_floor=floor)
    check.verify()
