"""JAX's derivative conventions at 0 are not the reference's: ``abs'(0) = 1`` and NaN norms.
The backend's penalties give the reference subgradient there, eagerly and under ``jax.jit``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import DTYPES, TRANSFORMS, ZERO_CASES, term_plan
from regcore_jax.backend import penalty_value, x64
from regcore_jax.penalties import abs0, safe_norm

from regcore import load_backend


def test_the_traps_are_real_in_this_jax():
    """If JAX changes either convention, these fail and the workarounds can be revisited."""
    assert float(jax.grad(jnp.abs)(0.0)) == 1.0
    assert np.isnan(np.asarray(jax.grad(jnp.linalg.norm)(jnp.zeros(3)))).all()


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_abs0_derivative_is_sign(transform, dtype):
    with x64():
        x = jnp.asarray([-2.0, 0.0, -0.0, 3.0], dtype=dtype)
        grad = TRANSFORMS[transform](jax.grad(lambda v: jnp.sum(abs0(v))))(x)
        assert grad.dtype == dtype
        np.testing.assert_array_equal(np.asarray(grad), [-1.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("keepdims", [False, True])
def test_safe_norm_of_zeros_has_zero_gradient(transform, keepdims):
    with x64():
        x = jnp.asarray([[0.0, 0.0], [3.0, 4.0]], dtype="float64")
        value, grad = TRANSFORMS[transform](jax.value_and_grad(
            lambda v: jnp.sum(safe_norm(v, axis=1, keepdims=keepdims))))(x)
    assert float(value) == 5.0
    np.testing.assert_allclose(np.asarray(grad), [[0.0, 0.0], [0.6, 0.8]], rtol=1e-15, atol=0)


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ZERO_CASES)
def test_penalty_subgradient_is_zero_where_the_reference_is(case, dtype, transform):
    term, w, zero = ZERO_CASES[case]
    plan = term_plan(term, w.shape)
    with x64():
        grad = TRANSFORMS[transform](jax.grad(lambda q: penalty_value(plan.penalties, q)))(
            {"w": jnp.asarray(w, dtype=dtype)})["w"]
    got = np.asarray(grad)
    assert np.isfinite(got).all()
    np.testing.assert_array_equal(got[zero], 0.0)


@pytest.mark.parametrize("case", ["l1", "elastic_net"])
def test_backend_l1_subgradient_is_scaled_sign(case):
    """Through the public backend (jit-compiled): ``s·sign(w)`` (+ ``2·s2·w``) exactly."""
    term, w, _ = ZERO_CASES[case]
    backend = load_backend("jax")
    _, grads = backend.penalty(term_plan(term, w.shape),
                               {"w": backend.asarray(w, dtype="float64", device="cpu")})
    scaled = term.scaled()
    want = (scaled["coef"] * np.sign(w) if case == "l1"
            else scaled["l1"] * np.sign(w) + 2 * scaled["l2"] * w)
    np.testing.assert_allclose(backend.to_numpy(grads["w"]), want, rtol=1e-15, atol=0)
