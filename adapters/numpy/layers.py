"""The layers of :class:`regcore.Network` by hand: each forward pass returns its output and the
backward pass that maps the output's gradient to the input's and the parameters'.

Channels last throughout, kernels in the canonical layout (:mod:`regcore.network`). The
backward passes are checked against central finite differences on every spec of the suite's
network scenarios (``conformance/test_oracles.py::test_reference_finite_differences``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from regcore import ActivityAssignment, Network
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
from regcore_adapters.numpy import penalties
from regcore_adapters.numpy.models import activate, activation_grad, data_loss

Grads = dict[str, np.ndarray]
Backward = Callable[[np.ndarray], tuple[np.ndarray, Grads]]
Params = Mapping[str, np.ndarray]


def _dense(layer: Dense, p: Params, h: np.ndarray) -> tuple[np.ndarray, Backward]:
    kernel, bias = p[f"{layer.name}.kernel"], p[f"{layer.name}.bias"]
    out = h @ kernel + bias

    def backward(dy: np.ndarray) -> tuple[np.ndarray, Grads]:
        rows, d_rows = h.reshape(-1, layer.fan_in), dy.reshape(-1, layer.fan_out)
        return dy @ kernel.T, {f"{layer.name}.kernel": rows.T @ d_rows,
                               f"{layer.name}.bias": np.sum(d_rows, axis=0)}
    return out, backward


def _patches(x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """``(m, oh, ow, kh, kw, c)``: every window of ``x`` ``(m, h, w, c)``."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    return windows.transpose(0, 1, 2, 4, 5, 3)


def _conv2d(layer: Conv2D, p: Params, h: np.ndarray) -> tuple[np.ndarray, Backward]:
    kernel, bias = p[f"{layer.name}.kernel"], p[f"{layer.name}.bias"]
    (kh, kw), cin, cout = layer.kernel_size, layer.in_channels, layer.filters
    cols = _patches(h, kh, kw)
    m, oh, ow = cols.shape[:3]
    flat = cols.reshape(m * oh * ow, kh * kw * cin)
    w2 = kernel.reshape(kh * kw * cin, cout)
    out = (flat @ w2).reshape(m, oh, ow, cout) + bias

    def backward(dy: np.ndarray) -> tuple[np.ndarray, Grads]:
        d_rows = dy.reshape(-1, cout)
        d_cols = (d_rows @ w2.T).reshape(m, oh, ow, kh, kw, cin)
        dx = np.zeros_like(h)
        for i in range(kh):
            for j in range(kw):
                dx[:, i:i + oh, j:j + ow, :] += d_cols[:, :, :, i, j, :]
        return dx, {f"{layer.name}.kernel": (flat.T @ d_rows).reshape(kernel.shape),
                    f"{layer.name}.bias": np.sum(d_rows, axis=0)}
    return out, backward


