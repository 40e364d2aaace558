"""NumPy backend: analytic gradients by hand; at float64 it is the reference for every backend.

``NumpyBackend`` is imported on first access (module ``__getattr__``), so importing a submodule
that needs no framework, such as ``regcore_adapters.numpy.export``, imports none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regcore_adapters.numpy.backend import NumpyBackend

__all__ = ["NumpyBackend"]


def __getattr__(name: str) -> Any:
    if name == "NumpyBackend":
        from regcore_adapters.numpy.backend import NumpyBackend

        return NumpyBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
