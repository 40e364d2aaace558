"""Penalty terms: small validated value objects, one formula each.

A term says *what* is added to the loss for one parameter ``w``; a :class:`regcore.Rule` says
*which* parameters get it. Every coefficient carries a scaling convention
(:mod:`regcore.conventions`); :meth:`Term.scaled` gives the coefficients in the canonical ``sum``
form that backends evaluate.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from fractions import Fraction
from typing import ClassVar

from regcore import _validate
from regcore.conventions import PARAM_NAMES, check_params, data_loss_factor, exact, rounded
from regcore.errors import SpecError

ORTHOGONAL_EPSILON = 1e-7
"""Keras 3's ``backend.epsilon()``: rows/columns are divided by ``max(‖v‖, ε)``."""


@dataclass(frozen=True, repr=False)
class Term:
    """Base class: convention handling shared by every penalty term.

    Subclasses declare ``kind`` (the serialized name), ``coefficients`` (their coefficient
    fields, in order), ``conventions`` (the forms they accept) and ``_factors`` (the rational ``k``
    per coefficient for a convention).
    """

    kind: ClassVar[str]
    coefficients: ClassVar[tuple[str, ...]]
    conventions: ClassVar[tuple[str, ...]] = ("sum",)
    #: Whether the value depends on the parameter's layout (which axis is rows): group lasso and
    #: orthogonal do, elementwise terms (L2, L1, elastic net) do not.
    layout_dependent: ClassVar[bool] = False

    _: KW_ONLY
    convention: str
    batch_size: int | None = None
    n_samples: int | None = None
    data_loss: str | None = None

    def __post_init__(self) -> None:
        for name in self.coefficients:
            object.__setattr__(
                self, name, _validate.coefficient(f"{self.kind}.{name}", getattr(self, name))
            )
        params = {"batch_size": self.batch_size, "n_samples": self.n_samples,
                  "data_loss": self.data_loss}
        cleaned = check_params(self.kind, self.convention, self.conventions, params)
        for name in params:
            object.__setattr__(self, name, cleaned.get(name))
        self.scaled()  # a coefficient whose sum form overflows or rounds to 0.0 is refused here
        for name in ("batch_size", "n_samples"):  # a zero coefficient scales to 0 at any size
            if (value := getattr(self, name)) is not None:
                _validate.writable_int(f"{self.kind}.{name}", value)

    def __repr__(self) -> str:
        coefs = ", ".join(repr(getattr(self, n)) for n in self.coefficients)
        rest = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.name not in self.coefficients and getattr(self, f.name) is not None
        )
        return f"{type(self).__name__}({coefs}, {rest})"

    # -- conventions -------------------------------------------------------------------------
    def _factors(self) -> tuple[Fraction, ...]:
        """``k`` for each coefficient under ``self.convention`` (the ``sum`` form has k = 1)."""
        return tuple(Fraction(1) for _ in self.coefficients)

    def scaled(self) -> dict[str, float]:
        """Coefficients in the canonical ``sum`` form: ``k * coef``, rounded once.

        A result too large for a float, or a nonzero one that rounds to 0.0 (which would drop the
        penalty), raises :class:`SpecError`; :meth:`__post_init__` calls this, so such a term is
        never built.
        """
        return {
            name: _rounded(
                f"{self.kind}.{name}", k * exact(getattr(self, name)),
                functools.partial(_scaled_text, self, name),
            )
            for name, k in zip(self.coefficients, self._factors(), strict=True)
        }

    def canonical(self) -> Term:
        """The same penalty written in the ``sum`` convention."""
        return convert(self, "sum")

    # -- shapes ------------------------------------------------------------------------------
    def check_shape(self, param: str, shape: tuple[int, ...]) -> None:
        """Raise :class:`SpecError` if this term is undefined for a parameter of ``shape``."""


def convert(term: Term, to: str, **params: object) -> Term:
    """The same penalty written in convention ``to`` (with its ``batch_size``/``n_samples``/...).

    The penalty value is preserved exactly: coefficients are multiplied as exact rationals and
    rounded once. A convention the term has no form in raises :class:`SpecError` with the reason,
    e.g. ``convert(L1(0.1, convention="sum"), "torch_weight_decay")``, and so does a converted
    coefficient too large for a float or a nonzero one that rounds to 0.0.
    """
    if not isinstance(term, Term):
        raise SpecError(f"convert: expected a penalty term, got {term!r}")
    unknown = sorted(set(params) - set(PARAM_NAMES))
    if unknown:
        raise SpecError(
            f"convert: unknown argument {unknown[0]!r}; a conversion takes only "
            f"{', '.join(PARAM_NAMES)}"
        )
    cls = type(term)
    numbers = check_params(term.kind, to, cls.conventions,
                           {name: params.get(name) for name in PARAM_NAMES})  # validates `to`
    fields = {f.name: getattr(term, f.name) for f in dataclasses.fields(term)}
    fields.update({"convention": to, **dict.fromkeys(PARAM_NAMES), **numbers})
    # The target's factors, before any term is built: a converted coefficient that overflows is
    # reported as such, even where the numbers alone would be refused (a 5000-digit batch size)
    target = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(target, name, value)
    coefs = {
        name: _rounded(
            f"{term.kind}.{name}", exact(getattr(term, name)) * k_from / k_to,
            functools.partial(_converted_text, term, target, name),
        )
        for name, k_from, k_to in zip(
            term.coefficients, term._factors(), target._factors(), strict=True
        )
    }
    return cls(**{**fields, **coefs})  # validated in full


