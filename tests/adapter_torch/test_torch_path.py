"""The regularization path on a user's own ``nn.Module`` (``regcore_adapters.torch.path``): the
same answer as the path on the equivalent scenario network through the backend protocol."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from regcore import L1, L2, GroupLasso, Rule, Spec, SpecError, load_backend  # noqa: E402
from regcore.path import Settings, run  # noqa: E402
from regcore.path.data import problem  # noqa: E402
from regcore_adapters.torch.path import ModuleProblem  # noqa: E402
from regcore_conformance.tolerance import Tolerance, network_chain  # noqa: E402


def _module_like(prob) -> nn.Sequential:
    """An ``nn.Sequential`` of ``nn.Linear`` layers holding the problem's initial parameters
    (torch's ``(out, in)`` weights are the canonical kernels transposed)."""
    sizes, layers = prob.model.sizes, []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        linear = nn.Linear(fan_in, fan_out, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(prob.init[f"dense_{i}.kernel"]).T)
            linear.bias.copy_(torch.as_tensor(prob.init[f"dense_{i}.bias"]))
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU() if prob.model.activation == "relu" else nn.Tanh())
    return nn.Sequential(*layers)


CASES = {
    "synthetic-l1": ("synthetic", Spec(penalties=(Rule(L1(0.05, convention="sum")),)),
                     (0.5, 0.2, 0.1), {"steps": 100, "lr": 0.2}),
    "synthetic-group_lasso": ("synthetic", Spec(penalties=(Rule(GroupLasso(
        0.1, convention="sum", axis=0)),)), (0.3, 0.1, 0.03), {"steps": 100, "lr": 0.2}),
    "iris-l2": ("iris", Spec(penalties=(Rule(L2(1e-3, convention="sum")),)),
                (0.1, 1e-2, 1e-3), {"steps": 20, "lr": 0.1}),
    "iris-l2-adam": ("iris", Spec(penalties=(Rule(L2(1e-3, convention="sum")),)),
                     (0.1, 1e-2), {"steps": 10, "lr": 0.01, "optimizer": "adam"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_users_module_gives_the_scenario_networks_path(case):
    data, spec, grid, extra = CASES[case]
    prob = problem(data)
    settings = Settings(folds=3, **extra)
    torch_backend = load_backend("torch")
    module = _module_like(prob)
    kept = {k: v.clone() for k, v in module.state_dict().items()}
    ours = run(torch_backend, ModuleProblem(data, module, prob.model.loss, prob.x, prob.y), spec,
               grid, settings)
    want = run(torch_backend, prob, spec, grid, settings)
    tol = Tolerance("float64", network_chain(prob.model.sizes, prob.x.shape[0]),
                    steps=settings.steps * len(grid)).value
    error = np.max(np.abs(np.subtract(ours["mean_val"], want["mean_val"])))
    assert error <= tol * np.max(np.abs(want["mean_val"]))
    assert ours["choice"] == want["choice"]
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in kept.items())  # untouched
    # the full-data fit at the choice, under the module's own names in canonical layout
    assert np.allclose(ours["final"]["0.weight"], want["final"]["dense_0.kernel"], rtol=0,
                       atol=tol * np.max(np.abs(want["final"]["dense_0.kernel"])))
    if case == "synthetic-l1":  # exact zeros through the proximal step, as the backend's
        zeros = np.asarray(want["final"]["dense_0.kernel"]) == 0
        assert zeros.any()  # the grid is chosen so the choice has some
        assert np.array_equal(np.asarray(ours["final"]["0.weight"]) == 0, zeros)


def test_a_custom_loss_callable_runs_and_is_named():
    prob = problem("synthetic")

    def huber(out, y):
        return nn.functional.huber_loss(out, y)

    result = run(load_backend("torch"), ModuleProblem("mine", _module_like(prob), huber, prob.x,
                                                      prob.y),
                 Spec(penalties=(Rule(L1(0.05, convention="sum")),)), (0.1, 0.01),
                 Settings(folds=2, steps=5, lr=0.1))
    assert result["model"] == {"module": "Sequential", "loss": "huber"}
    assert np.isfinite(result["mean_val"]).all()


def test_module_problem_refuses_what_it_cannot_run():
    prob = problem("synthetic")
    with pytest.raises(SpecError, match="expected a torch.nn.Module"):
        ModuleProblem("x", object(), "mse", prob.x, prob.y)
    with pytest.raises(SpecError, match="expected one of"):
        ModuleProblem("x", _module_like(prob), "mae", prob.x, prob.y)
    with pytest.raises(SpecError, match="rows"):
        ModuleProblem("x", _module_like(prob), "mse", prob.x, prob.y[:3])
    spec = Spec(penalties=(Rule(L1(0.05, convention="sum")),))
    module = ModuleProblem("x", _module_like(prob), "mse", prob.x, prob.y)
    with pytest.raises(SpecError, match="runs on the torch backend"):
        run(load_backend("numpy"), module, spec, (0.1,), Settings(folds=2, steps=2, lr=0.1))
    with pytest.raises(SpecError, match="give lr"):
        run(load_backend("torch"), module, spec, (0.1,), Settings(folds=2, steps=2))
