"""Gradients on whichever backend Keras runs: Keras 3 has no autodiff of its own, so each
backend's own is called (``tf.GradientTape``, ``jax.value_and_grad``, ``torch.autograd.grad``).
This is the one module of the package that touches a framework: inside a function named for it,
called only when Keras runs on it. Importing it imports nothing, not even Keras, so a backend
name can be checked against :data:`GRADIENTS` before Keras is imported (Keras reads
``KERAS_BACKEND`` once, on import).

:func:`value_and_grads` differentiates a function of tensors; :func:`variables_value_and_grads`
a function reading Keras variables (``model.losses``), through ``keras.StatelessScope``, which
makes each variable read the tensor being differentiated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from regcore import UnsupportedError

if TYPE_CHECKING:
    import keras


def _tensorflow(fn: Callable[[list[Any]], Any], values: Sequence[Any]) -> tuple[Any, list[Any]]:
    import tensorflow as tf

    values = [tf.convert_to_tensor(v) for v in values]
    with tf.GradientTape() as tape:
        tape.watch(values)
        value = fn(values)
    return value, tape.gradient(value, values, unconnected_gradients=tf.UnconnectedGradients.ZERO)


def _jax(fn: Callable[[list[Any]], Any], values: Sequence[Any]) -> tuple[Any, list[Any]]:
    import jax

    value, grads = jax.value_and_grad(fn)(list(values))
    return value, list(grads)


def _torch(fn: Callable[[list[Any]], Any], values: Sequence[Any]) -> tuple[Any, list[Any]]:
    import torch

    leaves = [v.detach().clone().requires_grad_(True) for v in values]
    value = fn(leaves)
    grads = torch.autograd.grad(value, leaves, allow_unused=True) if value.requires_grad \
        else [None] * len(leaves)
    return value.detach(), [torch.zeros_like(p) if g is None else g.detach()
                            for p, g in zip(leaves, grads, strict=True)]


def _jax_float64() -> bool:
    import jax

    return bool(jax.config.read("jax_enable_x64"))


FLOAT64_HOLDS: dict[str, Callable[[], bool]] = {
    "tensorflow": lambda: True, "jax": _jax_float64, "torch": lambda: True}
"""Whether a float64 tensor holds float64 numbers on each Keras backend: on JAX only in 64-bit
mode (``JAX_ENABLE_X64=1``); otherwise Keras's float64 variables hold float32 numbers."""


GRADIENTS: dict[str, Callable[..., tuple[Any, list[Any]]]] = {
    "tensorflow": _tensorflow, "jax": _jax, "torch": _torch}
"""Each Keras backend's ``(fn, values) -> (fn(values), d fn / d values)``; a gradient is zero for
a value ``fn`` does not use."""


def value_and_grads(fn: Callable[[list[Any]], Any],
                    values: Sequence[Any]) -> tuple[Any, list[Any]]:
    """``fn(values)`` (a 0-dim tensor) and its gradient with respect to each of ``values``, by
    the autodiff of the backend Keras runs on; an :class:`regcore.UnsupportedError` on a Keras
    backend without one here (``numpy``, ``openvino``)."""
    import keras

    backend = keras.backend.backend()
    if backend not in GRADIENTS:
        raise UnsupportedError(f"keras: no gradient on the Keras backend {backend!r} (only "
                               f"{', '.join(GRADIENTS)} differentiate)")
    return GRADIENTS[backend](fn, values)


def variables_value_and_grads(fn: Callable[[], Any], variables: Sequence[keras.Variable]
                              ) -> tuple[Any, list[Any]]:
    """``fn()``, which reads ``variables`` (``Σ model.losses``), and its gradient with respect to
    each variable's value."""
    import keras

    def at(values: list[Any]) -> Any:
        with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
            return fn()

    return value_and_grads(at, [v.value for v in variables])
