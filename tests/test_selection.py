"""Selections and Spec.resolve: which parameters get which term, and the ambiguous cases."""

from __future__ import annotations

import re

import numpy as np
import pytest

from regcore import (
    DEFAULT_SELECT,
    L1,
    L2,
    ROLES,
    Assignment,
    DecoupledWeightDecay,
    GroupLasso,
    ModelSpec,
    Orthogonal,
    ParamInfo,
    Plan,
    Rule,
    Select,
    Spec,
    SpecError,
)

PARAMS = (
    ParamInfo("embed.table", (100, 16), "embedding"),
    ParamInfo("dense_0.kernel", (16, 8), "weight"),
    ParamInfo("dense_0.bias", (8,), "bias"),
    ParamInfo("norm.scale", (8,), "norm_scale"),
    ParamInfo("norm.bias", (8,), "bias"),
    ParamInfo("conv.kernel", (3, 3, 8, 4), "weight"),
    ParamInfo("head.kernel", (4, 2), "weight"),
    ParamInfo("head.temperature", (), "other"),
)


def names(select: Select) -> list[str]:
    return [p.name for p in PARAMS if select.matches(p)]


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        (Select(), [p.name for p in PARAMS]),
        (Select(roles=("bias",)), ["dense_0.bias", "norm.bias"]),
        (Select(roles=["weight", "embedding"]),
         ["embed.table", "dense_0.kernel", "conv.kernel", "head.kernel"]),
        (Select(name="bias"), []),
        (Select(name="dense_0"), []),
        (Select(name=r".*\.bias"), ["dense_0.bias", "norm.bias"]),
        (Select(name=r"dense_0\..*"), ["dense_0.kernel", "dense_0.bias"]),
        (Select(name="norm.scale"), ["norm.scale"]),
        (Select(name="kernel|bias"), []),
        (Select(name=r".*(kernel|table)"),
         ["embed.table", "dense_0.kernel", "conv.kernel", "head.kernel"]),
        (Select(ndim=(1,)), ["dense_0.bias", "norm.scale", "norm.bias"]),
        (Select(ndim=[0, 4]), ["conv.kernel", "head.temperature"]),
        (Select(min_ndim=2), ["embed.table", "dense_0.kernel", "conv.kernel", "head.kernel"]),
        (Select(min_ndim=3), ["conv.kernel"]),
        (Select(min_ndim=0), [p.name for p in PARAMS]),
        (Select(roles=("weight",), ndim=(2,)), ["dense_0.kernel", "head.kernel"]),
        (Select(roles=("weight",), name=r"head\..*"), ["head.kernel"]),
        (Select(roles=("bias",), name=r"norm\..*"), ["norm.bias"]),
        (Select(name=r".*kernel", min_ndim=3), ["conv.kernel"]),
        (Select(roles=("weight",), ndim=(1,)), []),
        (Select(roles=("weight", "embedding"), name=r".*\.(kernel|table)", ndim=(2,),
                min_ndim=2),
         ["embed.table", "dense_0.kernel", "head.kernel"]),
    ],
    ids=lambda x: x.describe() if isinstance(x, Select) else None,
)
def test_select_matches(select, expected):
    assert names(select) == expected


def test_select_normalizes_lists_to_tuples():
    assert Select(roles=["bias"], ndim=[1, 2]) == Select(roles=("bias",), ndim=(1, 2))


def test_default_select_is_weight_role_only():
    assert DEFAULT_SELECT == Select(roles=("weight",))
    assert names(DEFAULT_SELECT) == ["dense_0.kernel", "conv.kernel", "head.kernel"]
    for role in ("bias", "norm_scale", "embedding", "other"):
        assert not DEFAULT_SELECT.matches(ParamInfo("x", (4, 4), role))
    assert DEFAULT_SELECT.matches(ParamInfo("x", (4,), "weight"))
    assert Rule(L2(0.1, convention="sum")).select == DEFAULT_SELECT
    assert DecoupledWeightDecay(0.1).select == DEFAULT_SELECT


