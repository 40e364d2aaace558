"""Argument validation shared by every spec object (one place, one exception)."""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Iterable

from regcore.errors import SpecError

SMALLEST_FLOAT = 5e-324
"""The smallest positive float (``2**-1074``): a nonzero value below half of it rounds to 0.0."""


MAX_SHOWN = 200
"""The longest ``repr`` a message quotes whole; a longer one is cut, its length given."""

MAX_INT_DIGITS = sys.int_info.str_digits_check_threshold
"""The most decimal digits an integer stored in a spec may have (640): the fewest Python's
int-to-string limit (``sys.set_int_max_str_digits``) can be set to, so :func:`regcore.to_json`
can always write the number, whatever the process's setting."""


def show(value: object) -> str:
    """``repr(value)`` for a message; an integer too long to print usefully (``10**400``, or past
    Python's int-to-string digit limit) is shown by its size instead, a value nested too deeply to
    print by its type, and a ``repr`` over :data:`MAX_SHOWN` characters is cut."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        magnitude = abs(int(value))
        if magnitude >= 10**30:
            sign = "-" if value < 0 else ""
            return f"an integer of about {sign}1e{math.floor(math.log10(magnitude))}"
    try:
        text = repr(value)
    except ValueError:  # e.g. a Fraction whose numerator is past the digit limit
        return f"a {type(value).__name__} too long to print"
    except RecursionError:  # e.g. a list nested 100,000 deep (from_dict reads any object)
        return f"a {type(value).__name__} nested too deeply to print"
    if len(text) > MAX_SHOWN:
        return f"{text[:MAX_SHOWN]}... ({len(text)} characters)"
    return text


def writable_int(field: str, value: int) -> int:
    """``value`` if it has at most :data:`MAX_INT_DIGITS` digits; :class:`SpecError` otherwise
    (a spec holding it could not be written as JSON)."""
    if abs(value) >= 10**MAX_INT_DIGITS:
        raise SpecError(
            f"{field}: {show(value)} has more than {MAX_INT_DIGITS} digits, more than a spec "
            "can write as JSON"
        )
    return value


def coefficient(field: str, value: object) -> float:
    """A finite, non-negative real coefficient as a Python float.

    ``bool`` is refused (``True`` is an int to Python but never a meant coefficient), as are
    strings, ``None``, NaN, infinities, negative numbers, numbers beyond the largest float (an int
    such as ``10**400``) and nonzero numbers that would round to 0.0 (``Fraction(1, 10**400)``).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SpecError(f"{field}: expected a non-negative real number, got {show(value)}")
    try:
        as_float = float(value)
    except OverflowError:  # an int or Fraction too large for a float
        if value < 0:
            raise SpecError(f"{field}: must be >= 0, got {show(value)}") from None
        raise SpecError(
            f"{field}: exceeds the largest float ({sys.float_info.max!r}), got {show(value)}"
        ) from None
    if math.isnan(as_float) or math.isinf(as_float):
        raise SpecError(f"{field}: must be finite, got {show(value)}")
    if as_float < 0 or value < 0:
        raise SpecError(f"{field}: must be >= 0, got {show(value)}")
    if as_float == 0 and value != 0:
        raise SpecError(
            f"{field}: nonzero but below the smallest float ({SMALLEST_FLOAT!r}), so it would "
            f"round to 0.0, got {show(value)}"
        )
    return as_float


def positive_int(field: str, value: object) -> int:
    """A strictly positive ``int`` (batch sizes, sample counts); any size, kept exact."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SpecError(f"{field}: expected a positive integer, got {show(value)}")
    if value <= 0:
        raise SpecError(f"{field}: must be > 0, got {show(value)}")
    return int(value)


def fraction(field: str, value: object) -> float:
    """A real number in [0, 1] (mixing ratios such as scikit-learn's ``l1_ratio``)."""
    as_float = coefficient(field, value)
    if as_float > 1:
        raise SpecError(f"{field}: must be in [0, 1], got {show(value)}")
    return as_float


def as_tuple(field: str, value: object) -> tuple[object, ...]:
    """A list or tuple, as a tuple; a string, a dict or any other value is refused (a string is
    iterable, but ``roles="weight"`` means a list of one role, not six letters)."""
    if not isinstance(value, (list, tuple)):
        raise SpecError(f"{field}: expected a list, got {show(value)}")
    return tuple(value)


def choice(field: str, value: object, allowed: Iterable[str]) -> str:
    """One of a fixed set of strings."""
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise SpecError(
            f"{field}: expected one of {', '.join(map(repr, allowed))}, got {show(value)}"
        )
    return value
