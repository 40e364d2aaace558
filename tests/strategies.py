"""Hypothesis strategies for regcore, in one place: coefficients, terms in every convention,
parameters, specs with selections that resolve, and parameter values.

Coefficients include 0 and the extremes a dtype can carry through a penalty: 1e-250..1e250 for
float64 and 1e-25..1e25 for float32. With parameter entries of magnitude 1e-2..1e2 (or exactly
0), at most a few hundred of them, and convention factors from 2 down to 1/(4·10⁶), every
penalty value and gradient of a drawn example is then a normal number of its dtype (float32:
1.2e-38..3.4e38) — the derived tolerances are relative-error bounds, which hold for normal
numbers only. Outside that range a float32 penalty under- or overflows, which is the dtype's
limit, not a disagreement.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from regcore import (
    CONVENTIONS,
    L2,
    ROLES,
    TERMS,
    DecoupledWeightDecay,
    GroupLasso,
    Orthogonal,
    ParamInfo,
    Rule,
    Select,
    Spec,
    SpecError,
    Term,
)

# The exponent ranges of coefficients per dtype: 10**lo .. 10**hi (see the module docstring).
COEF_EXPONENTS = {"float64": (-250, 250), "float32": (-25, 25)}
EXTRA_NUMBERS = {"batch_size": st.integers(1, 10**6), "n_samples": st.integers(1, 10**6),
                 "data_loss": st.sampled_from(("mse", "half_mse"))}


def coefficients(dtype: str = "float64") -> st.SearchStrategy[float]:
    """0, the two extremes of ``dtype``'s range (see module docstring), and log-uniform values
    in between."""
    lo, hi = COEF_EXPONENTS[dtype]
    spread = st.builds(lambda m, e: m * 10.0**e,
                       st.floats(1.0, 9.999, allow_nan=False), st.integers(lo, hi - 1))
    return st.one_of(st.just(0.0), st.sampled_from((10.0**lo, 10.0**hi)), spread)


def any_coefficient() -> st.SearchStrategy[float]:
    """Any finite non-negative float, subnormals and the largest double included (for the
    core's conversions and serialization, where no array arithmetic is involved)."""
    return st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)


@st.composite
def conventions(draw, kind: str) -> dict[str, object]:
    """A convention ``kind`` accepts, with the numbers it needs."""
    convention = draw(st.sampled_from(TERMS[kind].conventions))
    numbers = {name: draw(EXTRA_NUMBERS[name]) for name in CONVENTIONS[convention].needs}
    return {"convention": convention, **numbers}


def build_term(kind: str, coefs: tuple[float, ...], form: dict, **shape_args) -> Term | None:
    """``TERMS[kind]`` or ``None`` where the coefficients scaled by the convention leave the
    float range (the constructor's documented ``SpecError``)."""
    try:
        return TERMS[kind](*coefs, **form, **shape_args)
    except SpecError:
        return None


@st.composite
def terms(draw, kinds: tuple[str, ...] = tuple(TERMS), dtype: str = "float64",
          coefs: st.SearchStrategy[float] | None = None, ndim: int = 2, rows_ok: bool = True,
          columns_ok: bool = True) -> Term:
    """A term of one of ``kinds`` in any convention it has, defined for a parameter of ``ndim``
    dimensions (orthogonal ``mode`` restricted by ``rows_ok``/``columns_ok``)."""
    coefs = coefs if coefs is not None else coefficients(dtype)
    kind = draw(st.sampled_from(kinds))
    cls = TERMS[kind]
    shape_args: dict[str, object] = {}
    if cls is GroupLasso:
        shape_args = {"axis": draw(st.integers(-ndim, ndim - 1)),
                      "scale_by_size": draw(st.booleans())}
    elif cls is Orthogonal:
        modes = [m for m, ok in (("rows", rows_ok), ("columns", columns_ok)) if ok]
        shape_args = {"mode": draw(st.sampled_from(modes))}
    term = build_term(kind, tuple(draw(coefs) for _ in cls.coefficients),
                      draw(conventions(kind)), **shape_args)
    if term is None:  # scaled out of range: fall back to the sum form, which scales by 1
        term = cls(*(draw(coefs) for _ in cls.coefficients), convention="sum", **shape_args)
    return term


@st.composite
def param_infos(draw, max_params: int = 4, max_dim: int = 6) -> tuple[ParamInfo, ...]:
    """1..max_params parameters of 1..3 dimensions with random roles and layer-like names."""
    count = draw(st.integers(1, max_params))
    infos = []
    for i in range(count):
        shape = tuple(draw(st.lists(st.integers(1, max_dim), min_size=1, max_size=3)))
        leaf = "kernel" if len(shape) > 1 else "bias"
        infos.append(ParamInfo(f"layer_{i}.{leaf}", shape, draw(st.sampled_from(ROLES))))
    return tuple(infos)


