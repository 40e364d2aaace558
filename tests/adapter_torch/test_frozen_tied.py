"""Frozen and tied parameters through every torch translation: ``PenaltyLoss``,
``param_groups``/``build_optimizer``, ``GradientPenalty``, ``DecoupledDecay``,
``build_optimizer_and_penalty`` and the path's ``ModuleProblem``. A frozen parameter is neither
penalized nor touched (torch's own ``weight_decay`` leaves it alone too) unless the spec says
``include_frozen=True``; a tied parameter counts once, and the numbers (or the refusal) do not
depend on which owner was registered first."""

from __future__ import annotations

import gc

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from regcore import (  # noqa: E402
    L2,
    DecoupledWeightDecay,
    Rule,
    Select,
    Spec,
    SpecError,
    load_backend,
)
from regcore_adapters.torch.modules import module_params  # noqa: E402
from regcore_adapters.torch.native import (  # noqa: E402
    DecoupledDecay,
    GradientPenalty,
    PenaltyLoss,
    build_optimizer,
    build_optimizer_and_penalty,
    param_groups,
)
from regcore_apps.path import Settings  # noqa: E402
from regcore_apps.path.torch_problem import ModuleProblem  # noqa: E402

L2_ALL = Spec([Rule(L2(0.1, convention="sum"), Select())],
              [DecoupledWeightDecay(0.01, Select())])


def _frozen_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    net[0].requires_grad_(False)  # a frozen feature extractor, a trainable head
    return net


def _sq(*tensors: torch.Tensor) -> float:
    return float(sum((t.detach() ** 2).sum() for t in tensors))


def _frozen(net: nn.Sequential) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net[0].parameters()]


def test_penalty_loss_leaves_out_frozen_parameters():
    net = _frozen_net()
    expected = 0.1 * _sq(*net[2].parameters())
    assert float(PenaltyLoss(L2_ALL, net)().detach()) == pytest.approx(expected, rel=1e-15)


def test_gradient_penalty_creates_no_grad_for_a_frozen_parameter():
    net = _frozen_net()
    GradientPenalty(L2_ALL, net)()
    assert [p.grad for p in net[0].parameters()] == [None, None]
    torch.testing.assert_close(net[2].weight.grad, 0.2 * net[2].weight.detach())


@pytest.mark.parametrize("optimizer,kwargs", [(torch.optim.SGD, {}),
                                              (torch.optim.AdamW, {"decoupled": True})])
def test_optimizer_groups_hold_no_frozen_parameter_and_a_step_leaves_it(optimizer, kwargs):
    net = _frozen_net()
    spec = Spec(weight_decay=L2_ALL.weight_decay) if kwargs else Spec(L2_ALL.penalties)
    groups = param_groups(spec, net, optimizer)
    frozen_ids = {id(p) for p in net[0].parameters()}
    assert not frozen_ids & {id(p) for g in groups for p in g["params"]}
    before = _frozen(net)
    opt = build_optimizer(spec, net, optimizer, lr=0.1)
    net(torch.ones(5, 3, dtype=torch.float64)).sum().backward()
    opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before, net[0].parameters(), strict=True))


def test_decoupled_decay_leaves_a_frozen_parameter_alone():
    net = _frozen_net()
    before, head = _frozen(net), net[2].weight.detach().clone()
    DecoupledDecay(L2_ALL, net).step(lr=0.5)
    assert all(torch.equal(a, b) for a, b in zip(before, net[0].parameters(), strict=True))
    torch.testing.assert_close(net[2].weight.detach(), head * (1 - 0.5 * 0.01))


def test_include_frozen_is_honoured_where_it_can_be_and_refused_where_it_cannot():
    net = _frozen_net()
    spec = Spec([Rule(L2(0.1, convention="sum"), Select(include_frozen=True))])
    assert float(PenaltyLoss(spec, net)().detach()) == pytest.approx(0.1 * _sq(*net.parameters()))
    GradientPenalty(spec, net)()  # asked for explicitly: the frozen weight gets the gradient
    torch.testing.assert_close(net[0].weight.grad, 0.2 * net[0].weight.detach())
    with pytest.raises(SpecError, match="cannot reach the frozen parameter '0.weight'"):
        build_optimizer(spec, net, torch.optim.SGD, lr=0.1)


def test_the_path_never_steps_a_frozen_parameter():
    net = _frozen_net()
    x = np.random.default_rng(0).normal(size=(8, 3))
    y = np.random.default_rng(1).normal(size=(8, 2))
    fitter = ModuleProblem("frozen", net, "mse", x, y).fitter(
        load_backend("torch"), Settings(lr=0.1, steps=3))
    fitted, _ = fitter.fit(L2_ALL, fitter.start(), fitter.data(np.arange(8)), 0.1)
    assert all(torch.equal(a, b) for a, b in zip(_frozen(net), fitted[0].parameters(),
                                                  strict=True))
    assert not torch.equal(net[2].weight, fitted[2].weight)
    with pytest.raises(SpecError, match="frozen parameter '0.weight'"):
        fitter.fit(Spec([Rule(L2(0.1, convention="sum"), Select(include_frozen=True))]),
                   fitter.start(), fitter.data(np.arange(8)), 0.1)


