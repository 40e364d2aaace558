"""Penalty values as differentiable TensorFlow expressions, one small function per term kind.

The kernels are written once, here: ``_<kind>(rule, w)``, where ``rule`` is the term as plain data
(:func:`regcore.export_support.term_data`: ``kind``, the ``sum``-form coefficients, the options)
and ``w`` a tensor already in its accumulation dtype; each returns the penalty as a 0-dim tensor
that ``tf.GradientTape`` differentiates (no gradient is derived by hand). They name only
TensorFlow, each other and regcore's constants, so :mod:`regcore_adapters.tf.export` copies their
source, as written, into the snippets it exports (with ``ORTHOGONAL_EPSILON`` rendered from
regcore's value): a fix here is a fix there.

:data:`KERNELS` maps each term class to ``kernel(term, w, coefs=None)``: the same kernel taking
the term itself and ``w`` as stored. Coefficients are cast to the accumulation dtype (as Keras and
the NumPy reference do). The coefficients may instead be passed as tensors (``coefs``, from
:func:`coefficients`: the same numbers), so that a traced function depends only on the term's
:func:`structure` and serves any coefficients without retracing.
Parameters stored in float16/bfloat16 are cast up to float32 *before* any reduction, so the
penalty accumulates in float32 (the tape casts the gradient back to the parameter's dtype).

Subgradients at 0 (verified on TensorFlow 2.21, eagerly and under ``tf.function`` with and
without ``jit_compile``): ``tf.abs`` has gradient ``sign(0) = 0`` at 0, so L1, elastic net and the
orthogonal term's ``|G_ij|`` give the reference subgradient there. ``tf.norm`` and
``tf.sqrt(tf.reduce_sum(x²))`` give NaN gradients at 0 (``0·∞``), so norms go through
:func:`safe_norm`, whose gradient is exactly 0 at 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

from regcore import L1, L2, ORTHOGONAL_EPSILON, ElasticNet, GroupLasso, Orthogonal, Term
from regcore.export_support import term_kernel, term_structure

_LOW_PRECISION = (tf.float16, tf.bfloat16)


def accumulation_dtype(dtype: tf.DType) -> tf.DType:
    """The dtype a penalty on a ``dtype`` parameter accumulates in: float32 for float16 and
    bfloat16, else ``dtype`` itself."""
    return tf.float32 if dtype in _LOW_PRECISION else dtype


def _accumulate(w: tf.Tensor) -> tf.Tensor:
    """w cast to its accumulation dtype (a no-op for float32/float64)."""
    return tf.cast(w, accumulation_dtype(w.dtype))


def _coef(value: float | tf.Tensor, w: tf.Tensor) -> tf.Tensor:
    """A coefficient as a 0-dim tensor of w's dtype (one rounding of the float64 value); a
    tensor is taken as it is (the backend passes coefficients as tensors of that dtype)."""
    return value if tf.is_tensor(value) else tf.constant(value, dtype=w.dtype)


Coefs = Sequence[tf.Tensor] | None
"""A term's ``scaled()`` coefficients as 0-dim tensors of the accumulation dtype, in the order of
``term.coefficients`` (:func:`coefficients`), or ``None``: take them from the term itself."""

def coefficients(term: Term, dtype: tf.DType) -> tuple[tf.Tensor, ...]:
    """``term.scaled()`` as 0-dim tensors of the accumulation dtype of a ``dtype`` parameter
    (each one rounding of the float64 value, as :func:`_coef`), for the kernels' ``coefs``."""
    acc = accumulation_dtype(dtype)
    return tuple(tf.constant(v, dtype=acc) for v in term.scaled().values())


structure = term_structure
"""What a kernel's graph depends on besides the coefficients
(:func:`regcore.export_support.term_structure`): terms with the same structure trace to the same
graph when their coefficients are passed as tensors (``coefs``)."""


def safe_norm(x: tf.Tensor, axis: int, keepdims: bool = False) -> tf.Tensor:
    """``‖x‖₂`` along ``axis`` whose gradient is 0 (not NaN) where the norm is 0.

    The double ``tf.where``: the inner one feeds ``sqrt`` a 1 where the squared norm is 0, so its
    backward pass never computes ``0·∞``; the outer one selects 0 there, which routes a zero
    gradient to ``x``.
    """
    squares = tf.reduce_sum(x * x, axis=axis, keepdims=keepdims)
    positive = squares != 0  # NaN/inf propagate; only an exact 0 is guarded
    root = tf.sqrt(tf.where(positive, squares, tf.ones_like(squares)))
    return tf.where(positive, root, tf.zeros_like(squares))


