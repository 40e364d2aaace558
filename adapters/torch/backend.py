"""The PyTorch backend class."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from regcore import (
    Backend,
    ModelSpec,
    Optimizer,
    ParamInfo,
    Plan,
    Spec,
    UnsupportedError,
    check_params,
    check_shapes,
    proximal,
)
from regcore.export_support import load_snippet
from regcore_adapters.torch import distributed, native_training
from regcore_adapters.torch import proximal as prox
from regcore_adapters.torch.models import DenseNet, objective
from regcore_adapters.torch.optim import torch_optimizer
from regcore_adapters.torch.penalties import KERNELS, accumulation_dtype


def _check(params: Mapping[str, Any], plan: Plan | Sequence[ParamInfo], *,
           complete: bool = False) -> None:
    """:class:`TypeError` for anything but floating-point tensors, :class:`regcore.SpecError`
    for names or shapes that are not those of ``plan`` (or of the model's parameters;
    :func:`regcore.check_shapes`)."""
    check_params("torch", params, torch.Tensor, torch.Tensor.is_floating_point)
    check_shapes("torch", plan, params, complete=complete)


def _leaves(plan: Plan, params: Mapping[str, torch.Tensor],
            complete: bool = True) -> dict[str, torch.Tensor]:
    """Fresh leaf copies of ``params`` that require grad (the caller's tensors are untouched),
    after :func:`_check`."""
    _check(params, plan, complete=complete)
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


def _grads(value: torch.Tensor, leaves: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``∂value/∂leaf`` for every leaf by autograd; zeros where ``value`` does not depend on it."""
    if not value.requires_grad:
        return {k: torch.zeros_like(v) for k, v in leaves.items()}
    names = list(leaves)
    got = torch.autograd.grad(value, [leaves[k] for k in names], allow_unused=True,
                              materialize_grads=True)
    return dict(zip(names, got, strict=True))


def _fit(
    model: ModelSpec, plan: Plan, params: Mapping[str, torch.Tensor], x: torch.Tensor,
    y: torch.Tensor, optimizer: Optimizer, steps: int,
    after_step: Callable[[dict[str, torch.Tensor]], None] | None = None,
) -> dict[str, torch.Tensor]:
    """``steps`` full-batch steps from copies of ``params``: gradients at the current parameters;
    then, for decayed parameters, ``p ← (1 − lr·rate)·p``; then the optimizer's update; then
    ``after_step(parameters)``, if given (the proximal step's shrinkage)."""
    leaves = _leaves(plan, params)
    opt = torch_optimizer(optimizer, list(leaves.values()))
    for _ in range(steps):
        value = objective(model, leaves, x, y) + penalty_value(plan, leaves)
        for name, grad in _grads(value, leaves).items():
            leaves[name].grad = grad
        with torch.no_grad():
            for name, rate in plan.decay.items():
                leaves[name].mul_(1 - optimizer.lr * rate)
        opt.step()
        if after_step is not None:
            after_step(leaves)
    return {k: v.detach() for k, v in leaves.items()}


class TorchBackend(Backend):
    """Native PyTorch: penalties and networks as torch ops, gradients by ``torch.autograd``,
    training with ``torch.optim.SGD`` plus AdamW-style decoupled decay."""

    name = "torch"
    devices = ("cpu", "cuda", "mps")
    dtypes = ("float64", "float32")
    low_precision_dtypes = ("float16", "bfloat16")
    native_paths = native_training.PATHS
    native_penalty_paths = native_training.PENALTY_PATHS
    distributed_paths = distributed.PATHS
    distributed_world_sizes = distributed.WORLD_SIZES

    def __init__(self) -> None:
        if torch.cuda.is_available():  # full-precision float32 matmuls, as the reference
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

    def device_available(self, device: str) -> bool:
        if device == "cuda":
            return torch.cuda.is_available()
        if device == "mps":
            return torch.backends.mps.is_available()
        return device == "cpu"

    def supports(self, device: str, dtype: str) -> bool:
        return dtype in self.dtypes and not (device == "mps" and dtype == "float64")

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}

    def asarray(self, array: Any, *, dtype: str, device: str) -> torch.Tensor:
        """NumPy has no bfloat16 (without ml_dtypes): ``bfloat16`` goes through float32, then
        ``.to(torch.bfloat16)`` — exact for numbers bfloat16 holds (any other is rounded twice,
        to float32 and then to bfloat16)."""
        if dtype == "bfloat16":
            wide = torch.from_numpy(np.array(array, dtype=np.float32, copy=True))
            return wide.to(device=device, dtype=torch.bfloat16)
        return torch.from_numpy(np.array(array, dtype=dtype, copy=True)).to(device)

    def to_numpy(self, x: Any) -> np.ndarray:
        """A bfloat16 tensor comes back as float32 holding the same numbers (NumPy has no
        bfloat16); every other dtype as itself."""
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu()
            return (x.float() if x.dtype == torch.bfloat16 else x).numpy()
        return np.asarray(x)

    def penalty(
        self, plan: Plan, params: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        leaves = _leaves(plan, params, complete=False)
        value = penalty_value(plan, leaves)
        return value.detach(), _grads(value, leaves)

    def loss_and_grads(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, torch.Tensor],
        x: torch.Tensor, y: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        leaves = _leaves(plan, params)
        value = objective(model, leaves, x, y) + penalty_value(plan, leaves)
        return value.detach(), _grads(value, leaves)

    def train(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, torch.Tensor],
        x: torch.Tensor, y: torch.Tensor, *, optimizer: Optimizer, steps: int,
    ) -> dict[str, torch.Tensor]:
        """Each step: gradients at the current parameters; then, for decayed parameters,
        ``p ← (1 − lr·rate)·p`` (as ``torch.optim.AdamW``); then ``torch.optim.SGD``/``Adam``."""
        return _fit(model, plan, params, x, y, optimizer, steps)

    def proximal_train(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, torch.Tensor],
        x: torch.Tensor, y: torch.Tensor, *, lr: float, steps: int,
    ) -> dict[str, torch.Tensor]:
        """:meth:`train`'s SGD steps on the smooth part of the plan, each followed by the
        shrinkage operators of :func:`regcore.proximal.split` (:mod:`.proximal`)."""
        smooth, ops = proximal.split(plan)
        ops = proximal.merged_shrinks(ops)
        return _fit(model, smooth, params, x, y, Optimizer("sgd", lr), steps,
                    after_step=lambda leaves: prox.apply_(ops, leaves, lr))

    def native_train(
        self, path: str, model: ModelSpec, spec: Spec, params: Mapping[str, torch.Tensor],
        x: torch.Tensor, y: torch.Tensor, *, optimizer: Optimizer, steps: int,
    ) -> dict[str, torch.Tensor]:
        """``train`` through a native translation on an ``nn.Module`` (see ``native_training``)."""
        _check(params, model.params())
        return native_training.train(path, model, spec, params, x, y, optimizer=optimizer,
                                     steps=steps)

    def distributed_train(
        self, path: str, model: ModelSpec, spec: Spec, params: Mapping[str, torch.Tensor],
        x: torch.Tensor, y: torch.Tensor, *, optimizer: Optimizer, steps: int, world_size: int,
    ) -> dict[str, torch.Tensor]:
        """``native_train`` under ``DistributedDataParallel`` (gloo, CPU) over ``world_size``
        processes (see :mod:`regcore_adapters.torch.distributed`)."""
        _check(params, model.params())
        tensors = [*params.values(), x]
        if any(t.device.type != "cpu" for t in tensors):
            raise UnsupportedError("torch: data-parallel training runs on the CPU (gloo) here")
        final = distributed.train(path, model, spec, {k: self.to_numpy(v) for k, v in
                                                      params.items()},
                                  self.to_numpy(x), self.to_numpy(y), optimizer=optimizer,
                                  steps=steps, world_size=world_size)
        return {k: torch.from_numpy(v) for k, v in final.items()}

    def distributed_loss_and_grads(
        self, path: str, model: ModelSpec, spec: Spec, params: Mapping[str, torch.Tensor],
        x: torch.Tensor, y: torch.Tensor, *, world_size: int,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One step's global loss and averaged (+ penalty) gradient under DDP or FSDP."""
        _check(params, model.params())
        if any(t.device.type != "cpu" for t in [*params.values(), x]):
            raise UnsupportedError("torch: data-parallel training runs on the CPU (gloo) here")
        loss, grads = distributed.loss_and_grads(
            path, model, spec, {k: self.to_numpy(v) for k, v in params.items()},
            self.to_numpy(x), self.to_numpy(y), world_size=world_size)
        dtype = next(iter(params.values())).dtype
        return torch.tensor(loss, dtype=dtype), {k: torch.from_numpy(v) for k, v in grads.items()}

    def native_penalty(
        self, path: str, model: ModelSpec, spec: Spec, params: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The penalty through ``PenaltyLoss`` or ``GradientPenalty`` (see ``native_training``)."""
        _check(params, model.params())
        return native_training.penalty(path, model, spec, params)

    def exported_penalty(
        self, code: str, model: ModelSpec, params: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The snippet's ``regularization(net)`` on :class:`DenseNet` loaded with ``params``,
        ``backward()``, and the ``.grad``s back in the canonical layout."""
        _check(params, model.params())
        net = DenseNet(model).load_canonical(params)
        value = load_snippet(code)["regularization"](net)
        if value.requires_grad:
            value.backward()
        return value.detach(), net.canonical_grads()

    def exported_decay(
        self, code: str, model: ModelSpec, params: Mapping[str, torch.Tensor], lr: float
    ) -> dict[str, torch.Tensor]:
        """The snippet's ``decay_(net, lr)`` on :class:`DenseNet` loaded with ``params``."""
        _check(params, model.params())
        net = DenseNet(model).load_canonical(params)
        load_snippet(code)["decay_"](net, lr)
        return net.canonical()

    def native_plan(self, path: str, model: ModelSpec, spec: Spec) -> Plan:
        """The plan the native translations resolve on :class:`DenseNet` (``native_training``)."""
        return native_training.plan(path, model, spec)
