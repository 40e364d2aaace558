"""Specs to and from dicts and JSON: exact round trips, strict rejections naming the path."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regcore import (
    CONVENTIONS,
    DEFAULT_SELECT,
    L1,
    L2,
    SCHEMA_VERSION,
    DecoupledWeightDecay,
    ElasticNet,
    GroupLasso,
    Orthogonal,
    Rule,
    Select,
    Spec,
    SpecError,
    from_dict,
    from_json,
    to_dict,
    to_json,
)

HARD_FLOATS = [0.0, 0.1, 1 / 3, 2 / 3, 5e-324, 1.7976931348623157e308, 2**-1074 * 3,
               2.2250738585072014e-308, 2.225073858507201e-308, 1e23, 9007199254740993.0,
               0.30000000000000004, 123456789.12345679, 1e-7]


def full_spec() -> Spec:
    """Every term kind, every convention, every select criterion, weight decay."""
    terms = [
        L2(0.01, convention="sum"),
        L2(0.02, convention="half"),
        L2(0.03, convention="torch_weight_decay"),
        L2(0.1, convention="batch_mean", batch_size=32),
        L2(1.0, convention="sklearn_ridge", n_samples=100, data_loss="mse"),
        L2(1.0, convention="sklearn_ridge", n_samples=7, data_loss="half_mse"),
        L1(1e-4, convention="sum"),
        L1(0.5, convention="sklearn_lasso", data_loss="half_mse"),
        ElasticNet(0.01, 0.02, convention="sum"),
        ElasticNet(0.01, 0.02, convention="half"),
        ElasticNet.from_sklearn(0.1, 0.3, data_loss="mse"),
        GroupLasso(0.05, convention="sum", axis=1, scale_by_size=True),
        GroupLasso(0.05, convention="sum"),
        Orthogonal(0.01, convention="sum", mode="columns"),
        Orthogonal(0.01, convention="sum"),
    ]
    selects = [
        DEFAULT_SELECT,
        Select(),
        Select(roles=("weight", "embedding")),
        Select(name=r"encoder\.layers\.\d+\.attn\..*"),
        Select(ndim=(2, 4)),
        Select(min_ndim=2),
        Select(roles=("weight",), name=r".*kernel", ndim=(2,), min_ndim=2),
    ]
    rules = [Rule(t, selects[i % len(selects)]) for i, t in enumerate(terms)]
    decay = [DecoupledWeightDecay(0.01),
             DecoupledWeightDecay(1e-3, Select(roles=("norm_scale", "bias"), min_ndim=1))]
    return Spec(penalties=rules, weight_decay=decay)


def test_full_spec_uses_every_kind_and_convention():
    spec = full_spec()
    assert {r.term.kind for r in spec.penalties} == {"l2", "l1", "elastic_net", "group_lasso",
                                                     "orthogonal"}
    assert {r.term.convention for r in spec.penalties} == set(CONVENTIONS)


def test_dict_round_trip():
    spec = full_spec()
    data = to_dict(spec)
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert from_dict(data) == spec
    assert to_dict(from_dict(data)) == data
    assert from_dict(copy.deepcopy(data)) == spec


def test_json_round_trip():
    spec = full_spec()
    text = to_json(spec)
    assert from_json(text) == spec
    assert from_json(text.encode()) == spec
    assert json.loads(text) == to_dict(spec)
    assert from_json(to_json(spec, indent=2, sort_keys=True)) == spec


def test_to_dict_shape():
    spec = Spec(penalties=[Rule(L2(0.01, convention="batch_mean", batch_size=8))],
                weight_decay=[DecoupledWeightDecay(0.5, Select(name="w", ndim=(2,)))])
    assert to_dict(spec) == {
        "schema_version": 1,
        "penalties": [{"term": {"kind": "l2", "convention": "batch_mean", "batch_size": 8,
                                "coef": 0.01},
                       "select": {"roles": ["weight"]}}],
        "weight_decay": [{"rate": 0.5, "select": {"name": "w", "ndim": [2]}}],
    }


def _float_spec(values) -> Spec:
    values = list(values)
    rules = []
    for i, v in enumerate(values):
        kind = i % 3
        if kind == 0:
            term = L2(v, convention="sum")
        elif kind == 1:
            term = ElasticNet(v, values[-1 - i], convention="half")
        else:
            term = GroupLasso(v, convention="sum")
        rules.append(Rule(term, Select(name=f"p{i}")))
    decay = [DecoupledWeightDecay(v, Select(name=f"p{i}")) for i, v in enumerate(values)]
    return Spec(penalties=rules, weight_decay=decay)


def _coefficients(spec: Spec) -> list[float]:
    out = []
    for rule in spec.penalties:
        out.extend(getattr(rule.term, name) for name in rule.term.coefficients)
    out.extend(d.rate for d in spec.weight_decay)
    return out


def test_json_round_trip_hard_floats():
    spec = _float_spec(HARD_FLOATS)
    back = from_json(to_json(spec))
    assert back == spec
    assert [x.hex() for x in _coefficients(back)] == [x.hex() for x in _coefficients(spec)]


def test_json_round_trip_random_bit_patterns():
    rng = np.random.default_rng(20240601)
    bits = rng.integers(0, 0x7FF0_0000_0000_0000, size=300, dtype=np.uint64)  # finite, >= 0
    values = [float(x) for x in bits.view(np.float64)]
    values += [float(x) for x in rng.random(100)]
    values += [float(x) for x in rng.lognormal(0.0, 50.0, size=100)]
    values = [v for v in values if np.isfinite(v)]
    spec = _float_spec(values)
    back = from_json(to_json(spec))
    assert back == spec
    assert [x.hex() for x in _coefficients(back)] == [x.hex() for x in _coefficients(spec)]


@settings(max_examples=150, deadline=None, database=None)
@given(st.floats(min_value=0.0, allow_nan=False, allow_infinity=False))
def test_json_round_trip_any_coefficient(value):
    spec = Spec(penalties=[Rule(L1(value, convention="sum"))],
                weight_decay=[DecoupledWeightDecay(value)])
    back = from_json(to_json(spec))
    assert back.penalties[0].term.coef.hex() == value.hex()
    assert back.weight_decay[0].rate.hex() == value.hex()


# -- defaults --------------------------------------------------------------------------------------


def test_select_omitted_is_default_select():
    spec = from_dict({
        "schema_version": 1,
        "penalties": [{"term": {"kind": "l2", "coef": 0.1, "convention": "sum"}}],
        "weight_decay": [{"rate": 0.01}],
    })
    assert spec.penalties[0].select == DEFAULT_SELECT == Select(roles=("weight",))
    assert spec.weight_decay[0].select == DEFAULT_SELECT
    assert spec == Spec(penalties=[Rule(L2(0.1, convention="sum"))],
                        weight_decay=[DecoupledWeightDecay(0.01)])


def test_lists_omitted_are_empty():
    assert from_dict({"schema_version": 1}) == Spec()
    assert from_json('{"schema_version": 1, "penalties": []}') == Spec()


def test_term_defaults_omitted():
    spec = from_dict({"schema_version": 1, "penalties": [
        {"term": {"kind": "group_lasso", "coef": 0.1, "convention": "sum"}},
        {"term": {"kind": "orthogonal", "coef": 0.1, "convention": "sum"}},
    ]})
    assert spec.penalties[0].term == GroupLasso(0.1, convention="sum", axis=0,
                                                scale_by_size=False)
    assert spec.penalties[1].term == Orthogonal(0.1, convention="sum", mode="rows")


# -- rejections ------------------------------------------------------------------------------------

L2_TERM = {"kind": "l2", "coef": 0.1, "convention": "sum"}


def _with_rule(term=None, **rule):
    return {"schema_version": 1, "penalties": [{"term": term or dict(L2_TERM), **rule}]}


REJECTIONS = {
    "unknown top-level key": (
        {"schema_version": 1, "penalties": [], "weightdecay": []},
        r"^spec\.weightdecay: unknown key; allowed: schema_version, penalties, weight_decay, "
        r"activity$"),
    "unknown rule key": (
        _with_rule(selection={}), r"^penalties\[0\]\.selection: unknown key"),
    "unknown term key": (
        _with_rule({**L2_TERM, "coeff": 0.1}), r"^penalties\[0\]\.term\.coeff: unknown key"),
    "missing term key": (
        _with_rule({"kind": "l2", "convention": "sum"}), r"^penalties\[0\]\.term\.coef: missing$"),
    "missing term": (
        {"schema_version": 1, "penalties": [{"select": {}}]},
        r"^penalties\[0\]\.term: missing$"),
    "unknown kind": (
        _with_rule({"kind": "l3", "coef": 0.1, "convention": "sum"}),
        (r"^penalties\[0\]\.term\.kind: unknown term 'l3'; known: l2, l1, elastic_net, "
         r"group_lasso, orthogonal$")),
    "kind not a string": (
        _with_rule({"kind": ["l2"], "coef": 0.1, "convention": "sum"}),
        r"^penalties\[0\]\.term\.kind: unknown term \['l2'\]"),
    "unknown convention": (
        _with_rule({**L2_TERM, "convention": "mean"}),
        r"^penalties\[0\]\.term\.convention: unknown convention 'mean'"),
    "convention the term lacks": (
        _with_rule({"kind": "l1", "coef": 0.1, "convention": "half"}),
        r"^penalties\[0\]\.term\.convention: l1 has no 'half' form"),
    "bad coefficient": (
        _with_rule({**L2_TERM, "coef": -0.5}), r"^penalties\[0\]\.term\.coef: .*-0\.5$"),
    "missing schema_version": (
        {"penalties": []}, r"^spec\.schema_version: missing$"),
    "schema_version 2": (
        {"schema_version": 2}, r"^schema_version: 2 is newer .*; upgrade regcore$"),
    "schema_version 0": (
        {"schema_version": 0}, r"^schema_version: 0 is not a valid version$"),
    "schema_version string": (
        {"schema_version": "1"}, r"^schema_version: expected an integer, got '1'$"),
    "schema_version float": (
        {"schema_version": 1.0}, r"^schema_version: expected an integer, got 1\.0$"),
    "schema_version bool": (
        {"schema_version": True}, r"^schema_version: expected an integer, got True$"),
    "top level not an object": (
        [{"schema_version": 1}], r"^spec: expected an object, got list$"),
    "penalties not a list": (
        {"schema_version": 1, "penalties": {"term": L2_TERM}},
        r"^penalties: expected a list, got dict$"),
    "penalties null": (
        {"schema_version": 1, "penalties": None}, r"^penalties: expected a list, got NoneType$"),
    "weight_decay not a list": (
        {"schema_version": 1, "weight_decay": "0.01"}, r"^weight_decay: expected a list, got str$"),
    "rule not an object": (
        {"schema_version": 1, "penalties": [{"term": L2_TERM}, "l2"]},
        r"^penalties\[1\]: expected an object, got str$"),
    "term not an object": (
        _with_rule(["l2", 0.1]), r"^penalties\[0\]\.term: expected an object, got list$"),
    "unknown select key": (
        _with_rule(select={"role": ["weight"]}), r"^penalties\[0\]\.select\.role: unknown key"),
    "select not an object": (
        _with_rule(select=["weight"]), r"^penalties\[0\]\.select: expected an object, got list$"),
    "select.roles unknown role": (
        _with_rule(select={"roles": ["weight", "kernel"]}),
        r"^penalties\[0\]\.select\.roles: expected one of .*, got 'kernel'$"),
    "select.roles a string": (
        _with_rule(select={"roles": "weight"}),
        r"^penalties\[0\]\.select\.roles: expected a list, got 'weight'$"),
    "select.name invalid regex": (
        _with_rule(select={"name": "dense.(kernel"}),
        r"^penalties\[0\]\.select\.name: invalid regular expression 'dense\.\(kernel'"),
    "select.ndim negative": (
        _with_rule(select={"ndim": [-1]}), r"^penalties\[0\]\.select\.ndim: .*-1$"),
    "decay unknown key": (
        {"schema_version": 1, "weight_decay": [{"rate": 0.1, "decay": 0.1}]},
        r"^weight_decay\[0\]\.decay: unknown key"),
    "decay bad rate": (
        {"schema_version": 1, "weight_decay": [{"rate": "0.1"}]},
        r"^weight_decay\[0\]\.rate: .*'0\.1'$"),
    "decay bad select": (
        {"schema_version": 1, "weight_decay": [{"rate": 0.1, "select": {"min_ndim": "2"}}]},
        r"^weight_decay\[0\]\.select\.min_ndim: .*'2'$"),
    "non-string key": (
        {"schema_version": 1, 1: "x"}, r"^spec: keys must be strings, got 1$"),
}


@pytest.mark.parametrize("case", REJECTIONS)
def test_from_dict_rejects(case):
    data, pattern = REJECTIONS[case]
    with pytest.raises(SpecError, match=pattern):
        from_dict(data)


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (_with_rule({**L2_TERM, "coef": -0.5}), "penalties[0].term.coef"),
        (_with_rule({**L2_TERM, "convention": "mean"}), "penalties[0].term.convention"),
        (_with_rule(select={"roles": ["kernel"]}), "penalties[0].select.roles"),
        ({"schema_version": 1, "weight_decay": [{"rate": -1}]}, "weight_decay[0].rate"),
    ],
    ids=["coef", "convention", "select.roles", "rate"],
)
def test_value_error_inside_a_spec_names_its_dotted_path(data, path):
    # errors.SpecError: "Every message names the offending field (as a dotted path where the value
    # sits inside a serialized spec, e.g. ``penalties[0].term.coef``)".
    with pytest.raises(SpecError, match=re.escape(path)):
        from_dict(data)


@pytest.mark.parametrize(
    "text",
    ['{"schema_version": 1', "", "schema_version: 1", "{'schema_version': 1}",
     '{"schema_version": 1,}', b"\xff\xfe{"],
    ids=["unclosed", "empty", "yaml", "single quotes", "trailing comma", "bad bytes"],
)
def test_from_json_rejects_malformed_text(text):
    with pytest.raises(SpecError, match=r"^spec: not valid JSON: "):
        from_json(text)


@pytest.mark.parametrize("text", ["[" * 100_000, "[" * 100_000 + "]" * 100_000,
                                  "[" * 33 + "]" * 33, '{"a": ' * 40 + "1" + "}" * 40],
                         ids=["unclosed", "deep", "just too deep", "deep objects"])
def test_from_json_refuses_deep_nesting(text):
    with pytest.raises(SpecError, match=r"^spec: nested deeper than 32 levels$"):
        from_json(text)


def test_from_json_reads_nesting_up_to_the_limit():
    with pytest.raises(SpecError, match=r"^spec: expected an object, got list$"):
        from_json("[" * 32 + "]" * 32)  # parsed; then simply not a spec


@pytest.mark.parametrize("text", [" " * (1 << 20) + "{}", (" " * (1 << 20) + "{}").encode()])
def test_from_json_refuses_text_over_the_size_limit(text):
    with pytest.raises(SpecError, match=r"^spec: 1048578 bytes is over the 1048576-byte limit$"):
        from_json(text)


def test_from_json_size_limit_counts_utf8_bytes():
    text = '{"schema_version": 1, "x": "' + "é" * ((1 << 19) - 10) + '"}'
    assert len(text) < 1 << 20 < len(text.encode())
    with pytest.raises(SpecError, match="-byte limit"):
        from_json(text)


def test_from_json_refuses_duplicate_keys():
    with pytest.raises(SpecError, match=r"^spec: duplicate key 'coef' in one JSON object$"):
        from_json('{"schema_version": 1, "penalties": [{"term": {"kind": "l2", "coef": 0.1, '
                  '"coef": 10.0, "convention": "sum"}}]}')


@pytest.mark.parametrize("thing", [None, 1, {"schema_version": 1}, ["{}"]])
def test_from_json_refuses_what_is_not_text(thing):
    with pytest.raises(SpecError, match=r"^spec: expected JSON text \(str or bytes\), got "):
        from_json(thing)


@pytest.mark.parametrize("text", ['{"schema_version": 1, "weight_decay": [{"rate": NaN}]}',
                                  '{"schema_version": 1, "weight_decay": [{"rate": Infinity}]}'])
def test_from_json_rejects_non_finite_numbers(text):
    with pytest.raises(SpecError, match=r"^weight_decay\[0\]\.rate: must be finite"):
        from_json(text)


def test_from_json_valid_json_but_not_a_spec():
    with pytest.raises(SpecError, match=r"^spec: expected an object, got int$"):
        from_json("1")
    with pytest.raises(SpecError, match=r"^spec\.schema_version: missing$"):
        from_json("{}")


# -- numbers beyond the float range in JSON ------------------------------------------------------

BIG = 10**400  # json.dumps writes its 401 digits; json.loads gives an int that float() rejects


def _term_json(**term):
    return json.dumps({"schema_version": 1, "penalties": [{"term": term}]})


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (_term_json(kind="l2", coef=BIG, convention="sum"),
         r"^penalties\[0\]\.term\.coef: exceeds the largest float "
         r"\(1\.7976931348623157e\+308\), got an integer of about 1e400$"),
        (_term_json(kind="elastic_net", l1=0.1, l2=-BIG, convention="half"),
         r"^penalties\[0\]\.term\.l2: must be >= 0, got an integer of about -1e400$"),
        (json.dumps({"schema_version": 1, "weight_decay": [{"rate": 0.1}, {"rate": BIG}]}),
         r"^weight_decay\[1\]\.rate: exceeds the largest float .*, got an integer of about "
         r"1e400$"),
        (_term_json(kind="l2", coef=1, convention="batch_mean", batch_size=BIG),
         r"^penalties\[0\]\.term\.coef: 1\.0 in the 'batch_mean' convention with "
         r"batch_size=an integer of about 1e400, scaled to the sum form, is nonzero but below "
         r"the smallest float"),
        (_term_json(kind="l2", coef=5e-324, convention="half"),
         r"^penalties\[0\]\.term\.coef: 5e-324 in the 'half' convention, scaled to the sum "
         r"form, is nonzero but below the smallest float \(5e-324\); it would round to 0\.0"),
    ],
    ids=["coef 1e400", "l2 -1e400", "rate 1e400", "batch_size 1e400", "half 5e-324"],
)
def test_from_json_number_out_of_float_range(text, pattern):
    with pytest.raises(SpecError, match=pattern):
        from_json(text)


def test_from_json_integer_past_the_digit_limit():
    # Python refuses to parse ints of more than 4300 digits: still a SpecError
    text = json.dumps({"schema_version": 1, "weight_decay": [{"rate": 0.1}]})
    text = text.replace("0.1", "1" + "0" * 5000)
    with pytest.raises(SpecError, match=r"^spec: not valid JSON: "):
        from_json(text)


# -- to_dict / to_json take a Spec ---------------------------------------------------------------


@pytest.mark.parametrize(
    "thing",
    [None, {"schema_version": 1}, "spec", 1, [Rule(L2(0.1, convention="sum"))],
     Rule(L2(0.1, convention="sum")), L2(0.1, convention="sum")],
    ids=["None", "dict", "str", "int", "list", "Rule", "term"],
)
@pytest.mark.parametrize("dump", [to_dict, to_json])
def test_to_dict_and_to_json_reject_a_non_spec(dump, thing):
    pattern = (rf"^spec: expected a regcore\.Spec, got {type(thing).__name__} "
               rf"{re.escape(repr(thing))}$")
    with pytest.raises(SpecError, match=pattern):
        dump(thing)
