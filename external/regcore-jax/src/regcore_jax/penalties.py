"""Penalty values as differentiable JAX expressions, one small function per term kind.

The kernels are written once, here: ``_<kind>(rule, w)``, where ``rule`` is the term as plain data
(:func:`regcore.export_support.term_data`: ``kind``, the ``sum``-form coefficients, the options)
and ``w`` an array already in its accumulation dtype; each returns the penalty as a 0-dim array
that ``jax.grad`` differentiates (no gradient is derived by hand). They name only JAX, each other
and regcore's constants, so :mod:`regcore_jax.export` copies their source, as written, into the
snippets it exports (with ``ORTHOGONAL_EPSILON`` rendered from regcore's value): a fix here is a
fix there.

:data:`KERNELS` maps each term class to ``kernel(term, w)``: the same kernel taking the term
itself and ``w`` as stored. Coefficients are rounded once to the accumulation dtype (as Keras and
the NumPy reference do). Parameters stored in float16/bfloat16
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

from regcore import (
    L1,
    L2,
    ORTHOGONAL_EPSILON,
    ElasticNet,
    GroupLasso,
    Orthogonal,
    Term,
    export_support,
)

HIGHEST = jax.lax.Precision.HIGHEST
"""Matmul precision everywhere: full float32 on GPUs (no TF32/bf16 passes), as the reference."""

_LOW_PRECISION = (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))


def accumulation_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """The dtype a penalty on a ``dtype`` parameter accumulates in: float32 for float16 and
    bfloat16, else ``dtype`` itself."""
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dtype in _LOW_PRECISION else dtype


def _accumulate(w: jax.Array) -> jax.Array:
    """w cast to its accumulation dtype (a no-op for float32/float64)."""
    return w.astype(accumulation_dtype(w.dtype))


def _coef(value: float, w: jax.Array) -> jax.Array:
    """A coefficient as a 0-dim array of w's dtype (one rounding of the float64 value)."""
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


def _l2(rule: dict, w: jax.Array) -> jax.Array:
    """coef * sum(w**2)."""
    return _coef(rule["coef"], w) * jnp.sum(w * w)


def _l1(rule: dict, w: jax.Array) -> jax.Array:
    """coef * sum(|w|); subgradient coef * sign(w), 0 at w = 0 (abs0)."""
    return _coef(rule["coef"], w) * jnp.sum(abs0(w))


def _elastic_net(rule: dict, w: jax.Array) -> jax.Array:
    """l1 * sum(|w|) + l2 * sum(w**2)."""
    s1, s2 = _coef(rule["l1"], w), _coef(rule["l2"], w)
    return s1 * jnp.sum(abs0(w)) + s2 * jnp.sum(w * w)


def _group_lasso(rule: dict, w: jax.Array) -> jax.Array:
    """coef * c * sum of the L2 norms of the slices along axis (canonical layout), c =
    sqrt(group size) with scale_by_size, else 1. An all-zero group has subgradient 0
    (safe_norm)."""
    axis = rule["axis"] % w.ndim
    groups = jnp.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    coef = _coef(rule["coef"], w)
    if rule["scale_by_size"]:
        coef = coef * jnp.sqrt(_coef(float(groups.shape[1]), w))
    return coef * jnp.sum(safe_norm(groups, axis=1))


def _orthogonal(rule: dict, w: jax.Array) -> jax.Array:
    """Keras 3 OrthogonalRegularizer: with V the rows (columns) of w (canonical layout) each
    divided by max(||v||, ORTHOGONAL_EPSILON), G = V V^T and k rows (columns),
    coef * 0.5 * sum_{i != j} |G_ij| / (k (k - 1) / 2).

    The clamp is where(||v|| <= eps, eps, ||v||): the gradient reaches ||v|| only where it is
    above eps (the reference's rule, which jnp.maximum's 1/2-1/2 split at a tie would break), and
    safe_norm keeps a zero row's gradient 0. |G_ij| is abs0, so an exactly orthogonal pair (and
    a zero row) has subgradient 0. The Gram matrix is a matmul at HIGHEST precision."""
    rows = w if rule["mode"] == "rows" else w.T
    size = rows.shape[0]
    eps = _coef(ORTHOGONAL_EPSILON, w)
    norms = safe_norm(rows, axis=1, keepdims=True)
    v = rows * (1 / jnp.where(norms <= eps, eps, norms))
    gram = jnp.matmul(v, v.T, precision=HIGHEST)
    off = 1 - jnp.eye(size, dtype=w.dtype)
    c = _coef(rule["coef"], w) * _coef(0.5, w) / _coef(size * (size - 1) / 2, w)
    return c * jnp.sum(abs0(gram * off))


_for_terms = export_support.term_kernel
l2, l1 = _for_terms(_l2, _accumulate), _for_terms(_l1, _accumulate)
elastic_net = _for_terms(_elastic_net, _accumulate)
group_lasso = _for_terms(_group_lasso, _accumulate)
orthogonal = _for_terms(_orthogonal, _accumulate)

KERNELS: dict[type[Term], Callable[[Term, jax.Array], jax.Array]] = {
    L2: l2, L1: l1, ElasticNet: elastic_net, GroupLasso: group_lasso, Orthogonal: orthogonal,
}
"""The kernel for each term class, taking the term and ``w`` as stored: ``kernel(term, w)``."""
