"""float64 stays float64 (JAX truncates to 32 bits unless x64 is on), without switching x64 on for
the whole process; float16/bfloat16 parameters accumulate the penalty in float32."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import MLP, mlp_case, term_plan
from regcore_jax.backend import penalty_value, x64

from regcore import L2, GroupLasso, Optimizer, load_backend

BACKEND = load_backend("jax")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_result_has_the_input_dtype(dtype, optimizer):
    plan, params, x, y = mlp_case(BACKEND, dtype)
    assert {p.dtype.name for p in params.values()} == {dtype} and y.dtype.name == "int64"
    value, grads = BACKEND.penalty(plan, params)
    loss, loss_grads = BACKEND.loss_and_grads(MLP, plan, params, x, y)
    final = BACKEND.train(MLP, plan, params, x, y, optimizer=Optimizer(optimizer, 0.1),
                          steps=3)
    arrays = [value, loss, *grads.values(), *loss_grads.values(), *final.values()]
    assert {a.dtype.name for a in arrays} == {dtype}


def test_float64_is_computed_in_float64():
    """A float32 computation would be ~1e-8 off; float64 agrees with NumPy to a few ulps."""
    w = np.random.default_rng(2).standard_normal((64, 64))
    plan = term_plan(L2(0.1, convention="sum"), w.shape)
    value, _ = BACKEND.penalty(plan, {"w": BACKEND.asarray(w, dtype="float64", device="cpu")})
    assert abs(float(value) - 0.1 * np.sum(w * w)) <= 1e-13 * 0.1 * np.sum(w * w)


def test_x64_is_scoped_to_the_backend_calls():
    before = jax.config.jax_enable_x64
    BACKEND.penalty(term_plan(L2(0.1, convention="sum"), (3,)),
                    {"w": BACKEND.asarray(np.ones(3), dtype="float64", device="cpu")})
    assert jax.config.jax_enable_x64 == before
    assert jnp.zeros(()).dtype == ("float64" if before else "float32")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("term", [L2(0.5, convention="sum"),
                                  GroupLasso(0.5, convention="sum", axis=0)], ids=str)
def test_low_precision_parameters_accumulate_in_float32(term, dtype):
    """4096 entries of 0.5..1: a float16/bfloat16 running sum would stall or round far off."""
    n = 4096
    w = jnp.asarray(np.random.default_rng(0).uniform(0.5, 1.0, (64, n // 64)), dtype=dtype)
    plan = term_plan(term, w.shape)
    with x64():
        value, grads = jax.jit(jax.value_and_grad(
            lambda q: penalty_value(plan.penalties, q)))({"w": w})
    assert value.dtype == jnp.float32 and grads["w"].dtype == w.dtype
    exact = np.asarray(w, dtype=np.float64)  # the stored numbers, summed in float64
    ref = (0.5 * np.sum(exact * exact) if isinstance(term, L2)
           else 0.5 * np.sum(np.sqrt(np.sum(exact * exact, axis=1))))
    assert abs(float(value) - ref) <= 2 * n * 2.0**-24 * ref
