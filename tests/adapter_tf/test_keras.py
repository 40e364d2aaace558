"""The Keras-native translation: roles by layer type, regularizers from terms and back, applying a
spec to a model, saving and reloading it, and decoupled decay as an optimizer's weight_decay.

The conformance suite's ``keras_*`` native translations check the numbers on the scenario
networks; these tests cover the model shapes and error cases those networks do not have.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from regcore import (  # noqa: E402
    L1,
    L2,
    DecoupledWeightDecay,
    ElasticNet,
    GroupLasso,
    ModelSpec,
    Optimizer,
    Orthogonal,
    Rule,
    Select,
    Spec,
    SpecError,
    UnsupportedError,
)
from regcore_adapters.keras.params import model_params  # noqa: E402
from regcore_adapters.keras.regularizers import (  # noqa: E402
    SpecRegularizer,
    from_keras,
    to_keras,
)
from regcore_adapters.numpy import NumpyBackend  # noqa: E402
from regcore_adapters.tf import TFBackend, keras_training  # noqa: E402
from regcore_adapters.tf.keras_native import (  # noqa: E402
    apply_spec,
    build_optimizer,
    penalty,
    resolve,
)


def _mixed_model(dtype: str = "float64") -> keras.Model:
    """Embedding → Conv1D → BatchNorm → LayerNorm → Dense, with every role present."""
    inputs = keras.Input((6,), dtype="int32")
    h = keras.layers.Embedding(10, 4, name="embed", dtype=dtype)(inputs)
    h = keras.layers.Conv1D(3, 2, name="conv", dtype=dtype)(h)
    h = keras.layers.BatchNormalization(name="bn", dtype=dtype)(h)
    h = keras.layers.LayerNormalization(name="ln", dtype=dtype)(h)
    h = keras.layers.Flatten(dtype=dtype)(h)
    out = keras.layers.Dense(2, name="head", dtype=dtype)(h)
    model = keras.Model(inputs, out)
    rng = np.random.default_rng(0)
    for v in model.trainable_variables:  # non-trivial values everywhere (BN/LN start at 1, 0)
        v.assign(rng.standard_normal(tuple(v.shape)))
    return model


def _reference_penalty(spec: Spec, model: keras.Model) -> float:
    plan, by_name = resolve(spec, model)
    values = {n: np.asarray(p.variable.numpy(), dtype=np.float64) for n, p in by_name.items()}
    return float(NumpyBackend().penalty(plan, values)[0])


def _losses(model: keras.Model) -> float:
    return float(tf.add_n(model.losses)) if model.losses else 0.0


def test_roles_and_names_come_from_layer_types():
    roles = {p.info.name: p.info.role for p in model_params(_mixed_model())}
    assert roles == {
        "embed.embeddings": "embedding", "conv.kernel": "weight", "conv.bias": "bias",
        "bn.gamma": "norm_scale", "bn.beta": "bias", "ln.gamma": "norm_scale",
        "ln.beta": "bias", "head.kernel": "weight", "head.bias": "bias",
    }  # BN's moving statistics are not trainable, so never parameters


def test_nested_models_name_the_path_and_list_a_shared_layer_once():
    block = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, name="inner")],
                             name="block")
    shared = keras.layers.Dense(3, name="shared")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, shared(block(shared(inputs))))
    names = [p.info.name for p in model_params(model)]
    assert names == ["shared.kernel", "shared.bias", "block.inner.kernel", "block.inner.bias"]


def test_model_params_rejects_non_models_and_unbuilt_models():
    with pytest.raises(TypeError, match="Keras Model or Layer"):
        model_params(object())
    with pytest.raises(ValueError, match="not built"):
        model_params(keras.Sequential([keras.layers.Dense(2)]))


@pytest.mark.parametrize(("term", "keras_cls", "config"), [
    (L2(0.02, convention="half"), keras.regularizers.L2, {"l2": 0.01}),
    (L2(0.02, convention="torch_weight_decay"), keras.regularizers.L2, {"l2": 0.01}),
    # Keras 3.15's L1 keeps its coefficient as a float32 tensor (its L2 a Python float)
    (L1(0.03, convention="sum"), keras.regularizers.L1, {"l1": float(np.float32(0.03))}),
    (ElasticNet(0.01, 0.04, convention="half"), keras.regularizers.L1L2,
     {"l1": 0.01, "l2": 0.02}),
])
def test_float32_variables_get_keras_builtins_with_exact_conversion(term, keras_cls, config):
    regularizer = to_keras([term], "float32")
    assert type(regularizer) is keras_cls
    assert regularizer.get_config() == config


def test_keras_builtins_are_used_only_where_keras_computes_the_spec_number():
    # Keras casts a coefficient through float32: L2(0.01) on float64 is 0.009999999776...·Σw²
    w = tf.constant(np.ones(3))
    assert float(keras.regularizers.L2(0.01)(w)) != 0.03
    assert isinstance(to_keras([L2(0.01, convention="sum")], "float64"), SpecRegularizer)
    assert float(to_keras([L2(0.01, convention="sum")], "float64")(w)) == 0.03
    assert type(to_keras([L2(0.5, convention="sum")], "float64")) is keras.regularizers.L2
    # and sums float16 in float16: regcore accumulates in float32
    assert isinstance(to_keras([L2(0.5, convention="sum")], "float16"), SpecRegularizer)
    for terms in ([GroupLasso(0.1, convention="sum", axis=0)],
                  [Orthogonal(0.1, "rows", convention="sum")],
                  [L2(0.5, convention="sum"), L1(0.5, convention="sum")]):
        assert isinstance(to_keras(terms, "float32"), SpecRegularizer)


def test_float16_penalty_accumulates_in_float32():
    w = np.full(4096, 0.1)
    got = to_keras([L2(1.0, convention="sum")], "float16")(tf.constant(w, dtype=tf.float16))
    ref = 4096 * float(np.float16(0.1)) ** 2
    assert got.dtype == tf.float32
    assert abs(float(got) - ref) <= 4096 * 2.0**-24 * ref
    naive = keras.regularizers.L2(1.0)(tf.constant(w, dtype=tf.float16))
    assert abs(float(naive) - ref) > 4096 * 2.0**-24 * ref  # a float16 result misses it


@pytest.mark.parametrize(("regularizer", "terms"), [
    (keras.regularizers.L2(0.01), (L2(0.01, convention="sum"),)),
    (keras.regularizers.L1(0.5), (L1(0.5, convention="sum"),)),
    (keras.regularizers.L1L2(l1=0.01, l2=0.02), (ElasticNet(0.01, 0.02, convention="sum"),)),
    (keras.regularizers.L1L2(l2=0.02), (L2(0.02, convention="sum"),)),
    (keras.regularizers.OrthogonalRegularizer(0.5, "columns"),
     (Orthogonal(0.5, "columns", convention="sum"),)),
    (None, ()),
])
def test_from_keras_reads_builtins_in_the_sum_convention(regularizer, terms):
    assert from_keras(regularizer) == terms


def test_from_keras_refuses_a_regularizer_whose_maths_is_unknown():
    class Custom(keras.regularizers.Regularizer):
        def __call__(self, x):
            return tf.reduce_sum(x)

    with pytest.raises(SpecError, match="Custom"):
        from_keras(Custom())


SPEC = Spec(penalties=(
    Rule(L2(0.02, convention="half")),
    Rule(GroupLasso(0.05, convention="sum", axis=-1), Select(roles=("weight",), name="conv.*")),
    Rule(L1(0.01, convention="sum"), Select(roles=("embedding",))),
    Rule(L2(0.003, convention="sum"), Select(roles=("norm_scale",))),
))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_model_losses_carry_exactly_the_spec_penalty(dtype):
    model = _mixed_model(dtype)
    plan = apply_spec(SPEC, model)
    got, ref = _losses(model), _reference_penalty(SPEC, model)
    u = 2.0**-53 if dtype == "float64" else 2.0**-24
    assert abs(got - ref) <= 2 * 200 * u * ref
    assert len(model.losses) == len({a.param for a in plan.penalties})
    assert model.get_layer("head").bias.regularizer is None  # biases are not weights


def test_penalty_function_equals_model_losses_in_a_tape():
    model = _mixed_model()
    fn = penalty(SPEC, model)
    apply_spec(SPEC, model)
    with tf.GradientTape(persistent=True) as tape:
        a, b = fn(), tf.add_n(model.losses)
    for v in model.trainable_variables:
        ga, gb = tape.gradient(a, v.value), tape.gradient(b, v.value)
        if ga is None:
            assert gb is None
        else:
            np.testing.assert_allclose(ga.numpy(), gb.numpy(), rtol=1e-13, atol=1e-15)
    assert abs(float(a) - float(b)) <= 1e-13 * float(a)


def test_apply_spec_refuses_to_stack_on_an_existing_regularizer_unless_told():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
        2, name="d", kernel_regularizer=keras.regularizers.L2(0.5))])
    spec = Spec(penalties=(Rule(L2(0.01, convention="sum")),))
    with pytest.raises(SpecError, match="already has the regularizer"):
        apply_spec(spec, model)
    apply_spec(spec, model, replace=True)
    assert model.get_layer("d").kernel_regularizer.get_config() == {"l2": 0.01}
    assert len(model.losses) == 1


def test_apply_spec_refuses_a_variable_keras_would_not_save_the_regularizer_of():
    class Scale(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1], 2), name="w")

        def call(self, x):
            return x @ self.w

    model = keras.Sequential([keras.Input((3,)), Scale(name="scale")])
    with pytest.raises(SpecError, match="keras_native.penalty"):
        apply_spec(Spec(penalties=(Rule(L2(0.01, convention="sum")),)), model)
    assert model.losses == []  # nothing attached on failure


def test_apply_spec_reports_a_selection_that_matches_nothing():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    with pytest.raises(SpecError, match="selects no parameter"):
        apply_spec(Spec(penalties=(Rule(L2(0.01, convention="sum"),
                                        Select(roles=("embedding",))),)), model)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_saved_model_reloads_with_the_same_penalty(tmp_path, dtype):
    model = _mixed_model(dtype)
    apply_spec(SPEC, model)
    before = _losses(model)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert _losses(reloaded) == before
    kinds = {type(v.regularizer).__name__ for v in reloaded.trainable_variables
             if v.regularizer is not None}
    assert "SpecRegularizer" in kinds


def test_a_fresh_process_reloads_after_importing_the_adapter(tmp_path):
    model = _mixed_model()
    apply_spec(SPEC, model)
    model.save(tmp_path / "m.keras")
    code = (
        "import keras, tensorflow as tf\n"
        "import regcore_adapters.keras.regularizers\n"
        f"m = keras.models.load_model({str(tmp_path / 'm.keras')!r})\n"
        "print(repr(float(tf.add_n(m.losses))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert float(out.stdout.strip().splitlines()[-1]) == _losses(model)


def test_build_optimizer_decays_selected_variables_only():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    for v in model.trainable_variables:
        v.assign(np.ones(tuple(v.shape)))
    spec = Spec(weight_decay=(DecoupledWeightDecay(0.1, Select(roles=("bias",))),))
    opt = build_optimizer(spec, model, keras.optimizers.SGD, learning_rate=0.5)
    zeros = [tf.zeros_like(v) for v in model.trainable_variables]
    opt.apply_gradients(zip(zeros, model.trainable_variables, strict=True))
    layer = model.get_layer("d")
    np.testing.assert_array_equal(layer.kernel.numpy(), 1.0)
    np.testing.assert_allclose(layer.bias.numpy(), 1 - 0.5 * 0.1, rtol=1e-7)


def test_build_optimizer_refusals():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    two_rates = Spec(weight_decay=(DecoupledWeightDecay(0.1, Select(roles=("bias",))),
                                   DecoupledWeightDecay(0.2)))
    with pytest.raises(SpecError, match="one weight_decay"):
        build_optimizer(two_rates, model, keras.optimizers.AdamW, learning_rate=0.1)
    with pytest.raises(SpecError, match="do not pass it"):
        build_optimizer(Spec(), model, keras.optimizers.SGD, weight_decay=0.1)
    with pytest.raises(SpecError, match="keras.optimizers.Optimizer class"):
        build_optimizer(Spec(), model, tf.Module)


def test_no_decay_means_no_weight_decay():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    opt = build_optimizer(Spec(), model, keras.optimizers.AdamW, learning_rate=0.1)
    assert opt.weight_decay == 0.0  # not AdamW's default 0.004 (AdamW refuses None)
    assert build_optimizer(Spec(), model, keras.optimizers.SGD,
                           learning_rate=0.1).weight_decay is None


def test_keras_translations_refuse_adam_with_the_reason():
    params = {"dense_0.kernel": tf.zeros((1, 1), tf.float64),
              "dense_0.bias": tf.zeros((1,), tf.float64)}
    model = ModelSpec((1, 1), None, "mse")
    with pytest.raises(UnsupportedError, match="ε"):
        keras_training.train("keras_loop", model, Spec(), params, tf.zeros((2, 1), tf.float64),
                             tf.zeros((2, 1), tf.float64), optimizer=Optimizer("adam", 0.1),
                             steps=1)


def test_backend_declares_the_keras_translations():
    assert TFBackend.native_translations == tuple(keras_training.TRANSLATIONS)
    assert TFBackend.native_penalty_translations == tuple(keras_training.PENALTY_TRANSLATIONS)
    assert keras.config.floatx() == "float32"  # the translations restore floatx
