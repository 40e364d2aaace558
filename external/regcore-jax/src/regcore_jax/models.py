"""The scenario networks in JAX: dense forward pass and data loss (``jax.grad`` differentiates)."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from regcore import ModelSpec
from regcore_jax.penalties import HIGHEST


def forward(model: ModelSpec, params: Mapping[str, jax.Array], x: jax.Array) -> jax.Array:
    """``h_{i+1} = act(h_i @ dense_i.kernel + dense_i.bias)``, kernels ``(fan_in, fan_out)``;
    ``act`` is tanh or ``jax.nn.relu`` (``relu'(0) = 0``; ``jnp.maximum(z, 0)`` would give ½)
    after hidden layers, the output is linear. Matmuls at ``HIGHEST`` precision."""
    h = x
    for i in range(model.layers):
        kernel, bias = params[f"dense_{i}.kernel"], params[f"dense_{i}.bias"]
        h = jnp.matmul(h, kernel, precision=HIGHEST) + bias
        if i < model.layers - 1:
            h = jnp.tanh(h) if model.activation == "tanh" else jax.nn.relu(h)
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
    model: ModelSpec, params: Mapping[str, jax.Array], x: jax.Array, y: jax.Array
) -> jax.Array:
    """The data loss of ``model`` with ``params`` on ``(x, y)``, as a 0-dim array."""
    return data_loss(model.loss, forward(model, params, x), y)
