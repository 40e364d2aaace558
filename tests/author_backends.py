"""Backends as an outside author might first write them: correct, but partial.

``MinimalBackend`` implements only the required core of :class:`regcore.Backend` (no capability);
``FlakyGpuBackend`` declares a GPU whose availability check raises; ``SlightlyOff`` is the
reference with a relative error far below float32's tolerance but above float64's.
"""

from __future__ import annotations

from regcore import Backend
from regcore_adapters.numpy import NumpyBackend

_REFERENCE = NumpyBackend()


class MinimalBackend(Backend):
    """The required core only: the array bridge and the penalty."""

    name = "minimal"

    def asarray(self, array, *, dtype, device):
        return _REFERENCE.asarray(array, dtype=dtype, device=device)

    def to_numpy(self, x):
        return _REFERENCE.to_numpy(x)

    def penalty(self, plan, params):
        return _REFERENCE.penalty(plan, params)


class FlakyGpuBackend(NumpyBackend):
    name = "flaky_gpu"
    devices = ("cpu", "gpu")

    def device_available(self, device):
        if device == "gpu":
            raise RuntimeError("CUDA driver version is insufficient")
        return super().device_available(device)


class SlightlyOff(NumpyBackend):
    """Every penalty value 1e-10 too large (relative)."""

    name = "slightly_off"

    def penalty(self, plan, params):
        total, grads = super().penalty(plan, params)
        return total * (1 + 1e-10), grads
