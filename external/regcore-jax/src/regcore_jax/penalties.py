"""Penalty values as differentiable JAX expressions, one small function per term kind.

Each function takes the term (any convention: coefficients come from ``term.scaled()``, the
canonical ``sum`` form) and an array ``w`` and returns the penalty as a 0-dim array that
``jax.grad`` differentiates; no gradient is derived by hand. Coefficients are rounded once to the
accumulation dtype (as Keras and the NumPy reference do). Parameters stored in float16/bfloat16
are cast up to float32 *before* any reduction, so the penalty accumulates in float32 (``jax.grad``
casts the gradient back to the parameter's dtype).

Two JAX conventions differ from the reference's subgradients (verified on JAX 0.10.2, eagerly and
under ``jax.jit``):

* ``jax.grad(jnp.abs)(0.0)`` is ``1.0``, not ``sign(0) = 0``. L1, elastic net and the orthogonal
  term's ``|G_ij|`` therefore go through :func:`abs0`, whose derivative is ``sign(x)``.
* ``jnp.sqrt(jnp.sum(x * x))`` and ``jnp.linalg.norm`` have NaN gradients at 0 (``0·∞``), so norms
  go through :func:`safe_norm`, whose gradient is exactly 0 at 0.

``jnp.maximum`` splits its gradient ½/½ on a tie, so the orthogonal term's clamp is a ``where``
that treats a row of norm exactly ε as clamped, as the reference does.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from regcore import L1, L2, ORTHOGONAL_EPSILON, ElasticNet, GroupLasso, Orthogonal, Term

HIGHEST = jax.lax.Precision.HIGHEST
"""Matmul precision everywhere: full float32 on GPUs (no TF32/bf16 passes), as the reference."""

_LOW_PRECISION = (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))


def accumulation_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """The dtype a penalty on a ``dtype`` parameter accumulates in: float32 for float16 and
    bfloat16, else ``dtype`` itself."""
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dtype in _LOW_PRECISION else dtype


def accumulate(w: jax.Array) -> jax.Array:
    """``w`` cast to its :func:`accumulation_dtype` (a no-op for float32/float64)."""
    return w.astype(accumulation_dtype(w.dtype))


def _coef(value: float, w: jax.Array) -> jax.Array:
    """A coefficient as a 0-dim array of ``w``'s dtype (one rounding of the float64 value)."""
    return jnp.asarray(value, dtype=w.dtype)


@jax.custom_jvp
def abs0(x: jax.Array) -> jax.Array:
    """``|x|`` with derivative ``sign(x)``: 0 at ``x = 0`` (``jnp.abs``'s is 1 there)."""
    return jnp.abs(x)


@abs0.defjvp
def _abs0_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return jnp.abs(x), jnp.sign(x) * t


def safe_norm(x: jax.Array, axis: int, keepdims: bool = False) -> jax.Array:
    """``‖x‖₂`` along ``axis`` whose gradient is 0 (not NaN) where the norm is 0.

    The double ``where``: the inner one feeds ``sqrt`` a 1 where the squared norm is 0, so its
    backward pass never computes ``0·∞``; the outer one selects 0 there, which routes a zero
    gradient to ``x``.
    """
    squares = jnp.sum(x * x, axis=axis, keepdims=keepdims)
    positive = squares != 0  # NaN/inf propagate; only an exact 0 is guarded
    root = jnp.sqrt(jnp.where(positive, squares, jnp.ones_like(squares)))
    return jnp.where(positive, root, jnp.zeros_like(squares))


def l2(term: L2, w: jax.Array) -> jax.Array:
    """``s · Σ w²``."""
    w = accumulate(w)
    return _coef(term.scaled()["coef"], w) * jnp.sum(w * w)


def l1(term: L1, w: jax.Array) -> jax.Array:
    """``s · Σ |w|``; subgradient ``s · sign(w)``, 0 at ``w = 0`` (:func:`abs0`)."""
    w = accumulate(w)
    return _coef(term.scaled()["coef"], w) * jnp.sum(abs0(w))


def elastic_net(term: ElasticNet, w: jax.Array) -> jax.Array:
    """``s1 · Σ |w| + s2 · Σ w²``."""
    w = accumulate(w)
    scaled = term.scaled()
    s1, s2 = _coef(scaled["l1"], w), _coef(scaled["l2"], w)
    return s1 * jnp.sum(abs0(w)) + s2 * jnp.sum(w * w)


def group_lasso(term: GroupLasso, w: jax.Array) -> jax.Array:
    """``s · c · Σ_g ‖w_g‖₂`` over the slices along ``term.axis``; ``c = √(group size)`` with
    ``scale_by_size``, else 1. An all-zero group has subgradient 0 (:func:`safe_norm`)."""
    w = accumulate(w)
    axis = term.axis % w.ndim
    groups = jnp.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    coef = _coef(term.scaled()["coef"], w)
    if term.scale_by_size:
        coef = coef * jnp.sqrt(_coef(float(groups.shape[1]), w))
    return coef * jnp.sum(safe_norm(groups, axis=1))


def orthogonal(term: Orthogonal, w: jax.Array) -> jax.Array:
    """Keras 3 ``OrthogonalRegularizer``: with ``V`` the rows (columns) of ``w`` each divided by
    ``max(‖v‖, 1e-7)``, ``G = V Vᵀ`` and ``s`` rows (columns)::

        coef · 0.5 · Σ_{i≠j} |G_ij| / (s (s-1) / 2)

    The clamp is ``where(‖v‖ <= ε, ε, ‖v‖)``: the gradient reaches ``‖v‖`` only where it is above
    ε (the reference's rule, which ``jnp.maximum``'s ½/½ tie would break), and :func:`safe_norm`
    keeps a zero row's gradient 0. ``|G_ij|`` is :func:`abs0`, so an exactly orthogonal pair (and
    a zero row) has subgradient 0.
    """
    w = accumulate(w)
    rows = w if term.mode == "rows" else w.T
    size = rows.shape[0]
    eps = _coef(ORTHOGONAL_EPSILON, w)
    norms = safe_norm(rows, axis=1, keepdims=True)
    v = rows * (1 / jnp.where(norms <= eps, eps, norms))
    gram = jnp.matmul(v, v.T, precision=HIGHEST)
    off = 1 - jnp.eye(size, dtype=w.dtype)
    c = _coef(term.scaled()["coef"], w) * _coef(0.5, w) / _coef(size * (size - 1) / 2, w)
    return c * jnp.sum(abs0(gram * off))


KERNELS: dict[type[Term], Callable[[Term, jax.Array], jax.Array]] = {
    L2: l2, L1: l1, ElasticNet: elastic_net, GroupLasso: group_lasso, Orthogonal: orthogonal,
}
"""The penalty function for each term class."""
