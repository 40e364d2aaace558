"""Mixed-precision loss scaling with ``torch.amp.GradScaler``: the penalty is scaled with the loss.

Each native translation trains the same network with a ``GradScaler`` (on the CPU, which torch
2.13's ``torch.amp.GradScaler("cpu")`` supports) and with the same scaler disabled, the plain
``loss.backward(); optimizer.step()`` loop:

* ``loss_term``: ``loss = data + PenaltyLoss()``, so ``scaler.scale(loss)`` scales both;
* ``grad_side``: :class:`GradientPenalty` after ``scaler.unscale_(optimizer)``, on plain gradients;
* ``grad_side_scaled``: :class:`GradientPenalty` before ``unscale_``, with
  ``scale=scaler.get_scale()``, so it adds ``S·∇penalty`` to ``.grad``s holding ``S·∇data``;
* ``param_groups``: ``build_optimizer``'s ``weight_decay``, which ``scaler.step`` applies to the
  unscaled gradients.

Why bitwise equality: the scale ``S`` is a power of two (``init_scale`` here, and GradScaler's
growth and backoff factors 2 and ½ keep it one), and multiplying by a power of two is exact in
binary floating point (these float32 gradients stay far from overflow and underflow). Every
operation of the backward pass is linear in the incoming gradient, so each rounding commutes with
the scaling: every scaled gradient is exactly ``S`` times the unscaled one, ``unscale_``
(a multiplication by ``1/S``, also exact) gives back the unscaled gradient bit for bit, and the
optimizer steps are identical. So the parameters after K steps are compared with ``torch.equal``,
and the ``.grad`` before ``unscale_`` with ``S ×`` the unscaled run's at the same point.

Calling ``GradientPenalty()`` before ``unscale_`` without ``scale`` adds an unscaled penalty
gradient to scaled ones, which ``unscale_`` then divides by ``S``: the last test shows that
failure, which the ``scale`` argument (or calling it after ``unscale_``) avoids.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regcore import L1, L2, GroupLasso, ModelSpec, Rule, Select, Spec  # noqa: E402
from regcore_adapters.torch.models import DenseNet, data_loss  # noqa: E402
from regcore_adapters.torch.native import (  # noqa: E402
    GradientPenalty,
    PenaltyLoss,
    build_optimizer,
)

MODEL = ModelSpec((4, 8, 3), "tanh", "mse")
STEPS = 5
U32 = 2.0**-24
SPECS = {
    "l2": Spec(penalties=[Rule(L2(0.05, convention="torch_weight_decay"))]),
    "group_lasso_l1": Spec(penalties=[
        Rule(GroupLasso(0.05, convention="sum", axis=0)),
        Rule(L1(0.01, convention="sum"), Select(roles=["bias"])),
    ]),
}
PATHS = ("loss_term", "grad_side", "grad_side_scaled", "param_groups")
OPTIMIZERS = {"sgd": (torch.optim.SGD, {"lr": 0.1}), "adam": (torch.optim.Adam, {"lr": 0.01})}
SCALES = (2.0**10, 2.0**16)  # GradScaler's default init_scale is 2**16


def _data():
    rng = np.random.default_rng(7)
    params = {}
    for p in MODEL.params():
        params[p.name] = torch.from_numpy(rng.normal(0, 0.5, p.shape).astype(np.float32))
    x = torch.from_numpy(rng.standard_normal((32, 4)).astype(np.float32))
    y = torch.from_numpy(rng.standard_normal((32, 3)).astype(np.float32))
    return params, x, y


PARAMS, X, Y = _data()


def _optimizer(path: str, spec: Spec, net: DenseNet, name: str) -> torch.optim.Optimizer:
    cls, kwargs = OPTIMIZERS[name]
    if path == "param_groups":
        return build_optimizer(spec, net, cls, **kwargs)
    return cls(net.parameters(), **kwargs)


def train(path: str, spec: Spec, optimizer: str, scale: float | None):
    """``STEPS`` steps through ``path`` with a GradScaler of ``init_scale=scale`` (``None``: the
    scaler disabled, i.e. ``loss.backward(); optimizer.step()``). Returns the final parameters,
    the ``.grad``s of the first step just before ``unscale_``, and the scale at the end."""
    net = DenseNet(MODEL).load_canonical(PARAMS)
    opt = _optimizer(path, spec, net, optimizer)
    scaler = torch.amp.GradScaler("cpu", init_scale=scale or 1.0, enabled=scale is not None)
    penalty = PenaltyLoss(spec, net) if path == "loss_term" else None
    grad_side = GradientPenalty(spec, net) if path.startswith("grad_side") else None
    first = None
    for step in range(STEPS):
        opt.zero_grad(set_to_none=True)
        loss = data_loss(MODEL.loss, net(X), Y)
        if penalty is not None:
            loss = loss + penalty()
        scaler.scale(loss).backward()
        if path == "grad_side_scaled":
            grad_side(scale=scaler.get_scale())
        if step == 0:
            first = net.canonical_grads()
        scaler.unscale_(opt)
        if path == "grad_side":
            grad_side()
        scaler.step(opt)
        scaler.update()
    return net.canonical(), first, scaler.get_scale()


# weight_decay expresses L2 only (build_optimizer refuses the rest)
PATH_SPECS = [(path, spec) for path in PATHS for spec in SPECS
              if path != "param_groups" or spec == "l2"]


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"S=2^{int(np.log2(s))}")
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize(("path", "spec"), PATH_SPECS)
def test_scaled_training_equals_unscaled(path, spec, optimizer, scale):
    final, first, end_scale = train(path, SPECS[spec], optimizer, scale)
    plain, plain_first, _ = train(path, SPECS[spec], optimizer, None)
    assert end_scale == scale  # every step was taken (no inf/NaN skipped one)
    for name in final:
        assert torch.equal(first[name], scale * plain_first[name]), name
        assert torch.equal(final[name], plain[name]), name
    unpenalized, _, _ = train(path, Spec(), optimizer, scale)  # the penalty is not a no-op here
    assert any(not torch.equal(final[k], unpenalized[k]) for k in final)


def _separate_grads(spec: Spec) -> tuple[dict, dict]:
    """∇data and ∇penalty at the initial parameters, each on its own."""
    net = DenseNet(MODEL).load_canonical(PARAMS)
    data_loss(MODEL.loss, net(X), Y).backward()
    data = net.canonical_grads()
    net.zero_grad(set_to_none=True)
    PenaltyLoss(spec, net)().backward()
    return data, net.canonical_grads()


@pytest.mark.parametrize(("path", "spec"), PATH_SPECS)
def test_gradient_before_unscale_is_scale_times_data_plus_penalty(path, spec):
    """Where the penalty enters the scaled gradient (``loss_term``, ``grad_side_scaled``), the
    ``.grad`` before ``unscale_`` is ``S·(∇data + ∇penalty)``: exactly ``S`` times a sum of two
    float32 numbers, each added once (``|got/S − (d + p)| ≤ 2u·(|d| + |p|)`` entrywise, ``u`` =
    2⁻²⁴, also covering ``foreach``'s rounding of ``coef·p``). Where it enters after unscaling
    (``grad_side``, ``param_groups``), the ``.grad`` is ``S·∇data`` exactly."""
    scale = 2.0**16
    _, first, _ = train(path, SPECS[spec], "sgd", scale)
    data, pen = _separate_grads(SPECS[spec])
    assert any(bool(torch.any(g != 0)) for g in pen.values())
    for name, got in first.items():
        if path in ("loss_term", "grad_side_scaled"):
            unscaled, d, p = got / scale, data[name], pen[name]
            bound = 2 * U32 * (d.abs() + p.abs())
            assert torch.all((unscaled - (d + p)).abs() <= bound), name
        else:
            assert torch.equal(got, scale * data[name]), name


def test_grad_side_before_unscale_without_scale_divides_the_penalty_by_the_scale():
    """The pitfall the ``scale`` argument exists for: ``GradientPenalty()`` between
    ``scaler.scale(loss).backward()`` and ``unscale_`` adds ``∇penalty`` to ``S·∇data``;
    ``unscale_`` leaves ``∇data + ∇penalty/S``, and training drifts from the unscaled run."""
    spec, scale = SPECS["l2"], 2.0**10
    net = DenseNet(MODEL).load_canonical(PARAMS)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=scale)
    scaler.scale(data_loss(MODEL.loss, net(X), Y)).backward()
    GradientPenalty(spec, net)()  # wrong: before unscale_, without scale=
    scaler.unscale_(opt)
    data, pen = _separate_grads(spec)
    for name, got in net.canonical_grads().items():
        torch.testing.assert_close(got, data[name] + pen[name] / scale, rtol=4 * U32, atol=0)
        if bool(torch.any(pen[name] != 0)):
            assert not torch.allclose(got, data[name] + pen[name], rtol=1e-3, atol=0), name


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), True, "2"])
def test_gradient_penalty_refuses_a_scale_that_is_not_positive_and_finite(bad):
    net = DenseNet(MODEL).load_canonical(PARAMS)
    with pytest.raises(ValueError, match="scale"):
        GradientPenalty(SPECS["l2"], net)(scale=bad)
