"""The layers of :class:`regcore.Network` as a functional forward pass on TensorFlow ops (the tape
differentiates): the same functions as the NumPy reference (``regcore_adapters.numpy.layers``).

Channels last throughout, kernels in the canonical layout (:mod:`regcore.network`), which is
TensorFlow's own (``NHWC`` activations, ``HWIO`` conv kernels), so nothing is transposed. Works in
any float dtype and inside ``tf.function``. Python constants are made in the activations' dtype
with ``tf.constant(c, dtype)``: ``tf.cast(c, dtype)`` rounds a Python float through float32
first (``eps = 1e-5`` then moves a float64 layer norm by ~1e-12).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import tensorflow as tf

from regcore import Network
from regcore.network import (
    Activation,
    AvgPool2D,
    Conv2D,
    Dense,
    Embedding,
    GlobalAvgPool,
    GroupNorm,
    Layer,
    LayerNorm,
    SelfAttention,
)

Params = Mapping[str, tf.Tensor]


def _affine(name: str, p: Params, h: tf.Tensor) -> tf.Tensor:
    """``h @ {name}.kernel + {name}.bias`` on the last axis, any leading axes."""
    return tf.tensordot(h, p[f"{name}.kernel"], axes=1) + p[f"{name}.bias"]


def _dense(layer: Dense, p: Params, h: tf.Tensor) -> tf.Tensor:
    """``h @ kernel + bias``."""
    return _affine(layer.name, p, h)


def _conv2d(layer: Conv2D, p: Params, h: tf.Tensor) -> tf.Tensor:
    """Cross-correlation with the ``(kh, kw, in, out)`` kernel, stride 1, valid, plus bias."""
    out = tf.nn.conv2d(h, p[f"{layer.name}.kernel"], strides=1, padding="VALID",
                       data_format="NHWC")
    return out + p[f"{layer.name}.bias"]


def _normalize(x: tf.Tensor, axes: list[int], eps: float) -> tf.Tensor:
    """``(x − mean)/√(var + eps)`` over ``axes``, biased variance."""
    centred = x - tf.reduce_mean(x, axis=axes, keepdims=True)
    var = tf.reduce_mean(centred * centred, axis=axes, keepdims=True)
    return centred * (1 / tf.sqrt(var + tf.constant(eps, x.dtype)))


def _group_norm(layer: GroupNorm, p: Params, h: tf.Tensor) -> tf.Tensor:
    """Each group of ``channels // groups`` channels normalized with the spatial axes, per
    sample, then ``gamma·x̂ + beta`` per channel."""
    shape = tf.shape(h)
    grouped = tf.reshape(h, tf.concat([shape[:-1], [layer.groups, -1]], axis=0))
    xhat = tf.reshape(_normalize(grouped, [1, 2, 4], layer.eps), shape)
    return xhat * p[f"{layer.name}.gamma"] + p[f"{layer.name}.beta"]


def _layer_norm(layer: LayerNorm, p: Params, h: tf.Tensor) -> tf.Tensor:
    """The last axis normalized, then ``gamma·x̂ + beta``."""
    xhat = _normalize(h, [-1], layer.eps)
    return xhat * p[f"{layer.name}.gamma"] + p[f"{layer.name}.beta"]


def _embedding(layer: Embedding, p: Params, ids: tf.Tensor) -> tf.Tensor:
    """The rows of ``embeddings`` at the token ids."""
    return tf.gather(p[f"{layer.name}.embeddings"], ids)


def _attention(layer: SelfAttention, p: Params, h: tf.Tensor) -> tf.Tensor:
    """``output(concat_heads(softmax(q kᵀ/√head_dim) v))`` with ``q, k, v`` the ``query``,
    ``key``, ``value`` projections of ``h`` ``(m, T, dim)`` split into ``heads``."""
    head_dim = layer.dim // layer.heads
    steps = tf.shape(h)[1]

    def split(z: tf.Tensor) -> tf.Tensor:  # (m, T, dim) -> (m, heads, T, head_dim)
        return tf.transpose(tf.reshape(z, [-1, steps, layer.heads, head_dim]), [0, 2, 1, 3])

    q, k, v = (split(_affine(f"{layer.name}.{proj}", p, h)) for proj in ("query", "key", "value"))
    scale = tf.constant(1 / math.sqrt(head_dim), h.dtype)
    attn = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) * scale, axis=-1)
    mixed = tf.reshape(tf.transpose(tf.matmul(attn, v), [0, 2, 1, 3]), [-1, steps, layer.dim])
    return _affine(f"{layer.name}.output", p, mixed)


def _activation(layer: Activation, p: Params, h: tf.Tensor) -> tf.Tensor:
    """``relu`` (``relu'(0) = 0``) or ``tanh``."""
    return tf.nn.relu(h) if layer.function == "relu" else tf.tanh(h)


def _avg_pool(layer: AvgPool2D, p: Params, h: tf.Tensor) -> tf.Tensor:
    """Mean over non-overlapping ``size × size`` windows."""
    return tf.nn.avg_pool2d(h, ksize=layer.size, strides=layer.size, padding="VALID")


def _global_pool(layer: GlobalAvgPool, p: Params, h: tf.Tensor) -> tf.Tensor:
    """Mean over every axis between the batch and the features."""
    return tf.reduce_mean(h, axis=list(range(1, h.shape.rank - 1)))


LAYERS: dict[type[Layer], Callable[..., tf.Tensor]] = {
    Dense: _dense, Conv2D: _conv2d, GroupNorm: _group_norm, LayerNorm: _layer_norm,
    Embedding: _embedding, SelfAttention: _attention, Activation: _activation,
    AvgPool2D: _avg_pool, GlobalAvgPool: _global_pool,
}
"""Each layer description's forward pass, ``(layer, params, h) -> output``."""


def forward(network: Network, params: Params, x: tf.Tensor,
            outputs: dict[str, tf.Tensor] | None = None) -> tf.Tensor:
    """The network's output on ``x`` (token ids when ``network.tokens``);
    ``outputs``, when given, receives each named layer's output."""
    return network.run(LAYERS, params, x, outputs)

