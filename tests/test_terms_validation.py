"""Validation of penalty terms and decoupled weight decay: every bad argument is a SpecError."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

import regcore
from regcore import (
    CONVENTIONS,
    L1,
    L2,
    DecoupledWeightDecay,
    ElasticNet,
    GroupLasso,
    Orthogonal,
    ParamInfo,
    Rule,
    Select,
    Spec,
    SpecError,
)

# field named in the message -> builds the object with ``value`` in that field
COEFFICIENT_FIELDS = {
    "l2.coef": lambda v: L2(v, convention="sum"),
    "l1.coef": lambda v: L1(v, convention="sum"),
    "elastic_net.l1": lambda v: ElasticNet(v, 0.1, convention="sum"),
    "elastic_net.l2": lambda v: ElasticNet(0.1, v, convention="sum"),
    "group_lasso.coef": lambda v: GroupLasso(v, convention="sum"),
    "orthogonal.coef": lambda v: Orthogonal(v, convention="sum"),
    "weight_decay.rate": lambda v: DecoupledWeightDecay(v),
    "elastic_net.alpha": lambda v: ElasticNet.from_sklearn(v, 0.5, data_loss="mse"),
}

BAD_COEFFICIENTS = [-1e-3, -1, float("nan"), float("inf"), float("-inf"), True, False, "0.1",
                    None]

# one valid instance per term class (the coefficients are irrelevant here)
MAKE = {
    L2: lambda **kw: L2(0.1, **kw),
    L1: lambda **kw: L1(0.1, **kw),
    ElasticNet: lambda **kw: ElasticNet(0.1, 0.2, **kw),
    GroupLasso: lambda **kw: GroupLasso(0.1, **kw),
    Orthogonal: lambda **kw: Orthogonal(0.1, **kw),
}


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)
    with pytest.raises(ValueError):
        L2(-1.0, convention="sum")


@pytest.mark.parametrize("field", COEFFICIENT_FIELDS)
@pytest.mark.parametrize("value", BAD_COEFFICIENTS, ids=repr)
def test_bad_coefficient_names_field_and_value(field, value):
    with pytest.raises(SpecError, match=rf"^{re.escape(field)}: .*{re.escape(repr(value))}$"):
        COEFFICIENT_FIELDS[field](value)


@pytest.mark.parametrize("field", COEFFICIENT_FIELDS)
def test_good_coefficients_are_stored_as_float(field):
    for value in (0, 0.0, 3, 2.5, 5e-324, 1.7976931348623157e308):
        if field == "elastic_net.alpha" and value == 5e-324:
            continue  # alpha * 0.5 rounds to 0.0: refused, see test_from_sklearn_underflow
        obj = COEFFICIENT_FIELDS[field](value)
        if field != "elastic_net.alpha":
            stored = getattr(obj, field.split(".")[1])
            assert type(stored) is float and stored == value


@pytest.mark.parametrize("ratio", [-0.1, 1.0000000000000002, 1.5, float("nan"), float("inf"),
                                   True, "0.5", None], ids=repr)
def test_from_sklearn_l1_ratio_outside_unit_interval(ratio):
    with pytest.raises(SpecError, match=rf"^elastic_net\.l1_ratio: .*{re.escape(repr(ratio))}$"):
        ElasticNet.from_sklearn(0.1, ratio, data_loss="mse")


@pytest.mark.parametrize("ratio", [0, 0.0, 0.25, 1, 1.0])
def test_from_sklearn_l1_ratio_bounds_are_inclusive(ratio):
    term = ElasticNet.from_sklearn(0.5, ratio, data_loss="half_mse")
    assert (term.l1, term.l2) == (0.5 * ratio, 0.5 * (1 - ratio))


def test_from_sklearn_bad_data_loss():
    with pytest.raises(SpecError, match=r"elastic_net\.data_loss: .*'mae'"):
        ElasticNet.from_sklearn(0.1, 0.5, data_loss="mae")


# -- conventions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", MAKE)
@pytest.mark.parametrize("convention", ["Sum", "l2", "", "weight_decay", None, 1])
def test_unknown_convention(cls, convention):
    pattern = (rf"^{cls.kind}\.convention: unknown convention {re.escape(repr(convention))}; "
               rf"known: {re.escape(', '.join(CONVENTIONS))}$")
    with pytest.raises(SpecError, match=pattern):
        MAKE[cls](convention=convention)


@pytest.mark.parametrize(
    ("cls", "convention"),
    [(cls, c) for cls in MAKE for c in CONVENTIONS if c not in cls.conventions],
    ids=lambda x: getattr(x, "kind", x),
)
def test_convention_the_term_does_not_have(cls, convention):
    allowed = ", ".join(cls.conventions)
    pattern = (rf"^{cls.kind}\.convention: {cls.kind} has no {re.escape(repr(convention))} form "
               rf".*; {cls.kind} conventions: {re.escape(allowed)}$")
    with pytest.raises(SpecError, match=pattern):
        MAKE[cls](convention=convention)


def test_l1_has_no_half_or_weight_decay_form():
    for convention in ("half", "torch_weight_decay", "batch_mean"):
        with pytest.raises(SpecError, match=r"l1 conventions: sum, sklearn_lasso$"):
            L1(0.1, convention=convention)


@pytest.mark.parametrize(
    ("make", "missing"),
    [
        (lambda: L2(0.1, convention="batch_mean"), "batch_size"),
        (lambda: L2(0.1, convention="sklearn_ridge", data_loss="mse"), "n_samples"),
        (lambda: L2(0.1, convention="sklearn_ridge", n_samples=10), "data_loss"),
        (lambda: L1(0.1, convention="sklearn_lasso"), "data_loss"),
        (lambda: ElasticNet(0.1, 0.1, convention="sklearn_elasticnet"), "data_loss"),
    ],
)
def test_convention_missing_its_number(make, missing):
    with pytest.raises(SpecError, match=rf"\.{missing}: convention '\w+' needs {missing}$"):
        make()


@pytest.mark.parametrize(
    ("make", "unused", "convention"),
    [
        (lambda: L2(0.1, convention="sum", batch_size=32), "batch_size", "sum"),
        (lambda: L2(0.1, convention="half", n_samples=10), "n_samples", "half"),
        (lambda: L2(0.1, convention="torch_weight_decay", data_loss="mse"), "data_loss",
         "torch_weight_decay"),
        (lambda: L2(0.1, convention="batch_mean", batch_size=8, n_samples=8), "n_samples",
         "batch_mean"),
        (lambda: L2(0.1, convention="sklearn_ridge", n_samples=8, data_loss="mse", batch_size=8),
         "batch_size", "sklearn_ridge"),
        (lambda: L1(0.1, convention="sklearn_lasso", data_loss="mse", n_samples=8), "n_samples",
         "sklearn_lasso"),
        (lambda: GroupLasso(0.1, convention="sum", data_loss="mse"), "data_loss", "sum"),
        (lambda: Orthogonal(0.1, convention="sum", batch_size=1), "batch_size", "sum"),
    ],
)
def test_number_the_convention_does_not_use(make, unused, convention):
    pattern = rf"\.{unused}: convention '{convention}' does not use {unused} \(got .+\)$"
    with pytest.raises(SpecError, match=pattern):
        make()


@pytest.mark.parametrize("size", [0, -1, -32, 32.0, 2.5, True, "32"], ids=repr)
def test_bad_batch_size(size):
    with pytest.raises(SpecError, match=rf"^l2\.batch_size: .*{re.escape(repr(size))}$"):
        L2(0.1, convention="batch_mean", batch_size=size)


@pytest.mark.parametrize("n", [0, -5, 100.0, False, "100"], ids=repr)
def test_bad_n_samples(n):
    with pytest.raises(SpecError, match=rf"^l2\.n_samples: .*{re.escape(repr(n))}$"):
        L2(0.1, convention="sklearn_ridge", n_samples=n, data_loss="mse")


@pytest.mark.parametrize("loss", ["MSE", "mae", "sum", 2, True])
def test_bad_data_loss(loss):
    pattern = rf"^l1\.data_loss: expected one of 'mse', 'half_mse', got {re.escape(repr(loss))}$"
    with pytest.raises(SpecError, match=pattern):
        L1(0.1, convention="sklearn_lasso", data_loss=loss)


def test_valid_numbers_are_kept():
    term = L2(0.1, convention="batch_mean", batch_size=32)
    assert (term.batch_size, term.n_samples, term.data_loss) == (32, None, None)
    term = L2(0.1, convention="sklearn_ridge", n_samples=7, data_loss="half_mse")
    assert (term.batch_size, term.n_samples, term.data_loss) == (None, 7, "half_mse")


# -- shapes: group lasso ---------------------------------------------------------------------------


def _resolve(term, shape, name="dense.kernel"):
    return Spec(penalties=[Rule(term, Select())]).resolve([ParamInfo(name, shape, "weight")])


@pytest.mark.parametrize("axis", [1.0, "0", None, True, [0]], ids=repr)
def test_group_lasso_axis_must_be_an_int(axis):
    pattern = rf"^group_lasso\.axis: expected an integer axis, got {re.escape(repr(axis))}$"
    with pytest.raises(SpecError, match=pattern):
        GroupLasso(0.1, convention="sum", axis=axis)


@pytest.mark.parametrize("flag", [1, 0, "yes", None])
def test_group_lasso_scale_by_size_must_be_bool(flag):
    with pytest.raises(SpecError, match=r"^group_lasso\.scale_by_size: "):
        GroupLasso(0.1, convention="sum", scale_by_size=flag)


@pytest.mark.parametrize(("shape", "axis"), [((4,), 1), ((4,), -2), ((3, 4), 2), ((3, 4), -3),
                                             ((), 0), ((2, 3, 4), 3)])
def test_group_lasso_axis_out_of_range(shape, axis):
    pattern = (rf"^group_lasso\.axis: axis {axis} is out of range for parameter 'dense\.kernel' "
               rf"of shape {re.escape(repr(shape))}$")
    with pytest.raises(SpecError, match=pattern):
        _resolve(GroupLasso(0.1, convention="sum", axis=axis), shape)


@pytest.mark.parametrize(("shape", "axis"), [((4,), 0), ((4,), -1), ((3, 4), 1), ((3, 4), -2),
                                             ((2, 3, 4), 2)])
def test_group_lasso_axis_in_range(shape, axis):
    term = GroupLasso(0.1, convention="sum", axis=axis)
    assert _resolve(term, shape).terms_for("dense.kernel") == (term,)


# -- shapes: orthogonal --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (4,), (2, 2, 2), (3, 3, 1, 1)])
def test_orthogonal_needs_a_2d_parameter(shape):
    pattern = (rf"^orthogonal: parameter 'dense\.kernel' has shape {re.escape(repr(shape))}; "
               "needs a 2-D parameter$")
    with pytest.raises(SpecError, match=pattern):
        _resolve(Orthogonal(0.1, convention="sum"), shape)


@pytest.mark.parametrize(("mode", "shape", "size"), [("rows", (1, 5), 1), ("rows", (0, 5), 0),
                                                     ("columns", (5, 1), 1)])
def test_orthogonal_needs_two_rows_or_columns(mode, shape, size):
    pattern = (rf"^orthogonal\.mode: parameter 'dense\.kernel' of shape {re.escape(repr(shape))} "
               rf"has {size} {mode}; needs at least 2$")
    with pytest.raises(SpecError, match=pattern):
        _resolve(Orthogonal(0.1, convention="sum", mode=mode), shape)


@pytest.mark.parametrize(("mode", "shape"), [("rows", (2, 1)), ("columns", (1, 2)),
                                             ("rows", (5, 3))])
def test_orthogonal_accepts_two_or_more(mode, shape):
    term = Orthogonal(0.1, convention="sum", mode=mode)
    assert _resolve(term, shape).terms_for("dense.kernel") == (term,)


@pytest.mark.parametrize("mode", ["row", "cols", "Rows", "", None, 0])
def test_orthogonal_mode(mode):
    pattern = rf"^orthogonal\.mode: expected one of 'rows', 'columns', got {re.escape(repr(mode))}$"
    with pytest.raises(SpecError, match=pattern):
        Orthogonal(0.1, convention="sum", mode=mode)


def test_terms_registry_lists_every_term_by_kind():
    assert regcore.TERMS == {c.kind: c for c in MAKE}


# -- numbers beyond the float range: SpecError, never OverflowError or a silent 0.0 ----------------

SMALLEST = 5e-324


@pytest.mark.parametrize("field", COEFFICIENT_FIELDS)
@pytest.mark.parametrize("value", [10**400, 10**5000, Fraction(10**400, 3)], ids=["1e400",
                                                                                   "1e5000",
                                                                                   "fraction"])
def test_coefficient_beyond_the_largest_float(field, value):
    # float(10**400) raises OverflowError; 10**5000 is past Python's int-to-str digit limit too
    with pytest.raises(SpecError, match=rf"^{re.escape(field)}: exceeds the largest float "
                                        rf"\(1\.7976931348623157e\+308\), got "):
        COEFFICIENT_FIELDS[field](value)


def test_huge_integer_is_named_by_its_size():
    with pytest.raises(SpecError, match=r"^l2\.coef: exceeds the largest float .*, got an "
                                        r"integer of about 1e400$"):
        L2(10**400, convention="sum")
    with pytest.raises(SpecError, match=r"^l2\.coef: must be >= 0, got an integer of about "
                                        r"-1e400$"):
        L2(-(10**400), convention="sum")


@pytest.mark.parametrize("field", COEFFICIENT_FIELDS)
def test_nonzero_coefficient_that_rounds_to_zero(field):
    # Fraction(1, 10**400) is a valid non-negative real, but float() of it is 0.0: refused
    with pytest.raises(SpecError, match=rf"^{re.escape(field)}: nonzero but below the smallest "
                                        rf"float \(5e-324\), so it would round to 0\.0, got "):
        COEFFICIENT_FIELDS[field](Fraction(1, 10**400))
    with pytest.raises(SpecError, match=rf"^{re.escape(field)}: must be >= 0"):
        COEFFICIENT_FIELDS[field](Fraction(-1, 10**400))


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: L2(SMALLEST, convention="half"), "l2.coef"),
        (lambda: L2(SMALLEST, convention="torch_weight_decay"), "l2.coef"),
        (lambda: L2(1, convention="batch_mean", batch_size=10**400), "l2.coef"),
        (lambda: L2(1e-300, convention="batch_mean", batch_size=10**30), "l2.coef"),
        (lambda: L2(1, convention="sklearn_ridge", n_samples=10**400, data_loss="mse"),
         "l2.coef"),
        (lambda: ElasticNet(0.1, SMALLEST, convention="half"), "elastic_net.l2"),
        (lambda: ElasticNet(0.1, SMALLEST, convention="sklearn_elasticnet",
                            data_loss="half_mse"), "elastic_net.l2"),
    ],
    ids=["half", "torch_weight_decay", "batch_mean 1e400", "batch_mean 1e30", "sklearn_ridge",
         "en half", "en sklearn half_mse"],
)
def test_sum_form_that_rounds_to_zero_is_refused(make, field):
    # the penalty would silently vanish: refused when the term is built, naming the coefficient
    pattern = (rf"^{re.escape(field)}: .* in the '\w+' convention.*, scaled to the sum form, is "
               r"nonzero but below the smallest float \(5e-324\); it would round to 0\.0 and "
               r"drop the penalty$")
    with pytest.raises(SpecError, match=pattern):
        make()


def test_sum_form_that_rounds_to_zero_names_the_numbers():
    with pytest.raises(SpecError, match=r"^l2\.coef: 1\.0 in the 'batch_mean' convention with "
                                        r"batch_size=an integer of about 1e400, scaled"):
        L2(1, convention="batch_mean", batch_size=10**400)


def test_subnormal_sum_forms_and_zero_are_kept():
    assert L2(2 * SMALLEST, convention="half").scaled() == {"coef": SMALLEST}
    assert L2(3 * SMALLEST, convention="half").scaled() == {"coef": 2 * SMALLEST}  # ties to even
    assert L2(SMALLEST, convention="sum").scaled() == {"coef": SMALLEST}
    term = L2(0, convention="batch_mean", batch_size=10**400)  # zero is zero at any batch size
    assert term.scaled() == {"coef": 0.0} and term.batch_size == 10**400
    big = L2(1e300, convention="batch_mean", batch_size=10**400)  # exact rationals: no overflow
    assert big.scaled() == {"coef": float(Fraction(1e300) / (2 * 10**400))}


@pytest.mark.parametrize("size", [10**400, 10**5000], ids=["1e400", "1e5000"])
def test_huge_batch_size_never_overflows(size):
    # batch sizes stay exact ints; a nonzero coefficient then underflows: SpecError, not
    # OverflowError, and the message does not trip over the int-to-str digit limit
    with pytest.raises(SpecError, match=r"^l2\.coef: .*batch_size=an integer of about 1e"):
        L2(0.1, convention="batch_mean", batch_size=size)
    with pytest.raises(SpecError, match=r"^l2\.batch_size: must be > 0, got an integer of about "
                                        r"-1e"):
        L2(0.1, convention="batch_mean", batch_size=-size)
    with pytest.raises(SpecError, match=r"^l2\.coef: .*exceeds the largest float"):
        regcore.convert(L2(0.1, convention="sum"), "batch_mean", batch_size=size)


@pytest.mark.parametrize(
    ("make", "to", "params", "field"),
    [
        (lambda: L1(SMALLEST, convention="sum"), "sklearn_lasso", {"data_loss": "mse"},
         "l1.coef"),
        (lambda: ElasticNet(SMALLEST, 0.1, convention="sum"), "sklearn_elasticnet",
         {"data_loss": "mse"}, "elastic_net.l1"),
        (lambda: L1(SMALLEST, convention="sklearn_lasso", data_loss="half_mse"),
         "sklearn_lasso", {"data_loss": "mse"}, "l1.coef"),
    ],
    ids=["l1:sum->lasso_mse", "en:sum->sklearn_mse", "l1:lasso_half_mse->lasso_mse"],
)
def test_conversion_that_rounds_to_zero_is_refused(make, to, params, field):
    term = make()
    assert term.scaled()[field.split(".")[1]] == SMALLEST
    pattern = (rf"^{re.escape(field)}: 5e-324 converted from '\w+' to '{to}' with "
               r"data_loss='mse' is nonzero but below the smallest float \(5e-324\); it would "
               r"round to 0\.0 and drop the penalty$")
    with pytest.raises(SpecError, match=pattern):
        regcore.convert(term, to, **params)


@pytest.mark.parametrize(("ratio", "field"), [(0.5, "elastic_net.l1"), (0.3, "elastic_net.l1"),
                                              (0.7, "elastic_net.l2")])
def test_from_sklearn_underflow(ratio, field):
    # ElasticNet(alpha=5e-324, l1_ratio=0.5) would have l1 = l2 = 0.0: no penalty at all
    with pytest.raises(SpecError, match=rf"^{re.escape(field)}: alpha 5e-324 times .*l1_ratio "
                                        rf"{ratio}\)? is nonzero but below the smallest float"):
        ElasticNet.from_sklearn(SMALLEST, ratio, data_loss="mse")
    term = ElasticNet.from_sklearn(2 * SMALLEST, 0.5, data_loss="mse")
    assert (term.l1, term.l2) == (SMALLEST, SMALLEST)
