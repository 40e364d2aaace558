"""The scenario networks in TensorFlow: dense forward pass and data loss (the tape
differentiates)."""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf

from regcore import ActivityAssignment, ModelSpec, Network
from regcore_adapters.tf import layers
from regcore_adapters.tf.penalties import KERNELS


def forward(model: ModelSpec | Network, params: Mapping[str, tf.Tensor],
            x: tf.Tensor, outputs: dict[str, tf.Tensor] | None = None) -> tf.Tensor:
    """``h_{i+1} = act(h_i @ dense_i.kernel + dense_i.bias)``, kernels ``(fan_in, fan_out)``
    (Keras's own ``Dense`` layout); ``act`` is tanh or relu (``relu'(0) = 0``) after hidden
    layers, the output is linear. A :class:`regcore.Network` runs layer by layer
    (:func:`layers.forward`). ``outputs``, when given, receives each named layer's output
    (``dense_i`` after its activation)."""
    if isinstance(model, Network):
        return layers.forward(model, params, x, outputs)
    h = x
    for i in range(model.layers):
        h = tf.matmul(h, params[f"dense_{i}.kernel"]) + params[f"dense_{i}.bias"]
        if i < model.layers - 1:
            h = tf.tanh(h) if model.activation == "tanh" else tf.nn.relu(h)
        if outputs is not None:
            outputs[f"dense_{i}"] = h
    return h


def data_loss(kind: str, out: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """``mse``: ``mean((ŷ - y)²)`` over all entries; ``half_mse``: ``Σ (ŷ - y)² / (2m)`` over the
    ``m`` rows; ``softmax_xent``: mean over rows of ``-log softmax(ŷ)[y]`` (integer labels)."""
    if kind == "mse":
        return tf.reduce_mean(tf.square(out - y))
    if kind == "half_mse":
        r = out - y
        m = tf.cast(tf.shape(out)[0], out.dtype)
        return tf.reduce_sum(r * r) / (2 * m)
    if kind == "softmax_xent":
        return tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=out)
        )
    raise ValueError(f"unknown loss {kind!r}")


def objective(
    model: ModelSpec | Network, params: Mapping[str, tf.Tensor], x: tf.Tensor, y: tf.Tensor,
    activity: tuple[ActivityAssignment, ...] = (),
) -> tf.Tensor:
    """The data loss of ``model`` with ``params`` on ``(x, y)``, plus the ``activity``
    penalties on its layers' outputs (each term's kernel on the output, divided by its batch
    size for ``batch_mean``), as a 0-dim tensor."""
    outputs: dict[str, tf.Tensor] = {}
    loss = data_loss(model.loss, forward(model, params, x, outputs), y)
    for a in activity:
        out = outputs[a.layer]
        value = KERNELS[type(a.term)](a.term, out)
        if a.reduction == "batch_mean":
            value = value / tf.cast(tf.shape(out)[0], value.dtype)
        loss = loss + tf.cast(value, loss.dtype)
    return loss
