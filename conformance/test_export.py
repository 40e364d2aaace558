"""Exported snippets: the dependency-free code a backend's exporter writes for a spec (entry point
group ``regcore.exporters``, the backend's name) gives the reference's penalty, gradients and
decoupled decay when run on the framework's own model object, and imports nothing from regcore."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from regcore import SpecError
from regcore.registry import available_exporters, load_exporter
from regcore_conformance import reference
from regcore_conformance.cases import scenario_specs
from regcore_conformance.inputs import inputs
from regcore_conformance.protocol import returned
from regcore_conformance.scenarios import SCENARIOS
from regcore_conformance.tolerance import Bound, Tolerance, penalty_chain


def _export(backend, name: str, spec_name: str) -> str:
    """The backend's exporter's snippet for the scenario's spec (a skip where there is none),
    checked to import nothing from regcore."""
    if backend.name not in available_exporters():
        pytest.skip(f"{backend.name}: no exporter registered")
    spec = scenario_specs(name)[spec_name]
    if spec.activity:  # refused, never written without them
        with pytest.raises(SpecError, match=r"activity\[0\]: an exported snippet"):
            load_exporter(backend.name)(spec)
        pytest.skip(f"{backend.name}: the exporter refuses {spec_name} (activity penalties are "
                    "forward-pass terms, not written into snippets), as checked")
    code = load_exporter(backend.name)(spec)
    assert isinstance(code, str), f"{backend.name}'s exporter returned {type(code).__name__}"
    assert not regcore_imports(code), f"the snippet imports {regcore_imports(code)}"
    return code


def regcore_imports(code: str) -> list[str]:
    """Modules of ``regcore``'s packages (or relative ones) that ``code`` imports, anywhere."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = ["." * node.level + (node.module or "")]
        else:
            continue
        found += [n for n in names if n.startswith(("regcore", "."))]
    return found


@pytest.mark.regcore_needs("SnippetRunner")
def test_exported_snippet(backend, device, dtype, scenario_case, checker):
    """The snippet's ``regularization`` on the scenario's initial parameters, differentiated by
    the framework, equals the reference penalty and gradient (tolerance as for the native
    penalty paths)."""
    name, spec_name = scenario_case
    scenario = SCENARIOS[name]
    code = _export(backend, name, spec_name)
    params, _, _ = inputs(backend, scenario, device, dtype)
    value, grads = backend.exported_penalty(code, scenario.model, params)
    check = checker(device=device, dtype=dtype, scenario=name, case=spec_name)
    returned(check, backend, "exported_penalty", grads, params, value=value)
    plan = reference.scenario_plan(name, spec_name)
    ref_value, ref_grads = reference.REFERENCE.penalty(plan, scenario.initial_params())
    # the sum over every parameter, after the longest single term's own chain
    shapes = [np.shape(p) for p in ref_grads.values()]
    tol = Tolerance(dtype, sum(int(np.prod(s)) for s in shapes)
                    + max(penalty_chain(s) for s in shapes))
    check.compare("exported:penalty", backend.to_numpy(value), ref_value, tol)
    floor = max([float(np.max(np.abs(g))) for g in ref_grads.values()] + [0.0])
    for pname, ref in ref_grads.items():
        check.compare(f"exported:grad:{pname}", backend.to_numpy(grads[pname]), ref, tol,
                      scale_floor=floor)
    check.verify()


@pytest.mark.regcore_needs("SnippetRunner")
def test_exported_decay(backend, device, dtype, scenario_case, checker):
    """One call of the snippet's decoupled decay at the scenario's learning rate multiplies the
    decayed parameters by ``1 - lr·rate`` and leaves the others exactly as they were."""
    name, spec_name = scenario_case
    scenario = SCENARIOS[name]
    code = _export(backend, name, spec_name)
    params, _, _ = inputs(backend, scenario, device, dtype)
    after = backend.exported_decay(code, scenario.model, params, scenario.lr)
    check = checker(device=device, dtype=dtype, scenario=name, case=spec_name)
    returned(check, backend, "exported_decay", after, params)
    rates = reference.scenario_plan(name, spec_name).decay
    # The parameters as the backend got them (rounded to dtype once) are the exact inputs; the
    # decay rounds the factor 1 - lr·rate and the product: 2·γ(1) covers both. A parameter that
    # is not decayed must come back bit for bit.
    for pname, p in scenario.initial_params().items():
        given = p.astype(dtype).astype(np.float64)
        actual = backend.to_numpy(after[pname])
        if pname in rates:
            check.compare(f"exported:decay:{pname}", actual,
                          given * (1 - scenario.lr * rates[pname]), Tolerance(dtype, 1))
        else:
            check.compare(f"exported:decay:{pname}", actual, given,
                          Bound(0.0, "bitwise equal (not decayed)"))
    check.verify()
