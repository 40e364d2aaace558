"""The Keras 3 backend: regcore's Keras-native translations on whichever backend Keras runs
(``KERAS_BACKEND``: tensorflow, jax or torch), against the same reference.

``keras:<backend>`` (``keras:jax``, ``keras:torch``, ``keras:tensorflow``) is
:meth:`KerasBackend.variant` of that Keras backend; the bare name ``keras`` is the one Keras runs
on. Keras reads ``KERAS_BACKEND`` once, when it is first imported: a variant sets it when Keras
is not imported yet, and refuses a backend other than the one a running Keras already has.

Penalties are the ``keras.ops`` kernels of the regularizers regcore gives Keras
(:mod:`.kernels`), differentiated by the backend's own autodiff (:mod:`.grad`). The
translations (:mod:`.training`): ``keras_fit`` trains; ``keras_losses`` and ``keras_saved``
give ``Σ model.losses`` before and after a ``.keras`` round trip. There is no Harness: the
functional training path of each framework is its own backend's (``tf``, ``jax``, ``torch``).

On JAX, Keras keeps float64 only where JAX's 64-bit mode is on (``JAX_ENABLE_X64=1`` before jax
is imported): otherwise a float64 ``keras.Variable`` holds float32 numbers and says float64.
Without it this backend declares float32 only.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from regcore import (
    Backend,
    ModelSpec,
    NativeTranslations,
    Optimizer,
    Plan,
    Spec,
    UnsupportedError,
)


@functools.cache
def float64_demotion() -> str | None:
    """What Keras's own type promotion costs float64 on the running Keras backend, measured:
    ``None`` where ``keras.backend.result_type("float64", "float64")`` is float64, else a
    sentence with the relative errors of ``ops.mean`` (every Keras loss's batch mean) and
    ``ops.matmul`` (every ``Dense``) on float64 inputs against NumPy's. Keras 3.15 on jax and
    torch demotes float64 to float32 in every op that promotes through ``result_type``
    (keras-team/keras#23223)."""
    import keras
    from keras import ops

    promoted = keras.backend.result_type("float64", "float64")
    if promoted == "float64":
        return None
    a = np.linspace(0.1, 1.3, 12).reshape(3, 4) ** 2
    b = np.linspace(-0.7, 0.9, 20).reshape(4, 5)
    mean = abs(float(ops.convert_to_numpy(ops.mean(ops.convert_to_tensor(a)))) / a.mean() - 1)
    product = ops.convert_to_numpy(ops.matmul(ops.convert_to_tensor(a), ops.convert_to_tensor(b)))
    matmul = float(np.max(np.abs(product - a @ b)) / np.max(np.abs(a @ b)))
    return (f"Keras {keras.__version__} on {keras.backend.backend()} promotes float64 to "
            f"{promoted} (keras.backend.result_type('float64', 'float64'); keras-team/keras"
            f"#23223): measured here, ops.mean of float64 is off by {mean:.1e} and ops.matmul by "
            f"{matmul:.1e} (relative; float64 rounding is 1.1e-16)")


def _refuse_float64_fit(name: str, param: Any) -> None:
    """Refuse a float64 ``model.fit`` where Keras demotes float64 (:func:`float64_demotion`):
    its losses' batch means (and, on torch, its ``Dense`` matmuls) are float32-accurate
    whatever regcore does. regcore's own regularizers stay float64 (:mod:`.kernels` uses none
    of those ops), so the penalty translations are checked in float64 there."""
    from regcore_adapters.keras.kernels import dtype_name

    demotion = float64_demotion()
    if demotion and dtype_name(param) == "float64":
        raise UnsupportedError(f"{name}: a float64 model.fit is float32-accurate: {demotion}")


class KerasBackend(Backend, NativeTranslations):
    """Keras 3 on the Keras backend of :attr:`keras_backend` (CPU)."""

    name = "keras"
    keras_backend: ClassVar[str] = ""
    native_translations = ("keras_fit",)
    native_penalty_translations = ("keras_losses", "keras_saved")

    @classmethod
    def variant(cls, backend: str | None = None) -> type[KerasBackend]:
        """The backend on Keras's ``backend`` (``keras:<backend>``; the running one when None).
        A backend Keras cannot run on here (or not differentiate on) is a
        :class:`regcore.UnsupportedError`."""
        from regcore_adapters.keras.grad import GRADIENTS

        if backend and backend not in GRADIENTS:  # before KERAS_BACKEND is touched
            raise UnsupportedError(f"keras:{backend}: regcore runs Keras on "
                                   f"{', '.join(GRADIENTS)} only (their autodiff)")
        before = os.environ.get("KERAS_BACKEND")
        if backend and "keras" not in sys.modules:
            os.environ["KERAS_BACKEND"] = backend
        try:
            import keras
        except Exception as exc:  # keras missing, or its backend's framework (ValueError)
            if before is None:
                os.environ.pop("KERAS_BACKEND", None)
            else:
                os.environ["KERAS_BACKEND"] = before
            raise UnsupportedError(f"keras: cannot import keras "
                                   f"({type(exc).__name__}: {exc})") from None
        running = keras.backend.backend()
        if backend and backend != running:
            raise UnsupportedError(
                f"keras:{backend}: Keras already runs on {running} in this process (it reads "
                f"KERAS_BACKEND once, when first imported); run with KERAS_BACKEND={backend}")
        return cls._on(running)

    @classmethod
    @functools.cache
    def _on(cls, running: str) -> type[KerasBackend]:
        import keras

        from regcore_adapters.keras.grad import FLOAT64_HOLDS, GRADIENTS

        if running not in GRADIENTS:  # KERAS_BACKEND=numpy, openvino
            raise UnsupportedError(f"keras:{running}: regcore differentiates on "
                                   f"{', '.join(GRADIENTS)} only")
        tensor = type(keras.ops.convert_to_tensor(np.zeros(1, np.float32)))
        return type(f"KerasBackend[{running}]", (cls,), {
            "name": f"keras:{running}", "keras_backend": running, "array_types": (tensor,),
            "dtypes": ("float64", "float32") if FLOAT64_HOLDS[running]() else ("float32",),
            "__module__": cls.__module__})

    def __init__(self) -> None:
        if not type(self).keras_backend:
            raise UnsupportedError("keras: use KerasBackend.variant() (regcore.load_backend("
                                   "'keras') or 'keras:<backend>')")

    def versions(self) -> dict[str, str]:
        import keras

        framework = self.keras_backend  # each Keras backend is named as its framework's module
        return {"keras": keras.__version__, "keras_backend": framework,
                framework: sys.modules[framework].__version__}

    def asarray(self, array: Any, *, dtype: str, device: str) -> Any:
        from keras import ops

        return ops.convert_to_tensor(np.array(array, dtype=dtype, copy=True), dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        from keras import ops

        return np.array(ops.convert_to_numpy(x), copy=True)

    def penalty(self, plan: Plan, params: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The ``keras.ops`` kernels' sum (:data:`regcore_adapters.keras.kernels.KERNELS`), and
        its gradient for every parameter by the backend's autodiff."""
        from keras import ops

        from regcore_adapters.keras.grad import value_and_grads
        from regcore_adapters.keras.kernels import KERNELS, dtype_name

        names = list(params)
        dtype = dtype_name(params[names[0]])

        def total(values: list[Any]) -> Any:
            at = dict(zip(names, values, strict=True))
            out = ops.zeros((), dtype=dtype)
            for a in plan.penalties:
                out = out + KERNELS[type(a.term)](a.term, at[a.param])
            return out

        value, grads = value_and_grads(total, [params[n] for n in names])
        return value, dict(zip(names, grads, strict=True))

    def native_train(
        self, translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, Any],
        x: Any, y: Any, *, optimizer: Optimizer, steps: int,
    ) -> dict[str, Any]:
        """``train`` through ``keras_fit`` (:mod:`regcore_adapters.keras.training`)."""
        from regcore_adapters.keras import training

        training.require_sgd(optimizer, self.name)  # the more basic refusal first
        _refuse_float64_fit(self.name, next(iter(params.values())))
        return training.train(translation, model, spec, params, x, y, optimizer=optimizer,
                              steps=steps, backend=self.name)

    def native_penalty(
        self, translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """``Σ model.losses`` of the Keras model with the spec applied."""
        from regcore_adapters.keras import training

        return training.penalty(translation, model, spec, params, backend=self.name)

    def native_plan(self, translation: str, model: ModelSpec, spec: Spec) -> Plan:
        from regcore_adapters.keras import training

        return training.plan(translation, model, spec, backend=self.name)