@st.composite
def selections(draw, params: tuple[ParamInfo, ...]) -> Select:
    """A selection matching at least one of ``params``: every criterion a spec can use."""
    choice = draw(st.sampled_from(("all", "roles", "name", "ndim", "min_ndim")))
    select = {
        "all": lambda: Select(),
        "roles": lambda: Select(roles=(draw(st.sampled_from([p.role for p in params])),)),
        "name": lambda: Select(name="|".join(re.escape(p.name) for p in draw(
            st.lists(st.sampled_from(params), min_size=1, unique=True)))),
        "ndim": lambda: Select(ndim=(draw(st.sampled_from([p.ndim for p in params])),)),
        "min_ndim": lambda: Select(min_ndim=draw(st.integers(0, min(p.ndim for p in params)))),
    }[choice]()
    # the parameters drawn are all trainable, so include_frozen changes no match; drawn for the
    # serialization round trips
    return dataclasses.replace(select, include_frozen=draw(st.booleans()))


def _kinds_for(matched: list[ParamInfo], taken: dict[str, set[str]]) -> tuple[str, ...]:
    """Term kinds defined for every parameter in ``matched`` and given to none of them yet."""
    kinds = []
    for kind in TERMS:
        if any(kind in taken[p.name] for p in matched):
            continue
        if kind == "orthogonal" and any(p.ndim != 2 or max(p.shape) < 2 for p in matched):
            continue
        kinds.append(kind)
    return tuple(kinds)


@st.composite
def resolvable_specs(draw, params: tuple[ParamInfo, ...], dtype: str = "float64",
                     coefs: st.SearchStrategy[float] | None = None,
                     max_rules: int = 4) -> Spec:
    """A spec whose rules resolve on ``params``: each selection matches something, no
    parameter gets one kind twice, and every term is defined for its parameters' shapes."""
    taken: dict[str, set[str]] = {p.name: set() for p in params}
    rules = []
    for _ in range(draw(st.integers(1, max_rules))):
        select = draw(selections(params))
        matched = [p for p in params if select.matches(p)]
        kinds = _kinds_for(matched, taken)
        if not kinds:
            continue
        ndim = min(p.ndim for p in matched)
        rows_ok = all(p.ndim == 2 and p.shape[0] >= 2 for p in matched)
        columns_ok = all(p.ndim == 2 and p.shape[1] >= 2 for p in matched)
        if "orthogonal" in kinds and not (rows_ok or columns_ok):
            kinds = tuple(k for k in kinds if k != "orthogonal")
        if not kinds:
            continue
        term = draw(terms(kinds, dtype, coefs, ndim, rows_ok, columns_ok))
        rules.append(Rule(term, select))
        for p in matched:
            taken[p.name].add(term.kind)
    if not rules:  # every draw collided: one L2 on everything always resolves
        rules.append(Rule(L2(draw(coefficients(dtype)), convention="sum"), Select()))
    return Spec(penalties=tuple(rules))


@st.composite
def specs(draw) -> Spec:
    """Any valid spec, for serialization: any coefficients, every kind, convention and
    selection field, and decoupled weight decay (resolution against parameters not needed)."""
    params = draw(param_infos())
    spec = draw(resolvable_specs(params, coefs=any_coefficient()))
    decay = tuple(
        DecoupledWeightDecay(draw(st.floats(0.0, 1.0)), draw(selections(params)))
        for _ in range(draw(st.integers(0, 2)))
    )
    return Spec(penalties=spec.penalties, weight_decay=decay)


@dataclass(frozen=True)
class Values:
    """How a parameter's values are drawn: magnitude, and which entries are exactly 0."""

    seed: int
    magnitude: float
    zeros: str  # "none" | "entries" | "groups" | "all"

    def array(self, shape: tuple[int, ...]) -> np.ndarray:
        """float64 values: uniform in ±[magnitude/10, magnitude] with random signs (so every
        nonzero entry is a normal number in float32 too), with the chosen exact zeros."""
        rng = np.random.default_rng(self.seed)
        w = rng.uniform(0.1, 1.0, shape) * rng.choice((-1.0, 1.0), shape) * self.magnitude
        if self.zeros == "entries":
            w[rng.random(shape) < 0.3] = 0.0
        elif self.zeros == "groups":
            w[rng.random(shape[0]) < 0.5] = 0.0  # whole slices along axis 0
        elif self.zeros == "all":
            w[...] = 0.0
        return w


def values() -> st.SearchStrategy[Values]:
    return st.builds(Values, st.integers(0, 2**32 - 1), st.sampled_from((1e-1, 1.0, 1e2)),
                     st.sampled_from(("none", "entries", "groups", "all")))


_EXAMPLES = {"count": 0}


def count_example() -> None:
    """Called at the end of every property example that ran to completion (tests/conftest.py
    reports the total; this module is the one place the count lives)."""
    _EXAMPLES["count"] += 1


def counted(test):
    """``test`` that calls :func:`count_example` after each example it completes (put it
    under ``@given``)."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        test(*args, **kwargs)
        count_example()

    return run


def examples_run() -> int:
    return _EXAMPLES["count"]
