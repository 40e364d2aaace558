"""The scenario network trained through each native translation, for the conformance suite.

Every path starts from the same canonical parameters, builds :class:`DenseNet` (``nn.Linear``
layers) and runs full-batch ``torch.optim.SGD`` or ``Adam``; only where the spec enters differs:

* ``loss_term``: ``loss = data + PenaltyLoss()``; decoupled decay by :class:`DecoupledDecay`;
* ``param_groups``: ``loss = data``; penalty and decay are the optimizer's ``weight_decay``
  (SGD for SGD; Adam for coupled L2 and AdamW for decoupled decay);
* ``param_groups_fused``: the same optimizers built with ``fused=True`` (one kernel per step that
  applies ``weight_decay`` in the same pass: the fastest CPU path, see the benchmarks);
* ``grad_side``: ``loss = data``; :class:`GradientPenalty` after ``backward()``, then
  :class:`DecoupledDecay`.

Penalty paths (:data:`PENALTY_PATHS`): ``loss_term`` is ``PenaltyLoss()`` and its autograd
gradient; ``grad_side`` is what ``GradientPenalty(value=True)`` adds to zero ``.grad``s and the
value it returns.

:func:`plan` is what every path resolves the spec to on :class:`DenseNet` (roles from the module
types, :func:`~regcore_adapters.torch.modules.module_params`), renamed to canonical names, for the
suite to compare with the reference's plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import torch

from regcore import ModelSpec, Optimizer, Plan, Spec
from regcore_adapters.torch.models import DenseNet, data_loss
from regcore_adapters.torch.modules import module_params
from regcore_adapters.torch.native import (
    DecoupledDecay,
    GradientPenalty,
    PenaltyLoss,
    build_optimizer,
)
from regcore_adapters.torch.optim import torch_optimizer

PATHS = ("loss_term", "param_groups", "param_groups_fused", "grad_side")
PENALTY_PATHS = ("loss_term", "grad_side")


def _native_optimizer(optimizer: Optimizer, spec: Spec, net: DenseNet,
                      **kw: bool) -> torch.optim.Optimizer:
    if optimizer.name == "sgd":
        return build_optimizer(spec, net, torch.optim.SGD, lr=optimizer.lr, **kw)
    cls = torch.optim.AdamW if spec.weight_decay else torch.optim.Adam
    return build_optimizer(spec, net, cls, lr=optimizer.lr, betas=optimizer.betas,
                           eps=optimizer.eps, **kw)


def train(path: str, model: ModelSpec, spec: Spec, params: Mapping[str, torch.Tensor],
          x: torch.Tensor, y: torch.Tensor, *, optimizer: Optimizer,
          steps: int) -> dict[str, torch.Tensor]:
    net = DenseNet(model).load_canonical(params)
    train_net(path, model, spec, net, x, y, optimizer=optimizer, steps=steps)
    return net.canonical()


def train_net(path: str, model: ModelSpec, spec: Spec, net: DenseNet, x: torch.Tensor,
              y: torch.Tensor, *, optimizer: Optimizer, steps: int,
              forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
              data_weight: float = 1.0) -> None:
    """``steps`` steps of ``path`` on ``net`` in place. ``forward`` runs the batch (default
    ``net`` itself; a ``DistributedDataParallel`` wrapper of it for data-parallel training, whose
    backward averages the replicas' gradients); the data loss is multiplied by ``data_weight``
    before the penalty is added (a replica's share of the global batch, see
    :mod:`regcore_adapters.torch.distributed`)."""
    forward = net if forward is None else forward
    if path.startswith("param_groups"):
        opt = _native_optimizer(optimizer, spec, net,
                                **({"fused": True} if path == "param_groups_fused" else {}))
    else:
        opt = torch_optimizer(optimizer, list(net.parameters()))
        decay = DecoupledDecay(spec, net)
    penalty = PenaltyLoss(spec, net) if path == "loss_term" else None
    grad_side = GradientPenalty(spec, net) if path == "grad_side" else None
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = data_loss(model.loss, forward(x), y)
        if data_weight != 1.0:
            loss = loss * data_weight
        if penalty is not None:
            loss = loss + penalty()
        loss.backward()
        if grad_side is not None:
            grad_side()
        if not path.startswith("param_groups"):
            decay.step(optimizer.lr)
        opt.step()


def penalty(path: str, model: ModelSpec, spec: Spec,
            params: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The penalty and its gradient (canonical names and layout) through ``path``."""
    if path not in PENALTY_PATHS:
        raise ValueError(f"path: expected one of {', '.join(PENALTY_PATHS)}, got {path!r}")
    net = DenseNet(model).load_canonical(params)
    net.zero_grad(set_to_none=True)
    if path == "loss_term":
        value = PenaltyLoss(spec, net)()
        if value.requires_grad:
            value.backward()
        value = value.detach()
    else:
        value = GradientPenalty(spec, net)(value=True)
    return value, net.canonical_grads()


def plan(path: str, model: ModelSpec, spec: Spec) -> Plan:
    """The plan ``path`` runs: ``spec`` resolved on :class:`DenseNet`'s parameters as the native
    translations resolve it (:func:`~regcore_adapters.torch.modules.module_params`: roles from the
    module types, shapes through the canonical views), with ``dense_{i}.weight`` renamed
    ``dense_{i}.kernel``."""
    if path not in PATHS + PENALTY_PATHS:
        raise ValueError(f"path: expected one of {', '.join(PATHS + PENALTY_PATHS)}, got {path!r}")
    resolved = spec.resolve([p.info for p in module_params(DenseNet(model))])
    return dataclasses.replace(
        resolved,
        params=tuple(dataclasses.replace(p, name=_canonical(p.name)) for p in resolved.params),
        penalties=tuple(dataclasses.replace(a, param=_canonical(a.param))
                        for a in resolved.penalties),
        decay={_canonical(k): v for k, v in resolved.decay.items()},
    )


def _canonical(name: str) -> str:
    """``dense_0.weight`` → ``dense_0.kernel`` (the canonical name); other names unchanged."""
    layer, _, leaf = name.rpartition(".")
    return f"{layer}.kernel" if leaf == "weight" else name
