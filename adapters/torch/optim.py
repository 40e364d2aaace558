"""``regcore.Optimizer`` as the ``torch.optim`` optimizer it describes."""

from __future__ import annotations

import torch

from regcore import Optimizer


def torch_optimizer(optimizer: Optimizer, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    """``torch.optim.SGD(lr)`` or ``torch.optim.Adam(lr, betas, eps)``, no weight decay."""
    if optimizer.name == "sgd":
        return torch.optim.SGD(params, lr=optimizer.lr)
    return torch.optim.Adam(params, lr=optimizer.lr, betas=optimizer.betas, eps=optimizer.eps)
