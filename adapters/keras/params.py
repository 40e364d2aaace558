"""A Keras 3 model's trainable variables as the spec sees them: dotted name, role from the layer
type, and the layer attribute a regularizer for the variable is stored in.

Names: the layer names from the model down to the variable's own layer, then the variable's
name, joined by dots (``dense_0.kernel``, ``block.norm.gamma``); the top model's own name is left
out, so the names do not change with the model's auto-generated name (``sequential_3``).

Roles come from the type of the layer that owns the variable, not from name suffixes:

* normalization layers (``BatchNormalization``, ``LayerNormalization``, ``GroupNormalization``,
  ``RMSNormalization``): the scale (``gamma``/``scale``) → ``norm_scale``, the shift (``beta``) →
  ``bias``;
* ``Embedding``: ``embeddings`` → ``embedding``;
* every other layer (``Dense``, ``EinsumDense``, convolutions, recurrent cells...): a variable
  named ``*bias*`` → ``bias``, else ``ndim >= 2`` → ``weight``, else ``other``.

Layout: Keras stores kernels as ``(fan_in, fan_out)`` (``(*kernel_size, in, out)`` for
convolutions), which *is* the canonical layout group-lasso axes and orthogonal modes refer to, so
no view is needed (unlike torch).

Non-trainable variables (moving statistics, optimizer state) are never parameters of a spec; a
trainable variable that is frozen (``layer.trainable = False``) is a parameter marked frozen, which
selections skip unless ``include_frozen=True`` (Keras's ``model.losses`` skips its regularizer
too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import keras

from regcore import ParamInfo

_NORM_NAMES = ("BatchNormalization", "LayerNormalization", "GroupNormalization",
               "RMSNormalization")
_NORMS = tuple(getattr(keras.layers, n) for n in _NORM_NAMES if hasattr(keras.layers, n))

#: Variable name → the layer attribute (and ``get_config`` key) holding its regularizer.
REGULARIZER_ATTRS = {
    "kernel": "kernel_regularizer",
    "bias": "bias_regularizer",
    "gamma": "gamma_regularizer",
    "beta": "beta_regularizer",
    "embeddings": "embeddings_regularizer",
    "depthwise_kernel": "depthwise_regularizer",
    "pointwise_kernel": "pointwise_regularizer",
    "recurrent_kernel": "recurrent_regularizer",
}


@dataclass(frozen=True)
class KerasParam:
    """A trainable variable, its spec description, and the layer that owns it."""

    info: ParamInfo
    variable: keras.Variable
    layer: keras.layers.Layer

    @property
    def regularizer_attr(self) -> str | None:
        """The owning layer's attribute for this variable's regularizer, if the layer has one
        that its ``get_config`` saves (``None`` otherwise)."""
        attr = REGULARIZER_ATTRS.get(self.variable.name)
        return attr if attr is not None and hasattr(self.layer, attr) else None


def _role(layer: keras.layers.Layer, variable: keras.Variable) -> str:
    name, ndim = variable.name, len(variable.shape)
    if isinstance(layer, _NORMS):
        return "bias" if name == "beta" else "norm_scale"
    if isinstance(layer, keras.layers.Embedding) and name == "embeddings":
        return "embedding"
    if "bias" in name:
        return "bias"
    return "weight" if ndim >= 2 else "other"


def _noncanonical(layer: keras.layers.Layer, variable: keras.Variable) -> str:
    """Why a variable has no canonical ``(fan_in, fan_out)`` layout (``""``: it has one): an
    ``EinsumDense`` kernel with more than two axes (``MultiHeadAttention``'s query/key/value
    ``(dim, heads, head_dim)`` and output ``(heads, head_dim, dim)``), a depthwise kernel
    (``DepthwiseConv2D``, ``SeparableConv2D``: ``(*kernel, channels, multiplier)``)."""
    if isinstance(layer, keras.layers.EinsumDense) and variable.name == "kernel" and \
            len(variable.shape) > 2:
        return (f"an EinsumDense kernel {tuple(variable.shape)} of {layer.equation!r}, several "
                "axes on one side; torch's nn.Linear is (out, in)")
    depthwise = tuple(getattr(keras.layers, n) for n in ("DepthwiseConv1D", "DepthwiseConv2D")
                      if hasattr(keras.layers, n))
    if variable.name == "depthwise_kernel" or \
            isinstance(layer, depthwise) and variable.name == "kernel":
        return (f"a depthwise kernel {tuple(variable.shape)} (*kernel, channels, multiplier), "
                "each output channel over two axes; Conv2D(groups=channels) and torch's "
                "Conv2d(groups=channels) hold the same weights as (*kernel, 1, "
                "channels*multiplier)")
    return ""


def _children(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    # Keras 3 has no public "direct sublayers" accessor for every layer type (``Model.layers``
    # exists only on models); ``_flatten_layers`` is what ``Layer.losses`` itself walks.
    return list(layer._flatten_layers(include_self=False, recursive=False))


def _walk(layer: keras.layers.Layer, prefix: str, seen: set[int],
          trainable: bool) -> Iterator[tuple[str, keras.layers.Layer, bool]]:
    """``(path, layer, trainable)`` for every sublayer: ``trainable`` false under a frozen
    ancestor too (Keras's ``trainable_weights`` is empty below a layer with ``trainable=False``)."""
    for child in _children(layer):
        if id(child) in seen:  # a shared layer is listed once, under its first path
            continue
        seen.add(id(child))
        path = f"{prefix}{child.name}"
        child_trainable = trainable and child.trainable
        yield path, child, child_trainable
        yield from _walk(child, f"{path}.", seen, child_trainable)


def layer_paths(model: keras.layers.Layer) -> dict[str, keras.layers.Layer]:
    """Every sublayer of ``model`` by its dotted path (``dense_0``, ``attention.query``): the
    names activity penalties (:mod:`regcore.activity`) select layers by."""
    return {path: layer for path, layer, _ in _walk(model, "", {id(model)}, True)}


def model_params(model: keras.layers.Layer) -> list[KerasParam]:
    """Every trainable variable of a built ``model`` (a Keras ``Model`` or ``Layer``), in layer
    order, as :class:`KerasParam`: frozen ones (``trainable=False`` on the variable or on a layer
    above it) with ``ParamInfo.trainable`` false, and a variable that several layers own (tied)
    once, under its first path, with the other owners in ``ParamInfo.aliases``. Raises
    :class:`TypeError` for anything else and :class:`ValueError` for an unbuilt model (it has no
    variables yet)."""
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"model: expected a Keras Model or Layer, got {type(model).__name__}")
    if not model.built:
        raise ValueError(
            f"model: {model.name!r} is not built, so it has no variables yet; call it on a batch "
            "or build it with an input shape first"
        )
    owners: dict[int, list[tuple[ParamInfo, keras.Variable, keras.layers.Layer]]] = {}
    layers = [("", model, model.trainable), *_walk(model, "", {id(model)}, model.trainable)]
    for path, layer, trainable in layers:
        for v in layer._trainable_variables:  # the layer's own, not its sublayers'
            name = f"{path}.{v.name}" if path else v.name
            info = ParamInfo(name, tuple(v.shape), _role(layer, v),
                             trainable=bool(trainable and v.trainable),
                             noncanonical=_noncanonical(layer, v))
            owners.setdefault(id(v), []).append((info, v, layer))
    params: list[KerasParam] = []
    for (info, v, layer), *others in owners.values():
        if others:
            info = dataclasses.replace(info, aliases=tuple(o for o, _, _ in others))
        params.append(KerasParam(info, v, layer))
    return params
