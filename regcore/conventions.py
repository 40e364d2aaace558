"""Scaling conventions: how a user's coefficient becomes a penalty value.

Every coefficient in a spec carries a convention. A convention is a rational factor ``k`` (which may
depend on a batch size ``m`` or a sample count ``n``) so that the penalty added to the loss is
``k * coef * base(w)``, where ``base`` is ``Σw²`` for squared-norm coefficients and ``Σ|w|`` for
absolute-value coefficients. The ``sum`` convention has ``k = 1`` and is the canonical form every
backend evaluates.

:data:`CONVENTIONS` is the table of conventions, the one place each is written: its factor on
``Σw²`` and on ``Σ|w|``, the terms that have it, the numbers it needs and who writes a penalty
that way; :func:`table_rows` gives it as rows of text (the README's table is those rows).

The scikit-learn forms are statements about a whole objective for one target (``y`` of shape
``(n,)``), so they need the data loss the penalty is added to: ``data_loss="mse"``
(``mean((y-ŷ)²)``: torch ``MSELoss``, Keras ``"mse"``) or ``"half_mse"`` (``1/(2n)·Σ(y-ŷ)²``: the
linear-regression tutorials', scikit-learn's Lasso). The factors above are for ``mse``; with
``half_mse`` every scikit-learn factor is halved. For the elastic net ``l1 = α·ρ`` and
``l2 = α·(1-ρ)`` (see :meth:`regcore.ElasticNet.from_sklearn`).

Conversions multiply exact rationals and round once, so a factor that is a power of two
(``sum``/``half``/``torch_weight_decay``/the scikit-learn Lasso and ElasticNet forms) converts
bit-for-bit (barring underflow below the normal range), and a factor with ``m`` or ``n`` gives the
correctly rounded float. A result too large for a float, or a nonzero one that would round to
0.0 (silently dropping the penalty), is a :class:`SpecError`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from regcore import _validate
from regcore.errors import SpecError

DATA_LOSSES = ("mse", "half_mse")


@dataclass(frozen=True)
class Convention:
    """A named scaling convention: the extra numbers it needs, a one-line summary for messages,
    and its row of the table (:func:`table_rows`). The factors are for ``data_loss="mse"``."""

    name: str
    needs: tuple[str, ...]
    summary: str
    squared: str
    """The penalty a Σw² coefficient λ stands for (``–``: no term has such a coefficient here)."""
    absolute: str
    """The penalty a Σ|w| coefficient λ stands for (``–`` likewise)."""
    terms: str
    """The terms that have this form: ``all`` or their class names (each term's
    ``conventions`` is the rule; a test keeps the two in agreement)."""
    written_by: str
    """Who writes a penalty this way: the framework, library or formula, as a user knows it."""


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention("sum", (), "coef * Σw² or coef * Σ|w| (Keras L1, L2, L1L2)",
                   "λ·Σw²", "λ·Σ|w|", "all",
                   "Keras L1, L2, L1L2, OrthogonalRegularizer(factor)"),
        Convention("half", (), "coef/2 * Σw² (classic ½λ‖w‖²)",
                   "λ/2·Σw²", "λ·Σ|w|", "L2, ElasticNet",
                   "the classic ½λ‖w‖², glmnet"),
        Convention("torch_weight_decay", (),
                   "coef/2 * Σw²: torch SGD/Adam `weight_decay` (coupled)",
                   "λ/2·Σw²", "–", "L2",
                   "torch SGD/Adam weight_decay=λ (coupled)"),
        Convention("batch_mean", ("batch_size",), "coef/(2m) * Σw² (λ/(2m)Σθ²)",
                   "λ/(2m)·Σw²", "–", "L2",
                   "the textbook batch-mean cost 1/(2m)Σ(h−y)² + λ/(2m)Σθ²"),
        Convention("sklearn_ridge", ("n_samples", "data_loss"), "scikit-learn Ridge(alpha=coef)",
                   "α/n·Σw²", "–", "L2",
                   "scikit-learn Ridge(alpha=α): ‖y−Xw‖² + α‖w‖²"),
        Convention("sklearn_lasso", ("data_loss",), "scikit-learn Lasso(alpha=coef)",
                   "–", "2α·Σ|w|", "L1",
                   "scikit-learn Lasso(alpha=α): ‖y−Xw‖²/(2n) + α‖w‖₁"),
        Convention("sklearn_elasticnet", ("data_loss",),
                   "scikit-learn ElasticNet: l1 = alpha*l1_ratio, l2 = alpha*(1-l1_ratio)",
                   "l2·Σw²", "2·l1·Σ|w|", "ElasticNet",
                   "scikit-learn ElasticNet(α, l1_ratio=ρ): l1 = αρ, l2 = α(1−ρ)"),
    )
}

PARAM_NAMES = ("batch_size", "n_samples", "data_loss")

TABLE_HEADER = ("convention", "Σw² coefficient", "Σ|w| coefficient", "terms",
                "who writes it this way")
"""The columns of :func:`table_rows`."""

_SYMBOLS = {"batch_size": "m", "n_samples": "n"}  # the letters the formulas use for them


def table_rows() -> list[tuple[str, str, str, str, str]]:
    """The table of conventions as text, one row per convention (columns: :data:`TABLE_HEADER`).

    The convention cell names the numbers it needs, as the formulas use them:
    ``batch_mean (batch_size=m)``. The README's table and ``regcore convert``'s "who writes it"
    column are rendered from these rows, so none of them can drift from :data:`CONVENTIONS`.
    """
    rows = []
    for c in CONVENTIONS.values():
        numbers = ", ".join(f"{n}={_SYMBOLS[n]}" if n in _SYMBOLS else n for n in c.needs)
        name = f"{c.name} ({numbers})" if numbers else c.name
        rows.append((name, c.squared, c.absolute, c.terms, c.written_by))
    return rows


def check_params(
    owner: str, convention: str, allowed: tuple[str, ...], params: Mapping[str, object]
) -> dict[str, object]:
    """Validate ``convention`` for a term and the extra numbers it needs; return them cleaned.

    ``allowed`` lists the conventions the term has; a convention outside it is refused with the
    reason (e.g. L1 has no ``torch_weight_decay`` form). Numbers the convention does not use are
    refused too, so a spec never carries a silently ignored batch size.
    """
    field = f"{owner}.convention"
    if not isinstance(convention, str) or convention not in CONVENTIONS:
        raise SpecError(
            f"{field}: unknown convention {_validate.show(convention)}; known: "
            f"{', '.join(CONVENTIONS)}"
        )
    if convention not in allowed:
        raise SpecError(
            f"{field}: {owner} has no {convention!r} form ({CONVENTIONS[convention].summary}); "
            f"{owner} conventions: {', '.join(allowed)}"
        )
    needs = CONVENTIONS[convention].needs
    cleaned: dict[str, object] = {}
    for name in PARAM_NAMES:
        value = params.get(name)
        if name in needs:
            if value is None:
                raise SpecError(f"{owner}.{name}: convention {convention!r} needs {name}")
            if name == "data_loss":
                cleaned[name] = _validate.choice(f"{owner}.{name}", value, DATA_LOSSES)
            else:
                cleaned[name] = _validate.positive_int(f"{owner}.{name}", value)
        elif value is not None:
            raise SpecError(
                f"{owner}.{name}: convention {convention!r} does not use {name} "
                f"(got {_validate.show(value)})"
            )
    return cleaned


def data_loss_factor(data_loss: object) -> Fraction:
    """scikit-learn objectives are written against ½·MSE (Lasso, ElasticNet) or Σr² (Ridge).

    Returns 2 for ``mse`` and 1 for ``half_mse``: the factor that turns a ½·MSE-relative penalty
    into one relative to the stated data loss.
    """
    return Fraction(2) if data_loss == "mse" else Fraction(1)


def exact(value: float) -> Fraction:
    """A float as the exact rational it stores."""
    return Fraction(value)


def rounded(field: str, value: Fraction) -> float:
    """The float nearest to an exact rational (one rounding); too large for a float is an error
    naming ``field``."""
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if math.isinf(result):
        raise SpecError(
            f"{field}: scaled by its convention the coefficient exceeds the largest float "
            f"({sys.float_info.max!r})"
        )
    return result
