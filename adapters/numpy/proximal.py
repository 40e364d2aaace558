"""The shrinkage operators of :mod:`regcore.proximal` in NumPy, in place, in the parameter's
dtype (the step's threshold is rounded to it once, as every coefficient is)."""

from __future__ import annotations

import numpy as np

from regcore import proximal
from regcore.proximal import ProxOp


def shrink_(p: np.ndarray, threshold: float) -> None:
    """``p ← sign(p)·max(|p| − threshold, 0)``: entries within ``threshold`` of 0 become 0."""
    t = p.dtype.type(threshold)
    np.copyto(p, np.sign(p) * np.maximum(np.abs(p) - t, 0))


def group_shrink_(p: np.ndarray, threshold: float, axis: int, scale_by_size: bool) -> None:
    """Every group ``p_g`` (slice along ``axis``) ← ``p_g·max(1 − threshold·c_g/‖p_g‖, 0)``;
    an all-zero group stays 0."""
    moved = np.moveaxis(p, axis, 0)
    groups = moved.reshape(moved.shape[0], -1)
    kind = p.dtype.type
    weight = np.sqrt(kind(groups.shape[1])) if scale_by_size else kind(1)
    norms = np.sqrt(np.sum(groups * groups, axis=1))
    safe = np.where(norms != 0, norms, 1)
    factor = np.maximum(1 - kind(threshold) * weight / safe, 0)
    moved[...] = (groups * factor[:, None]).reshape(moved.shape)


def apply_(ops: tuple[ProxOp, ...], params: dict[str, np.ndarray], step: float) -> None:
    """Apply ``ops`` (:func:`regcore.proximal.merged_shrinks` order) with step size ``step``."""
    proximal.apply(ops, params, step, shrink_, group_shrink_)