def test_describe():
    assert Select().describe() == "Select()"
    assert (Select(roles=("weight",), name="a.*", ndim=(2,), min_ndim=1).describe()
            == "Select(roles=('weight',), name='a.*', ndim=(2,), min_ndim=1)")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"roles": ()}, r"^select\.roles: an empty list selects nothing"),
        ({"roles": "weight"}, r"^select\.roles: expected a list, got 'weight'$"),
        ({"roles": ("kernel",)}, r"^select\.roles: expected one of .*, got 'kernel'$"),
        ({"name": "("}, r"^select\.name: invalid regular expression '\('"),
        ({"name": 3}, r"^select\.name: expected a regular expression, got 3$"),
        ({"ndim": ()}, r"^select\.ndim: an empty list selects nothing"),
        ({"ndim": 2}, r"^select\.ndim: expected a list, got 2$"),
        ({"ndim": (2, -1)}, r"^select\.ndim: expected a non-negative integer, got -1$"),
        ({"ndim": (2.0,)}, r"^select\.ndim: expected a non-negative integer, got 2\.0$"),
        ({"min_ndim": True}, r"^select\.min_ndim: expected a non-negative integer, got True$"),
        ({"min_ndim": -1}, r"^select\.min_ndim: expected a non-negative integer, got -1$"),
    ],
)
def test_select_rejects(kwargs, pattern):
    with pytest.raises(SpecError, match=pattern):
        Select(**kwargs)


# -- ParamInfo -------------------------------------------------------------------------------------


def test_param_info():
    p = ParamInfo("a.b", [3, 4], "weight")
    assert p.shape == (3, 4) and p.ndim == 2
    assert ParamInfo("s", (), "other").ndim == 0
    q = ParamInfo("c", (np.int64(3), np.int32(2)), "weight")  # framework/NumPy integer dims
    assert q.shape == (3, 2) and all(type(d) is int for d in q.shape)


@pytest.mark.parametrize("role", ["kernel", "Weight", "", None])
def test_param_info_unknown_role(role):
    pattern = (rf"^param 'w'\.role: expected one of {re.escape(', '.join(map(repr, ROLES)))}, "
               rf"got {re.escape(repr(role))}$")
    with pytest.raises(SpecError, match=pattern):
        ParamInfo("w", (2, 2), role)


@pytest.mark.parametrize("name", ["", None, 3])
def test_param_info_bad_name(name):
    with pytest.raises(SpecError, match=r"^param\.name: expected a non-empty string"):
        ParamInfo(name, (2, 2), "weight")


@pytest.mark.parametrize("shape", [(2.5, 3), ("a", 3), (None, 3), None], ids=repr)
def test_param_info_bad_shape(shape):
    # a shape is a tuple of ints; anything else is bad input (SpecError), never silently truncated
    with pytest.raises(SpecError, match=r"shape"):
        ParamInfo("w", shape, "weight")


# -- Spec.resolve ----------------------------------------------------------------------------------


def test_resolve_default_rule():
    term = L2(0.1, convention="sum")
    plan = Spec(penalties=[Rule(term)]).resolve(PARAMS)
    assert isinstance(plan, Plan)
    assert plan.params == PARAMS
    assert plan.penalties == (
        Assignment("dense_0.kernel", term, 0),
        Assignment("conv.kernel", term, 0),
        Assignment("head.kernel", term, 0),
    )
    assert plan.decay == {}
    assert plan.terms_for("dense_0.bias") == ()
    assert plan.terms_for("head.kernel") == (term,)


def test_resolve_accepts_any_iterable():
    plan = Spec(penalties=[Rule(L2(0.1, convention="sum"))]).resolve(iter(PARAMS))
    assert plan.params == PARAMS


def test_rule_selecting_nothing_lists_selection_and_parameters():
    spec = Spec(penalties=[
        Rule(L2(0.1, convention="sum")),
        Rule(L1(0.1, convention="sum"), Select(roles=("bias",), name=r"head\..*")),
    ])
    with pytest.raises(SpecError) as info:
        spec.resolve(PARAMS)
    message = str(info.value)
    assert message.startswith(
        "penalties[1]: Select(roles=('bias',), name='head\\\\..*') selects no parameter; "
        "available: ")
    for p in PARAMS:
        assert f"{p.name} ({p.role}, ndim {p.ndim})" in message


