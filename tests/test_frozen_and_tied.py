"""Frozen and shared (tied) parameters in the spec itself, without a framework: a frozen parameter
is selected only by ``include_frozen=True``; a tied one is selected the same way under every owner,
or the spec is refused, whichever owner a framework lists first."""

from __future__ import annotations

import itertools

import pytest

from regcore import (
    L2,
    DecoupledWeightDecay,
    GroupLasso,
    Orthogonal,
    ParamInfo,
    Rule,
    Select,
    Spec,
    SpecError,
    from_json,
    to_json,
)

KERNEL = ParamInfo("dense.kernel", (4, 3), "weight")
FROZEN = ParamInfo("frozen.kernel", (4, 3), "weight", trainable=False)
BIAS = ParamInfo("dense.bias", (3,), "bias")


def _tied(first: ParamInfo, second: ParamInfo) -> ParamInfo:
    """What an adapter reports for one tensor owned by ``first`` and ``second``, in that order."""
    return ParamInfo(first.name, first.shape, first.role, aliases=(second,))


EMB = ParamInfo("emb.weight", (10, 4), "embedding")
HEAD = ParamInfo("head.weight", (4, 10), "weight")  # the same tensor, a Linear's canonical view
HEAD_SAME = ParamInfo("head.weight", (10, 4), "embedding")  # an owner that agrees on everything


@pytest.mark.parametrize("select", [Select(), Select(roles=["weight"]), Select(name=".*kernel")])
def test_frozen_parameters_are_not_selected(select):
    plan = Spec([Rule(L2(0.1, convention="sum"), select)],
                [DecoupledWeightDecay(0.01, select)]).resolve([KERNEL, FROZEN, BIAS])
    assert "frozen.kernel" not in {a.param for a in plan.penalties} | set(plan.decay)
    assert "dense.kernel" in {a.param for a in plan.penalties}


def test_include_frozen_selects_them_when_asked():
    select = Select(roles=["weight"], include_frozen=True)
    plan = Spec([Rule(L2(0.1, convention="sum"), select)],
                [DecoupledWeightDecay(0.01, select)]).resolve([KERNEL, FROZEN, BIAS])
    assert [a.param for a in plan.penalties] == ["dense.kernel", "frozen.kernel"]
    assert set(plan.decay) == {"dense.kernel", "frozen.kernel"}


def test_a_rule_that_only_frozen_parameters_match_says_so():
    with pytest.raises(SpecError, match=r"selects no parameter \(frozen parameters are selected "
                                        r"only with include_frozen=True\).*frozen\.kernel "
                                        r"\(weight, ndim 2, frozen\)"):
        Spec([Rule(L2(0.1, convention="sum"), Select(name="frozen.*"))]).resolve([KERNEL, FROZEN])


def test_include_frozen_round_trips_and_stays_out_of_json_when_false():
    spec = Spec([Rule(L2(0.1, convention="sum"), Select(include_frozen=True)),
                 Rule(GroupLasso(0.1, convention="sum"))])
    assert from_json(to_json(spec)) == spec
    assert to_json(spec).count("include_frozen") == 1


@pytest.mark.parametrize("value", [1, "yes", None])
def test_include_frozen_must_be_a_bool(value):
    with pytest.raises(SpecError, match="select.include_frozen: expected true or false"):
        Select(include_frozen=value)


@pytest.mark.parametrize("value", [1, "no"])
def test_trainable_must_be_a_bool(value):
    with pytest.raises(SpecError, match="trainable: expected True or False"):
        ParamInfo("w", (2,), "weight", trainable=value)


@pytest.mark.parametrize("first,second", [(EMB, HEAD), (HEAD, EMB)])
def test_tied_parameter_selected_by_one_owner_only_is_refused_in_either_order(first, second):
    spec = Spec([Rule(L2(0.1, convention="sum"))])  # the default selection: role weight
    with pytest.raises(SpecError, match=r"penalties\[0\]: .*shared parameter .* as 'head\.weight' "
                                        r"\(weight\) but not as 'emb\.weight' \(embedding\)"):
        spec.resolve([_tied(first, second)])


@pytest.mark.parametrize("first,second", [(EMB, HEAD), (HEAD, EMB)])
def test_the_hint_in_the_refusal_works(first, second):
    """The error's two patterns, used as it says, give a spec that resolves the same in either
    order, with the tied tensor counted once."""
    names = r"emb\.weight|head\.weight"
    for a, b in ((first, second), (second, first)):
        spec = Spec([Rule(L2(0.1, convention="sum"), Select(roles=["weight"],
                                                             name=rf"(?!({names})$).*")),
                     Rule(L2(0.2, convention="sum"), Select(name=names))])
        plan = spec.resolve([_tied(a, b), KERNEL])
        assert [(x.param, x.term.coef) for x in plan.penalties] == [("dense.kernel", 0.1),
                                                                     (a.name, 0.2)]


@pytest.mark.parametrize("term", [GroupLasso(0.1, convention="sum"),
                                  Orthogonal(0.1, convention="sum")])
@pytest.mark.parametrize("first,second", [(EMB, HEAD), (HEAD, EMB)])
def test_layout_dependent_term_on_a_tensor_seen_in_two_layouts_is_refused(term, first, second):
    with pytest.raises(SpecError, match=f"{term.kind} on the shared parameter .* is ambiguous"):
        Spec([Rule(term, Select(name=r"emb\.weight|head\.weight"))]).resolve(
            [_tied(first, second)])


@pytest.mark.parametrize("term", [L2(0.1, convention="sum"), GroupLasso(0.1, convention="sum")])
def test_owners_that_agree_give_one_assignment_in_either_order(term):
    plans = [Spec([Rule(term, Select(roles=["embedding"]))]).resolve([_tied(a, b)])
             for a, b in itertools.permutations((EMB, HEAD_SAME))]
    assert [[(x.term, x.param in ("emb.weight", "head.weight")) for x in p.penalties]
            for p in plans] == [[(term, True)]] * 2
