"""Frozen and tied variables through the Keras translations (``apply_spec``, ``build_optimizer``,
``penalty``) and the path's ``ModelProblem``: the same rule as torch's
(tests/adapter_torch/test_frozen_tied.py). Keras's own ``model.losses`` already skips the
regularizers of non-trainable variables; regcore agrees with it, and never trains or decays a
frozen variable, unless the spec says ``include_frozen=True``."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from regcore import (  # noqa: E402
    L2,
    DecoupledWeightDecay,
    Rule,
    Select,
    Spec,
    SpecError,
    load_backend,
)
from regcore_adapters.keras.params import model_params  # noqa: E402
from regcore_adapters.tf.keras_native import apply_spec, build_optimizer, penalty  # noqa: E402
from regcore_apps.path import Settings  # noqa: E402
from regcore_apps.path.keras_problem import ModelProblem  # noqa: E402

L2_ALL = Spec([Rule(L2(0.1, convention="sum"), Select())],
              [DecoupledWeightDecay(0.01, Select())])
INCLUDE_FROZEN = Select(include_frozen=True)


def _frozen_net() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="features"),
                              keras.layers.Dense(2, name="head")])
    model.get_layer("features").trainable = False
    return model


def _head_sq(model: keras.Model) -> float:
    return sum(float(np.sum(np.square(v.numpy()))) for v in model.get_layer("head").weights)


def _features(model: keras.Model) -> list[np.ndarray]:
    return [v.numpy().copy() for v in model.get_layer("features").weights]


def test_frozen_variables_are_marked_and_left_out():
    model = _frozen_net()
    assert [(p.info.name, p.info.trainable) for p in model_params(model)] == [
        ("features.kernel", False), ("features.bias", False),
        ("head.kernel", True), ("head.bias", True)]
    assert float(penalty(L2_ALL, model)()) == pytest.approx(0.1 * _head_sq(model), rel=1e-6)
    apply_spec(L2_ALL, model)
    assert model.get_layer("features").kernel_regularizer is None
    assert float(sum(model.losses)) == pytest.approx(0.1 * _head_sq(model), rel=1e-6)


def test_fit_with_apply_spec_and_build_optimizer_leaves_a_frozen_layer():
    model = _frozen_net()
    before = _features(model)
    apply_spec(L2_ALL, model)
    model.compile(build_optimizer(L2_ALL, model, keras.optimizers.SGD, learning_rate=0.1),
                  loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, _features(model), strict=True))


def test_include_frozen_where_keras_cannot_honour_it_is_refused():
    model = _frozen_net()
    with pytest.raises(SpecError, match="'features.kernel' is frozen .* model.losses skips"):
        apply_spec(Spec([Rule(L2(0.1, convention="sum"), INCLUDE_FROZEN)]), model)
    with pytest.raises(SpecError, match="frozen parameter 'features.kernel'"):
        build_optimizer(Spec(weight_decay=[DecoupledWeightDecay(0.01, INCLUDE_FROZEN)]), model,
                        keras.optimizers.SGD)
    spec = Spec([Rule(L2(0.1, convention="sum"), INCLUDE_FROZEN)])  # penalty() is explicit
    total = _head_sq(model) + sum(float(np.sum(v * v)) for v in _features(model))
    assert float(penalty(spec, model)()) == pytest.approx(0.1 * total, rel=1e-6)


def test_the_path_never_steps_a_frozen_variable():
    model = _frozen_net()
    x = np.random.default_rng(0).normal(size=(8, 3))
    y = np.random.default_rng(1).normal(size=(8, 2))
    fitter = ModelProblem("frozen", model, "mse", x, y).fitter(
        load_backend("tf"), Settings(lr=0.1, steps=3, dtype="float32"))
    start = fitter.start()
    fitted, _ = fitter.fit(L2_ALL, start, fitter.data(np.arange(8)), 0.1)
    for name in ("features.kernel", "features.bias"):
        np.testing.assert_array_equal(fitted[name].numpy(), start[name].numpy())
    assert not np.array_equal(fitted["head.kernel"].numpy(), start["head.kernel"].numpy())


class TiedHead(keras.layers.Layer):
    """An output head that reuses an embedding table as its kernel (weight tying)."""

    def __init__(self, table: keras.Variable, **kwargs) -> None:
        super().__init__(**kwargs)
        self.table = table  # tracked: the same variable in a second layer

    def call(self, h):
        return keras.ops.matmul(h, keras.ops.transpose(self.table))


class Tied(keras.Model):
    def __init__(self, head_first: bool) -> None:
        super().__init__()
        emb = keras.layers.Embedding(6, 3, name="emb")
        emb.build((None,))
        head = TiedHead(emb.embeddings, name="head")
        for name, layer in (("head", head), ("emb", emb))[::1 if head_first else -1]:
            setattr(self, name, layer)

    def call(self, ids):
        return self.head(self.emb(ids))


@pytest.mark.parametrize("head_first", [False, True])
def test_a_tied_variable_counts_once_in_either_order(head_first):
    model = Tied(head_first)
    model(np.zeros((1, 2), dtype="int32"))
    (only,) = model_params(model)
    assert {only.info.name, only.info.aliases[0].name} == {"emb.embeddings", "head.embeddings"}
    spec = Spec([Rule(L2(0.1, convention="sum"), Select())])
    table = model.emb.embeddings.numpy()
    assert float(penalty(spec, model)()) == pytest.approx(0.1 * float(np.sum(table * table)),
                                                          rel=1e-6)
    with pytest.raises(SpecError, match=r"shared parameter .* as 'head\.embeddings' \(weight\) "
                                        r"but not as 'emb\.embeddings' \(embedding\)"):
        penalty(Spec([Rule(L2(0.1, convention="sum"))]), model)
