"""Penalty values as differentiable ``keras.ops`` expressions, one small function per term kind,
for the regularizer objects regcore gives Keras (:mod:`regcore_adapters.keras.regularizers`): the
same maths on every Keras backend, each backend's autodiff taking the gradient.

``_<kind>(rule, w)`` takes the term as plain data (:func:`regcore.export_support.term_data`) and
``w`` in its accumulation dtype (float32 for float16/bfloat16 variables, cast before any
reduction). Written for the three backends' differing autodiff and dtype rules (measured on
Keras 3.15.1):

* ``|x|`` is ``sign(x)·x``: JAX's ``abs`` has gradient 1 at 0, the reference's subgradient is 0;
* norms go through :func:`safe_norm` (``sqrt``'s gradient at 0 is NaN through ``0·∞``);
* every constant is a tensor of ``w``'s dtype made by ``convert_to_tensor`` (one rounding of the
  float64 value: TensorFlow's ``ops.cast`` of a Python float rounds through float32, and torch's
  ``minimum``/``maximum`` with a Python float compute in float32);
* the orthogonal term's clamp is a ``where`` on ``norm <= eps`` (a row at exactly eps is
  clamped, as in the reference, whatever a backend's ``maximum`` does on ties), and its Gram
  matrix an ``einsum``: on torch, ``ops.matmul``, ``ops.dot`` and ``ops.tensordot`` return
  float32 for float64 operands (a relative error of 2e-8 in the term).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from regcore import L1, L2, ORTHOGONAL_EPSILON, ElasticNet, GroupLasso, Orthogonal, Term
from regcore.export_support import term_kernel

LOW_PRECISION = ("float16", "bfloat16")


def dtype_name(x: Any) -> str:
    """``x``'s dtype as Keras's string (``"float64"``), for any backend's tensor or variable."""
    return keras.backend.standardize_dtype(x.dtype)


def _accumulate(w: Any) -> Any:
    """``w`` as a tensor in the dtype its penalty accumulates in (float32 for float16 and
    bfloat16, else its own)."""
    w = ops.convert_to_tensor(w)
    return ops.cast(w, "float32") if dtype_name(w) in LOW_PRECISION else w


def _const(value: float, w: Any) -> Any:
    return ops.convert_to_tensor(value, dtype=dtype_name(w))


def _abs(x: Any) -> Any:
    return ops.sign(x) * x


def safe_norm(x: Any, axis: int, keepdims: bool = False) -> Any:
    """``‖x‖₂`` along ``axis`` with gradient 0, not NaN, where the norm is 0 (the double
    ``where``: ``sqrt`` never sees a 0, the outer one selects 0 there)."""
    squares = ops.sum(x * x, axis=axis, keepdims=keepdims)
    positive = ops.not_equal(squares, 0)
    root = ops.sqrt(ops.where(positive, squares, ops.ones_like(squares)))
    return ops.where(positive, root, ops.zeros_like(squares))


def _l2(rule: dict, w: Any) -> Any:
    return _const(rule["coef"], w) * ops.sum(w * w)


def _l1(rule: dict, w: Any) -> Any:
    return _const(rule["coef"], w) * ops.sum(_abs(w))


def _elastic_net(rule: dict, w: Any) -> Any:
    return _l1({"coef": rule["l1"]}, w) + _l2({"coef": rule["l2"]}, w)


def _group_lasso(rule: dict, w: Any) -> Any:
    ndim = len(w.shape)
    axis = rule["axis"] % ndim
    moved = ops.transpose(w, (axis, *(i for i in range(ndim) if i != axis)))
    groups = ops.reshape(moved, (w.shape[axis], -1))
    coef = _const(rule["coef"], w)
    if rule["scale_by_size"]:
        coef = coef * ops.sqrt(_const(float(groups.shape[1]), w))
    return coef * ops.sum(safe_norm(groups, axis=1))


def _orthogonal(rule: dict, w: Any) -> Any:
    """Keras 3's OrthogonalRegularizer: rows (columns) divided by max(‖v‖, ε), Gram matrix G,
    ``coef · ½ Σ_{i≠j} |G_ij| / (k(k−1)/2)``."""
    rows = w if rule["mode"] == "rows" else ops.transpose(w)
    size = int(rows.shape[0])
    eps = _const(ORTHOGONAL_EPSILON, w)
    norms = safe_norm(rows, axis=1, keepdims=True)
    v = rows / ops.where(norms <= eps, eps, norms)
    gram = ops.einsum("ik,jk->ij", v, v)
    off = 1 - ops.eye(size, dtype=dtype_name(w))
    c = _const(rule["coef"], w) * _const(0.5, w) / _const(size * (size - 1) / 2, w)
    return c * ops.sum(_abs(gram * off))


def _for_terms(kernel: Callable[[dict, Any], Any]) -> Callable[..., Any]:
    return term_kernel(kernel, _accumulate)


KERNELS: dict[type[Term], Callable[..., Any]] = {
    L2: _for_terms(_l2), L1: _for_terms(_l1), ElasticNet: _for_terms(_elastic_net),
    GroupLasso: _for_terms(_group_lasso), Orthogonal: _for_terms(_orthogonal),
}
"""The kernel for each term class: ``kernel(term, w)``, ``w`` as stored."""
