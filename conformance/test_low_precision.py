"""float16/bfloat16 parameters: the penalty accumulates in float32.

For every term kind on a 64×64 parameter (4096 entries) holding numbers the low dtype stores
exactly, the backend's penalty value is float32 (or wider) and agrees with the float64 reference
on the same stored numbers within the float32 tolerance of the computation
(:func:`~regcore_conformance.tolerance.low_precision_value`: those numbers are float32 numbers, so
accumulating in float32 is a float32 computation on exact inputs).

The same test shows that a low-precision result would not pass: each term's coefficient is
chosen so that the exact penalty is ``65792 = 2¹⁶ + 2⁸``, above float16's largest finite number
65504 (stored in float16 it is ``inf``) and halfway between the bfloat16 neighbours 65536 and
66048 (stored in bfloat16 it is off by ``2⁸/65792 ≈ 2⁻⁸``, eight times the float32 tolerance). That
correctly rounded value is the best any result held in the low dtype can be; a running sum in it
is worse (a bfloat16 sum of ones stops growing at 256).

Gradients come back in the parameter's own dtype and match the reference gradient rounded to that
dtype (:func:`~regcore_conformance.tolerance.stored`).

The suite runs this over ``float16`` and ``bfloat16``; a dtype the backend does not list in
``low_precision_dtypes`` is a skip naming the backend. Dtypes are read from the backend's arrays'
``dtype`` (``.name``, or the last dotted part of ``str(dtype)``: ``torch.bfloat16``), since
:meth:`~regcore.Backend.to_numpy` may widen bfloat16, which NumPy lacks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from regcore import (
    L1,
    L2,
    ElasticNet,
    GroupLasso,
    Orthogonal,
    ParamInfo,
    Plan,
    Rule,
    Select,
    Spec,
    Term,
)
from regcore_conformance import reference
from regcore_conformance.protocol import dtype_name, returned
from regcore_conformance.tolerance import low_precision_value, stored

SHAPE = (64, 64)
TARGET = 65792.0  # 2**16 + 2**8: > float16's 65504; a bfloat16 tie between 65536 and 66048
FLOAT16_MAX = 65504.0
BFLOAT16_MAX = (2 - 2.0**-7) * 2.0**127

#: Each term kind with its coefficient(s) as a function of one factor ``k``.
TERMS: dict[str, Callable[[float], Term]] = {
    "l2": lambda k: L2(k, convention="sum"),
    "l1": lambda k: L1(k, convention="sum"),
    "elastic_net": lambda k: ElasticNet(k, k / 4, convention="sum"),
    "group_lasso": lambda k: GroupLasso(k, convention="sum", axis=0),
    "orthogonal": lambda k: Orthogonal(k, "rows", convention="sum"),
}


def round_to(dtype: str, x: Any) -> np.ndarray:
    """``x`` (float64) rounded to nearest, ties to even, in ``dtype``, returned as float64.

    float16 by NumPy's direct conversion (above 65504 + half an ulp it overflows to inf).
    bfloat16, which NumPy lacks, on the float64 bits: bfloat16 keeps 8 significant bits (7 stored)
    and float32's exponent range, so add ``2⁴⁴ − 1`` plus the lowest kept bit to the bits and
    clear the 45 low fraction bits (one rounding, not two through float32); below the normal
    range round to a multiple of ``2⁻¹³³``, above the largest finite bfloat16 give ``±inf``.
    """
    x = np.asarray(x, dtype=np.float64)
    if dtype == "float16":
        with np.errstate(over="ignore"):
            return x.astype(np.float16).astype(np.float64)
    if dtype != "bfloat16":
        raise ValueError(f"round_to: expected float16 or bfloat16, got {dtype!r}")
    bits = x.view(np.uint64)
    low = np.uint64(2**45 - 1)
    kept = ((bits + (low >> np.uint64(1)) + ((bits >> np.uint64(45)) & np.uint64(1))) & ~low)
    out = np.where(np.abs(x) < 2.0**-126, np.rint(x * 2.0**133) * 2.0**-133,
                   kept.view(np.float64))
    return np.where(np.abs(out) > BFLOAT16_MAX, np.copysign(np.inf, x), out)


def stored_numbers(dtype: str) -> np.ndarray:
    """A 64×64 standard normal sample rounded to ``dtype``: float64 numbers ``dtype`` holds."""
    return round_to(dtype, np.random.default_rng(2024).standard_normal(SHAPE))


def _plan(term: Term) -> Plan:
    return Spec(penalties=(Rule(term, Select()),)).resolve([ParamInfo("w", SHAPE, "weight")])


def scaled_case(kind: str, w: np.ndarray) -> tuple[Plan, float, np.ndarray]:
    """The plan whose float64 reference penalty on ``w`` is :data:`TARGET` (up to float64
    rounding), with that reference value and gradient."""
    unit = float(reference.REFERENCE.penalty(_plan(TERMS[kind](1.0)), {"w": w})[0])
    plan = _plan(TERMS[kind](TARGET / unit))
    value, grads = reference.REFERENCE.penalty(plan, {"w": w})
    return plan, float(value), grads["w"]


@pytest.mark.parametrize("low_precision_term", list(TERMS))
def test_value_accumulates_in_float32(backend, device, low_dtype, low_precision_term,
                                      checker):
    w = stored_numbers(low_dtype)
    plan, ref_value, ref_grad = scaled_case(low_precision_term, w)
    assert abs(ref_value - TARGET) <= 1e-9 * TARGET and TARGET > FLOAT16_MAX
    check = checker(device=device, dtype=low_dtype, scenario="low_precision",
                    case=low_precision_term)

    param = backend.asarray(w, dtype=low_dtype, device=device)
    check.holds("param_dtype", dtype_name(param) == low_dtype,
                f"asarray(dtype={low_dtype!r}) gave dtype {dtype_name(param)}")
    check.unchanged("stored_exactly", backend.to_numpy(param), w)
    value, grads = backend.penalty(plan, {"w": param})
    returned(check, backend, "penalty", grads, {"w": param}, value=value)

    # the value: float32 or wider, within the float32 tolerance of the float64 reference
    check.holds("value_dtype_float32_or_wider", dtype_name(value) in ("float32", "float64"),
                f"the penalty on {low_dtype} parameters has dtype {dtype_name(value)}, not "
                "float32 or wider")
    tol = low_precision_value(SHAPE)
    check.compare("penalty", backend.to_numpy(value), ref_value, tol, check_dtype=False)

    # what a low-precision result would be at best: the exact value rounded to the dtype
    naive = float(round_to(low_dtype, ref_value))
    naive_error = abs(naive - ref_value) / abs(ref_value) if np.isfinite(naive) else np.inf
    check.holds(f"{low_dtype}_value_misses_tolerance", naive_error > tol.value,
                f"the reference rounded to {low_dtype} ({naive}) is within the float32 "
                f"tolerance ({naive_error:.3g} <= {tol.value:.3g}): the check shows nothing")

    # the gradient: in the parameter's dtype, the reference rounded to it within two roundings
    grad = grads["w"]
    check.holds("grad_dtype", dtype_name(grad) == low_dtype,
                f"the gradient of a {low_dtype} parameter has dtype {dtype_name(grad)}")
    ref_stored = round_to(low_dtype, ref_grad)
    check.compare("grad:w", backend.to_numpy(grad), ref_stored,
                  stored(low_dtype, tol, float(np.max(np.abs(ref_stored)))), check_dtype=False)
    check.verify()