def _rounded(field: str, value: Fraction, what: Callable[[], str]) -> float:
    """:func:`~regcore.conventions.rounded`, also refusing a nonzero ``value`` that rounds to 0.0:
    the penalty would silently vanish. ``what()`` describes the value for the message."""
    result = rounded(field, value)
    if result == 0 and value != 0:
        raise SpecError(
            f"{field}: {what()} is nonzero but below the smallest float "
            f"({_validate.SMALLEST_FLOAT!r}); it would round to 0.0 and drop the penalty"
        )
    return result


def _scaled_text(term: Term, name: str) -> str:
    """Coefficient ``name`` of ``term`` scaled to the sum form, for :func:`_rounded`'s message."""
    return (f"{getattr(term, name)!r} in the {term.convention!r} convention"
            f"{_numbers_text(term)}, scaled to the sum form,")


def _converted_text(term: Term, target: Term, name: str) -> str:
    """Coefficient ``name`` of ``term`` converted to ``target``'s convention, for messages."""
    return (f"{getattr(term, name)!r} converted from {term.convention!r} to "
            f"{target.convention!r}{_numbers_text(target)}")


def _number(term: Term, name: str) -> int:
    """``batch_size`` or ``n_samples`` of a term whose convention needs it (validated: never None
    on a built term; a missing one is the error :func:`check_params` gives)."""
    value = getattr(term, name)
    if not isinstance(value, int):
        raise SpecError(f"{term.kind}.{name}: convention {term.convention!r} needs {name}")
    return value


def _numbers_text(term: Term) -> str:
    """`` with batch_size=32`` etc.: the numbers of a term's convention, for messages."""
    numbers = [
        f"{name}={_validate.show(value)}"
        for name in PARAM_NAMES
        if (value := getattr(term, name)) is not None
    ]
    return f" with {', '.join(numbers)}" if numbers else ""


@dataclass(frozen=True, repr=False)
class L2(Term):
    """Squared L2 norm: ``k * coef * Σ w²``; gradient ``2 k coef w``.

    Conventions: ``sum`` (Keras ``L2(coef)``), ``half`` and ``torch_weight_decay`` (k = ½),
    ``batch_mean`` (k = 1/(2m)), ``sklearn_ridge`` (k = 1/n for ``mse``, 1/(2n) for ``half_mse``).
    """

    kind: ClassVar[str] = "l2"
    coefficients: ClassVar[tuple[str, ...]] = ("coef",)
    conventions: ClassVar[tuple[str, ...]] = (
        "sum", "half", "torch_weight_decay", "batch_mean", "sklearn_ridge",
    )
    coef: float

    def _factors(self) -> tuple[Fraction, ...]:
        c = self.convention
        if c in ("half", "torch_weight_decay"):
            return (Fraction(1, 2),)
        if c == "batch_mean":
            return (Fraction(1, 2 * _number(self, "batch_size")),)
        if c == "sklearn_ridge":
            return (data_loss_factor(self.data_loss) / (2 * _number(self, "n_samples")),)
        return (Fraction(1),)


@dataclass(frozen=True, repr=False)
class L1(Term):
    """L1 norm: ``k * coef * Σ |w|``; subgradient ``k coef sign(w)``, which is 0 at ``w = 0``.

    Conventions: ``sum`` (Keras ``L1(coef)``), ``sklearn_lasso`` (k = 2 for ``mse``, 1 for
    ``half_mse``). There is no weight-decay form: ``weight_decay`` adds ``wd·w`` to a gradient,
    which is the gradient of a squared norm only.
    """

    kind: ClassVar[str] = "l1"
    coefficients: ClassVar[tuple[str, ...]] = ("coef",)
    conventions: ClassVar[tuple[str, ...]] = ("sum", "sklearn_lasso")
    coef: float

    def _factors(self) -> tuple[Fraction, ...]:
        if self.convention == "sklearn_lasso":
            return (data_loss_factor(self.data_loss),)
        return (Fraction(1),)


