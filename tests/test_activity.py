"""Activity penalties in the spec (regcore.activity): what an item may hold, how it resolves
against a model's layer names, how it serializes, and that nothing drops it silently (proximal
split keeps it, exporters refuse it)."""

from __future__ import annotations

import pytest

from regcore import (
    L1,
    L2,
    Activity,
    ElasticNet,
    GroupLasso,
    ModelSpec,
    Orthogonal,
    Rule,
    Spec,
    SpecError,
    from_json,
    proximal,
    to_json,
)
from regcore.export_support import check_spec

MLP = ModelSpec((3, 4, 4, 2), "tanh", "mse")


def test_an_activity_item_resolves_to_the_layers_it_names():
    spec = Spec(penalties=(Rule(L1(0.1, convention="sum")),),
                activity=(Activity(L2(0.01, convention="sum"), "dense_[01]"),
                          Activity(L1(0.02, convention="sum"), "dense_2", "sum")))
    plan = spec.resolve(MLP.params(), MLP.layer_names())
    assert [(a.layer, a.term.kind, a.reduction, a.rule) for a in plan.activity] == [
        ("dense_0", "l2", "batch_mean", 0), ("dense_1", "l2", "batch_mean", 0),
        ("dense_2", "l1", "sum", 1)]
    assert len(plan.penalties) == 3  # the parameter rules resolve as before


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Activity(GroupLasso(0.1, convention="sum"), "dense_0"), "elementwise term"),
    (lambda: Activity(Orthogonal(0.1, convention="sum"), "dense_0"), "elementwise term"),
    (lambda: Activity(L2(0.1, convention="half"), "dense_0"), "'sum' convention"),
    (lambda: Activity(L2(0.1, convention="sum"), "dense_0", "mean"), "activity.reduction"),
    (lambda: Activity(L2(0.1, convention="sum"), "dense_("), "invalid regular expression"),
    (lambda: Activity(L2(0.1, convention="sum"), ""), "activity.layers"),
    (lambda: Spec(activity=(L2(0.1, convention="sum"),)), "expected a regcore.Activity"),
])
def test_an_item_regcore_cannot_mean_is_a_spec_error(make, message):
    with pytest.raises(SpecError, match=message):
        make()


def test_resolving_needs_layer_names_that_the_items_name():
    spec = Spec(activity=(Activity(L2(0.01, convention="sum"), "conv_.*"),))
    with pytest.raises(SpecError, match="resolve the spec with the model's layer names"):
        spec.resolve(MLP.params())
    with pytest.raises(SpecError, match=r"activity\[0\]: layers='conv_\.\*' names no layer; "
                                        "available: dense_0, dense_1, dense_2"):
        spec.resolve(MLP.params(), MLP.layer_names())
    twice = Spec(activity=(Activity(L2(0.01, convention="sum"), "dense_0"),
                           Activity(L2(0.02, convention="sum"), "dense_.*")))
    with pytest.raises(SpecError, match="already gets a l2 activity term from activity"):
        twice.resolve(MLP.params(), MLP.layer_names())


def test_activity_round_trips_through_json_and_stays_out_of_specs_without_it():
    spec = Spec(activity=(Activity(ElasticNet(0.01, 0.02, convention="sum"), "dense_0", "sum"),))
    assert from_json(to_json(spec)) == spec
    assert "activity" not in to_json(Spec())
    with pytest.raises(SpecError, match=r"activity\[0\]\.reduction"):
        from_json(to_json(spec).replace('"sum"}]', '"mean"}]'))


def test_the_proximal_split_keeps_the_activity_terms():
    spec = Spec(penalties=(Rule(L1(0.1, convention="sum")),),
                activity=(Activity(L2(0.01, convention="sum"), "dense_0"),))
    plan = spec.resolve(MLP.params(), MLP.layer_names())
    smooth, ops = proximal.split(plan)
    assert smooth.activity == plan.activity and ops


def test_exporters_refuse_activity_instead_of_dropping_it():
    spec = Spec(activity=(Activity(L2(0.01, convention="sum"), "dense_0"),))
    with pytest.raises(SpecError, match="not exported"):
        check_spec(spec)


def test_inplace_penalty_refuses_a_plan_with_activity():
    from regcore_adapters.numpy.native import InPlacePenalty

    plan = Spec(activity=(Activity(L2(0.01, convention="sum"), "dense_0"),)).resolve(
        MLP.params(), MLP.layer_names())
    with pytest.raises(SpecError, match=r"InPlacePenalty \(parameter and gradient dicts\) cannot"):
        InPlacePenalty(plan)
