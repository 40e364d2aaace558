"""Penalty values as differentiable torch expressions, one small function per term kind.

Each function takes the term (any convention: coefficients come from ``term.scaled()``, the
canonical ``sum`` form) and a tensor ``w`` and returns the penalty as a 0-dim tensor that autograd
differentiates; no gradient is derived by hand. Coefficients are cast to the accumulation dtype
(as Keras and the NumPy reference do). Parameters stored in float16/bfloat16 are cast up to float32
*before* any reduction, so the penalty accumulates in float32 (autograd casts the gradient back).

Subgradients at 0 (verified on torch 2.13): ``torch.abs`` has gradient 0 at 0, and
``torch.linalg.vector_norm`` masks its gradient to 0 where the norm is 0 (never NaN), so L1,
elastic net, group lasso (all-zero group) and the orthogonal term's ``|G_ij|`` give the reference
subgradient 0 there. ``sqrt(sum(w²))`` or Keras' literal ``rsqrt`` clamp would give NaN instead.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from regcore import L1, L2, ORTHOGONAL_EPSILON, ElasticNet, GroupLasso, Orthogonal, Term

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a penalty on a ``dtype`` parameter accumulates in: float32 for float16 and
    bfloat16, else ``dtype`` itself."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def accumulate(w: torch.Tensor) -> torch.Tensor:
    """``w`` cast to its :func:`accumulation_dtype` (a no-op for float32/float64)."""
    return w.to(accumulation_dtype(w.dtype))


def _coef(value: float, w: torch.Tensor) -> torch.Tensor:
    """A coefficient as a 0-dim tensor of ``w``'s dtype and device."""
    return torch.tensor(value, dtype=w.dtype, device=w.device)


def l2(term: L2, w: torch.Tensor) -> torch.Tensor:
    """``s · Σ w²``."""
    w = accumulate(w)
    return _coef(term.scaled()["coef"], w) * torch.sum(w * w)


def l1(term: L1, w: torch.Tensor) -> torch.Tensor:
    """``s · Σ |w|``; subgradient ``s · sign(w)``, 0 at ``w = 0`` (torch's ``abs'(0) = 0``)."""
    w = accumulate(w)
    return _coef(term.scaled()["coef"], w) * torch.sum(torch.abs(w))


def elastic_net(term: ElasticNet, w: torch.Tensor) -> torch.Tensor:
    """``s1 · Σ |w| + s2 · Σ w²``."""
    w = accumulate(w)
    scaled = term.scaled()
    s1, s2 = _coef(scaled["l1"], w), _coef(scaled["l2"], w)
    return s1 * torch.sum(torch.abs(w)) + s2 * torch.sum(w * w)


def group_lasso(term: GroupLasso, w: torch.Tensor) -> torch.Tensor:
    """``s · c · Σ_g ‖w_g‖₂`` over the slices along ``term.axis``; ``c = √(group size)`` with
    ``scale_by_size``, else 1. An all-zero group has subgradient 0 (``vector_norm``'s at 0)."""
    w = accumulate(w)
    groups = torch.movedim(w, term.axis, 0).reshape(w.shape[term.axis], -1)
    norms = torch.linalg.vector_norm(groups, ord=2, dim=1)
    coef = _coef(term.scaled()["coef"], w)
    if term.scale_by_size:
        coef = coef * torch.sqrt(_coef(float(groups.shape[1]), w))
    return coef * torch.sum(norms)


def orthogonal(term: Orthogonal, w: torch.Tensor) -> torch.Tensor:
    """Keras 3 ``OrthogonalRegularizer``: with ``V`` the rows (columns) of ``w`` each divided by
    ``max(‖v‖, 1e-7)``, ``G = V Vᵀ`` and ``s`` rows (columns)::

        coef · 0.5 · Σ_{i≠j} |G_ij| / (s (s-1) / 2)

    Keras writes the scaling ``v · min(rsqrt(Σv²), 1/ε)``, the same numbers; dividing by the
    clamped ``vector_norm`` keeps a zero row's gradient finite (``rsqrt``'s at 0 is ``-inf``,
    which the clamp's zero gradient turns into NaN under autograd).
    """
    w = accumulate(w)
    rows = w if term.mode == "rows" else w.T
    size = rows.shape[0]
    norms = torch.linalg.vector_norm(rows, ord=2, dim=1, keepdim=True)
    v = rows * (1 / torch.clamp(norms, min=ORTHOGONAL_EPSILON))
    gram = v @ v.T
    off = 1 - torch.eye(size, dtype=w.dtype, device=w.device)
    c = _coef(term.scaled()["coef"], w) * _coef(0.5, w) / _coef(size * (size - 1) / 2, w)
    return c * torch.sum(torch.abs(gram * off))


KERNELS: dict[type[Term], Callable[[Term, torch.Tensor], torch.Tensor]] = {
    L2: l2, L1: l1, ElasticNet: elastic_net, GroupLasso: group_lasso, Orthogonal: orthogonal,
}
"""The penalty function for each term class."""

