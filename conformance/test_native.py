"""Native translations (a framework's own model object, loss terms, optimizer settings) train
exactly like the functional path: same parameters after K steps as the reference."""

from __future__ import annotations

import pytest

from regcore import SpecError
from regcore_conformance import reference
from regcore_conformance.cases import scenario_specs
from regcore_conformance.scenarios import SCENARIOS
from regcore_conformance.test_scenarios import (
    _inputs,
    check_inputs_unchanged,
    compare_trajectory,
)


def test_native_training(backend, device, dtype, native_path, optimizer, scenario_case,
                         checker):
    name, spec_name = scenario_case
    scenario = SCENARIOS[name]
    params, x, y = _inputs(backend, scenario, device, dtype)
    try:
        final = backend.native_train(native_path, scenario.model, scenario_specs(name)[spec_name],
                                     params, x, y, optimizer=scenario.optimizer(optimizer),
                                     steps=scenario.steps)
    except SpecError as exc:
        pytest.skip(f"{backend.name} {native_path} cannot express {spec_name}: {exc}")
    check = checker(device=device, dtype=dtype, scenario=name, case=spec_name)
    check_inputs_unchanged(check, backend, scenario, dtype, params, x, y)
    compare_trajectory(check, backend, f"native_{native_path}_{optimizer}", final,
                       reference.train(name, spec_name, optimizer), scenario, dtype)
    check.verify()
