"""Layer-by-layer networks for the scenario harness: convolutional and sequence models.

:class:`Network` is a stack of layer descriptions, each naming its parameters in the canonical
layout every backend receives and returns them in. The canonical layout is Keras's (channels
last), because it is the one where a kernel's leading axes are its inputs and its last axis its
outputs, the ``(fan_in, fan_out)`` of :class:`regcore.ModelSpec`'s dense kernels:

================  =====================================  ====================================
layer             canonical parameters                   torch's own layout
================  =====================================  ====================================
``Dense``         ``kernel (in, out)``, ``bias (out,)``  ``weight (out, in)``
``Conv2D``        ``kernel (kh, kw, in, out)``           ``weight (out, in, kh, kw)``
``GroupNorm``     ``gamma (C,)``, ``beta (C,)``          ``weight``, ``bias``
``LayerNorm``     ``gamma (d,)``, ``beta (d,)``          ``weight``, ``bias``
``Embedding``     ``embeddings (vocab, d)``              ``weight (vocab, d)``
``SelfAttention`` ``{query,key,value,output}.kernel      four ``Linear``: ``weight (d, d)``
                  (d, d)`` and ``.bias (d,)``            transposed
================  =====================================  ====================================

Activations are channels last too: images ``(batch, height, width, channels)``, sequences
``(batch, steps, features)``. A torch backend carries kernels and activations into its own
layout and back (a conv kernel ``permute(3, 2, 0, 1)``); a layout-dependent term (group lasso
along an axis, orthogonal rows) means the canonical axes whatever the framework, so forgetting
that transpose changes the number.

Roles: kernels ``weight``, biases and norm shifts ``bias``, norm scales ``norm_scale``,
embedding tables ``embedding``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from regcore import _validate
from regcore.errors import SpecError
from regcore.selection import ParamInfo

Shape = tuple[int, ...]


class Layer:
    """A layer description: its parameters and the shape it maps a sample's shape to."""

    kind: ClassVar[str] = ""

    def params(self) -> tuple[ParamInfo, ...]:
        return ()

    def output_shape(self, shape: Shape) -> Shape:
        return shape


def _channels(layer: str, shape: Shape, ndim: int, expected: int) -> None:
    if len(shape) != ndim or shape[-1] != expected:
        raise SpecError(f"network: layer {layer!r} expects a sample of {ndim} axes with "
                        f"{expected} features last, gets shape {shape}")


@dataclass(frozen=True)
class Dense(Layer):
    """``h @ kernel + bias`` on the last axis (any leading axes)."""

    name: str
    fan_in: int
    fan_out: int
    kind: ClassVar[str] = "dense"

    def params(self) -> tuple[ParamInfo, ...]:
        return (ParamInfo(f"{self.name}.kernel", (self.fan_in, self.fan_out), "weight"),
                ParamInfo(f"{self.name}.bias", (self.fan_out,), "bias"))

    def output_shape(self, shape: Shape) -> Shape:
        _channels(self.name, shape, len(shape) or 1, self.fan_in)
        return (*shape[:-1], self.fan_out)


@dataclass(frozen=True)
class Conv2D(Layer):
    """2-D cross-correlation, stride 1, no padding ("valid"), channels last, plus bias: torch
    ``nn.Conv2d(in, out, k)``, Keras ``Conv2D(out, k)``."""

    name: str
    in_channels: int
    filters: int
    kernel_size: tuple[int, int]
    kind: ClassVar[str] = "conv2d"

    def params(self) -> tuple[ParamInfo, ...]:
        kh, kw = self.kernel_size
        return (ParamInfo(f"{self.name}.kernel", (kh, kw, self.in_channels, self.filters),
                          "weight"),
                ParamInfo(f"{self.name}.bias", (self.filters,), "bias"))

    def output_shape(self, shape: Shape) -> Shape:
        _channels(self.name, shape, 3, self.in_channels)
        (h, w, _), (kh, kw) = shape, self.kernel_size
        if h < kh or w < kw:
            raise SpecError(f"network: layer {self.name!r}: kernel {self.kernel_size} is larger "
                            f"than its input {shape[:2]}")
        return (h - kh + 1, w - kw + 1, self.filters)


