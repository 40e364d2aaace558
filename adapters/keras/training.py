"""The scenario network as a Keras model, trained and penalized through the Keras-native
translation, for the conformance suite, on any Keras backend.

Every translation builds ``keras.Sequential`` of ``Dense`` layers named ``dense_{i}`` (Keras's
kernel layout is the canonical one), or a :class:`regcore.Network` from Keras's own layers,
loads the canonical parameters and applies the spec with
:func:`~regcore_adapters.keras.native.apply_spec` (penalties → layer regularizers) and
:func:`~regcore_adapters.keras.native.build_optimizer` (decoupled decay → ``weight_decay``).

Training translation (:data:`TRANSLATIONS`), full-batch ``keras.optimizers.SGD``: ``keras_fit``,
``model.compile`` + one epoch of ``model.fit`` over ``x`` and ``y`` repeated ``steps`` times in
batches of ``len(x)`` (Keras adds ``model.losses`` to the loss itself). The TensorFlow backend
adds its ``tf.GradientTape`` loop (``keras_loop``, :mod:`regcore_adapters.tf.keras_training`).

Keras's Adam is not the reference's (torch-style) Adam — Keras adds ε to ``√v`` before the bias
correction, torch after — so the Keras translations train with SGD only and raise
:class:`regcore.UnsupportedError` for Adam.

Penalty translations (:data:`PENALTY_TRANSLATIONS`): ``keras_losses`` is ``Σ model.losses`` and
its gradient (by the backend's autodiff, :mod:`.grad`); ``keras_saved`` is the same after
``model.save`` to a ``.keras`` file and ``keras.models.load_model`` back.

:func:`plan` is what every translation resolves the spec to on that model
(:func:`~regcore_adapters.keras.native.resolve`, the resolution
:func:`~regcore_adapters.keras.native.apply_spec` and
:func:`~regcore_adapters.keras.native.build_optimizer` run), for the suite to compare with
the reference's plan.

Everything runs under ``keras.config.floatx()`` set to the parameters' dtype (restored after), as
a Keras user training in float64 sets it, so the optimizer's learning rate is not rounded to
float32.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from regcore import ModelSpec, Network, Optimizer, Plan, Spec, UnsupportedError, capabilities
from regcore_adapters.keras import layers as keras_layers
from regcore_adapters.keras.grad import variables_value_and_grads
from regcore_adapters.keras.kernels import dtype_name
from regcore_adapters.keras.native import apply_spec, build_optimizer, resolve

Train = Callable[[keras.Model, keras.optimizers.Optimizer, keras.losses.Loss, Any, Any, int],
                 None]


@contextmanager
def floatx(dtype: Any) -> Iterator[None]:
    """``keras.config.floatx()`` set to ``dtype`` (a name, or any backend's dtype) inside the
    block."""
    before = keras.config.floatx()
    keras.config.set_floatx(keras.backend.standardize_dtype(dtype))
    try:
        yield
    finally:
        keras.config.set_floatx(before)


def build_model(model: ModelSpec | Network, params: Mapping[str, Any]) -> keras.Model:
    """``Dense`` layers ``dense_0..`` with the scenario's activation after hidden layers, built in
    the parameters' dtype and loaded with copies of them (Keras on JAX gives a variable's
    buffer to the compiled train step, which deletes the array assigned); a
    :class:`regcore.Network` as Keras's own conv, norm, embedding and attention layers
    (:func:`keras_layers.build_network`)."""
    if isinstance(model, Network):
        return keras_layers.build_network(model, params)
    dtype = dtype_name(next(iter(params.values())))
    layers = [keras.Input((model.sizes[0],), dtype=dtype)]
    for i, units in enumerate(model.sizes[1:]):
        hidden = i < model.layers - 1
        layers.append(keras.layers.Dense(units, activation=model.activation if hidden else None,
                                         name=f"dense_{i}", dtype=dtype))
    net = keras.Sequential(layers)
    for i in range(model.layers):
        layer = net.get_layer(f"dense_{i}")
        layer.kernel.assign(ops.copy(params[f"dense_{i}.kernel"]))
        layer.bias.assign(ops.copy(params[f"dense_{i}.bias"]))
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

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return 0.5 * ops.sum(ops.square(y_pred - y_true), axis=-1)


def keras_loss(kind: str) -> keras.losses.Loss:
    """The scenario's data loss as a Keras loss (mean over the batch)."""
    if kind == "mse":
        return keras.losses.MeanSquaredError()
    if kind == "half_mse":
        return HalfSquaredError(name="half_mse")
    if kind == "softmax_xent":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    raise ValueError(f"unknown loss {kind!r}")


def require_sgd(optimizer: Optimizer, backend: str) -> None:
    """Refuse any optimizer but SGD before building anything (an Adam run is refused whatever
    the spec, so there is no model to build for it)."""
    if optimizer.name != "sgd":
        raise UnsupportedError(
            f"{backend}: the Keras translations train with keras.optimizers.SGD only; Keras's "
            f"{optimizer.name} adds ε to √v before the bias correction, the reference's "
            "(torch's) after"
        )