def _normalize(x: np.ndarray, axes: tuple[int, ...], eps: float
               ) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """``x̂ = (x − mean)/√(var + eps)`` over ``axes`` (biased variance) and its backward."""
    n = x.dtype.type(np.prod([x.shape[a] for a in axes]))
    centred = x - np.mean(x, axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(np.mean(centred * centred, axis=axes, keepdims=True) + eps)
    xhat = centred * inv_std

    def backward(d_xhat: np.ndarray) -> np.ndarray:
        return inv_std / n * (n * d_xhat - np.sum(d_xhat, axis=axes, keepdims=True)
                              - xhat * np.sum(d_xhat * xhat, axis=axes, keepdims=True))
    return xhat, backward


def _affine_norm(name: str, p: Params, h: np.ndarray, grouped: np.ndarray,
                 axes: tuple[int, ...], eps: float) -> tuple[np.ndarray, Backward]:
    gamma, beta = p[f"{name}.gamma"], p[f"{name}.beta"]
    xhat_g, norm_backward = _normalize(grouped, axes, eps)
    xhat = xhat_g.reshape(h.shape)
    sum_axes = tuple(range(h.ndim - 1))

    def backward(dy: np.ndarray) -> tuple[np.ndarray, Grads]:
        dx = norm_backward((dy * gamma).reshape(grouped.shape)).reshape(h.shape)
        return dx, {f"{name}.gamma": np.sum(dy * xhat, axis=sum_axes),
                    f"{name}.beta": np.sum(dy, axis=sum_axes)}
    return xhat * gamma + beta, backward


def _group_norm(layer: GroupNorm, p: Params, h: np.ndarray) -> tuple[np.ndarray, Backward]:
    m, height, width, c = h.shape
    grouped = h.reshape(m, height, width, layer.groups, c // layer.groups)
    return _affine_norm(layer.name, p, h, grouped, (1, 2, 4), layer.eps)


def _layer_norm(layer: LayerNorm, p: Params, h: np.ndarray) -> tuple[np.ndarray, Backward]:
    return _affine_norm(layer.name, p, h, h, (h.ndim - 1,), layer.eps)


def _embedding(layer: Embedding, p: Params, ids: np.ndarray) -> tuple[np.ndarray, Backward]:
    table = p[f"{layer.name}.embeddings"]

    def backward(dy: np.ndarray) -> tuple[np.ndarray, Grads]:
        grad = np.zeros_like(table)
        np.add.at(grad, ids.reshape(-1), dy.reshape(-1, layer.dim))
        return np.zeros(ids.shape), {f"{layer.name}.embeddings": grad}
    return table[ids], backward


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - np.max(s, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _attention(layer: SelfAttention, p: Params, h: np.ndarray) -> tuple[np.ndarray, Backward]:
    m, steps, dim = h.shape
    heads, head_dim = layer.heads, dim // layer.heads
    proj = {name: _dense(Dense(f"{layer.name}.{name}", dim, dim), p, h)
            for name in ("query", "key", "value")}

    def split(z: np.ndarray) -> np.ndarray:  # (m, T, d) -> (m, heads, T, head_dim)
        return z.reshape(m, steps, heads, head_dim).transpose(0, 2, 1, 3)

    q, k, v = (split(proj[name][0]) for name in ("query", "key", "value"))
    scale = h.dtype.type(1 / np.sqrt(head_dim))
    attn = _softmax(q @ k.transpose(0, 1, 3, 2) * scale)
    mixed = (attn @ v).transpose(0, 2, 1, 3).reshape(m, steps, dim)
    out, out_backward = _dense(Dense(f"{layer.name}.output", dim, dim), p, mixed)

    def backward(dy: np.ndarray) -> tuple[np.ndarray, Grads]:
        d_mixed, grads = out_backward(dy)
        d_o = split(d_mixed)
        d_attn = d_o @ v.transpose(0, 1, 3, 2)
        d_v = attn.transpose(0, 1, 3, 2) @ d_o
        d_s = attn * (d_attn - np.sum(d_attn * attn, axis=-1, keepdims=True)) * scale
        d_q, d_k = d_s @ k, d_s.transpose(0, 1, 3, 2) @ q
        dx = np.zeros_like(h)
        for name, d in (("query", d_q), ("key", d_k), ("value", d_v)):
            d_in, g = proj[name][1](d.transpose(0, 2, 1, 3).reshape(m, steps, dim))
            dx += d_in
            grads.update(g)
        return dx, grads
    return out, backward


def _activation(layer: Activation, p: Params, h: np.ndarray) -> tuple[np.ndarray, Backward]:
    a = activate(layer.function, h)
    return a, lambda dy: (dy * activation_grad(layer.function, h, a), {})


def _avg_pool(layer: AvgPool2D, p: Params, h: np.ndarray) -> tuple[np.ndarray, Backward]:
    m, height, width, c = h.shape
    s = layer.size
    windows = h.reshape(m, height // s, s, width // s, s, c)
    area = h.dtype.type(s * s)

    def backward(dy: np.ndarray) -> tuple[np.ndarray, Grads]:
        spread = np.broadcast_to((dy / area)[:, :, None, :, None, :], windows.shape)
        return spread.reshape(h.shape), {}
    return np.sum(windows, axis=(2, 4)) / area, backward


def _global_pool(layer: GlobalAvgPool, p: Params, h: np.ndarray) -> tuple[np.ndarray, Backward]:
    axes = tuple(range(1, h.ndim - 1))
    count = h.dtype.type(np.prod([h.shape[a] for a in axes]))

    def backward(dy: np.ndarray) -> tuple[np.ndarray, Grads]:
        return np.broadcast_to(np.expand_dims(dy / count, axes), h.shape).copy(), {}
    return np.sum(h, axis=axes) / count, backward


LAYERS: dict[type[Layer], Callable[..., tuple[np.ndarray, Backward]]] = {
    Dense: _dense, Conv2D: _conv2d, GroupNorm: _group_norm, LayerNorm: _layer_norm,
    Embedding: _embedding, SelfAttention: _attention, Activation: _activation,
    AvgPool2D: _avg_pool, GlobalAvgPool: _global_pool,
}
"""Each layer description's forward pass, which returns its backward pass."""


def forward(network: Network, params: Params, x: np.ndarray
            ) -> tuple[np.ndarray, list[Backward], list[np.ndarray]]:
    """The network's output on ``x``, each layer's backward pass and each layer's output, in
    layer order."""
    backwards, outputs = [], []
    h = x
    for layer in network.stack:
        h, backward = LAYERS[type(layer)](layer, params, h)
        backwards.append(backward)
        outputs.append(h)
    return h, backwards, outputs


def _named(network: Network, outputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {layer.name: out for layer, out in zip(network.stack, outputs, strict=True)
            if hasattr(layer, "name")}


def loss(network: Network, params: Params, x: np.ndarray, y: np.ndarray,
         activity: tuple[ActivityAssignment, ...] = ()) -> np.ndarray:
    """The data loss plus the ``activity`` penalties (the forward pass; no backward pass)."""
    out, _, outputs = forward(network, params, x)
    return (data_loss(network.loss, out, y)[0]
            + penalties.activity(activity, _named(network, outputs))[0])


def forward_backward(network: Network, params: Params, x: np.ndarray, y: np.ndarray,
                     activity: tuple[ActivityAssignment, ...] = ()) -> tuple[np.ndarray, Grads]:
    """Data loss (plus the ``activity`` penalties on named layers' outputs) and its gradient
    for every parameter of ``network``."""
    out, backwards, outputs = forward(network, params, x)
    loss, d = data_loss(network.loss, out, y)
    value, d_out = penalties.activity(activity, _named(network, outputs))
    grads: Grads = {}
    for layer, backward in zip(reversed(network.stack), reversed(backwards), strict=True):
        if getattr(layer, "name", None) in d_out:
            d = d + d_out[layer.name]
        d, g = backward(d)
        grads.update(g)
    return loss + value, {info.name: grads[info.name] for info in network.params()}
