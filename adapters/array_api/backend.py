"""The Array API backend: one implementation for every namespace that follows the standard.

``array_api:<module>`` (``array_api:array_api_strict``, ``array_api:numpy``,
``array_api:torch``) is :meth:`ArrayApiBackend.variant` of that module: a subclass whose name,
array type and namespace are the module's. Penalties and network gradients are derived by hand
(the standard has no autodiff), so on any namespace this is a second, independent implementation
of every term's gradient beside the NumPy backend's.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar

from regcore import (
    Backend,
    Harness,
    ModelSpec,
    Network,
    Optimizer,
    Plan,
    ProximalTraining,
    proximal,
)
from regcore_adapters.array_api import layers, models, optim, penalties
from regcore_adapters.array_api.namespace import Standard, load


class ArrayApiBackend(Backend, Harness, ProximalTraining):
    """Array API functions only, on the namespace of :attr:`module` (NumPy for the bare name
    ``array_api``); no float16 or bfloat16 (the standard has neither)."""

    name = "array_api:numpy"
    module: ClassVar[str] = "numpy"
    _namespace: ClassVar[Any] = None

    @classmethod
    @functools.cache
    def variant(cls, module: str | None = None) -> type[ArrayApiBackend]:
        """The backend on ``module``'s namespace (``array_api:<module>``; NumPy's when None,
        the bare name); a module that cannot be imported or has no Array API namespace is a
        :class:`regcore.UnsupportedError` (:func:`regcore.load_backend` turns it into its
        not-found error)."""
        module = module or cls.module
        namespace, _ = load(module)
        return type(f"ArrayApiBackend[{module}]", (cls,), {
            "name": f"array_api:{module}", "module": module, "_namespace": namespace,
            "array_types": (type(namespace.asarray(0.0)),), "__module__": cls.__module__})

    def __init__(self) -> None:
        namespace = type(self)._namespace
        self.xp = Standard(load(self.module)[0] if namespace is None else namespace, self.name)

    def versions(self) -> dict[str, str]:
        out = {}
        for package in (self.module.partition(".")[0].replace("_", "-"), "array-api-compat"):
            try:
                out[package] = version(package)
            except PackageNotFoundError:
                pass
        return out

    def asarray(self, array: Any, *, dtype: str, device: str) -> Any:
        import numpy as np

        return self.xp.asarray(np.asarray(array), dtype=getattr(self.xp, dtype), copy=True)

    def to_numpy(self, x: Any) -> Any:
        """A copy through DLPack (the standard's interchange), or ``__array__`` for a library
        whose arrays do not export DLPack (Dask's compute on conversion)."""
        import numpy as np

        try:
            return np.from_dlpack(x).copy()
        except (AttributeError, TypeError, BufferError, RuntimeError):
            return np.asarray(x).copy()

    def penalty(self, plan: Plan, params: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The value in the parameters' promoted dtype; each gradient in its parameter's."""
        xp = self.xp
        first = next(iter(params.values()))
        total = xp.zeros((), dtype=xp.result_type(*(w.dtype for w in params.values())),
                         device=xp.device(first))
        grads = {name: xp.zeros_like(w) for name, w in params.items()}
        for a in plan.penalties:
            value, grad = penalties.term(xp, a.term, params[a.param])
            total = total + value
            grads[a.param] = grads[a.param] + grad
        return total, grads

    def loss_and_grads(self, model: ModelSpec | Network, plan: Plan,
                       params: Mapping[str, Any], x: Any, y: Any
                       ) -> tuple[Any, dict[str, Any]]:
        run = layers.forward_backward if isinstance(model, Network) else \
            models.forward_backward
        loss, grads = run(self.xp, model, params, x, y, plan.activity)
        value, pgrads = self.penalty(plan, params)
        return loss + value, {k: grads[k] + pgrads[k] for k in grads}

    def train(self, model: ModelSpec | Network, plan: Plan, params: Mapping[str, Any], x: Any,
              y: Any, *, optimizer: Optimizer, steps: int) -> dict[str, Any]:
        stepper = optim.Stepper(self.xp, optimizer, plan.decay)
        params = dict(params)
        for _ in range(steps):
            _, grads = self.loss_and_grads(model, plan, params, x, y)
            params = stepper.step(params, grads)
        return params

    def proximal_train(self, model: ModelSpec | Network, plan: Plan, params: Mapping[str, Any],
                       x: Any, y: Any, *, lr: float, steps: int) -> dict[str, Any]:
        smooth, ops = proximal.split(plan)
        ops = proximal.merged_shrinks(ops)
        stepper = optim.Stepper(self.xp, Optimizer("sgd", lr), smooth.decay)
        params = dict(params)
        for _ in range(steps):
            _, grads = self.loss_and_grads(model, smooth, params, x, y)
            params = optim.shrink(self.xp, ops, stepper.step(params, grads), lr)
        return params
