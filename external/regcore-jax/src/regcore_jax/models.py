"""The scenario networks in JAX: dense forward pass and data loss (``jax.grad`` differentiates)."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from regcore import ActivityAssignment, ModelSpec, Network
from regcore_jax import layers
from regcore_jax.penalties import HIGHEST, KERNELS


def forward(model: ModelSpec | Network, params: Mapping[str, jax.Array],
            x: jax.Array, outputs: dict[str, jax.Array] | None = None) -> jax.Array:
    """``h_{i+1} = act(h_i @ dense_i.kernel + dense_i.bias)``, kernels ``(fan_in, fan_out)``;
    ``act`` is tanh or ``jax.nn.relu`` (``relu'(0) = 0``; ``jnp.maximum(z, 0)`` would give ½)
    after hidden layers, the output is linear. Matmuls at ``HIGHEST`` precision. A
    :class:`regcore.Network` runs layer by layer (:func:`layers.forward`). ``outputs``, when
    given, receives each named layer's output (``dense_i`` after its activation)."""
    if isinstance(model, Network):
        return layers.forward(model, params, x, outputs)
    h = x
    for i in range(model.layers):
        kernel, bias = params[f"dense_{i}.kernel"], params[f"dense_{i}.bias"]
        h = jnp.matmul(h, kernel, precision=HIGHEST) + bias
        if i < model.layers - 1:
            h = jnp.tanh(h) if model.activation == "tanh" else jax.nn.relu(h)
        if outputs is not None:
            outputs[f"dense_{i}"] = h
    return h


def data_loss(kind: str, out: jax.Array, y: jax.Array) -> jax.Array:
    """``mse``: ``mean((ŷ - y)²)`` over all entries; ``half_mse``: ``Σ (ŷ - y)² / (2m)`` over the
    ``m`` rows; ``softmax_xent``: mean over rows of ``-log softmax(ŷ)[y]`` (integer labels)."""
    if kind == "mse":
        return jnp.mean(jnp.square(out - y))
    if kind == "half_mse":
        r = out - y
        return jnp.sum(r * r) / (2 * jnp.asarray(out.shape[0], out.dtype))
    if kind == "softmax_xent":
        log_p = jax.nn.log_softmax(out, axis=1)
        return -jnp.mean(jnp.take_along_axis(log_p, y[:, None], axis=1))
    raise ValueError(f"unknown loss {kind!r}")


def objective(
    model: ModelSpec | Network, params: Mapping[str, jax.Array], x: jax.Array, y: jax.Array,
    activity: tuple[ActivityAssignment, ...] = (),
) -> jax.Array:
    """The data loss of ``model`` with ``params`` on ``(x, y)``, plus the ``activity``
    penalties on its layers' outputs (each term's kernel on the output, divided by its batch
    size for ``batch_mean``), as a 0-dim array."""
    outputs: dict[str, jax.Array] = {}
    loss = data_loss(model.loss, forward(model, params, x, outputs), y)
    for a in activity:
        out = outputs[a.layer]
        value = KERNELS[type(a.term)](a.term, out)
        if a.reduction == "batch_mean":
            value = value / jnp.asarray(out.shape[0], value.dtype)
        loss = loss + value.astype(loss.dtype)
    return loss