@dataclass(frozen=True)
class GroupNorm(Layer):
    """Per sample, each group of ``channels // groups`` channels normalized over it and the
    spatial axes (biased variance, ``eps`` inside the square root), then ``gamma·x̂ + beta`` per
    channel: torch ``nn.GroupNorm(groups, channels, eps)``, Keras
    ``GroupNormalization(groups, epsilon=eps)``."""

    name: str
    groups: int
    channels: int
    eps: float = 1e-5
    kind: ClassVar[str] = "group_norm"

    def __post_init__(self) -> None:
        if self.channels % self.groups:
            raise SpecError(f"network: layer {self.name!r}: {self.channels} channels do not "
                            f"split into {self.groups} groups")

    def params(self) -> tuple[ParamInfo, ...]:
        return (ParamInfo(f"{self.name}.gamma", (self.channels,), "norm_scale"),
                ParamInfo(f"{self.name}.beta", (self.channels,), "bias"))

    def output_shape(self, shape: Shape) -> Shape:
        _channels(self.name, shape, 3, self.channels)
        return shape


@dataclass(frozen=True)
class LayerNorm(Layer):
    """The last axis normalized (biased variance, ``eps`` inside the square root), then
    ``gamma·x̂ + beta``: torch ``nn.LayerNorm(dim, eps)``, Keras
    ``LayerNormalization(epsilon=eps)``."""

    name: str
    dim: int
    eps: float = 1e-5
    kind: ClassVar[str] = "layer_norm"

    def params(self) -> tuple[ParamInfo, ...]:
        return (ParamInfo(f"{self.name}.gamma", (self.dim,), "norm_scale"),
                ParamInfo(f"{self.name}.beta", (self.dim,), "bias"))

    def output_shape(self, shape: Shape) -> Shape:
        _channels(self.name, shape, len(shape) or 1, self.dim)
        return shape


@dataclass(frozen=True)
class Embedding(Layer):
    """Integer tokens ``(steps,)`` to rows of ``embeddings``: torch ``nn.Embedding``, Keras
    ``Embedding``."""

    name: str
    vocab: int
    dim: int
    kind: ClassVar[str] = "embedding"

    def params(self) -> tuple[ParamInfo, ...]:
        return (ParamInfo(f"{self.name}.embeddings", (self.vocab, self.dim), "embedding"),)

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) != 1:
            raise SpecError(f"network: layer {self.name!r} takes token ids of shape (steps,), "
                            f"gets {shape}")
        return (*shape, self.dim)


@dataclass(frozen=True)
class SelfAttention(Layer):
    """Multi-head self-attention without a mask: ``q, k, v = h·W + b`` (``query``, ``key``,
    ``value``, each ``(dim, dim)``), split into ``heads`` of ``dim // heads`` features,
    ``softmax(q kᵀ / √(dim // heads)) v`` per head, heads concatenated, then ``output``. As
    torch's ``nn.MultiheadAttention`` computes it, but with the four projections unfused (as
    Hugging Face's BERT and GPT-2 ports hold them), so each has a canonical ``(in, out)``
    kernel."""

    name: str
    dim: int
    heads: int
    kind: ClassVar[str] = "self_attention"
    PROJECTIONS: ClassVar[tuple[str, ...]] = ("query", "key", "value", "output")

    def __post_init__(self) -> None:
        if self.dim % self.heads:
            raise SpecError(f"network: layer {self.name!r}: dim {self.dim} does not split into "
                            f"{self.heads} heads")

    def params(self) -> tuple[ParamInfo, ...]:
        return tuple(p for proj in self.PROJECTIONS
                     for p in Dense(f"{self.name}.{proj}", self.dim, self.dim).params())

    def output_shape(self, shape: Shape) -> Shape:
        _channels(self.name, shape, 2, self.dim)
        return shape


