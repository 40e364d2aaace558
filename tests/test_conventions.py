"""Scaling conventions: exact conversions to the canonical ``sum`` form and between forms."""

from __future__ import annotations

import math
import re
import sys
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import regcore
from regcore import (
    CONVENTIONS,
    L1,
    L2,
    DecoupledWeightDecay,
    ElasticNet,
    GroupLasso,
    Orthogonal,
    SpecError,
    Term,
    convert,
)

MAX = sys.float_info.max
TINY = 5e-324
MIN_NORMAL = sys.float_info.min
SETTINGS = settings(max_examples=100, deadline=None, database=None)
FEW = settings(max_examples=30, deadline=None, database=None)  # per parametrized case

# coefficients whose double and half are both exact (no overflow, no subnormal rounding)
normal_coefs = st.floats(min_value=2 * MIN_NORMAL, max_value=MAX / 2)
# coefficients whose double is finite (subnormals included)
doublable_coefs = st.floats(min_value=0.0, max_value=MAX / 2)
sizes = st.integers(min_value=1, max_value=10**6)


# -- the table -----------------------------------------------------------------------------------


def _all_term_classes(cls=Term):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_term_classes(sub)


def test_table_covers_every_convention_a_term_declares():
    classes = list(_all_term_classes())
    assert set(regcore.TERMS.values()) <= set(classes)
    for cls in classes:
        assert cls.conventions, cls
        assert set(cls.conventions) <= set(CONVENTIONS), cls
        assert "sum" in cls.conventions, cls  # the canonical form every backend evaluates


def test_table_needs():
    assert {name: c.needs for name, c in CONVENTIONS.items()} == {
        "sum": (),
        "half": (),
        "torch_weight_decay": (),
        "batch_mean": ("batch_size",),
        "sklearn_ridge": ("n_samples", "data_loss"),
        "sklearn_lasso": ("data_loss",),
        "sklearn_elasticnet": ("data_loss",),
    }
    assert all(name == c.name for name, c in CONVENTIONS.items())


def test_table_terms_are_the_terms_that_declare_each_convention():
    """``Convention.terms`` (the table's "terms" column) says what the terms' own
    ``conventions`` say: a form added to a term without its table row fails here."""
    for name, c in CONVENTIONS.items():
        having = [cls.__name__ for cls in regcore.TERMS.values() if name in cls.conventions]
        assert having, name
        assert c.terms == ("all" if len(having) == len(regcore.TERMS) else ", ".join(having)), name


def test_table_rows_one_per_convention_every_cell_filled():
    from regcore.conventions import TABLE_HEADER, table_rows

    rows = table_rows()
    assert [row[0].split()[0] for row in rows] == list(CONVENTIONS)
    assert all(len(row) == len(TABLE_HEADER) and all(row) for row in rows)
    assert rows[3][0] == "batch_mean (batch_size=m)"
    assert rows[4][0] == "sklearn_ridge (n_samples=n, data_loss)"


# -- exact values ----------------------------------------------------------------------------------


def test_sum_to_weight_decay_doubles():
    term = L2(0.01, convention="sum")
    assert convert(term, "torch_weight_decay").coef == 0.02
    assert convert(term, "half").coef == 0.02
    assert convert(term, "torch_weight_decay") == L2(0.02, convention="torch_weight_decay")
    assert convert(L2(0.02, convention="half"), "sum") == term


def test_half_and_weight_decay_scaled():
    assert L2(0.02, convention="half").scaled() == {"coef": 0.01}
    assert L2(0.02, convention="torch_weight_decay").scaled() == {"coef": 0.01}
    assert L2(0.02, convention="sum").scaled() == {"coef": 0.02}


@pytest.mark.parametrize(("lam", "m"), [(0.1, 3), (0.01, 7), (1e-3, 48), (0.7, 1), (1.0, 1000),
                                        (1e-300, 999_983), (1e300, 3)])
def test_batch_mean_to_sum_is_correctly_rounded(lam, m):
    term = L2(lam, convention="batch_mean", batch_size=m)
    want = float(Fraction(lam) / (2 * m))
    assert convert(term, "sum").coef == want
    assert convert(term, "sum") == L2(want, convention="sum")
    assert term.scaled() == {"coef": want}
    assert term.canonical() == L2(want, convention="sum")


