"""Array API backend: one backend for every namespace that implements the Python Array API
standard (through ``array_api_compat``), selected as ``array_api:<module>``.

``ArrayApiBackend`` is imported on first access (module ``__getattr__``): importing this package
imports no array library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regcore_adapters.array_api.backend import ArrayApiBackend

__all__ = ["ArrayApiBackend"]


def __getattr__(name: str) -> Any:
    if name == "ArrayApiBackend":
        from regcore_adapters.array_api.backend import ArrayApiBackend

        return ArrayApiBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
