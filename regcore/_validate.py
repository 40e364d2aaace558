"""Argument validation shared by every spec object (one place, one exception)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

from regcore.errors import SpecError


def coefficient(field: str, value: object) -> float:
    """A finite, non-negative real coefficient as a Python float.

    ``bool`` is refused (``True`` is an int to Python but never a meant coefficient), as are
    strings, ``None``, NaN, infinities and negative numbers.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SpecError(f"{field}: expected a non-negative real number, got {value!r}")
    as_float = float(value)
    if math.isnan(as_float) or math.isinf(as_float):
        raise SpecError(f"{field}: must be finite, got {value!r}")
    if as_float < 0:
        raise SpecError(f"{field}: must be >= 0, got {value!r}")
    return as_float


def positive_int(field: str, value: object) -> int:
    """A strictly positive ``int`` (batch sizes, sample counts)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SpecError(f"{field}: expected a positive integer, got {value!r}")
    if value <= 0:
        raise SpecError(f"{field}: must be > 0, got {value!r}")
    return int(value)


def fraction(field: str, value: object) -> float:
    """A real number in [0, 1] (mixing ratios such as scikit-learn's ``l1_ratio``)."""
    as_float = coefficient(field, value)
    if as_float > 1:
        raise SpecError(f"{field}: must be in [0, 1], got {value!r}")
    return as_float


def choice(field: str, value: object, allowed: Iterable[str]) -> str:
    """One of a fixed set of strings."""
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise SpecError(f"{field}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value
