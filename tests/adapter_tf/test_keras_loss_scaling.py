"""Mixed-precision loss scaling with Keras 3's ``LossScaleOptimizer``: the regularization losses
that :func:`apply_spec` attaches are scaled with the data loss.

Keras 3.15 (read from its source): ``Model.train_step`` (TensorFlow trainer) computes
``loss = compute_loss(...)``, which adds ``Σ model.losses`` (the regularizers) to the compiled
loss, and only then ``loss = optimizer.scale_loss(loss)`` — ``loss·S`` for a
``LossScaleOptimizer``, ``loss`` for any other optimizer; ``LossScaleOptimizer.apply`` divides
the gradients by ``S`` (skipping the step and halving ``S`` if any is not finite) before the
inner optimizer's update. ``compile`` wraps the optimizer in one itself when the model's dtype
policy is ``mixed_float16`` (``auto_scale_loss=True``). A hand-written ``tf.GradientTape`` loop
calls ``optimizer.scale_loss`` on data loss plus ``model.losses`` itself.

Each training run below uses ``LossScaleOptimizer(SGD or Adam, initial_scale=S)`` and the bare
optimizer, through ``model.fit`` and through a tape loop, with Keras's own ``L2`` (``l2``) and
with ``SpecRegularizer`` (group lasso) plus ``L1`` (``group_lasso_l1``). In float32 the
parameters after K steps are bitwise equal: ``S`` is a power of two, so scaling and unscaling are
exact, and every backward operation, linear in the incoming gradient, commutes with them. A
penalty left unscaled would reach the update divided by ``S``, and the runs would differ.

Under ``mixed_float16`` (float16 computations; float32 variables and regularization losses) that
argument needs every float16 gradient in float16's normal range, and an unscaled one can
underflow — the reason for scaling: observed here, a ``model.fit`` Adam run differs from its
unscaled twin in 2 of 32 kernel entries by 3e-5 relative. So under ``mixed_float16`` the tests
check the gradients instead: the scaled penalty's gradient is exactly ``S`` times the unscaled
one (both float32), and the scaled total's gradient is the scaled data loss's plus it.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from regcore import L1, L2, GroupLasso, Rule, Select, Spec  # noqa: E402
from regcore_adapters.tf.keras_native import apply_spec  # noqa: E402

STEPS = 5
SCALE = 2.0**10
U32 = 2.0**-24
SPECS = {
    "l2": Spec(penalties=[Rule(L2(0.05, convention="sum"))]),
    "group_lasso_l1": Spec(penalties=[
        Rule(GroupLasso(0.05, convention="sum", axis=0)),
        Rule(L1(0.01, convention="sum"), Select(roles=["bias"])),
    ]),
}
OPTIMIZERS = {"sgd": (keras.optimizers.SGD, 0.1), "adam": (keras.optimizers.Adam, 0.01)}
POLICIES = ("float32", "mixed_float16")

_RNG = np.random.default_rng(3)
X = _RNG.standard_normal((32, 4)).astype(np.float32)
Y = _RNG.standard_normal((32, 3)).astype(np.float32)
WEIGHTS = [_RNG.normal(0, 0.5, shape).astype(np.float32) for shape in ((4, 8), (8,), (8, 3), (3,))]


@contextmanager
def policy(name: str):
    """Keras's global dtype policy set to ``name`` inside the block (restored after)."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def build(spec: Spec) -> keras.Sequential:
    """Two ``Dense`` layers (tanh hidden), fixed initial weights, ``spec`` applied."""
    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(8, activation="tanh", name="dense_0"),
                              keras.layers.Dense(3, name="dense_1")])
    model.set_weights(WEIGHTS)
    apply_spec(spec, model)
    return model


def optimizer(name: str, scale: float | None) -> keras.optimizers.Optimizer:
    cls, lr = OPTIMIZERS[name]
    inner = cls(learning_rate=lr)
    if scale is None:
        return inner
    return keras.mixed_precision.LossScaleOptimizer(inner, initial_scale=scale)


