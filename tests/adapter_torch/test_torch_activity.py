"""Activity penalties in torch: ``PenaltyLoss`` records each selected module's term on its output
through forward hooks and adds those of the last forward pass once; the translations that
cannot apply them (the optimizer's ``weight_decay``, ``GradientPenalty``) refuse, and
``build_optimizer_and_penalty`` passes them to its ``PenaltyLoss``."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from regcore import L1, L2, Activity, Rule, Spec, SpecError  # noqa: E402
from regcore_adapters.torch.native import (  # noqa: E402
    GradientPenalty,
    PenaltyLoss,
    build_optimizer,
    build_optimizer_and_penalty,
)

SPEC = Spec(penalties=(Rule(L2(0.1, convention="sum")),),
            activity=(Activity(L2(0.01, convention="sum"), "1"),
                      Activity(L1(0.02, convention="sum"), "2", "sum")))


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def test_the_hooks_add_each_forward_pass_once():
    model, x = _model(), torch.randn(5, 3, dtype=torch.float64)
    penalty = PenaltyLoss(SPEC, model)
    out = model(x)
    hidden = torch.tanh(model[0](x))
    weights = 0.1 * sum((p * p).sum() for n, p in model.named_parameters() if "weight" in n)
    want = weights + 0.01 * (hidden**2).sum() / 5 + 0.02 * out.abs().sum()
    got = penalty()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(penalty(), weights)  # no forward pass since: the weights only
    got.backward()  # the activity terms are part of the graph
    assert model[0].weight.grad is not None


@pytest.mark.parametrize("make", [
    lambda spec, model: build_optimizer(spec, model, torch.optim.SGD, lr=0.1),
    lambda spec, model: GradientPenalty(spec, model),
])
def test_translations_without_a_forward_pass_refuse(make):
    with pytest.raises(SpecError, match="cannot apply an activity penalty"):
        make(SPEC, _model())


def test_build_optimizer_and_penalty_keeps_the_activity_terms():
    model, x = _model(), torch.randn(5, 3, dtype=torch.float64)
    _, penalty = build_optimizer_and_penalty(SPEC, model, torch.optim.SGD, lr=0.1)
    out = model(x)
    torch.testing.assert_close(penalty(), 0.01 * (torch.tanh(model[0](x))**2).sum() / 5
                               + 0.02 * out.abs().sum())


def test_readme_activity_example():
    """The README's activity example adds ``0.01·Σ tanh(...)²/8`` to the loss once."""
    from tests.test_docs import doc_blocks, run_python

    (block,) = doc_blocks("README.md", "test_readme_activity_example")
    ns, _ = run_python(block)
    model, x = ns["model"], ns["x"]
    with torch.no_grad():
        hidden = torch.tanh(model[0](x))
        data = nn.functional.mse_loss(model(x), ns["y"])
    ns["penalty"]()  # forget the no_grad forward pass's record
    torch.testing.assert_close(ns["loss"].detach(), data + 0.01 * (hidden**2).sum() / 8)
    assert model[0].weight.grad is not None


def test_only_the_last_forward_pass_counts():
    """A validation pass before the training pass (no ``penalty()`` call between) is forgotten
    when the model runs again."""
    model, x = _model(), torch.randn(5, 3, dtype=torch.float64)
    penalty = PenaltyLoss(Spec(activity=(Activity(L2(1.0, convention="sum"), "1", "sum"),)),
                          model)
    with torch.no_grad():
        model(10 * x)
    model(x)
    torch.testing.assert_close(penalty(), (torch.tanh(model[0](x)) ** 2).sum())


def test_layernet_refuses_a_layer_that_would_read_an_image_channels_first():
    from regcore import Network
    from regcore.network import Conv2D, Dense, GlobalAvgPool
    from regcore_adapters.torch.layers import LayerNet, forward

    net = Network((6, 6, 2), (Conv2D("conv", 2, 4, (3, 3)), Dense("dense", 4, 4),
                              GlobalAvgPool()), "softmax_xent")
    with pytest.raises(SpecError, match="layer 'dense' on an image"):
        LayerNet(net)
    params = {p.name: torch.randn(p.shape, dtype=torch.float64) for p in net.params()}
    assert forward(net, params, torch.randn(3, 6, 6, 2, dtype=torch.float64)).shape == (3, 4)


def test_data_parallel_training_refuses_activity():
    from regcore import ModelSpec, Optimizer
    from regcore_adapters.torch import TorchBackend

    backend, model = TorchBackend(), ModelSpec((3, 4, 2), "tanh", "mse")
    params = {p.name: torch.zeros(p.shape, dtype=torch.float64) for p in model.params()}
    x, y = torch.zeros(4, 3, dtype=torch.float64), torch.zeros(4, 2, dtype=torch.float64)
    spec = Spec(activity=(Activity(L2(0.01, convention="sum"), "dense_0"),))
    with pytest.raises(SpecError, match="data-parallel training cannot apply an activity penalty"):
        backend.distributed_loss_and_grads("loss_term", model, spec, params, x, y,
                                           world_size=2)
    got = backend.distributed_train_many("loss_term", model, {"a": spec}, params, x, y,
                                         optimizer=Optimizer("sgd", 0.1), steps=1, world_size=2)
    assert isinstance(got["a"], SpecError)
