"""Scaling conventions: how a user's coefficient becomes a penalty value.

Every coefficient in a spec carries a convention. A convention is a rational factor ``k`` (which may
depend on a batch size ``m`` or a sample count ``n``) so that the penalty added to the loss is
``k * coef * base(w)``, where ``base`` is ``Σw²`` for squared-norm coefficients and ``Σ|w|`` for
absolute-value coefficients. The ``sum`` convention has ``k = 1`` and is the canonical form every
backend evaluates.

======================  ====================  =================  ===========================
convention              Σw² coefficient λ     Σ|w| coefficient   who writes it this way
======================  ====================  =================  ===========================
``sum``                 λ·Σw²                 λ·Σ|w|             Keras ``L1``/``L2``/``L1L2``
``half``                λ/2·Σw²               λ·Σ|w| (EN only)   classic ½λ‖w‖², glmnet
``torch_weight_decay``  λ/2·Σw² (L2 only)     –                  torch SGD ``weight_decay``
``batch_mean``          λ/(2m)·Σw² (L2 only)  –                  the seeds' ``λ/(2m)Σθ²``
``sklearn_ridge``       α/n·Σw² (mse)         –                  ``Ridge(alpha)``
``sklearn_lasso``       –                     2α·Σ|w| (mse)      ``Lasso(alpha)``
``sklearn_elasticnet``  l2·Σw² (mse)          2·l1·Σ|w| (mse)    ``ElasticNet(alpha, ρ)``
======================  ====================  =================  ===========================

The scikit-learn forms are statements about a whole objective for one target (``y`` of shape
``(n,)``), so they need the data loss the penalty is added to: ``data_loss="mse"``
(``mean((y-ŷ)²)``: torch ``MSELoss``, Keras ``"mse"``) or ``"half_mse"`` (``1/(2n)·Σ(y-ŷ)²``: the
seeds, scikit-learn's Lasso). The factors above are for ``mse``; with ``half_mse`` every
scikit-learn factor is halved. For the elastic net ``l1 = α·ρ`` and
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
    """A named scaling convention and the extra numbers it needs."""

    name: str
    needs: tuple[str, ...]
    summary: str


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention("sum", (), "coef * Σw² or coef * Σ|w| (Keras L1, L2, L1L2)"),
        Convention("half", (), "coef/2 * Σw² (classic ½λ‖w‖²)"),
        Convention(
            "torch_weight_decay", (), "coef/2 * Σw²: torch SGD/Adam `weight_decay` (coupled)"
        ),
        Convention("batch_mean", ("batch_size",), "coef/(2m) * Σw² (λ/(2m)Σθ²)"),
        Convention(
            "sklearn_ridge", ("n_samples", "data_loss"), "scikit-learn Ridge(alpha=coef)"
        ),
        Convention("sklearn_lasso", ("data_loss",), "scikit-learn Lasso(alpha=coef)"),
        Convention(
            "sklearn_elasticnet",
            ("data_loss",),
            "scikit-learn ElasticNet: l1 = alpha*l1_ratio, l2 = alpha*(1-l1_ratio)",
        ),
    )
}

PARAM_NAMES = ("batch_size", "n_samples", "data_loss")


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
