"""regcore.Network: layer descriptions, canonical parameters and shapes, and the SpecError a
description that cannot be built gets."""

from __future__ import annotations

import pytest

from regcore import Network, SpecError
from regcore.network import (
    Activation,
    AvgPool2D,
    Conv2D,
    Dense,
    Embedding,
    GlobalAvgPool,
    GroupNorm,
    LayerNorm,
    SelfAttention,
)


def test_a_cnn_has_canonical_shapes_and_roles():
    net = Network((8, 8, 2), (Conv2D("conv", 2, 4, (3, 3)), GroupNorm("norm", 2, 4),
                              Activation("relu"), AvgPool2D(2), GlobalAvgPool(),
                              Dense("head", 4, 3)), "softmax_xent")
    assert net.shapes() == ((8, 8, 2), (6, 6, 4), (6, 6, 4), (6, 6, 4), (3, 3, 4), (4,), (3,))
    assert [(p.name, p.shape, p.role) for p in net.params()] == [
        ("conv.kernel", (3, 3, 2, 4), "weight"), ("conv.bias", (4,), "bias"),
        ("norm.gamma", (4,), "norm_scale"), ("norm.beta", (4,), "bias"),
        ("head.kernel", (4, 3), "weight"), ("head.bias", (3,), "bias")]
    assert net.outputs == 3 and not net.tokens


def test_a_sequence_model_takes_tokens_and_unfused_projections():
    net = Network((5,), (Embedding("embed", 9, 4), LayerNorm("norm", 4),
                         SelfAttention("attn", 4, 2), GlobalAvgPool(), Dense("head", 4, 2)),
                  "softmax_xent")
    assert net.tokens
    names = [p.name for p in net.params()]
    assert names[:3] == ["embed.embeddings", "norm.gamma", "norm.beta"]
    assert [n for n in names if n.endswith(".kernel")] == [
        "attn.query.kernel", "attn.key.kernel", "attn.value.kernel", "attn.output.kernel",
        "head.kernel"]
    assert next(p for p in net.params() if p.name == "embed.embeddings").role == "embedding"


@pytest.mark.parametrize(("stack", "input_shape", "message"), [
    ((Conv2D("conv", 3, 4, (3, 3)),), (8, 8, 2), "expects a sample of 3 axes with 3 features"),
    ((Conv2D("conv", 2, 4, (9, 9)),), (8, 8, 2), "larger than its input"),
    ((AvgPool2D(3),), (8, 8, 2), "divides"),
    ((Embedding("embed", 9, 4),), (5, 2), "token ids of shape (steps,)"),
    ((Dense("a", 2, 2), Dense("a", 2, 2)), (2,), "parameter names repeat"),
    (("conv",), (2,), "expected layer descriptions"),
])
def test_a_description_that_cannot_be_built_is_a_spec_error(stack, input_shape, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Network(input_shape, stack, "softmax_xent")


def test_groups_and_heads_must_divide():
    with pytest.raises(SpecError, match="do not split into 3 groups"):
        GroupNorm("norm", 3, 4)
    with pytest.raises(SpecError, match="does not split into 4 heads"):
        SelfAttention("attn", 6, 4)


def test_an_unknown_loss_or_activation_is_a_spec_error():
    with pytest.raises(SpecError, match="network.loss"):
        Network((2,), (Dense("a", 2, 2),), "hinge")
    with pytest.raises(SpecError, match="network.activation"):
        Activation("gelu")
