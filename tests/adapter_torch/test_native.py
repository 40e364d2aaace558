"""The torch adapter's native API: roles by module type, the three translations and refusals.

Runs in the ``torch`` nox session (skipped where torch is not installed).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from regcore import (  # noqa: E402
    L1,
    L2,
    DecoupledWeightDecay,
    GroupLasso,
    ModelSpec,
    Orthogonal,
    Rule,
    Select,
    Spec,
    SpecError,
)
from regcore_adapters.torch import native  # noqa: E402
from regcore_adapters.torch.models import DenseNet  # noqa: E402
from regcore_adapters.torch.modules import module_params  # noqa: E402

KERAS_L2 = Spec(penalties=[Rule(L2(0.01, convention="sum"))])


class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.conv = nn.Conv2d(3, 5, kernel_size=(2, 3))
        self.norm = nn.LayerNorm(4)
        self.bn = nn.BatchNorm1d(4)
        self.head = nn.Linear(4, 2)
        self.scale = nn.Parameter(torch.ones(4, 4))
        self.offset_bias = nn.Parameter(torch.zeros(4))
        self.temperature = nn.Parameter(torch.ones(()))


def _dense(dtype=torch.float64, seed=0) -> DenseNet:
    torch.manual_seed(seed)
    return DenseNet(ModelSpec((4, 6, 5, 3), "tanh", "softmax_xent")).to(dtype)


def test_roles_come_from_module_types_and_layouts_are_canonical():
    infos = {p.info.name: p.info for p in module_params(Mixed())}
    assert {n: i.role for n, i in infos.items()} == {
        "scale": "weight", "offset_bias": "bias", "temperature": "other",
        "embed.weight": "embedding", "conv.weight": "weight", "conv.bias": "bias",
        "norm.weight": "norm_scale", "norm.bias": "bias", "bn.weight": "norm_scale",
        "bn.bias": "bias", "head.weight": "weight", "head.bias": "bias",
    }
    assert infos["head.weight"].shape == (4, 2)            # nn.Linear (out, in) -> (in, out)
    assert infos["conv.weight"].shape == (2, 3, 3, 5)      # (out, in, kh, kw) -> (kh, kw, in, out)
    assert infos["embed.weight"].shape == (10, 4)


def test_tied_parameters_are_counted_once():
    net = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    net[1].weight = net[0].weight
    names = [p.info.name for p in module_params(net)]
    assert names == ["0.weight", "0.bias", "1.bias"]


def test_default_selection_skips_norm_scales_biases_and_embeddings():
    plan = KERAS_L2.resolve([p.info for p in module_params(Mixed())])
    assert sorted(a.param for a in plan.penalties) == ["conv.weight", "head.weight", "scale"]


def test_penalty_loss_is_the_functional_penalty_on_canonical_parameters():
    from regcore_adapters.torch import TorchBackend

    net = _dense()
    spec = Spec(penalties=[
        Rule(L2(0.01, convention="sum")),
        Rule(Orthogonal(0.1, "rows", convention="sum"), Select(name=r"dense_0\..*",
                                                               roles=["weight"])),
        Rule(GroupLasso(0.05, convention="sum", axis=1), Select(name=r"dense_1\..*",
                                                                roles=["weight"])),
    ])
    value = native.PenaltyLoss(spec, net)()
    canonical = net.canonical()
    plan = spec.resolve(net.spec.params())
    expected, _ = TorchBackend().penalty(plan, canonical)
    torch.testing.assert_close(value, expected, rtol=1e-14, atol=0)


def test_keras_l2_becomes_sgd_weight_decay_twice_lambda():
    groups = native.param_groups(KERAS_L2, _dense(), torch.optim.SGD, lr=0.1)
    by_decay = {g["weight_decay"]: len(g["params"]) for g in groups}
    assert by_decay == {0.02: 3, 0.0: 3}
    assert sum(len(g["params"]) for g in groups) == len(list(_dense().parameters()))


def test_decoupled_decay_becomes_adamw_weight_decay():
    spec = Spec(weight_decay=[DecoupledWeightDecay(0.05)])
    opt = native.build_optimizer(spec, _dense(), torch.optim.AdamW, lr=1e-3)
    assert sorted(g["weight_decay"] for g in opt.param_groups) == [0.0, 0.05]
    opt = native.build_optimizer(spec, _dense(), torch.optim.Adam, lr=1e-3,
                                 decoupled_weight_decay=True)
    assert sorted(g["weight_decay"] for g in opt.param_groups) == [0.0, 0.05]


@pytest.mark.parametrize(
    ("spec", "optimizer", "kwargs", "message"),
    [
        (Spec(penalties=[Rule(L1(0.01, convention="sum"))]), torch.optim.SGD, {},
         "l1 on 'dense_0.weight' cannot be an optimizer weight_decay"),
        (Spec(penalties=[Rule(Orthogonal(0.1, convention="sum"))]), torch.optim.Adam, {},
         "orthogonal on 'dense_0.weight' cannot be an optimizer weight_decay"),
        (KERAS_L2, torch.optim.AdamW, {}, "coupled L2 on 'dense_0.weight' cannot be AdamW"),
        (Spec(weight_decay=[DecoupledWeightDecay(0.1)]), torch.optim.Adam, {},
         "use torch.optim.AdamW"),
        (Spec(weight_decay=[DecoupledWeightDecay(0.1)]), torch.optim.SGD, {"momentum": 0.9},
         "with momentum"),
        (KERAS_L2, torch.optim.LBFGS, {}, "regcore knows the weight_decay of"),
    ],
)
def test_param_groups_refuse_what_is_not_the_same_maths(spec, optimizer, kwargs, message):
    with pytest.raises(SpecError, match=message):
        native.param_groups(spec, _dense(), optimizer, lr=0.1, **kwargs)


def test_build_optimizer_refuses_its_own_weight_decay():
    with pytest.raises(SpecError, match="set by the spec"):
        native.build_optimizer(KERAS_L2, _dense(), torch.optim.SGD, lr=0.1, weight_decay=0.1)


def test_gradient_penalty_adds_exact_gradient_and_computes_value_only_on_request():
    spec = Spec(penalties=[
        Rule(L2(0.01, convention="sum")),
        Rule(L1(0.02, convention="sum"), Select(roles=["bias"])),
        Rule(Orthogonal(0.1, "columns", convention="sum"), Select(name=r"dense_1\..*",
                                                                  roles=["weight"])),
    ])
    net, ref = _dense(seed=1), _dense(seed=1)
    with torch.no_grad():
        net.dense_0.bias[0] = 0.0  # subgradient 0 at 0 on the foreach path too
        ref.dense_0.bias[0] = 0.0
    penalty = native.GradientPenalty(spec, net)
    assert penalty() is None
    for p in net.parameters():
        p.grad = None
    value = penalty(value=True)
    native.PenaltyLoss(spec, ref)().backward()
    torch.testing.assert_close(value, native.PenaltyLoss(spec, ref)().detach(), rtol=1e-14,
                               atol=0)
    for (name, got), (_, want) in zip(net.named_parameters(), ref.named_parameters(),
                                      strict=True):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-13, atol=1e-16, msg=name)
    assert net.dense_0.bias.grad[0] == 0.0


def test_low_precision_penalty_accumulates_in_float32():
    net = nn.Linear(1000, 3, bias=False).to(torch.bfloat16)
    with torch.no_grad():
        net.weight.fill_(1.0)
    value = native.PenaltyLoss(KERAS_L2, net)()
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(0.01 * 3000, rel=1e-6)
