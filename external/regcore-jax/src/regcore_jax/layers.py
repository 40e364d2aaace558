"""The layers of :class:`regcore.Network` in JAX: a functional forward pass (``jax.grad``
differentiates it), the same functions as the NumPy reference adapter computes.

Channels last throughout, kernels in the canonical layout (:mod:`regcore.network`), so a conv
kernel ``(kh, kw, in, out)`` is ``HWIO`` as it stands. Matmuls, einsums and convolutions at
``HIGHEST`` precision; Python constants are weakly typed, so float32 stays float32. Jit with the
network static: ``jax.jit(objective, static_argnums=0)`` (a :class:`regcore.Network` is hashable).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

from regcore import Network, network
from regcore_jax.penalties import HIGHEST

Params = Mapping[str, jax.Array]


def _affine(p: Params, name: str, h: jax.Array) -> jax.Array:
    """``h @ name.kernel + name.bias`` on the last axis."""
    return jnp.matmul(h, p[f"{name}.kernel"], precision=HIGHEST) + p[f"{name}.bias"]


def _dense(layer: network.Dense, p: Params, h: jax.Array) -> jax.Array:
    """``h @ kernel + bias`` on the last axis (any leading axes)."""
    return _affine(p, layer.name, h)


def _conv2d(layer: network.Conv2D, p: Params, h: jax.Array) -> jax.Array:
    """Valid stride-1 cross-correlation of ``h (m, h, w, in)`` with ``kernel (kh, kw, in, out)``,
    plus ``bias``."""
    out = jax.lax.conv_general_dilated(
        h, p[f"{layer.name}.kernel"], window_strides=(1, 1), padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=HIGHEST)
    return out + p[f"{layer.name}.bias"]


def _normalize(x: jax.Array, axes: tuple[int, ...], eps: float) -> jax.Array:
    """``(x − mean)/√(var + eps)`` over ``axes``, biased variance."""
    centred = x - jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean(centred * centred, axis=axes, keepdims=True)
    return centred * (1 / jnp.sqrt(var + eps))


def _group_norm(layer: network.GroupNorm, p: Params, h: jax.Array) -> jax.Array:
    """Each group of ``channels // groups`` channels normalized per sample over it and the
    spatial axes, then ``gamma·x̂ + beta`` per channel."""
    m, height, width, c = h.shape
    grouped = h.reshape(m, height, width, layer.groups, c // layer.groups)
    xhat = _normalize(grouped, (1, 2, 4), layer.eps).reshape(h.shape)
    return xhat * p[f"{layer.name}.gamma"] + p[f"{layer.name}.beta"]


def _layer_norm(layer: network.LayerNorm, p: Params, h: jax.Array) -> jax.Array:
    """The last axis normalized, then ``gamma·x̂ + beta``."""
    xhat = _normalize(h, (h.ndim - 1,), layer.eps)
    return xhat * p[f"{layer.name}.gamma"] + p[f"{layer.name}.beta"]


def _embedding(layer: network.Embedding, p: Params, ids: jax.Array) -> jax.Array:
    """The rows of ``embeddings`` that the integer ``ids`` name: ``(..., steps, dim)``."""
    return jnp.take(p[f"{layer.name}.embeddings"], ids, axis=0)


def _attention(layer: network.SelfAttention, p: Params, h: jax.Array) -> jax.Array:
    """Unmasked multi-head self-attention on ``h (m, T, dim)``: ``softmax(q kᵀ/√head_dim) v``
    per head, heads concatenated, then the ``output`` projection."""
    m, steps, dim = h.shape
    heads, head_dim = layer.heads, dim // layer.heads

    def split(proj: str) -> jax.Array:  # (m, T, dim) -> (m, heads, T, head_dim)
        z = _affine(p, f"{layer.name}.{proj}", h)
        return z.reshape(m, steps, heads, head_dim).transpose(0, 2, 1, 3)

    q, k, v = split("query"), split("key"), split("value")
    scores = jnp.einsum("bhqd,bhkd->bhqk", q, k, precision=HIGHEST) * (1 / math.sqrt(head_dim))
    attn = jax.nn.softmax(scores, axis=-1)
    mixed = jnp.einsum("bhqk,bhkd->bhqd", attn, v, precision=HIGHEST)
    return _affine(p, f"{layer.name}.output",
                   mixed.transpose(0, 2, 1, 3).reshape(m, steps, dim))


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,  # relu'(0) = 0; jnp.maximum(z, 0) would give ½
    "tanh": jnp.tanh,
}


def _activation(layer: network.Activation, p: Params, h: jax.Array) -> jax.Array:
    """``relu`` or ``tanh``, elementwise."""
    return ACTIVATIONS[layer.function](h)


def _avg_pool(layer: network.AvgPool2D, p: Params, h: jax.Array) -> jax.Array:
    """Mean over non-overlapping ``size × size`` windows of ``h (m, h, w, c)``."""
    m, height, width, c = h.shape
    s = layer.size
    return jnp.mean(h.reshape(m, height // s, s, width // s, s, c), axis=(2, 4))


def _global_pool(layer: network.GlobalAvgPool, p: Params, h: jax.Array) -> jax.Array:
    """Mean over every axis between the batch and the features."""
    return jnp.mean(h, axis=tuple(range(1, h.ndim - 1)))


LAYERS: dict[type[network.Layer], Callable[..., jax.Array]] = {
    network.Dense: _dense, network.Conv2D: _conv2d, network.GroupNorm: _group_norm,
    network.LayerNorm: _layer_norm, network.Embedding: _embedding,
    network.SelfAttention: _attention, network.Activation: _activation,
    network.AvgPool2D: _avg_pool, network.GlobalAvgPool: _global_pool,
}
"""Each layer description's forward pass ``(layer, params, h) -> output``."""


def forward(network: Network, params: Params, x: jax.Array,
            outputs: dict[str, jax.Array] | None = None) -> jax.Array:
    """The output of ``network`` with ``params`` on the batch ``x`` (token ids when the first
    layer is an embedding); ``outputs``, when given, receives each named layer's output."""
    return network.run(LAYERS, params, x, outputs)

