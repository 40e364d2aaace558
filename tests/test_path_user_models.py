"""The regularization path on a user's own model — a torch ``nn.Module``
(:mod:`regcore_apps.path.torch_problem`) or a Keras model (:mod:`regcore_apps.path.keras_problem`):
the same answer as the path on the equivalent scenario network through the backend protocol, the
caller's model untouched, and the same refusals. One test per framework, each skipped where its
framework is not installed (``nox -s path`` installs both)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from regcore import L1, L2, GroupLasso, Rule, Spec, SpecError, load_backend
from regcore_apps.path import Settings, run
from regcore_apps.path.data import problem
from regcore_conformance.tolerance import Tolerance, network_chain


class Torch:
    """A torch ``nn.Sequential`` of ``nn.Linear`` layers, and what the tests read from it."""

    backend, problem_class, refused = "torch", "ModuleProblem", "expected a torch.nn.Module"

    def __init__(self) -> None:
        self.torch = pytest.importorskip("torch")
        self.problem = importlib.import_module("regcore_apps.path.torch_problem").ModuleProblem

    def model_like(self, prob, dtype: str = "float64"):
        """The problem's initial parameters in ``nn.Linear`` layers (torch's ``(out, in)``
        weights are the canonical kernels transposed)."""
        torch, nn = self.torch, self.torch.nn
        sizes, layers = prob.model.sizes, []
        for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
            linear = nn.Linear(fan_in, fan_out, dtype=getattr(torch, dtype))
            with torch.no_grad():
                linear.weight.copy_(torch.as_tensor(prob.init[f"dense_{i}.kernel"]).T)
                linear.bias.copy_(torch.as_tensor(prob.init[f"dense_{i}.bias"]))
            layers.append(linear)
            if i < len(sizes) - 2:
                layers.append(nn.ReLU() if prob.model.activation == "relu" else nn.Tanh())
        return nn.Sequential(*layers)

    def weights(self, model) -> list[np.ndarray]:
        return [p.detach().numpy().copy() for p in model.parameters()]

    def first_kernel(self, model) -> str:
        return "0.weight"  # the module's own name, in the canonical (in, out) layout

    def huber(self, out, y):
        return self.torch.nn.functional.huber_loss(out, y)


class Keras:
    """A ``keras.Sequential`` of ``Dense`` layers, and what the tests read from it."""

    backend, problem_class, refused = "tf", "ModelProblem", "expected a Keras model"

    def __init__(self) -> None:
        self.tf = pytest.importorskip("tensorflow")
        self.keras = importlib.import_module("keras")
        self.problem = importlib.import_module("regcore_apps.path.keras_problem").ModelProblem

    def model_like(self, prob, dtype: str = "float64"):
        """The problem's initial parameters in ``Dense`` layers (Keras kernels are the canonical
        ``(fan_in, fan_out)`` ones)."""
        keras, sizes = self.keras, prob.model.sizes
        layers = [keras.Input((sizes[0],), dtype=dtype)]
        for i in range(len(sizes) - 1):
            hidden = i < len(sizes) - 2
            layers.append(keras.layers.Dense(sizes[i + 1], dtype=dtype,
                                             activation=prob.model.activation if hidden
                                             else None))
        model = keras.Sequential(layers)
        for i, layer in enumerate(model.layers):
            layer.kernel.assign(prob.init[f"dense_{i}.kernel"].astype(dtype))
            layer.bias.assign(prob.init[f"dense_{i}.bias"].astype(dtype))
        return model

    def weights(self, model) -> list[np.ndarray]:
        return [w.numpy().copy() for w in model.weights]

    def first_kernel(self, model) -> str:
        return model.layers[0].name + ".kernel"

    def huber(self, out, y):
        return self.tf.reduce_mean(self.keras.losses.huber(y, out))


@pytest.fixture(params=[Torch, Keras], ids=["torch", "keras"])
def framework(request):
    return request.param()


CASES = {
    "synthetic-l1": ("synthetic", Spec(penalties=(Rule(L1(0.05, convention="sum")),)),
                     (0.5, 0.2, 0.1), {"steps": 100, "lr": 0.2}),
    "synthetic-group_lasso": ("synthetic", Spec(penalties=(Rule(GroupLasso(
        0.1, convention="sum", axis=0)),)), (0.5, 0.2, 0.1), {"steps": 100, "lr": 0.2}),
    "iris-l2": ("iris", Spec(penalties=(Rule(L2(1e-3, convention="sum")),)),
                (0.1, 1e-2, 1e-3), {"steps": 20, "lr": 0.1}),
    "iris-l2-adam": ("iris", Spec(penalties=(Rule(L2(1e-3, convention="sum")),)),
                     (0.1, 1e-2), {"steps": 10, "lr": 0.01, "optimizer": "adam"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_users_model_gives_the_scenario_networks_path(framework, case):
    data, spec, grid, extra = CASES[case]
    prob = problem(data)
    settings = Settings(folds=3, **extra)
    backend = load_backend(framework.backend)
    model = framework.model_like(prob)
    kept = framework.weights(model)
    ours = run(backend, framework.problem(data, model, prob.model.loss, prob.x, prob.y), spec,
               grid, settings)
    want = run(backend, prob, spec, grid, settings)
    tol = Tolerance("float64", network_chain(prob.model.sizes, prob.x.shape[0]),
                    steps=settings.steps * len(grid)).value
    error = np.max(np.abs(np.subtract(ours["mean_val"], want["mean_val"])))
    assert error <= tol * np.max(np.abs(want["mean_val"]))
    assert ours["choice"] == want["choice"]
    assert all(np.array_equal(a, b) for a, b in zip(framework.weights(model), kept, strict=True))
    # the full-data fit at the choice, under the model's own names in the canonical layout
    kernel, canonical = ours["final"][framework.first_kernel(model)], want["final"][
        "dense_0.kernel"]
    assert np.allclose(kernel, canonical, rtol=0, atol=tol * np.max(np.abs(canonical)))
    if data == "synthetic":  # exact zeros through the proximal step, as the backend's
        assert np.any(np.asarray(canonical) == 0)  # (the grid is chosen so the choice has some)
        assert np.array_equal(np.asarray(kernel) == 0, np.asarray(canonical) == 0)


def test_a_float32_model_trains_in_the_paths_dtype_and_a_custom_loss_is_named(framework):
    prob = problem("synthetic")

    def huber(out, y):
        return framework.huber(out, y)

    model, settings = framework.model_like(prob, "float32"), Settings(folds=2, steps=5, lr=0.1)
    kept = framework.weights(model)
    mine = framework.problem("mine", model, huber, prob.x, prob.y)
    result = run(load_backend(framework.backend), mine,
                 Spec(penalties=(Rule(L1(0.05, convention="sum")),)), (0.1, 0.01), settings)
    field = "module" if framework.backend == "torch" else "model"
    assert result["model"] == {field: "Sequential", "loss": "huber"}
    assert np.isfinite(result["mean_val"]).all()
    assert all(np.array_equal(a, b) for a, b in zip(framework.weights(model), kept, strict=True))
    assert all(w.dtype == np.float32 for w in framework.weights(model))  # trained a float64 copy


def test_a_user_model_problem_refuses_what_it_cannot_run(framework):
    prob = problem("synthetic")
    make = framework.problem
    with pytest.raises(SpecError, match=framework.refused):
        make("x", object(), "mse", prob.x, prob.y)
    with pytest.raises(SpecError, match=f"{framework.problem_class}.loss: expected one of"):
        make("x", framework.model_like(prob), "mae", prob.x, prob.y)
    with pytest.raises(SpecError, match="rows"):
        make("x", framework.model_like(prob), "mse", prob.x, prob.y[:3])
    spec = Spec(penalties=(Rule(L1(0.05, convention="sum")),))
    mine = make("x", framework.model_like(prob), "mse", prob.x, prob.y)
    with pytest.raises(SpecError, match=f"runs on the {framework.backend} backend"):
        run(load_backend("numpy"), mine, spec, (0.1,), Settings(folds=2, steps=2, lr=0.1))
    with pytest.raises(SpecError, match="give lr"):
        run(load_backend(framework.backend), mine, spec, (0.1,), Settings(folds=2, steps=2))


# -- Keras only: the model kinds clone_model copies, and the one it cannot ---------------------


def test_a_keras_model_fits_a_float64_clone():
    keras_ = Keras()
    prob = problem("synthetic")
    model, settings = keras_.model_like(prob, "float32"), Settings(folds=2, steps=5, lr=0.1)
    mine = keras_.problem("mine", model, "mse", prob.x, prob.y)
    assert all(w.dtype == "float64" for w in mine.fitter(load_backend("tf"), settings).work.weights)
    assert all(w.dtype == "float32" for w in model.weights)  # the clone is float64, not it


def test_a_functional_model_with_a_nested_one_gives_the_sequential_models_path():
    keras_ = Keras()
    keras, prob = keras_.keras, problem("iris")
    flat, sizes = keras_.model_like(prob), prob.model.sizes
    inputs = keras.Input((sizes[0],), dtype="float64")
    hidden = inputs
    for i, units in enumerate(sizes[1:-1]):
        hidden = keras.layers.Dense(units, activation=prob.model.activation, dtype="float64",
                                    name=f"hidden_{i}")(hidden)
    head = keras.Sequential([keras.Input((sizes[-2],), dtype="float64"),
                             keras.layers.Dense(sizes[-1], dtype="float64", name="out")],
                            name="head")
    nested = keras.Model(inputs, head(hidden))
    nested.set_weights(flat.get_weights())
    spec, settings = Spec(penalties=(Rule(L2(1e-3, convention="sum")),)), Settings(
        folds=2, steps=5, lr=0.1)
    results = [run(load_backend("tf"), keras_.problem("m", m, "softmax_xent", prob.x, prob.y),
                   spec, (0.1, 0.01), settings) for m in (flat, nested)]
    assert results[0]["mean_val"] == results[1]["mean_val"]
    assert "head.out.kernel" in results[1]["final"]  # the nested model's variables, by path


def test_an_unbuilt_or_subclassed_keras_model_is_refused():
    keras_ = Keras()
    keras, prob = keras_.keras, problem("synthetic")
    with pytest.raises(SpecError, match="not built"):
        keras_.problem("x", keras.Sequential([keras.layers.Dense(1)]), "mse", prob.x, prob.y)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

    subclassed = Subclassed()
    subclassed(prob.x[:1])
    spec = Spec(penalties=(Rule(L1(0.05, convention="sum")),))
    with pytest.raises(SpecError, match="cannot copy Subclassed"):
        run(load_backend("tf"), keras_.problem("x", subclassed, "mse", prob.x, prob.y), spec,
            (0.1,), Settings(folds=2, steps=2, lr=0.1))