def sgd_optimizer(optimizer: Optimizer, spec: Spec, net: keras.Model,
                  backend: str = "keras") -> keras.optimizers.Optimizer:
    """``keras.optimizers.SGD`` at ``optimizer``'s learning rate with ``spec``'s decoupled decay
    (:func:`~regcore_adapters.keras.native.build_optimizer`); any other optimizer is an
    :class:`regcore.UnsupportedError` (:func:`require_sgd`)."""
    require_sgd(optimizer, backend)
    return build_optimizer(spec, net, keras.optimizers.SGD, learning_rate=optimizer.lr)


def fit(net: keras.Model, opt: keras.optimizers.Optimizer, loss_fn: keras.losses.Loss,
        x: Any, y: Any, steps: int) -> None:
    """``keras_fit``: ``model.compile`` + one epoch of ``model.fit`` over ``x`` and ``y`` repeated
    ``steps`` times in batches of ``len(x)``: ``steps`` full-batch steps, in order (one epoch per
    step costs Keras a new data pipeline and callbacks each time, 4x the run on TensorFlow)."""
    net.compile(optimizer=opt, loss=loss_fn)
    n = int(x.shape[0])
    net.fit(ops.concatenate([x] * steps, axis=0), ops.concatenate([y] * steps, axis=0),
            batch_size=n, epochs=1, verbose=0, shuffle=False)


TRANSLATIONS: dict[str, Train] = {"keras_fit": fit}
"""The training translations on every Keras backend, each
``(net, optimizer, loss, x, y, steps) -> None``."""


def _saved_and_reloaded(net: keras.Model) -> keras.Model:
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "model.keras"
        net.save(file)
        return keras.models.load_model(file)


PENALTY_TRANSLATIONS = {"keras_losses": lambda net: net, "keras_saved": _saved_and_reloaded}
"""The penalty translations by name, each the model whose ``model.losses`` is evaluated."""


def _copy(v: keras.Variable) -> Any:
    """A variable's value as a tensor of its own, outside any autodiff graph."""
    return ops.stop_gradient(ops.copy(v.value))


def train(translation: str, model: ModelSpec | Network, spec: Spec, params: Mapping[str, Any],
          x: Any, y: Any, *, optimizer: Optimizer, steps: int, backend: str,
          translations: Mapping[str, Train] = TRANSLATIONS) -> dict[str, Any]:
    """The parameters after ``steps`` SGD steps through ``translation`` (one of
    ``translations``), by canonical name."""
    run = capabilities.lookup(backend, translations, translation, "native_translations")
    require_sgd(optimizer, backend)
    with floatx(dtype_name(next(iter(params.values())))):
        net = build_model(model, params)
        apply_spec(spec, net)
        run(net, sgd_optimizer(optimizer, spec, net, backend), keras_loss(model.loss), x, y, steps)
        return {k: _copy(v) for k, v in canonical_variables(net, model).items()}


def penalty(translation: str, model: ModelSpec | Network, spec: Spec,
            params: Mapping[str, Any], *, backend: str) -> tuple[Any, dict[str, Any]]:
    """``Σ model.losses`` of the Keras model with ``spec`` applied (``keras_losses``), or of that
    model saved and reloaded (``keras_saved``), and its gradient by canonical name."""
    prepare = capabilities.lookup(backend, PENALTY_TRANSLATIONS, translation,
                                  "native_penalty_translations")
    dtype = dtype_name(next(iter(params.values())))
    with floatx(dtype):
        net = build_model(model, params)
        apply_spec(spec, net)
        net = prepare(net)
        variables = canonical_variables(net, model)

        def total() -> Any:
            losses = net.losses
            return ops.sum(ops.stack(losses)) if losses else ops.zeros((), dtype=dtype)

        value, grads = variables_value_and_grads(total, list(variables.values()))
        return value, dict(zip(variables, grads, strict=True))


def plan(translation: str, model: ModelSpec | Network, spec: Spec, *, backend: str,
         translations: Mapping[str, Any] = TRANSLATIONS) -> Plan:
    """The plan ``translation`` runs: ``spec`` resolved on its Keras model by
    :func:`~regcore_adapters.keras.native.resolve` (its variable names are the canonical ones
    already). The model is built once per ``model`` (zeros, float32): the resolution reads only
    names, shapes and layer types, so the loaded numbers and dtype do not enter it."""
    capabilities.lookup(backend, {**translations, **PENALTY_TRANSLATIONS}, translation,
                        "native_translations + native_penalty_translations")
    return resolve(spec, _plain_model(model))[0]


@functools.lru_cache(maxsize=16)
def _plain_model(model: ModelSpec | Network) -> keras.Model:
    zeros = {p.name: np.zeros(p.shape, np.float32) for p in model.params()}
    with floatx("float32"):
        return build_model(model, zeros)
