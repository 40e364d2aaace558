"""The suite's Keras translations on the TensorFlow backend: every Keras-generic one
(:mod:`regcore_adapters.keras.training`: ``keras_fit``, ``keras_losses``, ``keras_saved``) placed
on the parameters' TensorFlow device, ``keras_fit`` fed from ``tf.data``, plus Keras's
custom-training-loop idiom on TensorFlow, ``keras_loop``: a ``tf.GradientTape`` loop over
``loss(y, model(x)) + Σ model.losses`` and ``optimizer.apply_gradients``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

from regcore import ModelSpec, Network, Optimizer, Plan, Spec
from regcore_adapters.keras import training as generic
from regcore_adapters.keras.training import (
    build_model,
    canonical_variables,
    floatx,
    keras_loss,
)

__all__ = ["PENALTY_TRANSLATIONS", "TRANSLATIONS", "build_model", "canonical_variables",
           "floatx", "keras_loss", "penalty", "plan", "sgd_optimizer", "train"]


def sgd_optimizer(optimizer: Optimizer, spec: Spec,
                  net: keras.Model) -> keras.optimizers.Optimizer:
    """:func:`regcore_adapters.keras.training.sgd_optimizer`, refusals naming ``tf``."""
    return generic.sgd_optimizer(optimizer, spec, net, "tf")


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


def dataset_fit(net: keras.Model, opt: keras.optimizers.Optimizer, loss_fn: keras.losses.Loss,
                x: tf.Tensor, y: tf.Tensor, steps: int) -> None:
    """``keras_fit`` as a TensorFlow user feeds it: one epoch over a ``tf.data`` pipeline of the
    full batch repeated ``steps`` times (the same steps as the generic ``fit`` on arrays, whose
    array adapter costs this run 38% more: 107 s against 78 s for the suite's 676 cases)."""
    net.compile(optimizer=opt, loss=loss_fn)
    data = tf.data.Dataset.from_tensors((x, y)).repeat(steps)
    net.fit(data, epochs=1, verbose=0, shuffle=False)


TRANSLATIONS = {"keras_loop": tape_loop, **generic.TRANSLATIONS, "keras_fit": dataset_fit}
"""The training translations by name, each ``(net, optimizer, loss, x, y, steps) -> None``
(``TFBackend.native_translations``)."""

PENALTY_TRANSLATIONS = generic.PENALTY_TRANSLATIONS
"""The penalty translations by name (``TFBackend.native_penalty_translations``)."""


def train(translation: str, model: ModelSpec | Network, spec: Spec,
          params: Mapping[str, tf.Tensor], x: tf.Tensor, y: tf.Tensor, *,
          optimizer: Optimizer, steps: int) -> dict[str, Any]:
    """The parameters after ``steps`` SGD steps through ``translation``, on ``x``'s device."""
    with tf.device(x.device):
        return generic.train(translation, model, spec, params, x, y, optimizer=optimizer,
                             steps=steps, backend="tf", translations=TRANSLATIONS)


def penalty(translation: str, model: ModelSpec | Network, spec: Spec,
            params: Mapping[str, tf.Tensor]) -> tuple[Any, dict[str, Any]]:
    """``Σ model.losses`` through ``translation`` and its tape gradient, on the parameters'
    device."""
    with tf.device(next(iter(params.values())).device):
        return generic.penalty(translation, model, spec, params, backend="tf")


def plan(translation: str, model: ModelSpec | Network, spec: Spec) -> Plan:
    """The plan ``translation`` runs (:func:`regcore_adapters.keras.training.plan`)."""
    return generic.plan(translation, model, spec, backend="tf", translations=TRANSLATIONS)
