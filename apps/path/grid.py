"""The path's axis: one coefficient of the spec, every other coefficient scaled with it.

A spec fixes the *shape* of the regularization (which terms, on which parameters, in which
proportion); the path varies its *strength*. The axis is the spec's reference coefficient — the
first penalty rule's first coefficient (``coef``; ``l1`` for an elastic net), or the first
decoupled decay rate when the spec has no penalty — in that term's own convention. At a grid value
``λ`` every coefficient and decay rate ``c`` of the spec becomes ``c·λ/c_ref``, so an elastic
net keeps its ``l1/l2`` ratio (scikit-learn's fixed ``l1_ratio``) and a per-layer spec keeps its
layer weights. The reference coefficient itself becomes exactly ``λ``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from regcore.decay import DecoupledWeightDecay
from regcore.errors import SpecError
from regcore.spec import Rule, Spec


@dataclass(frozen=True)
class Axis:
    """What the grid values are: ``term``'s ``name`` coefficient in ``convention``, value
    ``value`` in the spec as given."""

    term: str
    name: str
    convention: str
    value: float

    @property
    def label(self) -> str:
        """``l1 coef (sum convention)``: the plots' axis label."""
        return f"{self.term} {self.name} ({self.convention} convention)"


def axis(spec: Spec) -> Axis:
    """The spec's reference coefficient; :class:`SpecError` if the spec has none or it is 0
    (nothing to scale: every grid value would give the same spec)."""
    if spec.penalties:
        term = spec.penalties[0].term
        name = term.coefficients[0]
        found = Axis(term.kind, name, term.convention, getattr(term, name))
    elif spec.weight_decay:
        found = Axis("weight_decay", "rate", "decoupled", spec.weight_decay[0].rate)
    else:
        raise SpecError("path: the spec has no penalty and no weight decay; nothing to vary")
    if found.value == 0:
        raise SpecError(f"path: the spec's reference coefficient ({found.label}) is 0; the path "
                        "scales every coefficient relative to it, so it must be nonzero")
    return found


def at(spec: Spec, value: float) -> Spec:
    """``spec`` with its reference coefficient set to ``value`` and every other coefficient
    scaled in proportion (:class:`SpecError` where a scaled coefficient leaves the float
    range, as any spec's would)."""
    ref = axis(spec).value
    first = True

    def scale(c: float) -> float:
        nonlocal first
        if first:
            first = False
            return float(value)
        return c * (value / ref)

    rules = []
    for rule in spec.penalties:
        term = rule.term
        coefs = {n: scale(getattr(term, n)) for n in term.coefficients}
        rules.append(Rule(dataclasses.replace(term, **coefs), rule.select))
    decay = [DecoupledWeightDecay(scale(d.rate), d.select) for d in spec.weight_decay]
    return Spec(penalties=tuple(rules), weight_decay=tuple(decay))


def log_grid(low: float, high: float, num: int) -> tuple[float, ...]:
    """``num`` log-spaced values from ``high`` down to ``low`` (both included), largest first:
    the path warm-starts from the most regularized, simplest solution."""
    if not (math.isfinite(low) and math.isfinite(high)) or not 0 < low <= high:
        raise SpecError(f"path grid: need 0 < low <= high, finite; got low={low!r}, "
                        f"high={high!r}")
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise SpecError(f"path grid: need a positive number of values, got {num!r}")
    if num == 1:
        if low != high:
            raise SpecError("path grid: one value needs low == high")
        return (float(high),)
    a, b = math.log10(high), math.log10(low)
    values = [10 ** (a + (b - a) * i / (num - 1)) for i in range(num)]
    values[0], values[-1] = float(high), float(low)
    return tuple(values)


def default_grid(spec: Spec, num: int = 21) -> tuple[float, ...]:
    """Two decades above the spec's reference coefficient to three below, ``num`` values
    (21: four per decade, the spec's own value among them)."""
    c = axis(spec).value
    return log_grid(abs(c) * 1e-3, abs(c) * 1e2, num)


def checked(values: tuple[float, ...] | list[float]) -> tuple[float, ...]:
    """A user's grid, validated (positive, finite, distinct) and sorted largest first."""
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or v <= 0:
            raise SpecError(f"path grid: values must be positive finite numbers, got {v!r}")
        out.append(float(v))
    if not out:
        raise SpecError("path grid: no values")
    if len(set(out)) != len(out):
        raise SpecError("path grid: values repeat")
    return tuple(sorted(out, reverse=True))
