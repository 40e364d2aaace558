"""The scenario network as a Keras model, driven through the native Keras translation, for the
conformance suite.

Every translation builds ``keras.Sequential`` of ``Dense`` layers named ``dense_{i}`` (Keras's
kernel layout is the canonical one), loads the canonical parameters and applies the spec with
:func:`~regcore_adapters.tf.keras_native.apply_spec` (penalties → layer regularizers) and
:func:`~regcore_adapters.tf.keras_native.build_optimizer` (decoupled decay → ``weight_decay``):

Training translations (:data:`TRANSLATIONS`), full-batch ``keras.optimizers.SGD``:

* ``keras_loop``: Keras's custom-training-loop idiom, a ``tf.GradientTape`` loop over
  ``loss(y, model(x)) + Σ model.losses`` and ``optimizer.apply_gradients``;
* ``keras_fit``: ``model.compile`` + ``model.fit``, one epoch of ``steps`` full batches (Keras adds
  ``model.losses`` to the loss itself).

Keras's Adam is not the reference's (torch-style) Adam — Keras adds ε to ``√v`` before the bias
correction, torch after — so the Keras translations train with SGD only and raise
:class:`regcore.UnsupportedError` for Adam.

Penalty translations (:data:`PENALTY_TRANSLATIONS`): ``keras_losses`` is ``Σ model.losses`` and
its tape gradient; ``keras_saved`` is the same after ``model.save`` to a ``.keras`` file and
``keras.models.load_model`` back.

:func:`plan` is what every translation resolves the spec to on that model
(:func:`~regcore_adapters.tf.keras_native.resolve`, the resolution
:func:`~regcore_adapters.tf.keras_native.apply_spec` and
:func:`~regcore_adapters.tf.keras_native.build_optimizer` run), for the suite to compare with
the reference's plan.

Everything runs under ``keras.config.floatx()`` set to the parameters' dtype (restored after), as
a Keras user training in float64 sets it, so the optimizer's learning rate is not rounded to
float32.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from regcore import ModelSpec, Network, Optimizer, Plan, Spec, UnsupportedError, capabilities
from regcore_adapters.keras import layers as keras_layers
from regcore_adapters.tf.keras_native import apply_spec, build_optimizer, resolve


@contextmanager
def floatx(dtype: tf.DType) -> Iterator[None]:
    """``keras.config.floatx()`` set to ``dtype`` inside the block."""
    before = keras.config.floatx()
    keras.config.set_floatx(dtype.name)
    try:
        yield
    finally:
        keras.config.set_floatx(before)


def build_model(model: ModelSpec | Network, params: Mapping[str, tf.Tensor]) -> keras.Model:
    """``Dense`` layers ``dense_0..`` with the scenario's activation after hidden layers, built in
    the parameters' dtype and loaded with them; a :class:`regcore.Network` as Keras's own conv,
    norm, embedding and attention layers (:func:`keras_layers.build_network`)."""
    if isinstance(model, Network):
        return keras_layers.build_network(model, params)
    dtype = next(iter(params.values())).dtype
    layers = [keras.Input((model.sizes[0],), dtype=dtype.name)]
    for i, units in enumerate(model.sizes[1:]):
        hidden = i < model.layers - 1
        layers.append(keras.layers.Dense(units, activation=model.activation if hidden else None,
                                         name=f"dense_{i}", dtype=dtype.name))
    net = keras.Sequential(layers)
    for i in range(model.layers):
        layer = net.get_layer(f"dense_{i}")
        layer.kernel.assign(params[f"dense_{i}.kernel"])
        layer.bias.assign(params[f"dense_{i}.bias"])
    return net


def canonical_variables(net: keras.Model, model: ModelSpec | Network
                        ) -> dict[str, keras.Variable]:
    """The network's variables under their canonical names."""
    if isinstance(model, Network):
        return keras_layers.canonical_variables(net, model)
    out = {}
    for i in range(model.layers):
        layer = net.get_layer(f"dense_{i}")
        out[f"dense_{i}.kernel"] = layer.kernel
        out[f"dense_{i}.bias"] = layer.bias
    return out


class HalfSquaredError(keras.losses.Loss):
    """Per row ``½Σ_j (ŷ_j − y_j)²``; Keras's mean over the batch makes it ``Σ(ŷ−y)²/(2m)``."""

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return 0.5 * tf.reduce_sum(tf.square(y_pred - y_true), axis=-1)


def keras_loss(kind: str) -> keras.losses.Loss:
    """The scenario's data loss as a Keras loss (mean over the batch)."""
    if kind == "mse":
        return keras.losses.MeanSquaredError()
    if kind == "half_mse":
        return HalfSquaredError(name="half_mse")
    if kind == "softmax_xent":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    raise ValueError(f"unknown loss {kind!r}")


def _require_sgd(optimizer: Optimizer) -> None:
    """Refuse any optimizer but SGD before building anything (an Adam run is refused whatever
    the spec, so there is no model to build for it)."""
    if optimizer.name != "sgd":
        raise UnsupportedError(
            f"tf: the Keras translations train with keras.optimizers.SGD only; Keras's "
            f"{optimizer.name} adds ε to √v before the bias correction, the reference's "
            "(torch's) after"
        )