@dataclass(frozen=True, repr=False)
class ElasticNet(Term):
    """Elastic net: ``k1 * l1 * Σ|w| + k2 * l2 * Σw²`` with separate coefficients.

    Conventions: ``sum`` (Keras ``L1L2(l1, l2)``: k1 = k2 = 1), ``half`` (k2 = ½: ``l1‖w‖₁ +
    ½ l2‖w‖²``), ``sklearn_elasticnet`` with ``l1 = α·ρ`` and ``l2 = α·(1-ρ)`` (k1 = 2, k2 = 1 for
    ``mse``; k1 = 1, k2 = ½ for ``half_mse``); build that one with :meth:`from_sklearn`.
    """

    kind: ClassVar[str] = "elastic_net"
    coefficients: ClassVar[tuple[str, ...]] = ("l1", "l2")
    conventions: ClassVar[tuple[str, ...]] = ("sum", "half", "sklearn_elasticnet")
    l1: float
    l2: float

    def _factors(self) -> tuple[Fraction, ...]:
        if self.convention == "half":
            return (Fraction(1), Fraction(1, 2))
        if self.convention == "sklearn_elasticnet":
            f = data_loss_factor(self.data_loss)
            return (f, f / 2)
        return (Fraction(1), Fraction(1))

    @classmethod
    def from_sklearn(cls, alpha: float, l1_ratio: float, *, data_loss: str) -> ElasticNet:
        """scikit-learn's ``ElasticNet(alpha, l1_ratio)`` added to ``data_loss``."""
        alpha = _validate.coefficient("elastic_net.alpha", alpha)
        ratio = _validate.fraction("elastic_net.l1_ratio", l1_ratio)
        l1 = _rounded("elastic_net.l1", exact(alpha) * exact(ratio),
                      lambda: f"alpha {alpha!r} times l1_ratio {ratio!r}")
        l2 = _rounded("elastic_net.l2", exact(alpha) * (1 - exact(ratio)),
                      lambda: f"alpha {alpha!r} times (1 - l1_ratio {ratio!r})")
        return cls(l1, l2, convention="sklearn_elasticnet", data_loss=data_loss)


@dataclass(frozen=True, repr=False)
class GroupLasso(Term):
    """Group lasso: ``coef * Σ_g c_g ‖w_g‖₂`` over the slices of ``w`` along ``axis``.

    ``axis=0`` makes every row ``w[i, ...]`` a group, ``axis=1`` every column ``w[:, j, ...]``; the
    norm runs over all the other axes. ``c_g = √(group size)`` with ``scale_by_size=True``, else 1.
    The subgradient is ``coef c_g w_g / ‖w_g‖₂``, and exactly 0 for an all-zero group (never NaN).
    Only the ``sum`` convention.
    """

    kind: ClassVar[str] = "group_lasso"
    coefficients: ClassVar[tuple[str, ...]] = ("coef",)
    layout_dependent: ClassVar[bool] = True
    coef: float
    axis: int = 0
    scale_by_size: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.axis, bool) or not isinstance(self.axis, int):
            raise SpecError(
                f"group_lasso.axis: expected an integer axis, got {_validate.show(self.axis)}"
            )
        _validate.writable_int("group_lasso.axis", self.axis)
        if not isinstance(self.scale_by_size, bool):
            raise SpecError(
                "group_lasso.scale_by_size: expected true or false, got "
                f"{_validate.show(self.scale_by_size)}"
            )

    def check_shape(self, param: str, shape: tuple[int, ...]) -> None:
        if not -len(shape) <= self.axis < len(shape):
            raise SpecError(
                f"group_lasso.axis: axis {self.axis} is out of range for parameter {param!r} "
                f"of shape {tuple(shape)}"
            )


@dataclass(frozen=True, repr=False)
class Orthogonal(Term):
    """Keras 3 ``OrthogonalRegularizer(factor=coef, mode)`` on a 2-D parameter.

    With ``V`` the rows (``mode="rows"``) or columns of ``w``, each divided by ``max(‖v‖, 1e-7)``,
    ``G = V Vᵀ`` and ``s`` the number of rows (columns)::

        coef * 0.5 * Σ_{i≠j} |G_ij| / (s (s-1) / 2)

    i.e. ``coef`` times the mean absolute cosine between distinct rows. ``|·|`` has subgradient 0
    at 0. Needs ``s >= 2``. Only the ``sum`` convention.
    """

    kind: ClassVar[str] = "orthogonal"
    coefficients: ClassVar[tuple[str, ...]] = ("coef",)
    layout_dependent: ClassVar[bool] = True
    coef: float
    mode: str = "rows"

    def __post_init__(self) -> None:
        super().__post_init__()
        _validate.choice("orthogonal.mode", self.mode, ("rows", "columns"))

    def check_shape(self, param: str, shape: tuple[int, ...]) -> None:
        if len(shape) != 2:
            raise SpecError(
                f"orthogonal: parameter {param!r} has shape {tuple(shape)}; needs a 2-D parameter"
            )
        size = shape[0] if self.mode == "rows" else shape[1]
        if size < 2:
            raise SpecError(
                f"orthogonal.mode: parameter {param!r} of shape {tuple(shape)} has {size} "
                f"{self.mode}; needs at least 2"
            )


TERMS: dict[str, type[Term]] = {t.kind: t for t in (L2, L1, ElasticNet, GroupLasso, Orthogonal)}