@pytest.mark.parametrize(("alpha", "n"), [(1.0, 100), (0.3, 7), (2.5, 1), (1e-5, 60_000)])
def test_sklearn_ridge(alpha, n):
    mse = L2(alpha, convention="sklearn_ridge", n_samples=n, data_loss="mse")
    half = L2(alpha, convention="sklearn_ridge", n_samples=n, data_loss="half_mse")
    assert mse.scaled() == {"coef": float(Fraction(alpha) / n)}
    assert half.scaled() == {"coef": float(Fraction(alpha) / (2 * n))}
    assert convert(mse, "sum").coef == float(Fraction(alpha) / n)


@pytest.mark.parametrize(("lam", "m"), [(0.1, 3), (0.01, 32), (5.0, 1), (1e-4, 12_345)])
def test_sklearn_ridge_half_mse_is_batch_mean(lam, m):
    ridge = L2(lam, convention="sklearn_ridge", n_samples=m, data_loss="half_mse")
    seeds = L2(lam, convention="batch_mean", batch_size=m)
    assert ridge.scaled() == seeds.scaled()
    assert convert(seeds, "sklearn_ridge", n_samples=m, data_loss="half_mse") == ridge
    assert convert(ridge, "batch_mean", batch_size=m) == seeds


@pytest.mark.parametrize(("loss", "factor"), [("mse", 2), ("half_mse", 1)])
@pytest.mark.parametrize("alpha", [0.1, 1 / 3, 1e-3, 7.0])
def test_sklearn_lasso(loss, factor, alpha):
    term = L1(alpha, convention="sklearn_lasso", data_loss=loss)
    assert term.scaled() == {"coef": alpha * factor}
    assert convert(term, "sum") == L1(alpha * factor, convention="sum")
    assert convert(L1(alpha * factor, convention="sum"), "sklearn_lasso", data_loss=loss) == term


@pytest.mark.parametrize(
    ("alpha", "ratio", "loss", "scaled"),
    [
        (0.1, 0.5, "mse", {"l1": 0.1, "l2": 0.05}),
        (0.1, 0.5, "half_mse", {"l1": 0.05, "l2": 0.025}),
        (1.0, 0.25, "mse", {"l1": 0.5, "l2": 0.75}),
        (1.0, 0.25, "half_mse", {"l1": 0.25, "l2": 0.375}),
        (2.0, 1.0, "mse", {"l1": 4.0, "l2": 0.0}),
        (2.0, 0.0, "half_mse", {"l1": 0.0, "l2": 1.0}),
    ],
)
def test_elastic_net_from_sklearn_exact(alpha, ratio, loss, scaled):
    term = ElasticNet.from_sklearn(alpha, ratio, data_loss=loss)
    assert term.convention == "sklearn_elasticnet" and term.data_loss == loss
    assert term.scaled() == scaled


@pytest.mark.parametrize("loss", ["mse", "half_mse"])
@pytest.mark.parametrize(("alpha", "ratio"), [(0.1, 0.3), (1 / 3, 0.7), (0.05, 0.15)])
def test_elastic_net_from_sklearn_rounds_once(alpha, ratio, loss):
    term = ElasticNet.from_sklearn(alpha, ratio, data_loss=loss)
    l1 = float(Fraction(alpha) * Fraction(ratio))
    l2 = float(Fraction(alpha) * (1 - Fraction(ratio)))
    assert (term.l1, term.l2) == (l1, l2)
    k = 2 if loss == "mse" else 1
    assert term.scaled() == {"l1": l1 * k, "l2": l2 * k / 2}


def test_elastic_net_half_and_sum():
    assert ElasticNet(0.1, 0.3, convention="sum").scaled() == {"l1": 0.1, "l2": 0.3}
    assert ElasticNet(0.1, 0.3, convention="half").scaled() == {"l1": 0.1, "l2": 0.15}
    assert convert(ElasticNet(0.1, 0.3, convention="sum"), "half") == ElasticNet(
        0.1, 0.6, convention="half")


def test_convert_keeps_non_coefficient_fields():
    gl = GroupLasso(0.1, convention="sum", axis=1, scale_by_size=True)
    assert convert(gl, "sum") == gl
    orth = Orthogonal(0.1, convention="sum", mode="columns")
    assert convert(orth, "sum") == orth


