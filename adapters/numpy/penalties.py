"""Penalty value and analytic (sub)gradient for every term, in the dtype of the array given.

Each function takes the term (any convention: coefficients come from ``term.scaled()``) and an
array ``w`` and returns ``(value, grad)``. Coefficients are cast to ``w.dtype`` as Keras does.
The backend hands the kernels float16 parameters cast up to :func:`accumulation_dtype` (float32)
first, so their penalty accumulates in float32, and casts the gradient back once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from regcore import L1, L2, ORTHOGONAL_EPSILON, ElasticNet, GroupLasso, Orthogonal, Term


def accumulation_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a penalty on a ``dtype`` parameter accumulates in: float32 for floating dtypes
    narrower than it (float16; ml_dtypes' bfloat16), else ``dtype`` itself."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype.itemsize < 4 else dtype


def _coef(value: float, w: np.ndarray) -> np.ndarray:
    return np.asarray(value, dtype=w.dtype)


def l2(term: L2, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = _coef(term.scaled()["coef"], w)
    return s * np.sum(w * w), (2 * s) * w


def l1(term: L1, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = _coef(term.scaled()["coef"], w)
    return s * np.sum(np.abs(w)), s * np.sign(w)  # sign(0) = 0: the reference subgradient


def elastic_net(term: ElasticNet, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scaled = term.scaled()
    s1, s2 = _coef(scaled["l1"], w), _coef(scaled["l2"], w)
    value = s1 * np.sum(np.abs(w)) + s2 * np.sum(w * w)
    return value, s1 * np.sign(w) + (2 * s2) * w


def group_lasso(term: GroupLasso, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = _coef(term.scaled()["coef"], w)
    groups = np.moveaxis(w, term.axis, 0).reshape(w.shape[term.axis], -1)
    norms = np.sqrt(np.sum(groups * groups, axis=1))
    weight = np.sqrt(np.asarray(groups.shape[1], dtype=w.dtype)) if term.scale_by_size else 1
    value = s * weight * np.sum(norms)
    safe = np.where(norms != 0, norms, 1)  # NaN/inf norms propagate, not 0
    unit = np.where((norms != 0)[:, None], groups / safe[:, None], 0)  # all-zero group: 0
    grad = (s * weight * unit).reshape(np.moveaxis(w, term.axis, 0).shape)
    return value, np.moveaxis(grad, 0, term.axis)


def orthogonal(term: Orthogonal, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = w if term.mode == "rows" else w.T
    size = rows.shape[0]
    eps = _coef(ORTHOGONAL_EPSILON, w)
    norms = np.sqrt(np.sum(rows * rows, axis=1, keepdims=True))
    clamped = norms <= eps
    inv = 1 / np.maximum(norms, eps)
    v = rows * inv
    gram = v @ v.T
    off = 1 - np.eye(size, dtype=w.dtype)
    c = _coef(term.scaled()["coef"], w) * _coef(0.5, w) / _coef(size * (size - 1) / 2, w)
    value = c * np.sum(np.abs(gram * off))
    dgram = c * np.sign(gram) * off
    dv = (dgram + dgram.T) @ v
    radial = np.sum(v * dv, axis=1, keepdims=True)
    drows = np.where(clamped, dv * inv, (dv - v * radial) * inv)
    return value, drows if term.mode == "rows" else drows.T


KERNELS: dict[type[Term], Callable[[Term, np.ndarray], tuple[np.ndarray, np.ndarray]]] = {
    L2: l2, L1: l1, ElasticNet: elastic_net, GroupLasso: group_lasso, Orthogonal: orthogonal,
}
