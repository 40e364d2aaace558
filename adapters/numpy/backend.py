"""The NumPy backend class."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from regcore import (
    ActivityAssignment,
    Backend,
    Harness,
    ModelSpec,
    NativeTranslations,
    Network,
    Optimizer,
    Plan,
    ProximalTraining,
    SnippetRunner,
    Spec,
    UnsupportedError,
    proximal,
)
from regcore.export_support import load_snippet
from regcore_adapters.numpy import layers, models
from regcore_adapters.numpy import proximal as prox
from regcore_adapters.numpy.native import InPlacePenalty
from regcore_adapters.numpy.optim import Stepper
from regcore_adapters.numpy.penalties import KERNELS, accumulation_dtype


class NumpyBackend(Backend, Harness, ProximalTraining, NativeTranslations, SnippetRunner):
    """Plain NumPy on the CPU, gradients derived by hand (no autodiff)."""

    name = "numpy"
    low_precision_dtypes = ("float16",)  # NumPy has no bfloat16 (ml_dtypes is not a dependency)
    array_types = (np.ndarray,)
    #: :class:`InPlacePenalty` in a hand-written step: ``in_place`` adds the gradient in place
    #: and decays before the optimizer; ``folded_sgd`` is its one-factor plain-SGD step.
    native_translations = ("in_place", "folded_sgd")
    native_penalty_translations = ("in_place",)

    def asarray(self, array: Any, *, dtype: str, device: str) -> np.ndarray:
        return np.array(array, dtype=dtype, copy=True)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def penalty(
        self, plan: Plan, params: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The value in the parameters' promoted dtype, float32 at least for float16 parameters
        (cast up before any reduction); each gradient in its parameter's dtype (rounded once)."""
        wide = {name: w.astype(accumulation_dtype(w.dtype), copy=False)
                for name, w in params.items()}
        total = np.zeros((), dtype=_common_dtype(wide))
        grads = {name: np.zeros_like(w) for name, w in wide.items()}
        for a in plan.penalties:
            value, grad = KERNELS[type(a.term)](a.term, wide[a.param])
            total = total + value
            grads[a.param] = grads[a.param] + grad
        return total, {name: g.astype(params[name].dtype, copy=False)
                       for name, g in grads.items()}

    def loss_and_grads(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, np.ndarray],
        x: np.ndarray, y: np.ndarray,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        loss, grads = forward_backward(model, params, x, y, plan.activity)
        penalty, pgrads = self.penalty(plan, params)
        return loss + penalty, {k: grads[k] + pgrads[k] for k in grads}

    def train(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, np.ndarray],
        x: np.ndarray, y: np.ndarray, *, optimizer: Optimizer, steps: int,
    ) -> dict[str, np.ndarray]:
        params = {k: v.copy() for k, v in params.items()}
        stepper = Stepper(optimizer, plan.decay)
        for _ in range(steps):
            _, grads = self.loss_and_grads(model, plan, params, x, y)
            stepper.step(params, grads)
        return params

    def proximal_train(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, np.ndarray],
        x: np.ndarray, y: np.ndarray, *, lr: float, steps: int,
    ) -> dict[str, np.ndarray]:
        smooth, ops = proximal.split(plan)
        ops = proximal.merged_shrinks(ops)
        params = {k: v.copy() for k, v in params.items()}
        stepper = Stepper(Optimizer("sgd", lr), smooth.decay)
        for _ in range(steps):
            _, grads = self.loss_and_grads(model, smooth, params, x, y)
            stepper.step(params, grads)
            prox.apply_(ops, params, lr)
        return params

    def native_train(
        self, translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, np.ndarray],
        x: np.ndarray, y: np.ndarray, *, optimizer: Optimizer, steps: int,
    ) -> dict[str, np.ndarray]:
        """``train`` through :class:`InPlacePenalty`: gradients of the data loss, then the
        penalty's added in place and decay (``in_place``, any optimizer), or one folded SGD
        update (``folded_sgd``, plain SGD only)."""
        if translation == "folded_sgd" and optimizer.name != "sgd":
            raise UnsupportedError(f"numpy: folded_sgd is a plain-SGD step, not {optimizer.name}")
        params = {k: v.copy() for k, v in params.items()}
        plan = self.native_plan(translation, model, spec)
        penalty = InPlacePenalty(dataclasses.replace(plan, activity=()))
        stepper = Stepper(optimizer, {})
        for _ in range(steps):
            # activity penalties enter the hand-written backward pass, with the data loss
            _, grads = forward_backward(model, params, x, y, plan.activity)
            if translation == "folded_sgd":
                penalty.sgd_step_(params, grads, optimizer.lr)
                continue
            penalty.add_grad_(params, grads)
            penalty.decay_(params, optimizer.lr)
            stepper.step(params, grads)
        return params

    def native_penalty(
        self, translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """:meth:`InPlacePenalty.value` and what :meth:`InPlacePenalty.add_grad_` adds to zero
        gradients."""
        plan = self.native_plan(translation, model, spec)  # the penalty alone: no activity
        penalty = InPlacePenalty(dataclasses.replace(plan, activity=()))
        grads = {k: np.zeros_like(v) for k, v in params.items()}
        penalty.add_grad_(params, grads)
        return np.asarray(penalty.value(params), dtype=_common_dtype(params)), grads

    def exported_penalty(
        self, code: str, model: ModelSpec, params: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The snippet's ``regularization(params, roles)``, roles from ``model``; its gradients
        are its own (written by hand, like this backend's)."""
        value, grads = load_snippet(code)["regularization"](_copies(params), _roles(model))
        return np.asarray(value), grads

    def exported_decay(
        self, code: str, model: ModelSpec, params: Mapping[str, np.ndarray], lr: float
    ) -> dict[str, np.ndarray]:
        """The snippet's ``decay(params, roles, lr)``."""
        return load_snippet(code)["decay"](_copies(params), _roles(model), lr)

    def native_plan(self, translation: str, model: ModelSpec, spec: Spec) -> Plan:
        """What :class:`InPlacePenalty` is built from in every translation: ``spec`` resolved on the
        canonical parameters (a hand-written NumPy step's dicts are its model)."""
        return spec.resolve(model.params(), model.layer_names())


def forward_backward(model: ModelSpec | Network, params: Mapping[str, np.ndarray],
                     x: np.ndarray, y: np.ndarray, activity: tuple[ActivityAssignment, ...] = ()
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Data loss plus the plan's activity penalties and its gradient, by the dense
    backpropagation or layer by layer."""
    if isinstance(model, Network):
        return layers.forward_backward(model, params, x, y, activity)
    return models.forward_backward(model, params, x, y, activity)


def _copies(params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.array(v, copy=True) for k, v in params.items()}


def _roles(model: ModelSpec) -> dict[str, str]:
    return {p.name: p.role for p in model.params()}


def _common_dtype(params: Mapping[str, np.ndarray]) -> np.dtype:
    dtypes = {w.dtype for w in params.values()}
    return dtypes.pop() if len(dtypes) == 1 else np.result_type(*dtypes)
