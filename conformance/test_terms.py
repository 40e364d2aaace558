"""Each penalty term alone: value and (sub)gradient, including at exact zeros."""

from __future__ import annotations

import numpy as np
import pytest

from regcore_conformance import reference
from regcore_conformance.cases import TERM_CASES
from regcore_conformance.protocol import returned
from regcore_conformance.tolerance import Tolerance, penalty_chain


def test_penalty(backend, device, dtype, term_case, checker):
    case = TERM_CASES[term_case]
    check = checker(device=device, dtype=dtype, scenario="terms", case=term_case)
    w = backend.asarray(case.array(), dtype=dtype, device=device)
    value, grads = backend.penalty(reference.term_plan(term_case), {"w": w})
    check.unchanged("inputs_unchanged", backend.to_numpy(w), case.array().astype(dtype))
    returned(check, backend, "penalty", grads, {"w": w}, value=value)
    ref_value, ref_grads = reference.term_penalty(term_case)
    tol = Tolerance(dtype, penalty_chain(case.shape))
    check.compare("penalty", backend.to_numpy(value), ref_value, tol)
    check.compare("grad:w", backend.to_numpy(grads["w"]), ref_grads["w"], tol)
    check.verify()


def test_subgradient_at_zero(backend, device, dtype, zero_term_case, checker):
    """Where the reference subgradient is exactly 0 (|x| at 0, an all-zero group), the backend's
    is 0 too: not the 1 of JAX's ``abs'(0)``, never NaN."""
    case = TERM_CASES[zero_term_case]
    ref_grad = reference.term_penalty(zero_term_case)[1]["w"]
    zero = ref_grad == 0
    assert zero.any(), f"{zero_term_case}: the case sets entries to 0 but none has subgradient 0"
    check = checker(device=device, dtype=dtype, scenario="terms", case=zero_term_case)
    _, grads = backend.penalty(
        reference.term_plan(zero_term_case),
        {"w": backend.asarray(case.array(), dtype=dtype, device=device)},
    )
    got = np.asarray(backend.to_numpy(grads["w"]))
    check.compare("subgradient_at_zero", np.where(zero, got, got.dtype.type(0)),
                  np.zeros_like(got),
                  Tolerance(dtype, 1), scale_floor=1.0)
    check.verify()


@pytest.mark.parametrize("special", ["nan", "inf"])
def test_non_finite_parameters_propagate(backend, device, dtype, term_case, special, checker):
    """The documented policy for non-finite parameters: they propagate, as the frameworks' own
    ops do (no check costs a device sync), so the penalty is never a finite number — a guard
    that maps a NaN group's norm to 0 would be a silent wrong number. Gradients at a NaN entry
    follow the framework's elementwise conventions (torch's sign(NaN) is 0, NumPy's NaN), so
    only the value is checked."""
    case = TERM_CASES[term_case]
    w = case.array()
    at = int(np.flatnonzero(w)[0])  # an entry no zero-guard applies to
    w.flat[at] = np.nan if special == "nan" else np.inf
    check = checker(device=device, dtype=dtype, scenario="terms", case=term_case)
    value, _ = backend.penalty(reference.term_plan(term_case),
                               {"w": backend.asarray(w, dtype=dtype, device=device)})
    value = np.asarray(backend.to_numpy(value))
    check.holds(f"{special}_penalty_not_finite", not np.all(np.isfinite(value)),
                f"a parameter holding {special} gave the finite penalty {value}")
    check.verify()


@pytest.mark.parametrize("bad", ["integer", "list"])
def test_parameters_that_are_not_floating_arrays_are_a_type_error(backend, bad, checker):
    """Integer parameters would round the coefficient to an integer (a silent 0 for L2(0.3)); a
    list (or another framework's array) is not the backend's. Both are a TypeError naming the
    parameter, before anything is computed."""
    check = checker(device="cpu", dtype="-", scenario="terms", case=f"{bad}_parameter")
    w = (backend.asarray(np.arange(1, 8), dtype="int64", device="cpu") if bad == "integer"
         else [1.0] * 7)
    try:
        backend.penalty(reference.term_plan("l2_sum_vector"), {"w": w})
    except TypeError as exc:
        check.holds("type_error", "'w'" in str(exc), f"the TypeError does not name 'w': {exc}")
    else:
        check.holds("type_error", False, f"a {bad} parameter gave a penalty, no TypeError")
    check.verify()
