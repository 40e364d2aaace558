"""Native translations (a framework's own model object, loss terms, optimizer settings) give the
reference's penalty and gradients, and train exactly like the functional path: same parameters after
K steps as the reference.

Before each native check the plan the translation resolved on its own model
(:meth:`regcore.NativeTranslations.native_plan`) must equal the reference's,
``spec.resolve(model.params(), model.layer_names())`` (check ``native_<translation>:plan``): a
translation that derives other roles, names, shapes or layers runs another spec. A
:class:`regcore.SpecError` from a native translation is a skip only where that plan is the
reference's (the translation cannot express a term or an optimizer setting, and says so); where the
plan differs, or cannot be resolved at all, or the backend cannot report it, the test fails: a spec
the reference resolves that a translation refuses for its parameters is a bug that would otherwise
turn checks into skips and leave the run green. Every native case lands in the report's per-
translation tally of cases run and skipped, by reason
(:meth:`~regcore_conformance.report.Report.note_native`).
"""

from __future__ import annotations

import numpy as np
import pytest

from regcore import SpecError, UnsupportedError
from regcore_conformance import reference
from regcore_conformance.cases import scenario_specs
from regcore_conformance.inputs import check_inputs_unchanged, compare_trajectory, inputs
from regcore_conformance.protocol import plan_differences, returned
from regcore_conformance.scenarios import SCENARIOS
from regcore_conformance.tolerance import Tolerance, penalty_chain

pytestmark = pytest.mark.regcore_needs("NativeTranslations")


def check_native_plan(check, backend, translation, name, spec_name) -> bool | None:
    """Record ``native_<translation>:plan``: the translation's plan equals the reference's.
    ``None`` (nothing recorded) where the backend's
    :meth:`~regcore.NativeTranslations.native_plan` raises :class:`regcore.UnsupportedError`."""
    scenario = SCENARIOS[name]
    label = f"native_{translation}:plan"
    try:
        got = backend.native_plan(translation, scenario.model, scenario_specs(name)[spec_name])
    except UnsupportedError:
        return None
    except SpecError as exc:
        check.holds(label, False, f"the translation cannot resolve {spec_name}, which the "
                                  f"reference resolves on the same model: {exc}")
        return False
    diffs = plan_differences(got, reference.scenario_plan(name, spec_name))
    check.holds(label, not diffs, f"resolved another plan than the reference's for "
                                  f"{spec_name}: {'; '.join(diffs[:4])}")
    return not diffs


def _refused(check, backend, test, translation, spec_name, exc, plan_ok) -> None:
    """A native translation raised: skip where the refusal is the translation's declared limit (an
    optimizer it does not offer; a term it cannot express, with the reference's plan), fail
    where the plan says otherwise."""
    kind = type(exc).__name__
    if isinstance(exc, SpecError) and plan_ok is None:
        check.holds(f"native_{translation}:plan", False,
                    f"{backend.name} {translation} refused {spec_name} ({exc}), and the backend "
                    "does not implement native_plan, so the suite cannot tell a translation's "
                    "limit from a plan mismatch")
        plan_ok = False
    outcome = "failed" if plan_ok is False else f"skipped: {kind}"
    check.report.note_native(test, translation, outcome)
    check.verify()  # a plan mismatch fails here, before any skip
    plan = "the plan is the reference's" if plan_ok else "plan not reported"
    pytest.skip(f"{backend.name} {translation} cannot run {spec_name} ({kind}; {plan}): {exc}")


def test_native_training(backend, device, dtype, native_translation, optimizer, scenario_case,
                         checker):
    name, spec_name = scenario_case
    scenario = SCENARIOS[name]
    params, x, y = inputs(backend, scenario, device, dtype)
    check = checker(device=device, dtype=dtype, scenario=name, case=spec_name)
    plan_ok = check_native_plan(check, backend, native_translation, name, spec_name)
    try:
        final = backend.native_train(native_translation, scenario.model,
                                     scenario_specs(name)[spec_name], params, x, y,
                                     optimizer=scenario.optimizer(optimizer), steps=scenario.steps)
    except (SpecError, UnsupportedError) as exc:
        _refused(check, backend, "native_train", native_translation, spec_name, exc, plan_ok)
    check.report.note_native("native_train", native_translation, "ran")
    check_inputs_unchanged(check, backend, scenario, dtype, params, x, y)
    returned(check, backend, f"native_train:{native_translation}", final, params)
    compare_trajectory(check, backend, f"native_{native_translation}_{optimizer}", final,
                       reference.train(name, spec_name, optimizer), scenario, dtype)
    check.verify()


def test_native_penalty(backend, device, dtype, native_penalty_translation, scenario_case,
                        checker):
    """The penalty a native translation adds (e.g. Keras ``model.losses``) and its gradient on
    the scenario's initial parameters equal the reference's and the backend's functional
    :meth:`~regcore.Backend.penalty`."""
    name, spec_name = scenario_case
    scenario = SCENARIOS[name]
    params, _, _ = inputs(backend, scenario, device, dtype)
    plan = reference.scenario_plan(name, spec_name)
    check = checker(device=device, dtype=dtype, scenario=name, case=spec_name)
    plan_ok = check_native_plan(check, backend, native_penalty_translation, name, spec_name)
    try:
        value, grads = backend.native_penalty(native_penalty_translation, scenario.model,
                                              scenario_specs(name)[spec_name], params)
    except (SpecError, UnsupportedError) as exc:
        _refused(check, backend, "native_penalty", native_penalty_translation, spec_name, exc,
                 plan_ok)
    check.report.note_native("native_penalty", native_penalty_translation, "ran")
    returned(check, backend, f"native_penalty:{native_penalty_translation}", grads, params,
             value=value)
    ref_value, ref_grads = reference.REFERENCE.penalty(plan, scenario.initial_params())
    functional = backend.to_numpy(backend.penalty(plan, params)[0])
    # the sum over every parameter, after the longest single term's own chain
    shapes = [np.shape(p) for p in ref_grads.values()]
    tol = Tolerance(dtype, sum(int(np.prod(s)) for s in shapes)
                    + max(penalty_chain(s) for s in shapes))
    label = f"native_{native_penalty_translation}"
    check.compare(f"{label}:penalty", backend.to_numpy(value), ref_value, tol)
    check.compare(f"{label}:penalty_vs_functional", backend.to_numpy(value),
                  np.asarray(functional, dtype=np.float64), tol)
    floor = max([float(np.max(np.abs(g))) for g in ref_grads.values()] + [0.0])
    for pname, ref in ref_grads.items():
        check.compare(f"{label}:grad:{pname}", backend.to_numpy(grads[pname]), ref, tol,
                      scale_floor=floor)
    check.verify()
