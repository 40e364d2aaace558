"""regcore.presets: each recipe's rule on parameter descriptions alone (no framework), and the
two forms of its decay. The libraries' own groupings are matched in tests/presets/."""

from __future__ import annotations

import re

import pytest

from regcore import L2, DecoupledWeightDecay, ParamInfo, Select, Spec, presets

PARAMS = [
    ParamInfo("embed.weight", (64, 16), "embedding"),
    ParamInfo("cls_token", (1, 1, 16), "other"),
    ParamInfo("pos_embed", (1, 5, 16), "other"),
    ParamInfo("blocks.0.norm1.weight", (16,), "norm_scale"),
    ParamInfo("blocks.0.norm1.bias", (16,), "bias"),
    ParamInfo("blocks.0.attn.qkv.weight", (16, 48), "weight"),
    ParamInfo("blocks.0.attn.qkv.bias", (48,), "bias"),
    ParamInfo("blocks.0.ls1.gamma", (16,), "other"),        # a 1-D learned scale
    ParamInfo("encoder.LayerNorm.weight", (16,), "norm_scale"),
    ParamInfo("model.norm.weight", (16,), "other"),         # an RMSNorm of the model's own class
    ParamInfo("rel.relative_attention_bias.weight", (8, 2), "embedding"),
    ParamInfo("head.weight", (16, 4), "weight"),
    ParamInfo("frozen.weight", (4, 4), "weight", trainable=False),
]


def _decayed(spec: Spec) -> set[str]:
    return set(spec.resolve(PARAMS).decay)


MATRICES = {"embed.weight", "cls_token", "pos_embed", "blocks.0.attn.qkv.weight",
            "rel.relative_attention_bias.weight", "head.weight"}


@pytest.mark.parametrize(("spec", "expected"), [
    (presets.torch_default(0.1), {p.name for p in PARAMS if p.trainable}),
    (presets.nanogpt(0.1), MATRICES),
    (presets.timm(0.1), MATRICES),
    (presets.timm(0.1, {"pos_embed", "cls_*"}), MATRICES - {"pos_embed", "cls_token"}),
    # substring, not suffix: T5's relative_attention_bias.weight is not decayed; a norm
    # component or a LayerNorm name is not either, whatever its role
    (presets.hf_trainer_names(0.1), {"embed.weight", "cls_token", "pos_embed",
                                     "blocks.0.attn.qkv.weight", "blocks.0.ls1.gamma",
                                     "head.weight", "blocks.0.norm1.weight"}),
])
def test_each_recipe_decays_what_its_rule_says(spec, expected):
    assert _decayed(spec) == expected
    assert set(spec.resolve(PARAMS).decay.values()) == {0.1}


def test_coupled_form_is_torch_weight_decay_and_keras_default_is_kernels_only():
    plan = presets.timm(0.1, decoupled=False).resolve(PARAMS)
    assert plan.decay == {}
    assert {a.param for a in plan.penalties} == MATRICES
    assert {(type(a.term), a.term.scaled()["coef"]) for a in plan.penalties} == {(L2, 0.05)}
    keras_params = [ParamInfo("dense.kernel", (4, 3), "weight"),
                    ParamInfo("dense.bias", (3,), "bias"),
                    ParamInfo("conv.kernel", (3, 3, 2, 4), "weight"),
                    ParamInfo("lstm.lstm_cell.kernel", (3, 8), "weight"),
                    ParamInfo("lstm.lstm_cell.recurrent_kernel", (2, 8), "weight"),
                    ParamInfo("sep.depthwise_kernel", (3, 3, 2, 1), "weight"),
                    ParamInfo("embed.embeddings", (10, 4), "embedding")]
    keras = presets.keras_default(0.01).resolve(keras_params)
    assert {a.param for a in keras.penalties} == {"dense.kernel", "conv.kernel",
                                                  "lstm.lstm_cell.kernel"}
    assert {a.term.scaled()["coef"] for a in keras.penalties} == {0.01}


def test_decays_leaves_out_zero_rates_and_excluding_combines_its_parts():
    spec = presets.decays([(0.0, Select()), (0.2, Select(min_ndim=2))])
    assert spec.weight_decay == (DecoupledWeightDecay(0.2, Select(min_ndim=2)),)
    pattern = presets.excluding([r"\.bias\Z"], names=["a.w"], globs=["b.*"])
    kept = [n for n in ("a.w", "a.wx", "b.x", "c.bias", "c.biasx", "x.b.y")
            if re.fullmatch(pattern, n)]
    assert kept == ["a.wx", "c.biasx", "x.b.y"]
