"""Native translations (a framework's own model object, loss terms, optimizer settings) train
exactly like the functional path: same parameters after K steps as the reference."""

from __future__ import annotations

import numpy as np
import pytest

from regcore import SpecError
from regcore_conformance import reference
from regcore_conformance.cases import scenario_specs
from regcore_conformance.scenarios import SCENARIOS
from regcore_conformance.test_scenarios import _inputs
from regcore_conformance.tolerance import Tolerance, network_chain


def test_native_sgd(backend, device, dtype, native_path, scenario_case, checker):
    name, spec_name = scenario_case
    scenario = SCENARIOS[name]
    params, x, y = _inputs(backend, scenario, device, dtype)
    try:
        final = backend.native_sgd(native_path, scenario.model, scenario_specs(name)[spec_name],
                                   params, x, y, lr=scenario.lr, steps=scenario.steps)
    except SpecError as exc:
        pytest.skip(f"{backend.name} {native_path} cannot express {spec_name}: {exc}")
    check = checker(device=device, dtype=dtype, scenario=name, case=spec_name)
    ref = reference.sgd(name, spec_name)
    tol = Tolerance(dtype, network_chain(scenario.model.sizes, scenario.batch_size),
                    steps=scenario.steps)
    floor = max(float(np.max(np.abs(p))) for p in ref.values())
    for pname, ref_p in ref.items():
        check.compare(f"native_{native_path}_sgd:{pname}", backend.to_numpy(final[pname]), ref_p,
                      tol, scale_floor=floor)
    check.verify()
