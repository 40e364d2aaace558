"""The scenario network trained through each native translation, for the conformance suite.

Every path starts from the same canonical parameters, builds :class:`DenseNet` (``nn.Linear``
layers) and runs full-batch ``torch.optim.SGD``; only where the spec enters differs:

* ``loss_term``: ``loss = data + PenaltyLoss()``; decoupled decay by :class:`DecoupledDecay`;
* ``param_groups``: ``loss = data``; penalty and decay are the optimizer's ``weight_decay``;
* ``grad_side``: ``loss = data``; :class:`GradientPenalty` after ``backward()``, then
  :class:`DecoupledDecay`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from regcore import ModelSpec, Spec
from regcore_adapters.torch.models import DenseNet, data_loss
from regcore_adapters.torch.native import (
    DecoupledDecay,
    GradientPenalty,
    PenaltyLoss,
    build_optimizer,
)

PATHS = ("loss_term", "param_groups", "grad_side")


def train(path: str, model: ModelSpec, spec: Spec, params: Mapping[str, torch.Tensor],
          x: torch.Tensor, y: torch.Tensor, *, lr: float, steps: int) -> dict[str, torch.Tensor]:
    net = DenseNet(model).load_canonical(params)
    if path == "param_groups":
        opt = build_optimizer(spec, net, torch.optim.SGD, lr=lr)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        decay = DecoupledDecay(spec, net)
    penalty = PenaltyLoss(spec, net) if path == "loss_term" else None
    grad_side = GradientPenalty(spec, net) if path == "grad_side" else None
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = data_loss(model.loss, net(x), y)
        if penalty is not None:
            loss = loss + penalty()
        loss.backward()
        if grad_side is not None:
            grad_side()
        if path != "param_groups":
            decay.step(lr)
        opt.step()
    return net.canonical()