def sgd_optimizer(optimizer: Optimizer, spec: Spec,
                  net: keras.Model) -> keras.optimizers.Optimizer:
    """``keras.optimizers.SGD`` at ``optimizer``'s learning rate with ``spec``'s decoupled decay
    (:func:`~regcore_adapters.tf.keras_native.build_optimizer`); any other optimizer is an
    :class:`regcore.UnsupportedError`."""
    _require_sgd(optimizer)
    return build_optimizer(spec, net, keras.optimizers.SGD, learning_rate=optimizer.lr)


def tape_loop(net: keras.Model, opt: keras.optimizers.Optimizer, loss_fn: keras.losses.Loss,
              x: tf.Tensor, y: tf.Tensor, steps: int) -> None:
    """``keras_loop``: ``steps`` ``tf.GradientTape`` steps on ``loss + Σ model.losses``."""
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, net(x, training=True))
            if net.losses:
                loss = loss + tf.add_n(net.losses)
        grads = tape.gradient(loss, net.trainable_variables)
        opt.apply_gradients(zip(grads, net.trainable_variables, strict=True))


def fit(net: keras.Model, opt: keras.optimizers.Optimizer, loss_fn: keras.losses.Loss,
        x: tf.Tensor, y: tf.Tensor, steps: int) -> None:
    """``keras_fit``: ``model.compile`` + ``model.fit``, one epoch of ``steps`` full batches."""
    net.compile(optimizer=opt, loss=loss_fn)
    data = tf.data.Dataset.from_tensors((x, y)).repeat(steps)
    net.fit(data, epochs=1, verbose=0, shuffle=False)


TRANSLATIONS = {"keras_loop": tape_loop, "keras_fit": fit}
"""The training translations by name, each ``(net, optimizer, loss, x, y, steps) -> None``
(``TFBackend.native_translations``)."""


def _saved_and_reloaded(net: keras.Model) -> keras.Model:
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "model.keras"
        net.save(file)
        return keras.models.load_model(file)


PENALTY_TRANSLATIONS = {"keras_losses": lambda net: net, "keras_saved": _saved_and_reloaded}
"""The penalty translations by name, each the model whose ``model.losses`` is evaluated
(``TFBackend.native_penalty_translations``)."""


def _lookup(table: Mapping[str, Any], name: str, what: str) -> Any:
    return capabilities.lookup("tf", table, name, what)


def train(translation: str, model: ModelSpec | Network, spec: Spec,
          params: Mapping[str, tf.Tensor],
          x: tf.Tensor, y: tf.Tensor, *, optimizer: Optimizer,
          steps: int) -> dict[str, tf.Tensor]:
    run = _lookup(TRANSLATIONS, translation, "native_translations")
    _require_sgd(optimizer)
    with floatx(next(iter(params.values())).dtype), tf.device(x.device):
        net = build_model(model, params)
        apply_spec(spec, net)
        run(net, sgd_optimizer(optimizer, spec, net), keras_loss(model.loss), x, y, steps)
        return {k: tf.identity(v) for k, v in canonical_variables(net, model).items()}


def penalty(translation: str, model: ModelSpec | Network, spec: Spec,
            params: Mapping[str, tf.Tensor]) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """``Σ model.losses`` of the Keras model with ``spec`` applied (``keras_losses``), or of that
    model saved and reloaded (``keras_saved``), and its gradient by canonical name."""
    prepare = _lookup(PENALTY_TRANSLATIONS, translation, "native_penalty_translations")
    dtype = next(iter(params.values())).dtype
    with floatx(dtype), tf.device(next(iter(params.values())).device):
        net = build_model(model, params)
        apply_spec(spec, net)
        net = prepare(net)
        variables = canonical_variables(net, model)
        with tf.GradientTape() as tape:
            losses = net.losses
            value = tf.add_n(losses) if losses else tf.zeros((), dtype=dtype)
        grads = tape.gradient(value, [v.value for v in variables.values()],
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return value, dict(zip(variables, grads, strict=True))


def plan(translation: str, model: ModelSpec | Network, spec: Spec) -> Plan:
    """The plan ``translation`` runs: ``spec`` resolved on its Keras model by
    :func:`~regcore_adapters.tf.keras_native.resolve` (its variable names are the canonical ones
    already). The model is built once per ``model`` (zeros, float32): the resolution reads only
    names, shapes and layer types, so the loaded numbers and dtype do not enter it."""
    _lookup({**TRANSLATIONS, **PENALTY_TRANSLATIONS}, translation,
            "native_translations + native_penalty_translations")
    return resolve(spec, _plain_model(model))[0]


@functools.lru_cache(maxsize=16)
def _plain_model(model: ModelSpec | Network) -> keras.Model:
    zeros = {p.name: tf.constant(np.zeros(p.shape, np.float32)) for p in model.params()}
    with floatx(tf.float32):
        return build_model(model, zeros)
