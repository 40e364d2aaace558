"""Activity penalties (:mod:`regcore.activity`) on a torch model: forward hooks that compute each
selected layer's term on its output as the model runs, for :class:`~regcore_adapters.torch.
native.PenaltyLoss` to add to the loss.

Layers are named as ``model.named_modules()`` names them (``"features.0"``, ``"fc1"``), or by a
mapping given as ``layers`` (the suite's dense network maps Keras's ``dense_i``, whose output is
after its activation, to its activation module). A hook sees the module's output in torch's own
layout (``(N, C, H, W)`` for a conv); the terms are elementwise, so the sum is the same.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from regcore import Spec
from regcore_adapters.torch.penalties import KERNELS


class ActivityHooks:
    """Forward hooks on the layers ``spec.activity`` names, and a forward pre-hook on the model
    that forgets what earlier passes recorded: :meth:`take` returns the terms of the model's
    last forward pass (each divided by its output's batch size for ``batch_mean``) and forgets
    them, so each pass's penalty is added once, and a validation pass before it, or an
    activation-checkpoint recomputation after it, is not added to the next."""

    def __init__(self, spec: Spec, module: nn.Module,
                 layers: Mapping[str, nn.Module] | None = None) -> None:
        named = dict(layers) if layers is not None else {
            name: sub for name, sub in module.named_modules() if name}
        #: The assignments the hooks apply (the plan's ``activity``).
        self.assignments = Spec(activity=spec.activity).resolve([], layers=list(named)).activity
        self._pending: list[torch.Tensor] = []
        self._handles = [module.register_forward_pre_hook(lambda mod, args: self._pending.clear())]
        for a in self.assignments:
            def hook(mod: nn.Module, args: object, out: torch.Tensor, a=a) -> None:
                value = KERNELS[type(a.term)](a.term, out)
                self._pending.append(value / out.shape[0] if a.reduction == "batch_mean"
                                     else value)
            self._handles.append(named[a.layer].register_forward_hook(hook))

    def take(self, like: torch.Tensor) -> torch.Tensor:
        """The activity penalty of the last forward pass (a 0-dim zero of ``like``'s dtype and
        device if none ran since the last call), forgotten once returned."""
        total = torch.zeros((), dtype=like.dtype, device=like.device)
        for value in self._pending:
            total = total + value
        self._pending.clear()
        return total

    def remove(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
