"""The PyTorch backend class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from regcore import (
    Backend,
    DataParallel,
    Harness,
    ModelSpec,
    NativeTranslations,
    Optimizer,
    Plan,
    ProximalTraining,
    SnippetRunner,
    Spec,
    UnsupportedError,
    proximal,
)
from regcore.export_support import load_snippet
from regcore_adapters.torch import distributed, native_training
from regcore_adapters.torch import proximal as prox
from regcore_adapters.torch.functional import fit, grads, leaves, penalty_value
from regcore_adapters.torch.models import build_net, objective


class TorchBackend(Backend, Harness, ProximalTraining, NativeTranslations, DataParallel,
                   SnippetRunner):
    """Native PyTorch: penalties and networks as torch ops, gradients by ``torch.autograd``,
    training with ``torch.optim.SGD`` plus AdamW-style decoupled decay."""

    name = "torch"
    devices = ("cpu", "cuda", "mps")
    dtypes = ("float64", "float32")
    low_precision_dtypes = ("float16", "bfloat16")
    array_types = (torch.Tensor,)
    native_translations = tuple(native_training.TRANSLATIONS)
    native_penalty_translations = tuple(native_training.PENALTY_TRANSLATIONS)
    distributed_translations = tuple(distributed.TRANSLATIONS)
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
        copies = leaves(params)
        value = penalty_value(plan, copies)
        return value.detach(), grads(value, copies)

    def loss_and_grads(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, torch.Tensor],
        x: torch.Tensor, y: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        copies = leaves(params)
        value = objective(model, copies, x, y, plan.activity) + penalty_value(plan, copies)
        return value.detach(), grads(value, copies)

    def train(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, torch.Tensor],
        x: torch.Tensor, y: torch.Tensor, *, optimizer: Optimizer, steps: int,
    ) -> dict[str, torch.Tensor]:
        """Each step: gradients at the current parameters; then, for decayed parameters,
        ``p ← (1 − lr·rate)·p`` (as ``torch.optim.AdamW``); then ``torch.optim.SGD``/``Adam``."""
        return fit(model, plan, params, x, y, optimizer, steps)

    def proximal_train(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, torch.Tensor],
        x: torch.Tensor, y: torch.Tensor, *, lr: float, steps: int,
    ) -> dict[str, torch.Tensor]:
        """:meth:`train`'s SGD steps on the smooth part of the plan, each followed by the
        shrinkage operators of :func:`regcore.proximal.split` (:mod:`.proximal`)."""
        smooth, ops = proximal.split(plan)
        ops = proximal.merged_shrinks(ops)
        return fit(model, smooth, params, x, y, Optimizer("sgd", lr), steps,
                   after_step=lambda copies: prox.apply_(ops, copies, lr))

    def native_train(
        self, translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, torch.Tensor],
        x: torch.Tensor, y: torch.Tensor, *, optimizer: Optimizer, steps: int,
    ) -> dict[str, torch.Tensor]:
        """``train`` through a native translation on an ``nn.Module`` (see ``native_training``)."""
        return native_training.train(translation, model, spec, params, x, y, optimizer=optimizer,
                                     steps=steps)

    def distributed_train(
        self, translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, torch.Tensor],
        x: torch.Tensor, y: torch.Tensor, *, optimizer: Optimizer, steps: int, world_size: int,
    ) -> dict[str, torch.Tensor]:
        """``native_train`` under ``DistributedDataParallel`` (gloo, CPU) over ``world_size``
        processes (see :mod:`regcore_adapters.torch.distributed`)."""
        final = distributed.train(translation, model, spec, *self._host(params, x, y),
                                  optimizer=optimizer, steps=steps, world_size=world_size)
        return {k: torch.from_numpy(v) for k, v in final.items()}

    def distributed_train_many(
        self, translation: str, model: ModelSpec, specs: Mapping[str, Spec],
        params: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, *,
        optimizer: Optimizer, steps: int, world_size: int,
    ) -> dict[str, dict[str, torch.Tensor] | Exception]:
        """Every spec in one call, side by side in one DDP/FSDP module (one gradient reduction
        per step for all; see :func:`regcore_adapters.torch.distributed.train_many`)."""
        got = distributed.train_many(translation, model, specs, *self._host(params, x, y),
                                     optimizer=optimizer, steps=steps, world_size=world_size)
        return {name: final if isinstance(final, Exception)
                else {k: torch.from_numpy(v) for k, v in final.items()}
                for name, final in got.items()}

    def distributed_loss_and_grads(
        self, translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, torch.Tensor],
        x: torch.Tensor, y: torch.Tensor, *, world_size: int,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One step's global loss and averaged (+ penalty) gradient under DDP or FSDP."""
        loss, got = distributed.loss_and_grads(translation, model, spec, *self._host(params, x, y),
                                               world_size=world_size)
        dtype = next(iter(params.values())).dtype
        return torch.tensor(loss, dtype=dtype), {k: torch.from_numpy(v) for k, v in got.items()}

    def _host(self, params: Mapping[str, torch.Tensor], x: torch.Tensor,
              y: torch.Tensor) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """``params``, ``x`` and ``y`` as NumPy arrays for the replica processes (CPU only)."""
        if any(t.device.type != "cpu" for t in [*params.values(), x]):
            raise UnsupportedError("torch: data-parallel training runs on the CPU (gloo) here")
        return {k: self.to_numpy(v) for k, v in params.items()}, self.to_numpy(x), self.to_numpy(y)

    def native_penalty(
        self, translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The penalty through ``PenaltyLoss`` or ``GradientPenalty`` (see ``native_training``)."""
        return native_training.penalty(translation, model, spec, params)

    def exported_penalty(
        self, code: str, model: ModelSpec, params: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The snippet's ``regularization(net)`` on :class:`DenseNet` loaded with ``params``,
        ``backward()``, and the ``.grad``s back in the canonical layout."""
        net = build_net(model).load_canonical(params)
        value = load_snippet(code)["regularization"](net)
        if value.requires_grad:
            value.backward()
        return value.detach(), net.canonical_grads()

    def exported_decay(
        self, code: str, model: ModelSpec, params: Mapping[str, torch.Tensor], lr: float
    ) -> dict[str, torch.Tensor]:
        """The snippet's ``decay_(net, lr)`` on :class:`DenseNet` loaded with ``params``."""
        net = build_net(model).load_canonical(params)
        load_snippet(code)["decay_"](net, lr)
        return net.canonical()

    def native_plan(self, translation: str, model: ModelSpec, spec: Spec) -> Plan:
        """The plan the native translations resolve on :class:`DenseNet` (``native_training``)."""
        return native_training.plan(translation, model, spec)