def test_convert_clears_numbers_of_the_old_convention():
    term = convert(L2(0.1, convention="batch_mean", batch_size=4), "half")
    assert (term.batch_size, term.n_samples, term.data_loss) == (None, None, None)
    assert term.coef == float(Fraction(0.1) / 4)


# -- preservation --------------------------------------------------------------------------------

POWER_OF_TWO = [
    (lambda c: L2(c, convention="sum"), "half", {}),
    (lambda c: L2(c, convention="sum"), "torch_weight_decay", {}),
    (lambda c: L2(c, convention="half"), "sum", {}),
    (lambda c: L2(c, convention="torch_weight_decay"), "half", {}),
    (lambda c: L1(c, convention="sum"), "sklearn_lasso", {"data_loss": "mse"}),
    (lambda c: L1(c, convention="sklearn_lasso", data_loss="mse"), "sum", {}),
    (lambda c: L1(c, convention="sklearn_lasso", data_loss="half_mse"), "sklearn_lasso",
     {"data_loss": "mse"}),
    (lambda c: ElasticNet(c, c, convention="sum"), "half", {}),
    (lambda c: ElasticNet(c, c, convention="sum"), "sklearn_elasticnet", {"data_loss": "mse"}),
    (lambda c: ElasticNet(c, c, convention="half"), "sklearn_elasticnet",
     {"data_loss": "half_mse"}),
]


POWER_OF_TWO_IDS = [
    "l2:sum->half", "l2:sum->torch_weight_decay", "l2:half->sum", "l2:torch_weight_decay->half",
    "l1:sum->lasso_mse", "l1:lasso_mse->sum", "l1:lasso_half_mse->lasso_mse", "en:sum->half",
    "en:sum->sklearn_mse", "en:half->sklearn_half_mse",
]


@pytest.mark.parametrize(("make", "to", "params"), POWER_OF_TWO, ids=POWER_OF_TWO_IDS)
@FEW
@given(c=normal_coefs)
@example(c=2 * MIN_NORMAL)
@example(c=MAX / 2)
@example(c=0.1)
def test_power_of_two_conversion_preserves_scaled_exactly(make, to, params, c):
    term = make(c)
    other = convert(term, to, **params)
    assert other.scaled() == term.scaled()
    assert convert(other, term.convention, **_numbers(term)) == term


def _numbers(term):
    return {k: v for k in ("batch_size", "n_samples", "data_loss")
            if (v := getattr(term, k)) is not None}


@SETTINGS
@given(c=doublable_coefs)
@example(c=TINY)
@example(c=3 * 2.0**-1074)
@example(c=MIN_NORMAL)
@example(c=MAX / 2)
@example(c=0.0)
def test_sum_half_sum_round_trip_is_bit_identical(c):
    term = L2(c, convention="sum")
    half = convert(term, "half")
    assert half.coef == 2 * c
    back = convert(half, "sum")
    assert back == term
    assert math.copysign(1.0, back.coef) == 1.0 and back.coef.hex() == c.hex()


@SETTINGS
@given(c=st.floats(min_value=1e-300, max_value=1e300), m=sizes)
@example(c=0.1, m=3)
@example(c=1.0, m=10**6)
def test_batch_mean_conversion_within_one_ulp(c, m):
    term = L2(c, convention="sum")
    seeds = convert(term, "batch_mean", batch_size=m)
    assert seeds.coef == float(Fraction(c) * 2 * m)
    assert abs(seeds.scaled()["coef"] - c) <= math.ulp(c)
    # converting to sum rounds once, exactly as scaled() does
    assert convert(seeds, "sum").coef == seeds.scaled()["coef"]


@pytest.mark.parametrize("loss", ["mse", "half_mse"])
@FEW
@given(c=st.floats(min_value=1e-300, max_value=1e300), n=sizes)
def test_sklearn_ridge_conversion_within_one_ulp(loss, c, n):
    ridge = convert(L2(c, convention="sum"), "sklearn_ridge", n_samples=n, data_loss=loss)
    k = n if loss == "mse" else 2 * n
    assert ridge.coef == float(Fraction(c) * k)
    assert abs(ridge.scaled()["coef"] - c) <= math.ulp(c)


