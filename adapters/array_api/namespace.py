"""The array namespace a backend instance computes in, and the refusal of what it lacks.

``array_api:<module>`` names an importable module whose ``asarray`` makes arrays (``numpy``,
``torch``, ``array_api_strict``, ``dask.array``, ``cupy``); ``array_api_compat`` maps such an
array to its standard namespace (itself where the library is compliant, compat's wrapper for
NumPy, torch, Dask and CuPy). Nothing else of the library is used.

:class:`Standard` is that namespace behind one door: a function it does not have is a
:class:`regcore.UnsupportedError` naming the function and the namespace, raised where the
computation needs it (the suite skips that check with the message). There is no fallback to
NumPy: a NumPy array never enters a computation.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

from regcore import UnsupportedError

FLOATING = ("float32", "float64")
"""The standard's real floating dtypes (it has no float16 or bfloat16)."""


class Standard:
    """``xp.<function>`` for the Array API functions of one namespace; a missing one raises
    :class:`regcore.UnsupportedError` naming it (``xp.missing`` lists those looked up)."""

    def __init__(self, namespace: Any, label: str) -> None:
        self._xp, self.label = namespace, label

    def __getattr__(self, name: str) -> Any:
        try:
            value = getattr(self._xp, name)
        except AttributeError:
            raise UnsupportedError(
                f"{self.label}: the namespace has no {name!r} (Array API standard), which this "
                "computation needs; regcore does not fall back to NumPy") from None
        setattr(self, name, value)  # looked up once
        return value

    def scalar(self, value: float, like: Any) -> Any:
        """``value`` as a 0-d array of ``like``'s dtype on its device: one rounding of the
        float64 number, as every coefficient is rounded once (a Python scalar in an operation
        would be too, but not in every library's own way)."""
        return self.asarray(value, dtype=like.dtype, device=self.device(like))

    def device(self, x: Any) -> Any:
        import array_api_compat  # loaded already by load()

        return array_api_compat.device(x)

    def size(self, x: Any, axes: tuple[int, ...] | None = None) -> int:
        """The number of elements of ``x`` (over ``axes``); shapes are tuples of ints here (no
        lazy ``None`` sizes: the scenarios' arrays are concrete)."""
        shape = tuple(x.shape)
        return math.prod(shape if axes is None else (shape[a] for a in axes))


def load(module: str) -> tuple[Any, Any]:
    """``module``'s standard namespace (through ``array_api_compat``) and the module itself;
    :class:`regcore.UnsupportedError` when either cannot be imported or the module's arrays have
    no standard namespace."""
    try:
        import array_api_compat
    except ImportError as exc:
        raise UnsupportedError(f"array_api:{module}: needs array-api-compat "
                               f"(pip install array-api-compat): {exc}") from None
    try:
        lib = importlib.import_module(module)
    except ImportError as exc:
        raise UnsupportedError(f"array_api:{module}: cannot import {module!r}: {exc}") from None
    try:
        return array_api_compat.array_namespace(lib.asarray([0.0])), lib
    except (AttributeError, TypeError) as exc:
        raise UnsupportedError(f"array_api:{module}: {module!r} has no Array API namespace "
                               f"(array_api_compat.array_namespace: {exc})") from None
