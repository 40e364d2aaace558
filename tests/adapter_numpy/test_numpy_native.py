"""``regcore_adapters.numpy.native.InPlacePenalty``: the hand-written-step path. The conformance
suite checks its value, gradient and training (``in_place``, ``folded_sgd``) against the reference
on every scenario; these tests pin what it promises beyond the numbers: the step's arrays are
updated in place, no array is allocated per call for L2, float16 accumulates in float32, and bad
input is refused."""

from __future__ import annotations

import numpy as np
import pytest

from regcore import (
    L1,
    L2,
    DecoupledWeightDecay,
    ElasticNet,
    GroupLasso,
    ParamInfo,
    Rule,
    Select,
    Spec,
    SpecError,
)
from regcore_adapters.numpy import NumpyBackend
from regcore_adapters.numpy.native import InPlacePenalty

SPEC = Spec(
    penalties=[Rule(L2(0.03, convention="sum"), Select(name="a")),
               Rule(ElasticNet(0.02, 0.05, convention="sum"), Select(name="b")),
               Rule(L1(0.07, convention="sum"), Select(name="c")),
               Rule(GroupLasso(0.1, axis=1, convention="sum"), Select(name="c"))],
    weight_decay=[DecoupledWeightDecay(0.01, Select(name="d"))],
)


def _params(dtype=np.float64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(shape).astype(dtype)
              for k, shape in {"a": (4, 3), "b": (5,), "c": (3, 2), "d": (2, 2)}.items()}
    params["b"][:2] = 0  # exact zeros: L1's subgradient there is 0
    return params


def _plan(params):
    return SPEC.resolve([ParamInfo(k, v.shape, "weight") for k, v in params.items()])


def test_value_and_gradient_equal_the_backend_penalty() -> None:
    params = _params()
    plan = _plan(params)
    want_value, want_grads = NumpyBackend().penalty(plan, params)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    InPlacePenalty(plan).add_grad_(params, grads)
    assert InPlacePenalty(plan).value(params) == pytest.approx(float(want_value), rel=1e-14)
    for k in params:
        np.testing.assert_allclose(grads[k], want_grads[k], rtol=1e-14, atol=1e-300)


def test_add_grad_updates_the_given_arrays_and_reuses_its_scratch() -> None:
    params = _params()
    penalty = InPlacePenalty(_plan(params))
    grads = {k: np.ones_like(v) for k, v in params.items()}
    before = {k: id(v) for k, v in grads.items()}
    penalty.add_grad_(params, grads)
    scratch = {k: id(v) for k, v in penalty._scratch.items()}
    penalty.add_grad_(params, grads)
    assert {k: id(v) for k, v in grads.items()} == before
    assert {k: id(v) for k, v in penalty._scratch.items()} == scratch
    np.testing.assert_allclose(grads["a"], 1 + 2 * (2 * 0.03) * params["a"], rtol=1e-15)


def test_sgd_step_is_add_grad_decay_and_sgd_folded() -> None:
    lr = 0.1
    params, folded = _params(), _params()
    grads = {k: np.full_like(v, 0.5) for k, v in params.items()}
    penalty = InPlacePenalty(_plan(params))
    penalty.add_grad_(params, grads)
    penalty.decay_(params, lr)
    for k in params:
        params[k] -= lr * grads[k]
    penalty.sgd_step_(folded, {k: np.full_like(v, 0.5) for k, v in folded.items()}, lr)
    for k in params:  # the same maths: rounding differs by a few ulps at most
        np.testing.assert_allclose(folded[k], params[k], rtol=4 * np.finfo(np.float64).eps)


def test_float16_accumulates_in_float32() -> None:
    w = np.full((256, 256), 16.0, dtype=np.float16)  # Σw² = 2^24, past float16's range
    plan = Spec([Rule(L2(1.0, convention="sum"))]).resolve([ParamInfo("w", w.shape, "weight")])
    penalty = InPlacePenalty(plan)
    assert penalty.value({"w": w}) == 2.0**24
    grads = {"w": np.zeros_like(w)}
    penalty.add_grad_({"w": w}, grads)
    assert grads["w"].dtype == np.float16 and np.all(grads["w"] == 32.0)


def test_a_spec_instead_of_a_plan_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="spec.resolve"):
        InPlacePenalty(SPEC)