def test_rule_selecting_nothing_with_no_parameters():
    with pytest.raises(SpecError, match=r"^penalties\[0\]: Select\(roles=\('weight',\)\) "
                                        r"selects no parameter; available: none$"):
        Spec(penalties=[Rule(L2(0.1, convention="sum"))]).resolve([])


def test_default_rule_on_a_model_without_weights():
    params = [ParamInfo("norm.scale", (4,), "norm_scale"), ParamInfo("b", (4,), "bias")]
    with pytest.raises(SpecError, match=r"available: norm\.scale \(norm_scale, ndim 1\), "
                                        r"b \(bias, ndim 1\)$"):
        Spec(penalties=[Rule(L2(0.1, convention="sum"))]).resolve(params)


def test_same_kind_twice_on_one_parameter():
    spec = Spec(penalties=[
        Rule(L2(0.1, convention="sum"), Select(name=r"dense_0\..*")),
        Rule(L1(0.1, convention="sum")),
        Rule(L2(0.2, convention="half"), Select(min_ndim=2)),
    ])
    pattern = (r"^penalties\[2\]: parameter 'dense_0\.kernel' already gets a l2 term from "
               r"penalties\[0\]; narrow one selection or merge the rules$")
    with pytest.raises(SpecError, match=pattern):
        spec.resolve(PARAMS)


def test_same_kind_same_coefficients_is_still_ambiguous():
    term = L2(0.1, convention="sum")
    with pytest.raises(SpecError, match=r"penalties\[1\].*penalties\[0\]"):
        Spec(penalties=[Rule(term), Rule(term, Select(name=".*kernel"))]).resolve(PARAMS)


def test_different_kinds_on_one_parameter_add_up():
    l2 = L2(0.1, convention="sum")
    orth = Orthogonal(0.01, convention="sum")
    gl = GroupLasso(0.05, convention="sum", axis=1)
    spec = Spec(penalties=[
        Rule(l2),
        Rule(orth, Select(ndim=(2,), roles=("weight",))),
        Rule(gl, Select(name=r"head\.kernel")),
    ])
    plan = spec.resolve(PARAMS)
    assert plan.terms_for("head.kernel") == (l2, orth, gl)
    assert plan.terms_for("dense_0.kernel") == (l2, orth)
    assert plan.terms_for("conv.kernel") == (l2,)
    assert [(a.param, a.rule) for a in plan.penalties] == [
        ("dense_0.kernel", 0), ("conv.kernel", 0), ("head.kernel", 0),
        ("dense_0.kernel", 1), ("head.kernel", 1), ("head.kernel", 2),
    ]


def test_decay_lands_only_on_selected_parameters():
    spec = Spec(weight_decay=[
        DecoupledWeightDecay(0.01),
        DecoupledWeightDecay(1e-3, Select(roles=("embedding",))),
    ])
    plan = spec.resolve(PARAMS)
    assert plan.penalties == ()
    assert plan.decay == {"dense_0.kernel": 0.01, "conv.kernel": 0.01, "head.kernel": 0.01,
                          "embed.table": 1e-3}


def test_two_decay_items_on_one_parameter():
    spec = Spec(weight_decay=[
        DecoupledWeightDecay(0.01, Select(min_ndim=2)),
        DecoupledWeightDecay(0.02, Select(name=r"head\..*")),
    ])
    pattern = (r"^weight_decay\[1\]: parameter 'head\.kernel' is already decayed by "
               r"weight_decay\[0\]$")
    with pytest.raises(SpecError, match=pattern):
        spec.resolve(PARAMS)


def test_decay_selecting_nothing():
    spec = Spec(weight_decay=[DecoupledWeightDecay(0.01, Select(name="nope"))])
    with pytest.raises(SpecError, match=r"^weight_decay\[0\]: Select\(name='nope'\) selects no "
                                        r"parameter; available: embed\.table"):
        spec.resolve(PARAMS)


def test_penalty_and_decay_together():
    spec = Spec(penalties=[Rule(L1(0.1, convention="sum"), Select(roles=("bias",)))],
                weight_decay=[DecoupledWeightDecay(0.01, Select(roles=("bias",)))])
    plan = spec.resolve(PARAMS)
    assert [a.param for a in plan.penalties] == ["dense_0.bias", "norm.bias"]
    assert plan.decay == {"dense_0.bias": 0.01, "norm.bias": 0.01}