class Tied(nn.Module):
    """An embedding tied to the output head, registered in either order."""

    def __init__(self, head_first: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        emb, head = nn.Embedding(6, 3).double(), nn.Linear(3, 6, bias=False).double()
        head.weight = emb.weight
        for name, module in (("head", head), ("emb", emb))[::1 if head_first else -1]:
            self.add_module(name, module)


@pytest.mark.parametrize("head_first", [False, True])
def test_a_tied_parameter_counts_once(head_first):
    model = Tied(head_first)
    (only,) = module_params(model)
    assert {only.info.name, only.info.aliases[0].name} == {"emb.weight", "head.weight"}
    spec = Spec([Rule(L2(0.1, convention="sum"), Select())])
    assert float(PenaltyLoss(spec, model)().detach()) == pytest.approx(0.1 * _sq(model.emb.weight),
                                                              rel=1e-15)
    GradientPenalty(spec, model)()
    torch.testing.assert_close(model.emb.weight.grad, 0.2 * model.emb.weight.detach())


@pytest.mark.parametrize("head_first", [False, True])
@pytest.mark.parametrize("make", [PenaltyLoss, GradientPenalty, DecoupledDecay])
def test_a_selection_the_owners_disagree_on_is_refused_in_either_order(head_first, make):
    """The default selection (role weight) picks the head's view of the tensor, not the
    embedding's: before, the answer depended on which module came first."""
    spec = Spec([Rule(L2(0.1, convention="sum"))],
                [DecoupledWeightDecay(0.01, Select(roles=["weight"]))])
    with pytest.raises(SpecError, match=r"shared parameter .* as 'head\.weight' \(weight\) but "
                                        r"not as 'emb\.weight' \(embedding\)"):
        make(spec, Tied(head_first))


def test_build_optimizer_and_penalty_runs_coupled_l2_with_adamw_decay():
    """The modern recipe: coupled L2 in the loss, decoupled decay in AdamW. One call builds both;
    a step equals AdamW(weight_decay=rate) on ``loss + 0.1·Σw²`` written by hand."""
    spec = Spec([Rule(L2(0.1, convention="sum"))], [DecoupledWeightDecay(0.01, Select())])
    with pytest.raises(SpecError, match="build_optimizer_and_penalty"):
        build_optimizer(spec, _frozen_net(), torch.optim.AdamW, lr=0.1)
    ours, theirs = _frozen_net(), _frozen_net()
    opt, penalty = build_optimizer_and_penalty(spec, ours, torch.optim.AdamW, lr=0.1)
    hand = torch.optim.AdamW([p for p in theirs.parameters() if p.requires_grad], lr=0.1,
                             weight_decay=0.01)
    x = torch.linspace(-1, 1, 15, dtype=torch.float64).reshape(5, 3)
    for _ in range(3):
        opt.zero_grad()
        (ours(x).square().mean() + penalty()).backward()
        opt.step()
        hand.zero_grad()
        (theirs(x).square().mean() + 0.1 * theirs[2].weight.square().sum()).backward()
        hand.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("optimizer,in_optimizer", [(torch.optim.SGD, 0.2),
                                                    (torch.optim.AdamW, 0.0)])
def test_build_optimizer_and_penalty_puts_l2_where_the_optimizer_expresses_it(optimizer,
                                                                                in_optimizer):
    net = _frozen_net()
    spec = Spec([Rule(L2(0.1, convention="sum"))])
    opt, penalty = build_optimizer_and_penalty(spec, net, optimizer, lr=0.1)
    decays = {g["weight_decay"] for g in opt.param_groups if g["params"][0] is net[2].weight}
    assert decays == {in_optimizer}
    expected = 0.0 if in_optimizer else 0.1 * _sq(net[2].weight)
    assert float(penalty().detach()) == pytest.approx(expected, rel=1e-15)


def test_build_optimizer_and_penalty_refuses_decay_the_optimizer_cannot_carry():
    spec = Spec(weight_decay=[DecoupledWeightDecay(0.01)])
    with pytest.raises(SpecError, match="use torch.optim.AdamW, or DecoupledDecay"):
        build_optimizer_and_penalty(spec, _frozen_net(), torch.optim.Adam, lr=0.1)


def test_data_parallel_wrapping_keeps_the_rule(tmp_path):
    """A DistributedDataParallel-wrapped model (one gloo process) is read through the same
    ``module_params``: the frozen layer stays out of the penalty, the gradient and the groups."""
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available():
        pytest.skip("torch.distributed is not available in this build")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0,
                            world_size=1)
    ddp = None
    try:
        net = _frozen_net()
        ddp = nn.parallel.DistributedDataParallel(net)
        assert float(PenaltyLoss(L2_ALL, ddp)().detach()) == pytest.approx(
            0.1 * _sq(*net[2].parameters()), rel=1e-15)
        ddp(torch.ones(5, 3, dtype=torch.float64)).sum().backward()
        GradientPenalty(L2_ALL, ddp)()
        DecoupledDecay(L2_ALL, ddp).step(lr=0.5)
        assert [p.grad for p in net[0].parameters()] == [None, None]
        frozen_ids = {id(p) for p in net[0].parameters()}
        groups = param_groups(Spec(L2_ALL.penalties), ddp, torch.optim.SGD)
        assert not frozen_ids & {id(p) for g in groups for p in g["params"]}
    finally:
        # DDP's reducer holds the gloo group: free it while the group is alive (freed after
        # destroy_process_group, its ProcessGroupGloo destructor once hung joining its threads)
        del ddp
        gc.collect()
        dist.destroy_process_group()
