"""The regularization path (:mod:`regcore.path`) on a user's own ``nn.Module``.

``ModuleProblem(name, module, loss, x, y)`` is a problem :func:`regcore.path.run` accepts with
the torch backend: every fold trains a deep copy of ``module`` (its parameters as given are the
initial ones; the caller's module is never changed), the spec is resolved against the module's
own parameter names and roles (:mod:`regcore_adapters.torch.modules`: role by module type,
canonical kernel layout for axis-dependent terms), and each fit is the same step as the
backend's :meth:`~regcore_adapters.torch.TorchBackend.proximal_train`: plain SGD on the data loss
plus the smooth terms, decoupled decay before it, then the shrinkage of
:mod:`regcore.proximal` (exact zeros for L1, elastic net and group lasso); or Adam on the
subgradient with ``Settings(optimizer="adam")``. ``loss`` is ``"mse"``, ``"half_mse"``,
``"softmax_xent"`` (as the scenarios define them) or any ``loss(output, target) -> 0-dim
tensor``. A network has no derived step size: give ``Settings(lr=...)``.

    from regcore.path import Settings, run
    from regcore_adapters.torch.path import ModuleProblem

    problem = ModuleProblem("mine", my_module, "softmax_xent", x, y)
    result = run(load_backend("torch"), problem, spec, grid, Settings(lr=0.1, steps=100))
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from regcore import Backend, Spec, SpecError, proximal
from regcore.path.engine import check_trainable, check_user_problem, loss_name
from regcore_adapters.torch import proximal as prox
from regcore_adapters.torch.backend import penalty_value
from regcore_adapters.torch.models import data_loss
from regcore_adapters.torch.modules import module_params


@dataclass(frozen=True)
class ModuleProblem:
    """A user's ``module``, its ``loss`` and its data (NumPy)."""

    name: str
    module: nn.Module
    loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    x: np.ndarray
    y: np.ndarray
    linear = False  # coefficient paths are drawn for the dense ModelSpec problems only

    def __post_init__(self) -> None:
        if not isinstance(self.module, nn.Module):
            raise SpecError(f"ModuleProblem.module: expected a torch.nn.Module, got "
                            f"{type(self.module).__name__}")
        check_user_problem("ModuleProblem", self.loss, self.x, self.y)

    @property
    def classification(self) -> bool:
        return self.loss == "softmax_xent"

    def describe(self) -> dict[str, Any]:
        return {"module": type(self.module).__name__, "loss": loss_name(self.loss)}

    def fitter(self, backend: Backend, settings: Any) -> _ModuleFitter:
        if backend.name != "torch":
            raise SpecError(f"a torch module's path runs on the torch backend, not "
                            f"{backend.name!r}")
        return _ModuleFitter(self, settings)


class _ModuleFitter:
    """:class:`regcore.path.engine.Fitter` for a :class:`ModuleProblem`: parameters are modules."""

    def __init__(self, problem: ModuleProblem, settings: Any) -> None:
        self.p, self.s = problem, settings
        self.dtype = getattr(torch, settings.dtype)
        self.device = torch.device(settings.device)

    def start(self) -> nn.Module:
        return copy.deepcopy(self.p.module).to(self.device, self.dtype)

    def data(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.as_tensor(self.p.x[rows], dtype=self.dtype, device=self.device)
        label = torch.int64 if self.p.classification else self.dtype
        return x, torch.as_tensor(self.p.y[rows], dtype=label, device=self.device)

    def _loss(self, module: nn.Module, data: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = data
        out = module(x)
        return data_loss(self.p.loss, out, y) if isinstance(self.p.loss, str) \
            else self.p.loss(out, y)

    def fit(self, spec: Spec, module: nn.Module, data: Any, lr: float
            ) -> tuple[nn.Module, float]:
        module = copy.deepcopy(module)
        params = module_params(module)
        plan = spec.resolve([tp.info for tp in params])
        check_trainable("ModuleProblem", plan)
        if self.s.optimizer == "sgd":
            smooth, ops = proximal.split(plan)
            ops = proximal.merged_shrinks(ops)
            opt = torch.optim.SGD([tp.param for tp in params], lr=lr)
        else:
            smooth, ops = plan, ()
            opt = torch.optim.Adam([tp.param for tp in params], lr=lr)
        before: list[torch.Tensor] = []
        for step in range(self.s.steps):
            if step == self.s.steps - 1:
                before = [tp.param.detach().clone() for tp in params]
            opt.zero_grad(set_to_none=True)
            views = {tp.info.name: tp.view(tp.param) for tp in params}
            (self._loss(module, data) + penalty_value(smooth, views)).backward()
            with torch.no_grad():
                for tp in params:
                    rate = smooth.decay.get(tp.info.name)
                    if rate is not None:
                        tp.param.mul_(1 - lr * rate)
            opt.step()
            if ops:
                canonical = {tp.info.name: tp.view(tp.param.detach()) for tp in params}
                prox.apply_(ops, canonical, lr)
        if self.s.optimizer != "sgd":
            return module, math.nan  # as the backend's fitter: no certificate for Adam
        moved = torch.cat([(tp.param.detach() - b).reshape(-1).double()
                           for tp, b in zip(params, before, strict=True)])
        return module, float(torch.linalg.vector_norm(moved)) / lr

    @torch.no_grad()
    def loss(self, module: nn.Module, data: Any) -> float:
        return float(self._loss(module, data))

    def numpy(self, module: nn.Module) -> dict[str, np.ndarray]:
        return {tp.info.name: tp.view(tp.param.detach()).cpu().double().numpy()
                for tp in module_params(module)}
