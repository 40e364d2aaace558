"""A :class:`regcore.Network` as a real Keras model built from Keras's own layers, each named as
its description, so :mod:`regcore_adapters.keras.params` names its variables exactly as
``network.params()`` does (``conv_0.kernel``, ``norm_0.gamma``, ``attention.query.kernel``).

Keras's kernel layouts are the canonical ones, so parameters load without a transpose. Keras has
no layer for the unfused self-attention the description means (``MultiHeadAttention`` holds
``(dim, heads, head_dim)`` kernels), so :class:`SelfAttentionLayer` holds four ``Dense(dim)``
sublayers named ``query``, ``key``, ``value``, ``output``; it is registered for ``.keras`` files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import keras
from keras import ops

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
    Shape,
)
from regcore_adapters.keras.params import model_params


@keras.saving.register_keras_serializable(package="regcore")
class SelfAttentionLayer(keras.layers.Layer):
    """Unmasked multi-head self-attention on ``(batch, steps, dim)``: ``q, k, v`` from the
    ``query``, ``key``, ``value`` ``Dense(dim)`` sublayers split into ``heads`` of
    ``dim // heads`` features, ``softmax(q kᵀ/√head_dim) v`` per head, heads concatenated, then
    the ``output`` ``Dense(dim)``.

    The sublayers' regularizers are part of this layer's config (``sublayer_regularizers``):
    Keras saves a nested layer only through its parent's ``get_config``, so without them a
    ``.keras`` file reloads with the projections' regularizers silently gone (the suite's
    ``keras_saved`` check found it)."""

    REGULARIZED = ("kernel_regularizer", "bias_regularizer", "activity_regularizer")

    def __init__(self, dim: int, heads: int,
                 sublayer_regularizers: dict[str, dict[str, Any]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dim, self.heads = dim, heads
        # ``output`` is a Keras ``Layer`` property, so that sublayer is the attribute ``out``
        self.query, self.key, self.value, self.out = (
            keras.layers.Dense(dim, name=proj, dtype=self.dtype_policy)
            for proj in SelfAttention.PROJECTIONS
        )
        for proj, layer in self._projections().items():
            for attr, config in (sublayer_regularizers or {}).get(proj, {}).items():
                setattr(layer, attr, keras.regularizers.deserialize(config))

    def _projections(self) -> dict[str, keras.layers.Dense]:
        return dict(zip(SelfAttention.PROJECTIONS, (self.query, self.key, self.value, self.out),
                        strict=True))

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Builds the four projections on ``input_shape``."""
        for proj in (self.query, self.key, self.value):
            proj.build(input_shape)
        self.out.build((*input_shape[:-1], self.dim))

    def call(self, inputs: Any) -> Any:
        """The attention output, shaped as ``inputs``."""
        steps, head_dim = ops.shape(inputs)[1], self.dim // self.heads

        def split(z: Any) -> Any:  # (m, T, dim) -> (m, heads, T, head_dim)
            return ops.transpose(ops.reshape(z, (-1, steps, self.heads, head_dim)), (0, 2, 1, 3))

        q, k, v = (split(proj(inputs)) for proj in (self.query, self.key, self.value))
        scale = ops.convert_to_tensor(1 / math.sqrt(head_dim), inputs.dtype)  # not ops.cast
        attn = ops.softmax(ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * scale, axis=-1)
        mixed = ops.reshape(ops.transpose(ops.matmul(attn, v), (0, 2, 1, 3)),
                            (-1, steps, self.dim))
        return self.out(mixed)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        """The input's shape."""
        return input_shape

    def get_config(self) -> dict[str, Any]:
        """The base config plus ``dim``, ``heads`` and the projections' regularizers."""
        regularizers = {
            proj: {attr: keras.regularizers.serialize(getattr(layer, attr))
                   for attr in self.REGULARIZED if getattr(layer, attr, None) is not None}
            for proj, layer in self._projections().items()}
        return {**super().get_config(), "dim": self.dim, "heads": self.heads,
                "sublayer_regularizers": {k: v for k, v in regularizers.items() if v}}


Builder = Callable[[Any, str, Shape], keras.layers.Layer]
"""``(description, dtype, sample shape entering it) -> Keras layer``."""

KERAS_LAYERS: dict[type[Layer], Builder] = {
    Dense: lambda d, dtype, _: keras.layers.Dense(d.fan_out, name=d.name, dtype=dtype),
    Conv2D: lambda d, dtype, _: keras.layers.Conv2D(
        d.filters, d.kernel_size, padding="valid", name=d.name, dtype=dtype),
    GroupNorm: lambda d, dtype, _: keras.layers.GroupNormalization(
        d.groups, epsilon=d.eps, name=d.name, dtype=dtype),
    LayerNorm: lambda d, dtype, _: keras.layers.LayerNormalization(
        epsilon=d.eps, name=d.name, dtype=dtype),
    Embedding: lambda d, dtype, _: keras.layers.Embedding(d.vocab, d.dim, name=d.name,
                                                          dtype=dtype),
    SelfAttention: lambda d, dtype, _: SelfAttentionLayer(d.dim, d.heads, name=d.name,
                                                          dtype=dtype),
    Activation: lambda d, dtype, _: keras.layers.Activation(d.function, dtype=dtype),
    AvgPool2D: lambda d, dtype, _: keras.layers.AveragePooling2D(d.size, dtype=dtype),
    GlobalAvgPool: lambda d, dtype, shape: (
        keras.layers.GlobalAveragePooling2D(dtype=dtype) if len(shape) == 3
        else keras.layers.GlobalAveragePooling1D(dtype=dtype)),
}
"""Each layer description's Keras layer (Keras's epsilons default to 1e-3: always passed)."""


def build_network(network: Network, params: Mapping[str, Any],
                  token_dtype: str = "int32") -> keras.Model:
    """A functional Keras model computing ``network`` in the parameters' dtype (token ids of
    ``token_dtype`` in when ``network.tokens``), loaded with ``params`` (canonical names)."""
    dtype = keras.backend.standardize_dtype(next(iter(params.values())).dtype)
    inputs = keras.Input(network.input_shape, dtype=token_dtype if network.tokens else dtype)
    h = inputs
    for layer, shape in zip(network.stack, network.shapes(), strict=False):
        h = KERAS_LAYERS[type(layer)](layer, dtype, shape)(h)
    net = keras.Model(inputs, h)
    for name, variable in canonical_variables(net, network).items():
        variable.assign(ops.copy(params[name]))  # JAX's train step deletes the array
    return net


def canonical_variables(net: keras.Model, network: Network) -> dict[str, keras.Variable]:
    """The model's trainable variables by canonical name, in ``network.params()`` order."""
    found = {p.info.name: p.variable for p in model_params(net)}
    names = [info.name for info in network.params()]
    assert set(found) == set(names), f"Keras names {sorted(found)} != canonical {names}"
    return {name: found[name] for name in names}
