"""The functional path on dicts of tensors: the penalty and the scenario objective differentiated
by ``torch.autograd``, and full-batch training, for :class:`~regcore_adapters.torch.backend.
TorchBackend` and anything else that needs them (it imports nothing of the backend class)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import torch

from regcore import ModelSpec, Optimizer, Plan
from regcore_adapters.torch.models import objective
from regcore_adapters.torch.optim import torch_optimizer
from regcore_adapters.torch.penalties import KERNELS, accumulation_dtype


def leaves(params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fresh leaf copies of ``params`` that require grad (the caller's tensors are untouched)."""
    return {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}


def penalty_value(plan: Plan, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``Σ`` over the plan's assignments of the term's penalty on its parameter (a 0-dim tensor
    in the parameters' promoted dtype, float32 at least for float16/bfloat16 parameters)."""
    dtype = functools.reduce(torch.promote_types,
                             (accumulation_dtype(p.dtype) for p in params.values()))
    device = next(iter(params.values())).device
    total = torch.zeros((), dtype=dtype, device=device)
    for a in plan.penalties:
        total = total + KERNELS[type(a.term)](a.term, params[a.param])
    return total


def grads(value: torch.Tensor, leaves: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``∂value/∂leaf`` for every leaf by autograd; zeros where ``value`` does not depend on it."""
    if not value.requires_grad:
        return {k: torch.zeros_like(v) for k, v in leaves.items()}
    names = list(leaves)
    got = torch.autograd.grad(value, [leaves[k] for k in names], allow_unused=True,
                              materialize_grads=True)
    return dict(zip(names, got, strict=True))


def fit(
    model: ModelSpec, plan: Plan, params: Mapping[str, torch.Tensor], x: torch.Tensor,
    y: torch.Tensor, optimizer: Optimizer, steps: int,
    after_step: Callable[[dict[str, torch.Tensor]], None] | None = None,
) -> dict[str, torch.Tensor]:
    """``steps`` full-batch steps from copies of ``params``: gradients at the current parameters;
    then, for decayed parameters, ``p ← (1 − lr·rate)·p``; then the optimizer's update; then
    ``after_step(parameters)``, if given (the proximal step's shrinkage)."""
    leaves_ = leaves(params)
    opt = torch_optimizer(optimizer, list(leaves_.values()))
    for _ in range(steps):
        value = objective(model, leaves_, x, y, plan.activity) + penalty_value(plan, leaves_)
        for name, grad in grads(value, leaves_).items():
            leaves_[name].grad = grad
        with torch.no_grad():
            for name, rate in plan.decay.items():
                leaves_[name].mul_(1 - optimizer.lr * rate)
        opt.step()
        if after_step is not None:
            after_step(leaves_)
    return {k: v.detach() for k, v in leaves_.items()}