def _sum_sq(w: tf.Tensor) -> tf.Tensor:
    """``Σ w²`` as ``2·tf.nn.l2_loss(w)``: one fused pass over ``w`` (``reduce_sum(w * w)``
    writes ``w²`` first; on the CPU that is 1.7–2× slower for large tensors). Doubling is
    exact."""
    return 2 * tf.nn.l2_loss(w)


def _l2(rule: dict, w: tf.Tensor) -> tf.Tensor:
    """coef * sum(w**2)."""
    return _coef(rule["coef"], w) * _sum_sq(w)


def _l1(rule: dict, w: tf.Tensor) -> tf.Tensor:
    """coef * sum(|w|); subgradient coef * sign(w), 0 at w = 0 (tf.abs's gradient)."""
    return _coef(rule["coef"], w) * tf.reduce_sum(tf.abs(w))


def _elastic_net(rule: dict, w: tf.Tensor) -> tf.Tensor:
    """l1 * sum(|w|) + l2 * sum(w**2)."""
    s1, s2 = _coef(rule["l1"], w), _coef(rule["l2"], w)
    return s1 * tf.reduce_sum(tf.abs(w)) + s2 * _sum_sq(w)


def _group_lasso(rule: dict, w: tf.Tensor) -> tf.Tensor:
    """coef * c * sum of the L2 norms of the slices along axis, c = sqrt(group size) with
    scale_by_size, else 1. An all-zero group has subgradient 0 (safe_norm)."""
    ndim = len(w.shape)
    axis = rule["axis"] % ndim
    moved = tf.transpose(w, [axis, *(i for i in range(ndim) if i != axis)]) if axis else w
    groups = tf.reshape(moved, (w.shape[axis], -1))
    norms = safe_norm(groups, axis=1)
    coef = _coef(rule["coef"], w)
    if rule["scale_by_size"]:
        coef = coef * tf.sqrt(_coef(float(groups.shape[1]), w))
    return coef * tf.reduce_sum(norms)


def _orthogonal(rule: dict, w: tf.Tensor) -> tf.Tensor:
    """Keras 3 OrthogonalRegularizer: with V the rows (columns) of w each divided by
    max(||v||, ORTHOGONAL_EPSILON), G = V V^T and k rows (columns),
    coef * 0.5 * sum_{i != j} |G_ij| / (k (k - 1) / 2).

    Keras writes the scaling v * min(rsqrt(sum(v**2)), 1 / eps), the same numbers; dividing by
    the clamped safe_norm keeps a zero row's gradient finite (rsqrt's at 0 is -inf, which the
    clamp's zero gradient turns into NaN). tf.maximum sends the gradient to its first argument
    on a tie, so writing maximum(eps, ||v||) treats a row of norm exactly eps as clamped, as the
    reference does."""
    rows = w if rule["mode"] == "rows" else tf.transpose(w)
    size = int(rows.shape[0])
    norms = safe_norm(rows, axis=1, keepdims=True)
    v = rows * (1 / tf.maximum(_coef(ORTHOGONAL_EPSILON, w), norms))
    gram = tf.matmul(v, v, transpose_b=True)
    off = 1 - tf.eye(size, dtype=w.dtype)
    c = _coef(rule["coef"], w) * _coef(0.5, w) / _coef(size * (size - 1) / 2, w)
    return c * tf.reduce_sum(tf.abs(gram * off))


def _for_terms(kernel: Callable[[dict, tf.Tensor], tf.Tensor]) -> Callable[..., tf.Tensor]:
    """``kernel(rule, w)`` as ``f(term, w, coefs=None)``
    (:func:`regcore.export_support.term_kernel`), ``w`` cast to its accumulation dtype."""
    return term_kernel(kernel, _accumulate)


l2, l1, elastic_net = _for_terms(_l2), _for_terms(_l1), _for_terms(_elastic_net)
group_lasso, orthogonal = _for_terms(_group_lasso), _for_terms(_orthogonal)

KERNELS: dict[type[Term], Callable[..., tf.Tensor]] = {
    L2: l2, L1: l1, ElasticNet: elastic_net, GroupLasso: group_lasso, Orthogonal: orthogonal,
}
"""The kernel for each term class: ``kernel(term, w, coefs=None)``, ``w`` as stored."""
