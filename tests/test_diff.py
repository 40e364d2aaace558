"""regcore.diff: the verdicts a port check needs, each caught on a pair of plans."""

from __future__ import annotations

import pytest

from regcore import (
    L1,
    L2,
    DecoupledWeightDecay,
    Orthogonal,
    ParamInfo,
    Rule,
    Select,
    Spec,
    SpecError,
)
from regcore.diff import compare, map_by_order, same, table

KERAS = [ParamInfo("dense.kernel", (4, 8), "weight"), ParamInfo("dense.bias", (8,), "bias"),
         ParamInfo("norm.gamma", (8,), "norm_scale"), ParamInfo("out.kernel", (8, 2), "weight"),
         ParamInfo("out.bias", (2,), "bias")]
TORCH = [ParamInfo("0.weight", (4, 8), "weight"), ParamInfo("0.bias", (8,), "bias"),
         ParamInfo("1.weight", (8,), "norm_scale"), ParamInfo("2.weight", (8, 2), "weight"),
         ParamInfo("2.bias", (2,), "bias")]
MAPPING = map_by_order(KERAS, TORCH)
KERNELS = Select(roles=("weight",))


def _rows(a: Spec, b: Spec):
    rows = compare(a.resolve(KERAS), b.resolve(TORCH), MAPPING)
    return {(r.a, r.kind): r.verdict for r in rows}, rows


def test_the_same_regularization_in_two_conventions_is_same():
    verdicts, rows = _rows(Spec([Rule(L2(0.01, convention="sum"), KERNELS)]),
                           Spec([Rule(L2(0.02, convention="torch_weight_decay"), KERNELS)]))
    assert set(verdicts.values()) == {"same"} and same(rows)
    assert "dense.kernel" in table(rows)


def test_keras_l2_against_torch_weight_decay_of_the_same_number_is_factor_2():
    verdicts, rows = _rows(Spec([Rule(L2(0.01, convention="sum"), KERNELS)]),
                           Spec([Rule(L2(0.01, convention="torch_weight_decay"), KERNELS)]))
    assert verdicts[("dense.kernel", "l2")] == "factor 2: L2 vs weight_decay"
    assert verdicts[("out.kernel", "l2")] == "factor 2: L2 vs weight_decay"
    assert not same(rows)


@pytest.mark.parametrize(("roles_b", "param", "verdict"), [
    (("weight", "bias"), "dense.bias", "only in B"),          # biases decayed on one side only
    (("weight", "norm_scale"), "norm.gamma", "only in B"),    # norm scales on one side only
])
def test_a_role_decayed_on_one_side_only(roles_b, param, verdict):
    verdicts, _ = _rows(Spec(weight_decay=[DecoupledWeightDecay(0.1, KERNELS)]),
                        Spec(weight_decay=[DecoupledWeightDecay(0.1, Select(roles=roles_b))]))
    assert verdicts[(param, "decay")] == verdict
    assert verdicts[("dense.kernel", "decay")] == "same"


def test_coupled_l2_against_decoupled_decay():
    verdicts, _ = _rows(Spec([Rule(L2(0.05, convention="half"), KERNELS)]),
                        Spec(weight_decay=[DecoupledWeightDecay(0.05, KERNELS)]))
    assert verdicts[("dense.kernel", "l2/decay")] == "coupled vs decoupled"
    verdicts, _ = _rows(Spec(weight_decay=[DecoupledWeightDecay(0.05, KERNELS)]),
                        Spec([Rule(L2(0.05, convention="half"), KERNELS)]))
    assert verdicts[("out.kernel", "decay/l2")] == "coupled vs decoupled"


def test_an_unpenalized_output_layer_and_other_settings():
    hidden = Select(name=r"dense\.kernel|0\.weight")
    l1 = L1(0.01, convention="sum")
    verdicts, _ = _rows(Spec([Rule(l1, KERNELS)]), Spec([Rule(l1, hidden)]))
    assert verdicts[("out.kernel", "l1")] == "only in A"
    assert verdicts[("dense.kernel", "l1")] == "same"
    verdicts, _ = _rows(Spec([Rule(Orthogonal(0.1, convention="sum", mode="rows"), KERNELS)]),
                        Spec([Rule(Orthogonal(0.1, convention="sum", mode="columns"), KERNELS)]))
    assert verdicts[("dense.kernel", "orthogonal")] == "differs"


def test_mappings_that_do_not_fit_are_refused_or_reported():
    with pytest.raises(SpecError, match="not the same parameter"):
        map_by_order(KERAS, list(reversed(TORCH)))
    with pytest.raises(SpecError, match="names not in the plans: nope"):
        compare(Spec().resolve(KERAS), Spec().resolve(TORCH), {"nope": "0.weight"})
    rows = compare(Spec().resolve(KERAS), Spec().resolve(TORCH), {"dense.kernel": "0.weight"})
    assert {r.verdict for r in rows} == {"unmapped"} and len(rows) == 8


def test_on_a_terminal_the_table_is_rich_with_coloured_verdicts():
    rich = pytest.importorskip("rich")
    from rich.console import Console

    from regcore_apps.cli.diff import rich_table

    _, rows = _rows(Spec([Rule(L2(0.01, convention="sum"), KERNELS)]),
                    Spec([Rule(L2(0.01, convention="torch_weight_decay"), KERNELS)]))
    console = Console(record=True, width=160, force_terminal=True, color_system="truecolor")
    console.print(rich_table(rows))
    text = console.export_text(clear=False)
    assert "dense.kernel" in text and text.count("factor 2: L2 vs weight_decay") == 2
    red = rich.color.Color.parse("red").get_truecolor()
    assert f"color: #{red.red:02x}{red.green:02x}{red.blue:02x}" in console.export_html()


def test_activity_terms_pair_in_order_and_name_a_reduction_mismatch():
    from regcore import Activity, ModelSpec

    model = ModelSpec((3, 4, 2), "tanh", "mse")
    keras_like = Spec(activity=(Activity(L2(0.01, convention="sum"), "dense_0"),))
    hook_like = Spec(activity=(Activity(L2(0.01, convention="sum"), "dense_0", "sum"),
                               Activity(L1(0.1, convention="sum"), "dense_1", "sum")))
    rows = compare(keras_like.resolve(model.params(), model.layer_names()),
                   hook_like.resolve(model.params(), model.layer_names()))
    activity = [(r.a, r.b, r.kind, r.verdict) for r in rows if r.kind.startswith("activity")]
    assert activity == [("dense_0", "dense_0", "activity:l2", "batch_mean vs sum"),
                        (None, "dense_1", "activity:l1", "only in B")]
    same = compare(keras_like.resolve(model.params(), model.layer_names()),
                   keras_like.resolve(model.params(), model.layer_names()))
    assert [r.verdict for r in same if r.kind == "activity:l2"] == ["same"]
