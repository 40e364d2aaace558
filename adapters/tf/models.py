"""The scenario networks in TensorFlow: dense forward pass and data loss (the tape
differentiates)."""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf

from regcore import ModelSpec


def forward(model: ModelSpec, params: Mapping[str, tf.Tensor], x: tf.Tensor) -> tf.Tensor:
    """``h_{i+1} = act(h_i @ dense_i.kernel + dense_i.bias)``, kernels ``(fan_in, fan_out)``
    (Keras's own ``Dense`` layout); ``act`` is tanh or relu (``relu'(0) = 0``) after hidden
    layers, the output is linear."""
    h = x
    for i in range(model.layers):
        h = tf.matmul(h, params[f"dense_{i}.kernel"]) + params[f"dense_{i}.bias"]
        if i < model.layers - 1:
            h = tf.tanh(h) if model.activation == "tanh" else tf.nn.relu(h)
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
    model: ModelSpec, params: Mapping[str, tf.Tensor], x: tf.Tensor, y: tf.Tensor
) -> tf.Tensor:
    """The data loss of ``model`` with ``params`` on ``(x, y)``, as a 0-dim tensor."""
    return data_loss(model.loss, forward(model, params, x), y)
