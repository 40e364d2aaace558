"""The shrinkage operators of :mod:`regcore.proximal` as torch ops, in place, in the parameter's
dtype (the step's threshold is rounded to it once, as every coefficient is); the same formulas,
in the same order, as the NumPy reference's."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from regcore import proximal
from regcore.proximal import ProxOp


def _scalar(value: float, p: torch.Tensor) -> torch.Tensor:
    """``value`` (a float64 Python number) as a 0-dim tensor of ``p``'s dtype and device."""
    return torch.tensor(value, dtype=p.dtype, device=p.device)


def shrink_(p: torch.Tensor, threshold: float) -> None:
    """``p ← sign(p)·max(|p| − threshold, 0)``: entries within ``threshold`` of 0 become 0."""
    p.copy_(torch.sign(p) * torch.clamp(p.abs() - _scalar(threshold, p), min=0))


def group_shrink_(p: torch.Tensor, threshold: float, axis: int, scale_by_size: bool) -> None:
    """Every group ``p_g`` (slice along ``axis``) ← ``p_g·max(1 − threshold·c_g/‖p_g‖, 0)``;
    an all-zero group stays 0 (its norm is replaced by 1, never divided by)."""
    moved = p.movedim(axis, 0)  # a view: writing it writes p
    groups = moved.reshape(moved.shape[0], -1)
    weight = torch.sqrt(_scalar(groups.shape[1], p)) if scale_by_size else _scalar(1, p)
    norms = torch.sqrt(torch.sum(groups * groups, dim=1))
    safe = torch.where(norms != 0, norms, _scalar(1, p))
    factor = torch.clamp(1 - _scalar(threshold, p) * weight / safe, min=0)
    moved.copy_((groups * factor[:, None]).reshape(moved.shape))


@torch.no_grad()
def apply_(ops: tuple[ProxOp, ...], params: Mapping[str, torch.Tensor], step: float) -> None:
    """Apply ``ops`` (:func:`regcore.proximal.merged_shrinks` order) with step size ``step``,
    outside autograd (the parameters may be leaves that require grad)."""
    proximal.apply(ops, params, step, shrink_, group_shrink_)
