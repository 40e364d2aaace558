"""regcore.proximal.split and merged_shrinks: which part of every term is smooth, which is
shrinkage, with sum-form coefficients for every convention; and the split loses no penalty
(smooth penalty + the shrinkage terms' values = the whole plan's penalty)."""

from __future__ import annotations

import numpy as np
import pytest

import regcore
from regcore import (
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
    proximal,
)
from regcore.proximal import GroupShrink, Shrink

PARAMS = [ParamInfo("k", (4, 3), "weight"), ParamInfo("b", (3,), "bias")]
KERNEL, BIAS = Select(name="k"), Select(name="b")
REFERENCE = regcore.load_backend("numpy")


def _plan(*rules: Rule, decay: tuple[DecoupledWeightDecay, ...] = ()):
    return Spec(penalties=rules, weight_decay=decay).resolve(PARAMS)


def _shrink_value(op, w: np.ndarray) -> float:
    """The value of the non-smooth term an operator is the prox of, in sum form."""
    if isinstance(op, Shrink):
        return op.coef * float(np.sum(np.abs(w)))
    groups = np.moveaxis(w, op.axis, 0).reshape(w.shape[op.axis], -1)
    weight = np.sqrt(groups.shape[1]) if op.scale_by_size else 1.0
    return op.coef * weight * float(np.sum(np.linalg.norm(groups, axis=1)))


def _check_value_kept(plan) -> None:
    rng = np.random.default_rng(0)
    params = {p.name: rng.standard_normal(p.shape) for p in PARAMS}
    smooth, ops = proximal.split(plan)
    whole = float(REFERENCE.penalty(plan, params)[0])
    parts = float(REFERENCE.penalty(smooth, params)[0]) + sum(
        _shrink_value(op, params[op.param]) for op in ops)
    assert parts == pytest.approx(whole, rel=1e-14)


@pytest.mark.parametrize("term", [
    L1(0.3, convention="sum"),
    L1(0.3, convention="sklearn_lasso", data_loss="mse"),
    L1(0.3, convention="sklearn_lasso", data_loss="half_mse"),
], ids=lambda t: f"{t.convention}-{t.data_loss}")
def test_l1_becomes_a_shrink_with_its_sum_coefficient(term):
    plan = _plan(Rule(term, KERNEL))
    smooth, ops = proximal.split(plan)
    assert smooth.penalties == ()
    assert ops == (Shrink("k", term.scaled()["coef"]),)
    _check_value_kept(plan)


@pytest.mark.parametrize("term, l1, l2", [
    (ElasticNet(0.3, 0.2, convention="sum"), 0.3, 0.2),
    (ElasticNet(0.3, 0.2, convention="half"), 0.3, 0.1),
    (ElasticNet.from_sklearn(0.5, 0.25, data_loss="mse"), 0.25, 0.375),
    (ElasticNet.from_sklearn(0.5, 0.25, data_loss="half_mse"), 0.125, 0.1875),
], ids=["sum", "half", "sklearn_mse", "sklearn_half_mse"])
def test_elastic_net_splits_into_smooth_l2_and_a_shrink(term, l1, l2):
    """Every convention: the Σw² part joins the smooth plan as a sum-form L2, the Σ|w| part is a
    Shrink; the numbers are the sum form (exact here: the factors are powers of two)."""
    plan = _plan(Rule(term, KERNEL))
    smooth, ops = proximal.split(plan)
    assert [(a.param, a.term) for a in smooth.penalties] == [("k", L2(l2, convention="sum"))]
    assert ops == (Shrink("k", l1),)
    _check_value_kept(plan)


def test_elastic_net_without_l2_part_adds_no_smooth_term():
    smooth, ops = proximal.split(_plan(Rule(ElasticNet(0.3, 0.0, convention="sum"), KERNEL)))
    assert smooth.penalties == () and ops == (Shrink("k", 0.3),)


@pytest.mark.parametrize("axis, scale_by_size", [(0, False), (1, True), (-1, False)])
def test_group_lasso_becomes_a_group_shrink(axis, scale_by_size):
    plan = _plan(Rule(GroupLasso(0.4, convention="sum", axis=axis, scale_by_size=scale_by_size),
                      KERNEL))
    smooth, ops = proximal.split(plan)
    assert smooth.penalties == ()
    assert ops == (GroupShrink("k", 0.4, axis, scale_by_size),)
    _check_value_kept(plan)


def test_smooth_terms_and_decay_are_kept_as_they_are():
    l2, orth = L2(0.02, convention="half"), Orthogonal(0.1, "rows", convention="sum")
    plan = _plan(Rule(l2, KERNEL), Rule(orth, KERNEL), Rule(L1(0.05, convention="sum"), BIAS),
                 decay=(DecoupledWeightDecay(0.1, BIAS),))
    smooth, ops = proximal.split(plan)
    assert [a.term for a in smooth.penalties] == [l2, orth]  # not rewritten, in rule order
    assert smooth.decay == plan.decay == {"b": 0.1}
    assert smooth.params == plan.params
    assert ops == (Shrink("b", 0.05),)
    _check_value_kept(plan)


def test_split_of_a_smooth_plan_has_no_operators():
    plan = _plan(Rule(L2(0.01, convention="sum")))
    smooth, ops = proximal.split(plan)
    assert ops == () and smooth.penalties == plan.penalties


def test_merged_shrinks_sums_the_shrinks_of_one_parameter_and_keeps_groups_after():
    """An l1 rule and an elastic_net rule on one parameter: thresholding by a then by b is
    thresholding by a + b, so one Shrink per parameter; group shrinks follow in order."""
    plan = _plan(Rule(L1(0.25, convention="sum"), KERNEL),
                 Rule(GroupLasso(0.5, convention="sum", axis=1), KERNEL),
                 Rule(ElasticNet(0.125, 0.5, convention="sum"), KERNEL),
                 Rule(L1(0.75, convention="sum"), BIAS))
    _, ops = proximal.split(plan)
    assert ops == (Shrink("k", 0.25), GroupShrink("k", 0.5, 1, False), Shrink("k", 0.125),
                   Shrink("b", 0.75))
    assert proximal.merged_shrinks(ops) == (Shrink("k", 0.375), Shrink("b", 0.75),
                                            GroupShrink("k", 0.5, 1, False))
    _check_value_kept(plan)


def test_soft_threshold_twice_is_soft_threshold_by_the_sum():
    """What merged_shrinks relies on, in the reference's own operator."""
    from regcore_adapters.numpy.proximal import shrink_

    w = np.linspace(-1, 1, 41)
    twice, once = w.copy(), w.copy()
    shrink_(twice, 0.25)
    shrink_(twice, 0.125)
    shrink_(once, 0.375)
    np.testing.assert_array_equal(twice, once)
