"""Penalty values as differentiable torch expressions, one small function per term kind.

The kernels are written once, here: ``_<kind>(rule, w)``, where ``rule`` is the term as plain data
(:func:`regcore.export_support.term_data`: ``kind``, the ``sum``-form coefficients, the options)
and ``w`` a tensor already in its accumulation dtype; each returns the penalty as a 0-dim tensor
that autograd differentiates (no gradient is derived by hand). They name only torch, each other
and regcore's constants, so :mod:`regcore_adapters.torch.export` copies their source, as written,
into the snippets it exports (with ``ORTHOGONAL_EPSILON`` rendered from regcore's value): a fix
here is a fix there.

:data:`KERNELS` maps each term class to ``kernel(term, w)``: the same kernel taking the term
itself and ``w`` as stored. Coefficients are cast to the accumulation dtype (as Keras and the
NumPy reference do). Parameters stored in float16/bfloat16 are cast up to float32 *before* any
reduction, so the penalty accumulates in float32 (autograd casts the gradient back).

Subgradients at 0 (verified on torch 2.13): ``torch.abs`` has gradient 0 at 0, and
``torch.linalg.vector_norm`` masks its gradient to 0 where the norm is 0 (never NaN), so L1,
elastic net, group lasso (all-zero group) and the orthogonal term's ``|G_ij|`` give the reference
subgradient 0 there. ``sqrt(sum(w²))`` or Keras' literal ``rsqrt`` clamp would give NaN instead.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

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

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a penalty on a dtype parameter accumulates in: float32 for float16 and
    bfloat16, else dtype itself."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def _accumulate(w: torch.Tensor) -> torch.Tensor:
    """w cast to its accumulation dtype (a no-op for float32/float64)."""
    return w.to(accumulation_dtype(w.dtype))


def _coef(value: float, w: torch.Tensor) -> torch.Tensor:
    """A coefficient as a 0-dim tensor of w's dtype and device."""
    return torch.tensor(value, dtype=w.dtype, device=w.device)


def _l2(rule: dict, w: torch.Tensor) -> torch.Tensor:
    """coef * sum(w**2)."""
    return _coef(rule["coef"], w) * torch.sum(w * w)


def _l1(rule: dict, w: torch.Tensor) -> torch.Tensor:
    """coef * sum(|w|); subgradient coef * sign(w), 0 at w = 0 (torch's abs'(0) = 0)."""
    return _coef(rule["coef"], w) * torch.sum(torch.abs(w))


def _elastic_net(rule: dict, w: torch.Tensor) -> torch.Tensor:
    """l1 * sum(|w|) + l2 * sum(w**2)."""
    s1, s2 = _coef(rule["l1"], w), _coef(rule["l2"], w)
    return s1 * torch.sum(torch.abs(w)) + s2 * torch.sum(w * w)


def _group_lasso(rule: dict, w: torch.Tensor) -> torch.Tensor:
    """coef * c * sum of the L2 norms of the slices along axis (canonical layout), c =
    sqrt(group size) with scale_by_size, else 1. An all-zero group has subgradient 0
    (vector_norm's at 0)."""
    groups = torch.movedim(w, rule["axis"], 0).reshape(w.shape[rule["axis"]], -1)
    norms = torch.linalg.vector_norm(groups, ord=2, dim=1)
    coef = _coef(rule["coef"], w)
    if rule["scale_by_size"]:
        coef = coef * torch.sqrt(_coef(float(groups.shape[1]), w))
    return coef * torch.sum(norms)


def _orthogonal(rule: dict, w: torch.Tensor) -> torch.Tensor:
    """Keras 3 OrthogonalRegularizer: with V the rows (columns) of w (canonical layout) each
    divided by max(||v||, ORTHOGONAL_EPSILON), G = V V^T and k rows (columns),
    coef * 0.5 * sum_{i != j} |G_ij| / (k (k - 1) / 2).

    Keras writes the scaling v * min(rsqrt(sum(v**2)), 1 / eps), the same numbers; dividing by
    the clamped vector_norm keeps a zero row's gradient finite (rsqrt's at 0 is -inf, which the
    clamp's zero gradient turns into NaN under autograd)."""
    rows = w if rule["mode"] == "rows" else w.T
    size = rows.shape[0]
    norms = torch.linalg.vector_norm(rows, ord=2, dim=1, keepdim=True)
    v = rows * (1 / torch.clamp(norms, min=ORTHOGONAL_EPSILON))
    gram = v @ v.T
    off = 1 - torch.eye(size, dtype=w.dtype, device=w.device)
    c = _coef(rule["coef"], w) * _coef(0.5, w) / _coef(size * (size - 1) / 2, w)
    return c * torch.sum(torch.abs(gram * off))


l2, l1 = term_kernel(_l2, _accumulate), term_kernel(_l1, _accumulate)
elastic_net = term_kernel(_elastic_net, _accumulate)
group_lasso = term_kernel(_group_lasso, _accumulate)
orthogonal = term_kernel(_orthogonal, _accumulate)

KERNELS: dict[type[Term], Callable[[Term, torch.Tensor], torch.Tensor]] = {
    L2: l2, L1: l1, ElasticNet: elastic_net, GroupLasso: group_lasso, Orthogonal: orthogonal,
}
"""The kernel for each term class, taking the term and ``w`` as stored: ``kernel(term, w)``."""


def activity_value(assignments: tuple[ActivityAssignment, ...],
                   outputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The activity penalties (:mod:`regcore.activity`) on the named layer ``outputs``: each
    term's kernel on its output, divided by the output's batch size for ``batch_mean``."""
    total = torch.zeros((), dtype=next(iter(outputs.values())).dtype,
                        device=next(iter(outputs.values())).device)
    for a in assignments:
        out = outputs[a.layer]
        value = KERNELS[type(a.term)](a.term, out)
        total = total + (value / out.shape[0] if a.reduction == "batch_mean" else value)
    return total
