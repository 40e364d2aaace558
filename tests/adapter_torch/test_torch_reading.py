"""Reading a torch (model, optimizer) setup back into a spec: the round trip through
``build_optimizer``, the recipes people write by hand, and what cannot be read."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from regcore import L1, L2, DecoupledWeightDecay, Rule, Select, Spec  # noqa: E402
from regcore_adapters.torch.modules import module_params  # noqa: E402
from regcore_adapters.torch.native import PenaltyLoss, build_optimizer  # noqa: E402
from regcore_adapters.torch.reading import read_setup  # noqa: E402


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))


def _applied(spec: Spec, model: nn.Module) -> tuple[set, dict]:
    """What ``spec`` does on ``model``: (parameter, term kind, sum-form numbers) and decay rates."""
    plan = spec.resolve([p.info for p in module_params(model)])
    return ({(a.param, type(a.term).__name__, tuple(sorted(a.term.scaled().items())))
             for a in plan.penalties}, plan.decay)


@pytest.mark.parametrize(("spec", "optimizer"), [
    (Spec([Rule(L2(0.02, convention="torch_weight_decay"), Select(roles=("weight",)))]),
     torch.optim.SGD),
    (Spec([Rule(L2(0.01, convention="sum"), Select(min_ndim=2))]), torch.optim.Adam),
    (Spec(weight_decay=[DecoupledWeightDecay(0.1, Select(roles=("weight", "embedding")))]),
     torch.optim.AdamW),
])
def test_a_built_optimizer_reads_back_as_the_spec_it_was_built_from(spec, optimizer):
    model = _model()
    read = read_setup(model, build_optimizer(spec, model, optimizer, lr=0.1))
    assert read.notes == ()
    assert _applied(read.spec, model) == _applied(spec, model)


def test_a_nanogpt_style_setup_decays_only_matrices():
    model = _model()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
    penalties, rates = _applied(read_setup(model, opt).spec, model)
    assert penalties == set()
    assert rates == {"0.weight": 0.1, "1.weight": 0.1, "3.weight": 0.1}


def test_torch_default_decays_everything_coupled_and_adam_flag_makes_it_decoupled():
    model = _model()
    names = {p.info.name for p in module_params(model)}
    coupled = read_setup(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                                                weight_decay=1e-4))
    penalties, rates = _applied(coupled.spec, model)
    assert {p for p, *_ in penalties} == names and rates == {}
    assert {kind for _, kind, _ in penalties} == {"L2"}
    # wd·p is the gradient of wd/2·Σp²
    assert {nums for *_, nums in penalties} == {(("coef", 5e-5),)}
    flagged = read_setup(model, torch.optim.Adam(model.parameters(), lr=0.1, weight_decay=1e-4,
                                                 decoupled_weight_decay=True))
    assert _applied(flagged.spec, model) == (set(), dict.fromkeys(sorted(names), 1e-4))


def test_frozen_parameters_and_unknown_optimizers_are_noted_not_dropped():
    model = _model()
    model[0].weight.requires_grad_(False)
    read = read_setup(model, torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.01))
    assert "0.weight" not in {p for p, *_ in _applied(read.spec, model)[0]}
    assert any("frozen 0.weight" in n and "not applied" in n for n in read.notes)
    odd = read_setup(model, torch.optim.Adadelta(model.parameters(), weight_decay=0.01))
    assert _applied(odd.spec, model) == (set(), {})
    assert any("Adadelta, whose decay regcore does not know" in n for n in odd.notes)


def test_a_penalty_loss_beside_the_optimizer_is_read_too():
    model = _model()
    l1 = Spec([Rule(L1(0.001, convention="sum"), Select(roles=("weight",)))])
    read = read_setup(model, torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05),
                      PenaltyLoss(l1, model))
    penalties, rates = _applied(read.spec, model)
    assert {(p, kind) for p, kind, _ in penalties} == {("1.weight", "L1"), ("3.weight", "L1")}
    assert set(rates.values()) == {0.05} and len(rates) == len(list(model.parameters()))