def train(path: str, spec: Spec, opt_name: str, scale: float | None) -> list[np.ndarray]:
    """``STEPS`` full-batch steps through ``model.fit`` or a ``GradientTape`` loop."""
    model, opt = build(spec), optimizer(opt_name, scale)
    loss_fn = keras.losses.MeanSquaredError()
    if path == "fit":
        model.compile(optimizer=opt, loss=loss_fn, auto_scale_loss=False)
        model.fit(tf.data.Dataset.from_tensors((X, Y)).repeat(STEPS), epochs=1, verbose=0,
                  shuffle=False)
    else:
        variables = model.trainable_variables
        for _ in range(STEPS):
            with tf.GradientTape() as tape:
                loss = loss_fn(Y, model(X, training=True))
                if model.losses:
                    loss = loss + tf.add_n(model.losses)
                if scale is not None:
                    loss = opt.scale_loss(loss)
            opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
    if scale is not None:
        assert float(opt.dynamic_scale.numpy()) == scale  # no step skipped for inf/NaN
    return [w.numpy() for w in model.weights]


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("spec", list(SPECS))
@pytest.mark.parametrize("path", ["fit", "tape"])
def test_loss_scale_optimizer_training_equals_unscaled(path, spec, opt_name):
    scaled = train(path, SPECS[spec], opt_name, SCALE)
    plain = train(path, SPECS[spec], opt_name, None)
    for got, want in zip(scaled, plain, strict=True):
        np.testing.assert_array_equal(got, want)
    unpenalized = train(path, Spec(), opt_name, SCALE)  # the penalty is not a no-op here
    assert any(not np.array_equal(a, b) for a, b in zip(scaled, unpenalized, strict=True))


@pytest.mark.parametrize("dtype_policy", POLICIES)
@pytest.mark.parametrize("spec", list(SPECS))
def test_scaled_gradient_is_scaled_data_plus_scaled_penalty(spec, dtype_policy):
    """With ``opt.scale_loss`` on data loss plus ``Σ model.losses``: the penalty part of the tape
    gradient is exactly ``S·∇penalty`` (float32 in both policies), and the total is the scaled
    data gradient plus it, up to the one float32 addition (``|g − (d + p)| ≤ 2u·(|d| + |p|)``
    entrywise, ``u = 2⁻²⁴``). In float32 the total is also exactly ``S`` times the unscaled
    total."""
    with policy(dtype_policy):
        model, opt = build(SPECS[spec]), optimizer("sgd", SCALE)
        variables = model.trainable_variables
        sources = [v.value for v in variables]  # ZERO for unconnected needs the tf.Variables
        loss_fn = keras.losses.MeanSquaredError()
        assert {r.dtype for r in model.losses} == {tf.float32}  # float32 even under mixed
        zero = tf.UnconnectedGradients.ZERO
        with tf.GradientTape(persistent=True) as tape:
            data = loss_fn(Y, model(X, training=True))
            penalty = tf.add_n(model.losses)
            total = data + penalty
            scaled = [opt.scale_loss(t) for t in (total, data, penalty)]
        g_total, g_data, g_penalty = (tape.gradient(t, sources, unconnected_gradients=zero)
                                      for t in scaled)
        g_unscaled = tape.gradient(total, sources)
        g_plain_penalty = tape.gradient(penalty, sources, unconnected_gradients=zero)
        del tape
    assert any(bool(np.any(g.numpy() != 0)) for g in g_penalty)
    for i, var in enumerate(variables):
        g, d, p = g_total[i].numpy(), g_data[i].numpy(), g_penalty[i].numpy()
        np.testing.assert_array_equal(p, SCALE * g_plain_penalty[i].numpy(), err_msg=var.path)
        assert np.all(np.abs(g - (d + p)) <= 2 * U32 * (np.abs(d) + np.abs(p))), var.path
        if dtype_policy == "float32":
            np.testing.assert_array_equal(g, SCALE * g_unscaled[i].numpy(), err_msg=var.path)


def test_mixed_float16_compile_wraps_the_optimizer_and_scales_the_penalty():
    """Under the ``mixed_float16`` policy ``compile`` wraps the optimizer in a
    ``LossScaleOptimizer`` itself; the spec's regularization losses stay float32, and the scaled
    penalty's gradient is ``S`` (Keras's default ``2¹⁵``) times the unscaled one."""
    with policy("mixed_float16"):
        model = build(SPECS["group_lasso_l1"])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        opt = model.optimizer
        assert isinstance(opt, keras.mixed_precision.LossScaleOptimizer)
        assert model.layers[0].compute_dtype == "float16"
        assert {r.dtype for r in model.losses} == {tf.float32}
        variables = model.trainable_variables
        with tf.GradientTape(persistent=True) as tape:
            penalty = tf.add_n(model.losses)
            scaled_penalty = opt.scale_loss(penalty)
        scale = float(opt.initial_scale)
        for var, g_s, g in zip(variables, tape.gradient(scaled_penalty, variables),
                               tape.gradient(penalty, variables), strict=True):
            np.testing.assert_array_equal(g_s.numpy(), scale * g.numpy(), err_msg=var.path)
        del tape
