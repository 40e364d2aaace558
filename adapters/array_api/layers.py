"""The layers of :class:`regcore.Network` in Array API functions only: each forward pass returns
its output and the backward pass mapping the output's gradient to the input's and the
parameters'. Channels last, kernels in the canonical layout (:mod:`regcore.network`).

What the standard lacks is built from what it has: convolution windows from slices
(``stack``), their backward pass by placing each window's gradient with ``concat``, the
embedding's scatter-add as a one-hot matrix product. No array is written in place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

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
from regcore_adapters.array_api import penalties
from regcore_adapters.array_api.models import activate, data_loss
from regcore_adapters.array_api.namespace import Standard

Grads = dict[str, Any]
Backward = Callable[[Any], tuple[Any, Grads]]
Params = Mapping[str, Any]


def _dense(xp: Standard, layer: Dense, p: Params, h: Any) -> tuple[Any, Backward]:
    kernel, bias = p[f"{layer.name}.kernel"], p[f"{layer.name}.bias"]

    def backward(dy: Any) -> tuple[Any, Grads]:
        rows = xp.reshape(h, (-1, layer.fan_in))
        d_rows = xp.reshape(dy, (-1, layer.fan_out))
        return dy @ xp.matrix_transpose(kernel), {
            f"{layer.name}.kernel": xp.matrix_transpose(rows) @ d_rows,
            f"{layer.name}.bias": xp.sum(d_rows, axis=0)}
    return h @ kernel + bias, backward


def _zeros_around(xp: Standard, a: Any, axis: int, before: int, after: int) -> Any:
    """``a`` with ``before`` and ``after`` zero slices added along ``axis``."""
    def zeros(n: int) -> Any:
        shape = tuple(n if k == axis else s for k, s in enumerate(a.shape))
        return xp.zeros(shape, dtype=a.dtype, device=xp.device(a))
    parts = [zeros(before)] * bool(before) + [a] + [zeros(after)] * bool(after)
    return xp.concat(parts, axis=axis) if len(parts) > 1 else a


def _conv2d(xp: Standard, layer: Conv2D, p: Params, h: Any) -> tuple[Any, Backward]:
    kernel, bias = p[f"{layer.name}.kernel"], p[f"{layer.name}.bias"]
    (kh, kw), cin, cout = layer.kernel_size, layer.in_channels, layer.filters
    m, height, width, _ = h.shape
    oh, ow = height - kh + 1, width - kw + 1
    offsets = [(i, j) for i in range(kh) for j in range(kw)]  # the kernel's (kh, kw) order
    windows = xp.stack([h[:, i:i + oh, j:j + ow, :] for i, j in offsets], axis=3)
    cols = xp.reshape(windows, (m * oh * ow, kh * kw * cin))
    w2 = xp.reshape(kernel, (kh * kw * cin, cout))
    out = xp.reshape(cols @ w2, (m, oh, ow, cout)) + bias

    def backward(dy: Any) -> tuple[Any, Grads]:
        d_rows = xp.reshape(dy, (-1, cout))
        d_windows = xp.reshape(d_rows @ xp.matrix_transpose(w2), (m, oh, ow, kh * kw, cin))
        dx = None
        for k, (i, j) in enumerate(offsets):
            placed = _zeros_around(xp, _zeros_around(xp, d_windows[:, :, :, k, :], 1, i,
                                                     height - oh - i), 2, j, width - ow - j)
            dx = placed if dx is None else dx + placed
        return dx, {f"{layer.name}.kernel": xp.reshape(xp.matrix_transpose(cols) @ d_rows,
                                                       kernel.shape),
                    f"{layer.name}.bias": xp.sum(d_rows, axis=0)}
    return out, backward


def _normalized(xp: Standard, x: Any, axes: tuple[int, ...], eps: float
                ) -> tuple[Any, Callable[[Any], Any]]:
    """``x̂ = (x − mean)/√(var + eps)`` over ``axes`` (biased variance) and its backward."""
    n = xp.scalar(xp.size(x, axes), x)
    centred = x - xp.mean(x, axis=axes, keepdims=True)
    inv_std = 1 / xp.sqrt(xp.mean(centred * centred, axis=axes, keepdims=True)
                          + xp.scalar(eps, x))
    xhat = centred * inv_std

    def backward(d: Any) -> Any:
        return inv_std / n * (n * d - xp.sum(d, axis=axes, keepdims=True)
                              - xhat * xp.sum(d * xhat, axis=axes, keepdims=True))
    return xhat, backward


def _affine_norm(xp: Standard, name: str, p: Params, h: Any, grouped_shape: tuple[int, ...],
                 axes: tuple[int, ...], eps: float) -> tuple[Any, Backward]:
    gamma, beta = p[f"{name}.gamma"], p[f"{name}.beta"]
    xhat_g, norm_backward = _normalized(xp, xp.reshape(h, grouped_shape), axes, eps)
    xhat = xp.reshape(xhat_g, h.shape)
    batch_axes = tuple(range(h.ndim - 1))

    def backward(dy: Any) -> tuple[Any, Grads]:
        dx = xp.reshape(norm_backward(xp.reshape(dy * gamma, grouped_shape)), h.shape)
        return dx, {f"{name}.gamma": xp.sum(dy * xhat, axis=batch_axes),
                    f"{name}.beta": xp.sum(dy, axis=batch_axes)}
    return xhat * gamma + beta, backward


def _group_norm(xp: Standard, layer: GroupNorm, p: Params, h: Any) -> tuple[Any, Backward]:
    m, height, width, c = h.shape
    shape = (m, height, width, layer.groups, c // layer.groups)
    return _affine_norm(xp, layer.name, p, h, shape, (1, 2, 4), layer.eps)


def _layer_norm(xp: Standard, layer: LayerNorm, p: Params, h: Any) -> tuple[Any, Backward]:
    return _affine_norm(xp, layer.name, p, h, tuple(h.shape), (h.ndim - 1,), layer.eps)


def _embedding(xp: Standard, layer: Embedding, p: Params, ids: Any) -> tuple[Any, Backward]:
    table = p[f"{layer.name}.embeddings"]
    flat = xp.reshape(ids, (-1,))

    def backward(dy: Any) -> tuple[Any, Grads]:
        rows = xp.arange(layer.vocab, dtype=flat.dtype, device=xp.device(flat))
        onehot = xp.astype(xp.reshape(flat, (-1, 1)) == rows, table.dtype)  # scatter-add
        d_table = xp.matrix_transpose(onehot) @ xp.reshape(dy, (-1, layer.dim))
        return None, {f"{layer.name}.embeddings": d_table}  # integer ids: no gradient
    return xp.reshape(xp.take(table, flat, axis=0), (*ids.shape, layer.dim)), backward


def _softmax(xp: Standard, s: Any) -> Any:
    e = xp.exp(s - xp.max(s, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def _attention(xp: Standard, layer: SelfAttention, p: Params, h: Any) -> tuple[Any, Backward]:
    m, steps, dim = h.shape
    heads, head_dim = layer.heads, dim // layer.heads
    names = ("query", "key", "value")
    proj = {n: _dense(xp, Dense(f"{layer.name}.{n}", dim, dim), p, h) for n in names}

    def split(z: Any) -> Any:  # (m, T, d) -> (m, heads, T, head_dim)
        return xp.permute_dims(xp.reshape(z, (m, steps, heads, head_dim)), (0, 2, 1, 3))

    def merge(z: Any) -> Any:  # the inverse of split
        return xp.reshape(xp.permute_dims(z, (0, 2, 1, 3)), (m, steps, dim))

    q, k, v = (split(proj[n][0]) for n in names)
    scale = xp.scalar(1 / math.sqrt(head_dim), h)
    attn = _softmax(xp, q @ xp.matrix_transpose(k) * scale)
    out, out_backward = _dense(xp, Dense(f"{layer.name}.output", dim, dim), p,
                               merge(attn @ v))

    def backward(dy: Any) -> tuple[Any, Grads]:
        d_mixed, grads = out_backward(dy)
        d_o = split(d_mixed)
        d_attn = d_o @ xp.matrix_transpose(v)
        d_s = attn * (d_attn - xp.sum(d_attn * attn, axis=-1, keepdims=True)) * scale
        d = {"query": d_s @ k, "key": xp.matrix_transpose(d_s) @ q,
             "value": xp.matrix_transpose(attn) @ d_o}
        dx = None
        for n in names:
            d_in, g = proj[n][1](merge(d[n]))
            dx = d_in if dx is None else dx + d_in
            grads.update(g)
        return dx, grads
    return out, backward


def _activation(xp: Standard, layer: Activation, p: Params, h: Any) -> tuple[Any, Backward]:
    a, slope = activate(xp, layer.function, h)
    return a, lambda dy: (dy * slope, {})


def _avg_pool(xp: Standard, layer: AvgPool2D, p: Params, h: Any) -> tuple[Any, Backward]:
    m, height, width, c = h.shape
    s = layer.size
    windows = (m, height // s, s, width // s, s, c)
    area = xp.scalar(s * s, h)

    def backward(dy: Any) -> tuple[Any, Grads]:
        each = xp.reshape(dy / area, (m, height // s, 1, width // s, 1, c))
        return xp.reshape(xp.broadcast_to(each, windows), h.shape), {}
    return xp.sum(xp.reshape(h, windows), axis=(2, 4)) / area, backward


def _global_pool(xp: Standard, layer: GlobalAvgPool, p: Params, h: Any
                 ) -> tuple[Any, Backward]:
    axes = tuple(range(1, h.ndim - 1))
    count = xp.scalar(xp.size(h, axes), h)
    kept = tuple(1 if a in axes else n for a, n in enumerate(h.shape))

    def backward(dy: Any) -> tuple[Any, Grads]:
        return xp.broadcast_to(xp.reshape(dy / count, kept), tuple(h.shape)), {}
    return xp.sum(h, axis=axes) / count, backward


LAYERS: dict[type[Layer], Callable[..., tuple[Any, Backward]]] = {
    Dense: _dense, Conv2D: _conv2d, GroupNorm: _group_norm, LayerNorm: _layer_norm,
    Embedding: _embedding, SelfAttention: _attention, Activation: _activation,
    AvgPool2D: _avg_pool, GlobalAvgPool: _global_pool,
}
"""Each layer description's forward pass, which returns its backward pass."""


def forward_backward(xp: Standard, network: Network, params: Params, x: Any, y: Any,
                     activity: tuple[ActivityAssignment, ...] = ()) -> tuple[Any, Grads]:
    """The data loss plus the ``activity`` penalties on named layers' outputs, and its gradient
    for every parameter of ``network``."""
    backwards: list[Backward] = []

    def recorded(fn: Callable[..., tuple[Any, Backward]]) -> Callable[..., Any]:
        def run(layer: Layer, p: Params, h: Any) -> Any:
            out, backward = fn(xp, layer, p, h)
            backwards.append(backward)
            return out
        return run

    outputs: dict[str, Any] = {}
    out = network.run({t: recorded(fn) for t, fn in LAYERS.items()}, params, x, outputs)
    loss, d = data_loss(xp, network.loss, out, y)
    value, d_out = penalties.activity(xp, activity, outputs)
    grads: Grads = {}
    for layer, backward in zip(reversed(network.stack), reversed(backwards), strict=True):
        name = getattr(layer, "name", None)
        if name in d_out:
            d = d + d_out[name]
        d, g = backward(d)
        grads.update(g)
    return loss + value, {info.name: grads[info.name] for info in network.params()}