def test_decoupled_weight_decay_is_not_a_rule_term():
    with pytest.raises(SpecError, match=r"^rule\.term: DecoupledWeightDecay is an optimizer "
                                        r"rule, not a loss term; put it in Spec\(weight_decay"):
        Rule(DecoupledWeightDecay(0.01))


def test_decoupled_weight_decay_is_not_a_penalty():
    with pytest.raises(SpecError, match=r"^spec\.penalties\[1\]: DecoupledWeightDecay is an "
                                        r"optimizer rule, not a loss term"):
        Spec(penalties=[Rule(L2(0.1, convention="sum")), DecoupledWeightDecay(0.01)])


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"penalties": [L2(0.1, convention="sum")]}, r"^spec\.penalties\[0\]: expected a Rule"),
        ({"penalties": Rule(L2(0.1, convention="sum"))}, r"^spec\.penalties: expected a list"),
        ({"penalties": "l2"}, r"^spec\.penalties: expected a list, got 'l2'$"),
        ({"weight_decay": [0.01]}, r"^spec\.weight_decay\[0\]: expected a DecoupledWeightDecay"),
        ({"weight_decay": [Rule(L2(0.1, convention="sum"))]},
         r"^spec\.weight_decay\[0\]: expected a DecoupledWeightDecay"),
        ({"weight_decay": DecoupledWeightDecay(0.1)}, r"^spec\.weight_decay: expected a list"),
    ],
)
def test_spec_rejects(kwargs, pattern):
    with pytest.raises(SpecError, match=pattern):
        Spec(**kwargs)


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: Rule(0.1), r"^rule\.term: expected a penalty term, got 0\.1$"),
        (lambda: Rule(L2(0.1, convention="sum"), {"roles": ["weight"]}),
         r"^rule\.select: expected a Select"),
        (lambda: DecoupledWeightDecay(0.1, "weight"), r"^weight_decay\.select: expected a Select"),
    ],
)
def test_rule_and_decay_reject_non_objects(make, pattern):
    with pytest.raises(SpecError, match=pattern):
        make()


def test_duplicate_parameter_names():
    params = [*PARAMS, ParamInfo("norm.bias", (8,), "bias"), ParamInfo("head.kernel", (4, 2),
                                                                        "weight")]
    with pytest.raises(SpecError, match=r"^params: duplicate parameter names "
                                        r"\['head\.kernel', 'norm\.bias'\]$"):
        Spec(penalties=[Rule(L2(0.1, convention="sum"))]).resolve(params)
    with pytest.raises(SpecError, match=r"duplicate parameter names"):
        Spec().resolve(params)


def test_empty_spec_resolves_to_empty_plan():
    assert Spec().resolve(PARAMS) == Plan(PARAMS, (), {})


# -- Spec.resolve takes ParamInfo only -----------------------------------------------------------


@pytest.mark.parametrize("params", [None, 5, 2.5, "dense_0.kernel", b"w",
                                    L2(0.1, convention="sum")], ids=repr)
def test_resolve_rejects_a_non_iterable(params):
    pattern = (r"^params: expected an iterable of regcore\.ParamInfo, got "
               rf"{re.escape(repr(params))}$")
    with pytest.raises(SpecError, match=pattern):
        Spec(penalties=[Rule(L2(0.1, convention="sum"))]).resolve(params)


@pytest.mark.parametrize(
    ("item", "type_name"),
    [
        (("w", (2, 2), "weight"), "tuple"),
        ({"name": "w", "shape": (2, 2), "role": "weight"}, "dict"),
        ("dense_0.kernel", "str"),
        (None, "NoneType"),
        (np.zeros((2, 2)), "ndarray"),
    ],
    ids=["tuple", "dict", "str", "None", "array"],
)
def test_resolve_rejects_an_item_that_is_not_a_param_info(item, type_name):
    params = [PARAMS[0], PARAMS[1], item]
    pattern = rf"^params\[2\]: expected a regcore\.ParamInfo, got {type_name} "
    with pytest.raises(SpecError, match=pattern):
        Spec(penalties=[Rule(L2(0.1, convention="sum"))]).resolve(params)
    with pytest.raises(SpecError, match=pattern):
        Spec().resolve(iter(params))  # checked even when no rule would look at it


