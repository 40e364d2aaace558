"""Penalty value and analytic (sub)gradient for every term, in the dtype of the array given.

The kernels are written once, here: ``_<kind>(rule, w) -> (value, grad)``, where ``rule`` is the
term as plain data (:func:`regcore.export_support.term_data`: ``kind``, the ``sum``-form
coefficients, the options) and ``w`` an array. They name only NumPy, each other and regcore's
constants, so :mod:`regcore_adapters.numpy.export` copies their source, as written, into the
snippets it exports (with ``ORTHOGONAL_EPSILON`` rendered from regcore's value): a fix here is a
fix there. Coefficients are cast to ``w.dtype`` as Keras does.

:data:`KERNELS` maps each term class to ``kernel(term, w)``, the same kernel taking the term
itself. The backend hands the kernels float16 parameters cast up to :func:`accumulation_dtype`
(float32) first, so their penalty accumulates in float32, and casts the gradient back once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from regcore import (
    L1,
    L2,
    ORTHOGONAL_EPSILON,
    ActivityAssignment,
    ElasticNet,
    GroupLasso,
    Orthogonal,
    Term,
)
from regcore.export_support import term_kernel


def accumulation_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a penalty on a ``dtype`` parameter accumulates in: float32 for floating dtypes
    narrower than it (float16; ml_dtypes' bfloat16), else ``dtype`` itself."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype.itemsize < 4 else dtype


def _accumulate(w: np.ndarray) -> np.ndarray:
    """w in the dtype its penalty accumulates in: float32 for float16/bfloat16, else its own."""
    return w.astype(accumulation_dtype(w.dtype), copy=False)


def _coef(value: float, w: np.ndarray) -> np.ndarray:
    """A coefficient as a 0-dim array of w's dtype (one rounding of the float64 value)."""
    return np.asarray(value, dtype=w.dtype)


def _l2(rule: dict, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """coef * sum(w**2)."""
    s = _coef(rule["coef"], w)
    return s * np.sum(w * w), (2 * s) * w


def _l1(rule: dict, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """coef * sum(|w|); sign(0) = 0 is the subgradient at 0."""
    s = _coef(rule["coef"], w)
    return s * np.sum(np.abs(w)), s * np.sign(w)


def _elastic_net(rule: dict, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """l1 * sum(|w|) + l2 * sum(w**2)."""
    s1, s2 = _coef(rule["l1"], w), _coef(rule["l2"], w)
    return s1 * np.sum(np.abs(w)) + s2 * np.sum(w * w), s1 * np.sign(w) + (2 * s2) * w


def _group_lasso(rule: dict, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """coef * c * sum of the L2 norms of the slices along axis, c = sqrt(group size) with
    scale_by_size, else 1; an all-zero group has subgradient 0."""
    axis = rule["axis"]
    moved = np.moveaxis(w, axis, 0)
    groups = moved.reshape(w.shape[axis], -1)
    norms = np.sqrt(np.sum(groups * groups, axis=1))
    s = _coef(rule["coef"], w)
    if rule["scale_by_size"]:
        s = s * np.sqrt(np.asarray(groups.shape[1], dtype=w.dtype))
    safe = np.where(norms != 0, norms, 1)  # NaN/inf norms propagate, not 0
    unit = np.where((norms != 0)[:, None], groups / safe[:, None], 0)
    return s * np.sum(norms), np.moveaxis((s * unit).reshape(moved.shape), 0, axis)


def _orthogonal(rule: dict, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras 3 OrthogonalRegularizer: coef * 0.5 * sum_{i != j} |G_ij| / (k (k - 1) / 2), G the
    Gram matrix of the k rows (columns) of w each divided by max(||v||, ORTHOGONAL_EPSILON); a
    clamped row's gradient does not flow through its norm; |.| has subgradient 0 at 0."""
    rows = w if rule["mode"] == "rows" else w.T
    size = rows.shape[0]
    eps = _coef(ORTHOGONAL_EPSILON, w)
    norms = np.sqrt(np.sum(rows * rows, axis=1, keepdims=True))
    clamped = norms <= eps
    inv = 1 / np.maximum(norms, eps)
    v = rows * inv
    gram = v @ v.T
    off = 1 - np.eye(size, dtype=w.dtype)
    c = _coef(rule["coef"], w) * _coef(0.5, w) / _coef(size * (size - 1) / 2, w)
    dgram = c * np.sign(gram) * off
    dv = (dgram + dgram.T) @ v
    radial = np.sum(v * dv, axis=1, keepdims=True)
    drows = np.where(clamped, dv * inv, (dv - v * radial) * inv)
    return c * np.sum(np.abs(gram * off)), drows if rule["mode"] == "rows" else drows.T


l2, l1, elastic_net = term_kernel(_l2), term_kernel(_l1), term_kernel(_elastic_net)
group_lasso, orthogonal = term_kernel(_group_lasso), term_kernel(_orthogonal)

KERNELS: dict[type[Term], Callable[[Term, np.ndarray], tuple[np.ndarray, np.ndarray]]] = {
    L2: l2, L1: l1, ElasticNet: elastic_net, GroupLasso: group_lasso, Orthogonal: orthogonal,
}
"""The kernel for each term class, taking the term: ``kernel(term, w) -> (value, grad)``."""


def activity(assignments: tuple[ActivityAssignment, ...], outputs: dict[str, np.ndarray]
             ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The activity penalties (:mod:`regcore.activity`) on the layer ``outputs`` by name: the
    term's kernel on each output, divided by its batch size (first axis) for ``batch_mean``;
    the value and the gradient for each output named (in the output's dtype)."""
    total = np.zeros((), dtype=next(iter(outputs.values())).dtype)
    grads: dict[str, np.ndarray] = {}
    for a in assignments:
        out = outputs[a.layer]
        value, grad = KERNELS[type(a.term)](a.term, out)
        if a.reduction == "batch_mean":
            m = out.dtype.type(out.shape[0])
            value, grad = value / m, grad / m
        total = total + value
        grads[a.layer] = grads[a.layer] + grad if a.layer in grads else grad
    return total, grads
