"""Elementwise penalties (L2, L1, the two parts of elastic net) over many tensors at once, with
multi-tensor ``torch._foreach_*`` kernels instead of a Python loop of small ops per tensor.

Parameters are grouped by (kind, coefficient, dtype, device); each group costs a handful of
kernel launches whatever its size:

* value: ``torch._foreach_norm(params, ord, dtype=acc)`` (``ord`` 2 for L2, squared; 1 for L1),
  the norms stacked and summed, times the coefficient. ``acc`` is the accumulation dtype
  (float32 for float16/bfloat16, as :mod:`penalties`).
* gradient (:class:`ElementwisePenalty`'s backward, and :meth:`Groups.add_grad_`): ``2s·p`` for
  L2, ``s·sign(p)`` for L1 (``sign(0) = 0``: torch's ``abs'(0)``), one ``_foreach`` op per group.
  The backward is written out rather than differentiated through the norm, whose gradient at a
  zero tensor is masked and whose ``sqrt``/square round twice.

Layout does not matter to elementwise terms, so the parameters' own tensors are used, not views.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from regcore import L1, L2, ElasticNet, Term
from regcore_adapters.torch.penalties import accumulation_dtype


def elementwise_parts(term: Term) -> list[tuple[str, float]]:
    """``[(kind, s)]`` with kind ``"l2"`` (``s·Σw²``) or ``"l1"`` (``s·Σ|w|``) in sum form; empty
    for terms that are not elementwise (group lasso, orthogonal)."""
    if isinstance(term, L2):
        return [("l2", term.scaled()["coef"])]
    if isinstance(term, L1):
        return [("l1", term.scaled()["coef"])]
    if isinstance(term, ElasticNet):
        scaled = term.scaled()
        return [("l1", scaled["l1"]), ("l2", scaled["l2"])]
    return []


@dataclass(frozen=True)
class Group:
    """Tensors of one dtype and device under one elementwise part ``kind`` with coefficient
    ``coef`` (sum form)."""

    kind: str
    coef: float
    params: tuple[torch.Tensor, ...]

    def value(self) -> torch.Tensor:
        """``coef · Σ_i ‖p_i‖²`` (L2) or ``coef · Σ_i ‖p_i‖₁`` (L1), a 0-dim tensor of the
        accumulation dtype."""
        params = list(self.params)
        acc = accumulation_dtype(params[0].dtype)
        norms = torch.stack(torch._foreach_norm(params, 2 if self.kind == "l2" else 1,
                                                dtype=acc))
        total = torch.sum(norms * norms) if self.kind == "l2" else torch.sum(norms)
        total = total * self.coef
        # sharded parameters (FSDP2's DTensors): the sum over shards, as a plain tensor
        return total.full_tensor() if is_dtensor(total) else total

    def grads(self, scale: float | torch.Tensor = 1.0) -> list[torch.Tensor]:
        """``scale ·`` the gradient of :meth:`value` for each tensor (new tensors)."""
        params = list(self.params)
        if self.kind == "l2":
            return torch._foreach_mul(params, scale * (2 * self.coef))
        return torch._foreach_mul(torch._foreach_sign(params), scale * self.coef)

    def add_grad_(self, grads: list[torch.Tensor], scale: float = 1.0) -> None:
        """``grads[i] += scale · ∂value/∂p_i``, in place."""
        params = list(self.params)
        if self.kind == "l2":
            torch._foreach_add_(grads, params, alpha=2 * self.coef * scale)
        else:
            torch._foreach_add_(grads, torch._foreach_sign(params), alpha=self.coef * scale)


def groups(items: Iterable[tuple[torch.Tensor, Term]]) -> list[Group]:
    """The elementwise parts of ``items`` (tensor, term), grouped; non-elementwise terms are
    left out (see :func:`elementwise_parts`)."""
    by_key: dict[tuple, list[torch.Tensor]] = defaultdict(list)
    for tensor, term in items:
        for kind, coef in elementwise_parts(term):
            by_key[(kind, coef, tensor.dtype, tensor.device)].append(tensor)
    return [Group(kind, coef, tuple(ts)) for (kind, coef, _, _), ts in by_key.items()]


class ElementwisePenalty(torch.autograd.Function):
    """``apply(groups, *tensors)``: Σ of the groups' values (``tensors`` are every group's
    tensors, in order, so autograd sees them); backward gives each tensor its group's
    gradient times the incoming gradient. A tensor in two groups (elastic net) is passed twice, and
    autograd sums its two gradients."""

    @staticmethod
    def forward(ctx, group_list: list[Group], *tensors: torch.Tensor) -> torch.Tensor:
        ctx.group_list = group_list
        values = [g.value() for g in group_list]
        total = values[0]
        for v in values[1:]:
            total = total + v
        return total

    @staticmethod
    def backward(ctx, out: torch.Tensor):
        grads: list[torch.Tensor] = []
        for g in ctx.group_list:
            grads += g.grads(_like(out, g.params[0]))
        return (None, *grads)


def is_dtensor(t: torch.Tensor) -> bool:
    """Whether ``t`` is a ``torch.distributed.tensor.DTensor`` (as FSDP2's sharded parameters
    are), without importing ``torch.distributed``."""
    return any(c.__name__ == "DTensor" for c in type(t).__mro__)


def _like(scale: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """``scale`` (a 0-dim tensor), replicated on ``param``'s device mesh if ``param`` is a
    DTensor shard: DTensor ops refuse plain tensors beside DTensors."""
    if not is_dtensor(param) or is_dtensor(scale):
        return scale
    from torch.distributed.tensor import DTensor, Replicate

    mesh = param.device_mesh
    return DTensor.from_local(scale, mesh, [Replicate()] * mesh.ndim, run_check=False)
