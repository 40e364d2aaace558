"""Activity penalties in Keras: the pinned Keras divides every ``activity_regularizer`` loss by
the output's batch size (Keras 3.15, ``Layer.__call__``), which is regcore's ``batch_mean``;
``apply_spec`` writes ``batch_mean`` items as Keras's own regularizers and ``sum`` items through
``BatchSum``, which survives a ``.keras`` save; ``penalty()`` refuses them."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from regcore import L1, L2, Activity, Spec, SpecError  # noqa: E402
from regcore_adapters.keras.regularizers import BatchSum  # noqa: E402
from regcore_adapters.tf.keras_native import apply_spec, penalty  # noqa: E402

X = np.random.default_rng(0).standard_normal((5, 3))


def _model(**dense_kwargs):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((3,)),
                             keras.layers.Dense(4, activation="tanh", name="dense_0",
                                                **dense_kwargs),
                             keras.layers.Dense(2, name="dense_1")])


def test_the_pinned_keras_divides_an_activity_loss_by_the_batch_size():
    model = _model(activity_regularizer=keras.regularizers.L2(0.01))
    model(X)
    hidden = keras.Model(model.inputs, model.get_layer("dense_0").output)(X)
    out = np.asarray(hidden, dtype=np.float64)  # after the activation: Dense's own output
    assert len(model.losses) == 1
    np.testing.assert_allclose(float(model.losses[0]), 0.01 * np.sum(out**2) / len(X),
                               rtol=1e-6)


@pytest.mark.parametrize(("reduction", "divided"), [("batch_mean", True), ("sum", False)])
def test_apply_spec_writes_each_reduction(reduction, divided, tmp_path):
    model = _model()
    model(X)
    apply_spec(Spec(activity=(Activity(L1(0.02, convention="sum"), "dense_0", reduction),)),
               model)
    reg = model.get_layer("dense_0").activity_regularizer
    assert isinstance(reg, BatchSum) != divided
    model(X)
    hidden = np.asarray(keras.Model(model.inputs, model.get_layer("dense_0").output)(X))
    want = 0.02 * np.sum(np.abs(hidden)) / (len(X) if divided else 1)
    np.testing.assert_allclose(float(sum(model.losses)), want, rtol=1e-5)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    reloaded(X)
    np.testing.assert_allclose(float(sum(reloaded.losses)), want, rtol=1e-5)


def test_a_layer_with_an_activity_regularizer_is_not_overwritten_silently():
    model = _model(activity_regularizer=keras.regularizers.L2(0.5))
    model(X)
    spec = Spec(activity=(Activity(L2(0.01, convention="sum"), "dense_0"),))
    with pytest.raises(SpecError, match="already has the activity_regularizer"):
        apply_spec(spec, model)
    apply_spec(spec, model, replace=True)
    assert float(model.get_layer("dense_0").activity_regularizer.l2) == pytest.approx(0.01)


def test_penalty_refuses_activity_items():
    model = _model()
    model(X)
    with pytest.raises(SpecError, match="attach it with apply_spec"):
        penalty(Spec(activity=(Activity(L2(0.01, convention="sum"), "dense_0"),)), model)


def test_read_setup_reads_activity_regularizers_back():
    from regcore_adapters.keras.reading import layer_names, read_setup

    model = _model(activity_regularizer=keras.regularizers.L2(0.01))
    model(X)
    spec = Spec(activity=(Activity(L1(0.02, convention="sum"), "dense_1", "sum"),))
    apply_spec(spec, model)
    reading = read_setup(model)
    assert reading.spec.activity == (
        Activity(L2(0.01, convention="sum"), "dense_0"),
        # Keras 3.15's L1 holds its coefficient as a float32 (from_keras reads what it holds)
        Activity(L1(float(np.float32(0.02)), convention="sum"), "dense_1", "sum"))
    plan = reading.spec.resolve([], layer_names(model))
    assert [(a.layer, a.reduction) for a in plan.activity] == [("dense_0", "batch_mean"),
                                                              ("dense_1", "sum")]


def test_an_attention_projections_activity_regularizer_survives_a_save(tmp_path):
    """The attention layer's config carries its projections' activity regularizers too (Keras
    saves a nested layer only through its parent's config)."""
    from regcore import Network
    from regcore.network import Embedding, GlobalAvgPool, SelfAttention
    from regcore_adapters.keras.layers import build_network

    net = Network((4,), (Embedding("embed", 7, 4), SelfAttention("attention", 4, 2),
                         GlobalAvgPool()), "softmax_xent")
    rng = np.random.default_rng(1)
    model = build_network(net, {p.name: rng.standard_normal(p.shape).astype("float32")
                                for p in net.params()})
    ids = rng.integers(0, 7, size=(3, 4))
    apply_spec(Spec(activity=(Activity(L2(0.1, convention="sum"), "attention.query", "sum"),)),
               model)
    model(ids)
    before = float(sum(model.losses))
    assert before > 0
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    reloaded(ids)
    np.testing.assert_allclose(float(sum(reloaded.losses)), before, rtol=1e-6)