@SETTINGS
@given(lam=st.floats(min_value=1e-300, max_value=1e300), m=sizes, n=sizes)
def test_batch_mean_to_sklearn_ridge_within_one_ulp(lam, m, n):
    seeds = L2(lam, convention="batch_mean", batch_size=m)
    ridge = convert(seeds, "sklearn_ridge", n_samples=n, data_loss="half_mse")
    assert ridge.coef == float(Fraction(lam) * n / m)
    want = seeds.scaled()["coef"]
    assert abs(ridge.scaled()["coef"] - want) <= math.ulp(want)


@pytest.mark.parametrize(
    ("make", "to", "params", "field"),
    [
        (lambda: L2(MAX, convention="sum"), "half", {}, "l2.coef"),
        (lambda: L1(MAX, convention="sklearn_lasso", data_loss="mse"), "sum", {}, "l1.coef"),
        (lambda: L2(1e300, convention="sum"), "batch_mean", {"batch_size": 10**9}, "l2.coef"),
        (lambda: ElasticNet(0.1, MAX, convention="sum"), "half", {}, "elastic_net.l2"),
    ],
    ids=["l2:sum->half", "l1:lasso_mse->sum", "l2:sum->batch_mean", "en:sum->half"],
)
def test_conversion_that_overflows_is_a_spec_error(make, to, params, field):
    # the converted coefficient is not a finite float: refused as bad input, like inf itself
    with pytest.raises(SpecError, match=re.escape(field)):
        convert(make(), to, **params)


def test_scaled_that_overflows_is_a_spec_error():
    # the sum form of Lasso(alpha=MAX) against mse is 2*MAX: not a float
    with pytest.raises(SpecError, match=r"l1\.coef"):
        L1(MAX, convention="sklearn_lasso", data_loss="mse").scaled()


# -- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "to", "params", "reason"),
    [
        (L1(0.1, convention="sum"), "torch_weight_decay", {}, "weight_decay"),
        (L1(0.1, convention="sum"), "half", {}, "½λ‖w‖²"),
        (L1(0.1, convention="sum"), "batch_mean", {"batch_size": 8}, "λ/(2m)"),
        (L2(0.1, convention="sum"), "sklearn_lasso", {"data_loss": "mse"}, "Lasso"),
        (L2(0.1, convention="sum"), "sklearn_elasticnet", {"data_loss": "mse"}, "ElasticNet"),
        (GroupLasso(0.1, convention="sum"), "half", {}, "½λ‖w‖²"),
        (Orthogonal(0.1, convention="sum"), "half", {}, "½λ‖w‖²"),
        (ElasticNet(0.1, 0.1, convention="sum"), "torch_weight_decay", {}, "weight_decay"),
    ],
)
def test_convert_refuses_a_form_the_term_lacks(term, to, params, reason):
    pattern = (rf"^{term.kind}\.convention: {term.kind} has no '{to}' form \(.*"
               rf"{re.escape(reason)}.*\); {term.kind} conventions: "
               rf"{', '.join(type(term).conventions)}$")
    with pytest.raises(SpecError, match=pattern):
        convert(term, to, **params)


@pytest.mark.parametrize("to", ["Sum", "weight_decay", "", None])
def test_convert_to_unknown_convention(to):
    with pytest.raises(SpecError, match=r"^l2\.convention: unknown convention"):
        convert(L2(0.1, convention="sum"), to)


def test_convert_checks_the_target_numbers():
    with pytest.raises(SpecError, match=r"^l2\.batch_size: convention 'batch_mean' needs"):
        convert(L2(0.1, convention="sum"), "batch_mean")
    with pytest.raises(SpecError, match=r"^l2\.batch_size: must be > 0, got 0$"):
        convert(L2(0.1, convention="sum"), "batch_mean", batch_size=0)
    with pytest.raises(SpecError, match=r"^l2\.batch_size: convention 'half' does not use"):
        convert(L2(0.1, convention="sum"), "half", batch_size=4)


@pytest.mark.parametrize(
    "thing",
    [0.1, None, "l2", {"kind": "l2", "coef": 0.1}, DecoupledWeightDecay(0.1), L2],
    ids=repr,
)
def test_convert_of_a_non_term(thing):
    with pytest.raises(SpecError, match=r"^convert: expected a penalty term, got "):
        convert(thing, "sum")
