"""The multi-tensor elementwise path (``regcore_adapters.torch.foreach``) that ``PenaltyLoss`` and
``GradientPenalty`` use: the same value and gradient as the per-tensor kernels, subgradient 0 at
exact zeros, elastic net's two parts on one tensor, several coefficients and dtypes in one model,
float32 accumulation for float16/bfloat16, and autograd's own check of the hand-written backward.

The conformance suite checks both classes against the float64 reference on every scenario; these
tests pin the corner cases of the grouping.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from regcore import L1, L2, ElasticNet, GroupLasso, Rule, Select, Spec  # noqa: E402
from regcore_adapters.torch import foreach  # noqa: E402
from regcore_adapters.torch.native import GradientPenalty, PenaltyLoss  # noqa: E402
from regcore_adapters.torch.penalties import KERNELS  # noqa: E402

SPEC = Spec(penalties=[
    Rule(L2(0.03, convention="sum"), Select(name=r"0\..*")),
    Rule(ElasticNet(0.02, 0.05, convention="sum"), Select(name=r"1\..*")),
    Rule(L1(0.07, convention="sum"), Select(name=r"2\.weight")),
    Rule(GroupLasso(0.1, axis=1, convention="sum"), Select(name=r"2\.weight")),
])


def _net(dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 3), nn.Linear(3, 2)).to(dtype)
    with torch.no_grad():  # exact zeros: the subgradient there is 0, as the reference's
        net[1].weight[0, :2] = 0
        net[2].weight[1] = 0
    return net


def _per_tensor(spec: Spec, net: nn.Module) -> torch.Tensor:
    """The penalty by the per-tensor kernels, no grouping."""
    return sum(KERNELS[type(term)](term, p.view(p.param)) for p, term in _pairs(spec, net))


def _pairs(spec: Spec, net: nn.Module):
    from regcore_adapters.torch.native import _resolve
    plan, by_name = _resolve(spec, net)
    return [(by_name[a.param], a.term) for a in plan.penalties]


def _value_and_grads(fn, net):
    net.zero_grad(set_to_none=True)
    value = fn()
    value.backward()
    return value.detach(), _grads(net)


def _grads(net: nn.Module) -> list[torch.Tensor]:
    """Every parameter's ``.grad`` (zeros where there is none: an unselected parameter)."""
    return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in net.parameters()]


def test_penalty_loss_equals_the_per_tensor_kernels() -> None:
    net = _net()
    got, got_grads = _value_and_grads(PenaltyLoss(SPEC, net), net)
    want, want_grads = _value_and_grads(lambda: _per_tensor(SPEC, net), net)
    torch.testing.assert_close(got, want, rtol=1e-14, atol=0)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-14, atol=1e-300)
    # the zeros got L1's subgradient 0 (only the L2 part of elastic net, 2·s2·0, is left)
    assert torch.all(net[1].weight.grad[0, :2] == 0)


def test_gradient_penalty_adds_the_same_gradient_and_value() -> None:
    net = _net()
    want, want_grads = _value_and_grads(lambda: _per_tensor(SPEC, net), net)
    net.zero_grad(set_to_none=True)
    got = GradientPenalty(SPEC, net)(value=True)
    torch.testing.assert_close(got, want, rtol=1e-14, atol=0)
    for g, w in zip(_grads(net), want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-14, atol=1e-300)


TERMS = [L2(0.3, convention="sum"), L1(0.2, convention="sum"),
         ElasticNet(0.1, 0.4, convention="sum")]


def test_the_backward_passes_gradcheck() -> None:
    net = _net()
    params = list(net.parameters())
    groups_of = lambda ts: foreach.groups(  # noqa: E731
        zip(ts, TERMS * 2, strict=True))
    inputs = [p.detach().clone().requires_grad_(True) for p in params]
    with torch.no_grad():  # away from |w|'s kink, where finite differences are meaningless
        for t in inputs:
            t.add_(torch.sign(t) * 0.05)

    def f(*ts):
        gs = groups_of(ts)
        return foreach.ElementwisePenalty.apply(gs, *[t for g in gs for t in g.params])

    assert torch.autograd.gradcheck(f, tuple(inputs))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_accumulates_in_float32(dtype: torch.dtype) -> None:
    net = nn.Sequential(nn.Linear(256, 256)).to(dtype)
    with torch.no_grad():
        net[0].weight.fill_(16.0)  # Σw² = 2^24: past float16's range, exact in float32
    value = PenaltyLoss(Spec(penalties=[Rule(L2(1.0, convention="sum"))]), net)()
    assert value.dtype == torch.float32
    assert value.item() == 256 * 256 * 256.0
    value.backward()
    assert net[0].weight.grad.dtype == dtype
    assert torch.all(net[0].weight.grad == 32.0)


def test_groups_split_by_coefficient_and_dtype() -> None:
    a, b = torch.ones(2, dtype=torch.float32), torch.ones(2, dtype=torch.float64)
    c = torch.ones(3, dtype=torch.float32)
    half = L2(0.5, convention="sum")
    got = foreach.groups([(a, half), (b, half), (c, half),
                          (a, ElasticNet(0.1, 0.2, convention="sum"))])
    assert [(g.kind, len(g.params)) for g in got] == [("l2", 2), ("l2", 1), ("l1", 1), ("l2", 1)]
    assert foreach.groups([(a, GroupLasso(0.1, convention="sum"))]) == []
