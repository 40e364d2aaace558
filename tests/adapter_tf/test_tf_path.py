"""The regularization path on a user's own Keras model (``regcore_adapters.tf.path``): the same
answer as the path on the equivalent scenario network through the backend protocol."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from regcore import L1, L2, GroupLasso, Rule, Spec, SpecError, load_backend  # noqa: E402
from regcore.path import Settings, run  # noqa: E402
from regcore.path.data import problem  # noqa: E402
from regcore_adapters.tf.path import ModelProblem  # noqa: E402
from regcore_conformance.tolerance import Tolerance, network_chain  # noqa: E402


def _model_like(prob, dtype: str = "float64") -> keras.Sequential:
    """A ``keras.Sequential`` of ``Dense`` layers holding the problem's initial parameters (Keras
    kernels are the canonical ``(fan_in, fan_out)`` ones)."""
    sizes, layers = prob.model.sizes, [keras.Input((prob.model.sizes[0],), dtype=dtype)]
    for i in range(len(sizes) - 1):
        hidden = i < len(sizes) - 2
        layers.append(keras.layers.Dense(sizes[i + 1], dtype=dtype,
                                         activation=prob.model.activation if hidden else None))
    model = keras.Sequential(layers)
    for i, layer in enumerate(model.layers):
        layer.kernel.assign(prob.init[f"dense_{i}.kernel"].astype(dtype))
        layer.bias.assign(prob.init[f"dense_{i}.bias"].astype(dtype))
    return model


CASES = {
    "synthetic-l1": ("synthetic", Spec(penalties=(Rule(L1(0.05, convention="sum")),)),
                     (0.5, 0.2, 0.1), {"steps": 60, "lr": 0.2}),
    "synthetic-group_lasso": ("synthetic", Spec(penalties=(Rule(GroupLasso(
        0.1, convention="sum", axis=0)),)), (0.5, 0.2, 0.1), {"steps": 60, "lr": 0.2}),
    "iris-l2": ("iris", Spec(penalties=(Rule(L2(1e-3, convention="sum")),)),
                (0.1, 1e-2, 1e-3), {"steps": 20, "lr": 0.1}),
    "iris-l2-adam": ("iris", Spec(penalties=(Rule(L2(1e-3, convention="sum")),)),
                     (0.1, 1e-2), {"steps": 10, "lr": 0.01, "optimizer": "adam"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_users_model_gives_the_scenario_networks_path(case):
    data, spec, grid, extra = CASES[case]
    prob = problem(data)
    settings = Settings(folds=3, **extra)
    tf_backend = load_backend("tf")
    model = _model_like(prob)
    kept = [w.numpy().copy() for w in model.weights]
    ours = run(tf_backend, ModelProblem(data, model, prob.model.loss, prob.x, prob.y), spec,
               grid, settings)
    want = run(tf_backend, prob, spec, grid, settings)
    tol = Tolerance("float64", network_chain(prob.model.sizes, prob.x.shape[0]),
                    steps=settings.steps * len(grid)).value
    error = np.max(np.abs(np.subtract(ours["mean_val"], want["mean_val"])))
    assert error <= tol * np.max(np.abs(want["mean_val"]))
    assert ours["choice"] == want["choice"]
    assert all(np.array_equal(w.numpy(), k) for w, k in zip(model.weights, kept, strict=True))
    # the full-data fit at the choice, under the model's own names (Keras's canonical layout)
    kernel = model.layers[0].name + ".kernel"
    assert np.allclose(ours["final"][kernel], want["final"]["dense_0.kernel"], rtol=0,
                       atol=tol * np.max(np.abs(want["final"]["dense_0.kernel"])))
    if data == "synthetic":  # exact zeros through the proximal step, as the backend's
        assert np.any(np.asarray(want["final"]["dense_0.kernel"]) == 0)  # (the grid has some)
        assert np.array_equal(np.asarray(ours["final"][kernel]) == 0,
                              np.asarray(want["final"]["dense_0.kernel"]) == 0)


def test_a_float32_model_trains_in_the_paths_dtype_and_a_custom_loss_is_named():
    prob = problem("synthetic")

    def huber(out, y):
        return tf.reduce_mean(keras.losses.huber(y, out))

    model, settings = _model_like(prob, "float32"), Settings(folds=2, steps=5, lr=0.1)
    mine = ModelProblem("mine", model, huber, prob.x, prob.y)
    result = run(load_backend("tf"), mine, Spec(penalties=(Rule(L1(0.05, convention="sum")),)),
                 (0.1, 0.01), settings)
    assert result["model"] == {"model": "Sequential", "loss": "huber"}
    assert np.isfinite(result["mean_val"]).all()
    assert all(w.dtype == "float64" for w in mine.fitter(load_backend("tf"), settings).work.weights)
    assert all(w.dtype == "float32" for w in model.weights)  # the clone is float64, not it


def test_a_functional_model_with_a_nested_one_gives_the_sequential_models_path():
    prob = problem("iris")
    flat, sizes = _model_like(prob), prob.model.sizes
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
    results = [run(load_backend("tf"), ModelProblem("m", m, "softmax_xent", prob.x, prob.y),
                   spec, (0.1, 0.01), settings) for m in (flat, nested)]
    assert results[0]["mean_val"] == results[1]["mean_val"]
    assert "head.out.kernel" in results[1]["final"]  # the nested model's variables, by path


def test_model_problem_refuses_what_it_cannot_run():
    prob = problem("synthetic")
    with pytest.raises(SpecError, match="expected a Keras model"):
        ModelProblem("x", object(), "mse", prob.x, prob.y)
    with pytest.raises(SpecError, match="not built"):
        ModelProblem("x", keras.Sequential([keras.layers.Dense(1)]), "mse", prob.x, prob.y)
    with pytest.raises(SpecError, match="expected one of"):
        ModelProblem("x", _model_like(prob), "mae", prob.x, prob.y)
    with pytest.raises(SpecError, match="rows"):
        ModelProblem("x", _model_like(prob), "mse", prob.x, prob.y[:3])
    spec = Spec(penalties=(Rule(L1(0.05, convention="sum")),))
    model = ModelProblem("x", _model_like(prob), "mse", prob.x, prob.y)
    with pytest.raises(SpecError, match="runs on the tf backend"):
        run(load_backend("numpy"), model, spec, (0.1,), Settings(folds=2, steps=2, lr=0.1))
    with pytest.raises(SpecError, match="give lr"):
        run(load_backend("tf"), model, spec, (0.1,), Settings(folds=2, steps=2))

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

    subclassed = Subclassed()
    subclassed(prob.x[:1])
    with pytest.raises(SpecError, match="cannot copy Subclassed"):
        run(load_backend("tf"), ModelProblem("x", subclassed, "mse", prob.x, prob.y), spec,
            (0.1,), Settings(folds=2, steps=2, lr=0.1))
