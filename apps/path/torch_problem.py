"""The regularization path (:mod:`regcore_apps.path`) on a user's own ``nn.Module``.

``ModuleProblem(name, module, loss, x, y)`` is a problem :func:`regcore_apps.path.run` accepts
with the torch backend (the loop and the checks: :mod:`regcore_apps.path.user_model`; here, the
torch calls): every fold trains a deep copy of ``module`` (its parameters as given are the
initial ones; the caller's module is never changed), the spec is resolved against the module's
own parameter names and roles (:mod:`regcore_adapters.torch.modules`: role by module type,
canonical kernel layout for axis-dependent terms), and each fit is the same step as the
backend's :meth:`~regcore_adapters.torch.TorchBackend.proximal_train`: plain SGD on the data loss
plus the smooth terms, decoupled decay before it, then the shrinkage of
:mod:`regcore.proximal` (exact zeros for L1, elastic net and group lasso); or Adam on the
subgradient with ``Settings(optimizer="adam")``. ``loss`` is ``"mse"``, ``"half_mse"``,
``"softmax_xent"`` (as the scenarios define them) or any ``loss(output, target) -> 0-dim
tensor``. A network has no derived step size: give ``Settings(lr=...)``.

    from regcore_apps.path import Settings, run
    from regcore_apps.path.torch_problem import ModuleProblem

    problem = ModuleProblem("mine", my_module, "softmax_xent", x, y)
    result = run(load_backend("torch"), problem, spec, grid, Settings(lr=0.1, steps=100))
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from regcore import Backend, SpecError
from regcore.selection import ParamInfo
from regcore.spec import Plan
from regcore_adapters.torch import proximal as prox
from regcore_adapters.torch.functional import penalty_value
from regcore_adapters.torch.models import data_loss
from regcore_adapters.torch.modules import module_params
from regcore_apps.path.user_model import UserModelFitter, UserModelProblem


@dataclass(frozen=True)
class ModuleProblem(UserModelProblem):
    """A user's ``module``, its ``loss`` and its data (NumPy)."""

    backend_name = "torch"
    what = "a torch module"
    model_field = "module"

    name: str
    module: nn.Module
    loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    x: np.ndarray
    y: np.ndarray

    def check_model(self) -> None:
        if not isinstance(self.module, nn.Module):
            raise SpecError(f"ModuleProblem.module: expected a torch.nn.Module, got "
                            f"{type(self.module).__name__}")

    def make_fitter(self, backend: Backend, settings: Any) -> ModuleFitter:
        return ModuleFitter(self, backend, settings)


class ModuleFitter(UserModelFitter):
    """The fitter of a :class:`ModuleProblem`: parameters are modules; each fit trains a deep
    copy with ``torch.optim.SGD`` or ``Adam``."""

    problem: ModuleProblem

    def __init__(self, problem: ModuleProblem, backend: Backend, settings: Any) -> None:
        super().__init__(problem, backend, settings)
        self.dtype = getattr(torch, settings.dtype)
        self.device = torch.device(settings.device)

    def start(self) -> nn.Module:
        return copy.deepcopy(self.problem.module).to(self.device, self.dtype)

    def array(self, values: np.ndarray, dtype: str) -> torch.Tensor:
        return torch.as_tensor(values, dtype=getattr(torch, dtype), device=self.device)

    def named_loss(self, name: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return data_loss(name, output, target)

    def begin(self, params: nn.Module) -> nn.Module:
        return copy.deepcopy(params)

    def param_infos(self, work: nn.Module) -> Sequence[ParamInfo]:
        return [tp.info for tp in module_params(work)]

    def stepper(self, work: nn.Module, smooth: Plan, shrinks: tuple[Any, ...], data: Any,
                lr: float) -> Callable[[], None]:
        params = module_params(work)
        tensors = [tp.param for tp in params]
        opt = torch.optim.SGD(tensors, lr=lr) if self.settings.optimizer == "sgd" \
            else torch.optim.Adam(tensors, lr=lr)
        x, y = data

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            views = {tp.info.name: tp.view(tp.param) for tp in params}
            (self.data_loss(work(x), y) + penalty_value(smooth, views)).backward()
            with torch.no_grad():
                for tp in params:
                    rate = smooth.decay.get(tp.info.name)
                    if rate is not None:
                        tp.param.mul_(1 - lr * rate)
            opt.step()
            if shrinks:
                canonical = {tp.info.name: tp.view(tp.param.detach()) for tp in params}
                prox.apply_(shrinks, canonical, lr)

        return step

    def values(self, work: nn.Module) -> dict[str, np.ndarray]:
        return {tp.info.name: tp.param.detach().cpu().numpy().astype(np.float64)
                for tp in module_params(work)}

    def result(self, work: nn.Module) -> nn.Module:
        return work

    @torch.no_grad()
    def loss(self, params: nn.Module, data: Any) -> float:
        x, y = data
        return float(self.data_loss(params(x), y))

    def numpy(self, params: nn.Module) -> dict[str, np.ndarray]:
        return {tp.info.name: tp.view(tp.param.detach()).cpu().double().numpy()
                for tp in module_params(params)}