@dataclass(frozen=True)
class Activation(Layer):
    """``relu`` (``relu'(0) = 0``) or ``tanh``, elementwise."""

    function: str
    kind: ClassVar[str] = "activation"

    def __post_init__(self) -> None:
        _validate.choice("network.activation", self.function, ("relu", "tanh"))


@dataclass(frozen=True)
class AvgPool2D(Layer):
    """Mean over non-overlapping ``size × size`` windows (the spatial sizes must divide)."""

    size: int
    kind: ClassVar[str] = "avg_pool2d"

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) != 3 or shape[0] % self.size or shape[1] % self.size:
            raise SpecError(f"network: avg_pool2d({self.size}) needs an image whose height and "
                            f"width it divides, gets {shape}")
        return (shape[0] // self.size, shape[1] // self.size, shape[2])


@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    """Mean over every axis between the batch and the features (the spatial axes of an image,
    the steps of a sequence): Keras ``GlobalAveragePooling2D``/``1D``."""

    kind: ClassVar[str] = "global_avg_pool"

    def output_shape(self, shape: Shape) -> Shape:
        return shape[-1:]


@dataclass(frozen=True)
class Network:
    """A stack of :class:`Layer` descriptions on samples of ``input_shape`` (token ids when the
    first layer is an :class:`Embedding`), trained on ``loss`` as :class:`regcore.ModelSpec`
    defines it."""

    input_shape: Shape
    stack: tuple[Layer, ...]
    loss: str

    def __post_init__(self) -> None:
        from regcore.harness import LOSSES

        _validate.choice("network.loss", self.loss, LOSSES)
        if isinstance(self.stack, (str, bytes)) or not isinstance(self.stack, Sequence):
            raise SpecError(f"network.stack: expected a list of layers, got {self.stack!r}")
        object.__setattr__(self, "stack", tuple(self.stack))
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        for layer in self.stack:
            if not isinstance(layer, Layer):
                raise SpecError(f"network.stack: expected layer descriptions, got {layer!r}")
        names = [p.name for p in self.params()]
        if len(set(names)) != len(names):
            raise SpecError(f"network: parameter names repeat: {names}")
        self.shapes()

    @property
    def tokens(self) -> bool:
        """Whether the input is integer token ids."""
        return bool(self.stack) and isinstance(self.stack[0], Embedding)

    def shapes(self) -> tuple[Shape, ...]:
        """The sample shape entering each layer, then the output's."""
        shapes = [self.input_shape]
        for layer in self.stack:
            shapes.append(layer.output_shape(shapes[-1]))
        return tuple(shapes)

    def layer_names(self) -> tuple[str, ...]:
        """The named layers (every one with parameters), whose outputs an activity item may
        name."""
        return tuple(layer.name for layer in self.stack if hasattr(layer, "name"))

    @property
    def outputs(self) -> int:
        return self.shapes()[-1][-1]

    def params(self) -> tuple[ParamInfo, ...]:
        """Parameter names, shapes and roles, in layer order."""
        return tuple(p for layer in self.stack for p in layer.params())

    def run(self, table: Mapping[type[Layer], Callable[..., Any]], params: Any, x: Any,
            outputs: dict[str, Any] | None = None) -> Any:
        """``x`` through the stack, each layer as ``table[type(layer)](layer, params, h)``: a
        backend's forward pass is this with its table of layer functions. ``outputs``, when
        given, receives each named layer's output (what activity items name)."""
        h = x
        for layer in self.stack:
            h = table[type(layer)](layer, params, h)
            if outputs is not None and hasattr(layer, "name"):
                outputs[layer.name] = h
        return h