def test_resolve_rejects_a_dict_of_params():
    # iterating a dict gives its keys: names, not ParamInfo
    with pytest.raises(SpecError, match=r"^params\[0\]: expected a regcore\.ParamInfo, got str "
                                        r"'embed\.table'$"):
        Spec().resolve({p.name: p for p in PARAMS})


# -- ModelSpec -----------------------------------------------------------------------------------


def test_model_spec_params():
    model = ModelSpec([4, np.int64(3)], None, "mse")
    assert model.sizes == (4, 3) and all(type(s) is int for s in model.sizes)
    assert model.params() == (ParamInfo("dense_0.kernel", (4, 3), "weight"),
                              ParamInfo("dense_0.bias", (3,), "bias"))
    assert Spec(penalties=[Rule(L2(0.1, convention="sum"))]).resolve(model.params()).penalties \
        == (Assignment("dense_0.kernel", L2(0.1, convention="sum"), 0),)


@pytest.mark.parametrize("sizes", [5, None, 4.0, "43", b"43", {4, 3}, {4: 3}, iter((4, 3))],
                         ids=["int", "None", "float", "str", "bytes", "set", "dict", "iterator"])
def test_model_spec_sizes_not_a_sequence(sizes):
    pattern = r"^model\.sizes: expected a list of layer sizes, got "
    with pytest.raises(SpecError, match=pattern):
        ModelSpec(sizes, None, "mse")


@pytest.mark.parametrize(
    ("sizes", "index", "value"),
    [((4, 3.0), 1, "3.0"), ([4, "3"], 1, "'3'"), ((None, 3), 0, "None"), ((4, True), 1, "True"),
     ((4, 0, 3), 1, "0"), ((4, -3), 1, "-3"), ((4, 2.5, 3), 1, "2.5")],
    ids=repr,
)
def test_model_spec_sizes_not_positive_ints(sizes, index, value):
    pattern = rf"^model\.sizes\[{index}\]: .*{re.escape(value)}$"
    with pytest.raises(SpecError, match=pattern):
        ModelSpec(sizes, "tanh" if len(sizes) > 2 else None, "mse")


@pytest.mark.parametrize("sizes", [(), (4,), []])
def test_model_spec_needs_two_sizes(sizes):
    with pytest.raises(SpecError, match=r"^model\.sizes: need at least input and output sizes"):
        ModelSpec(sizes, None, "mse")


def test_a_parameter_with_no_canonical_layout_refuses_layout_dependent_terms():
    """torch's fused in_proj_weight, a Keras EinsumDense kernel (E, heads, head_dim): group
    lasso and orthogonal would mean other rows in another framework, so they are refused with
    the reason; elementwise terms are fine, and so is a tied owner's reason."""
    fused = ParamInfo("attn.in_proj_weight", (8, 24), "weight", noncanonical="fused q/k/v")
    plain = ParamInfo("dense.kernel", (8, 8), "weight")
    for term in (GroupLasso(0.1, axis=0, convention="sum"),
                 Orthogonal(0.1, mode="rows", convention="sum")):
        with pytest.raises(SpecError, match=r"'attn\.in_proj_weight' \(8, 24\): the parameter "
                                            r"has no canonical .* \(fused q/k/v\)"):
            Spec([Rule(term, Select())]).resolve([fused, plain])
        assert Spec([Rule(term, Select())]).resolve([plain]).penalties
    plan = Spec([Rule(L2(0.1, convention="sum"), Select())]).resolve([fused, plain])
    assert {a.param for a in plan.penalties} == {"attn.in_proj_weight", "dense.kernel"}
    tied = ParamInfo("head.weight", (8, 8), "weight",
                     aliases=(ParamInfo("q.weight", (8, 8), "weight", noncanonical="x"),))
    with pytest.raises(SpecError, match=r"'q\.weight' \(8, 8\): .* \(x\)"):
        Spec([Rule(GroupLasso(0.1, axis=0, convention="sum"), Select())]).resolve([tied])
    with pytest.raises(SpecError, match="noncanonical: expected a string"):
        ParamInfo("w", (2, 2), "weight", noncanonical=None)
