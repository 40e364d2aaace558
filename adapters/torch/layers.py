"""The layers of :class:`regcore.Network` in torch, two ways.

* :func:`forward`: functional, on canonical parameters (channels last, kernels ``(kh, kw, in,
  out)``), each layer carried into torch's layout for its op and back (a conv kernel
  ``permute(3, 2, 0, 1)``, the image ``permute(0, 3, 1, 2)``); autograd differentiates.
* :class:`LayerNet`: the network as torch users build it, ``nn.Conv2d``, ``nn.GroupNorm``,
  ``nn.LayerNorm``, ``nn.Embedding`` and ``nn.Linear`` modules holding torch's own layouts, on
  ``(N, C, H, W)`` images; the native translations regularize it through
  :func:`~regcore_adapters.torch.modules.module_params`' canonical views.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from regcore import Network, SpecError
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
from regcore_adapters.torch.modules import module_params

Params = Mapping[str, torch.Tensor]


def _dense(layer: Dense, p: Params, h: torch.Tensor) -> torch.Tensor:
    return h @ p[f"{layer.name}.kernel"] + p[f"{layer.name}.bias"]


def _conv2d(layer: Conv2D, p: Params, h: torch.Tensor) -> torch.Tensor:
    weight = p[f"{layer.name}.kernel"].permute(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, ..)
    out = F.conv2d(h.permute(0, 3, 1, 2), weight, p[f"{layer.name}.bias"])
    return out.permute(0, 2, 3, 1)


def _group_norm(layer: GroupNorm, p: Params, h: torch.Tensor) -> torch.Tensor:
    out = F.group_norm(h.permute(0, 3, 1, 2), layer.groups, p[f"{layer.name}.gamma"],
                       p[f"{layer.name}.beta"], layer.eps)
    return out.permute(0, 2, 3, 1)


def _layer_norm(layer: LayerNorm, p: Params, h: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(h, (layer.dim,), p[f"{layer.name}.gamma"], p[f"{layer.name}.beta"],
                        layer.eps)


def _embedding(layer: Embedding, p: Params, ids: torch.Tensor) -> torch.Tensor:
    return F.embedding(ids, p[f"{layer.name}.embeddings"])


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Unmasked multi-head attention of ``(m, T, d)`` projections: heads of ``d // heads``
    features, ``softmax(q kᵀ/√(d/heads)) v`` per head, heads concatenated."""
    m, steps, dim = q.shape

    def split(z: torch.Tensor) -> torch.Tensor:
        return z.reshape(m, steps, heads, dim // heads).transpose(1, 2)

    scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(dim // heads)
    mixed = torch.softmax(scores, dim=-1) @ split(v)
    return mixed.transpose(1, 2).reshape(m, steps, dim)


def _attention(layer: SelfAttention, p: Params, h: torch.Tensor) -> torch.Tensor:
    def project(name: str, z: torch.Tensor) -> torch.Tensor:
        return _dense(Dense(f"{layer.name}.{name}", layer.dim, layer.dim), p, z)

    mixed = attend(project("query", h), project("key", h), project("value", h), layer.heads)
    return project("output", mixed)


def _activation(layer: Activation, p: Params, h: torch.Tensor) -> torch.Tensor:
    return torch.relu(h) if layer.function == "relu" else torch.tanh(h)


def _avg_pool(layer: AvgPool2D, p: Params, h: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(h.permute(0, 3, 1, 2), layer.size).permute(0, 2, 3, 1)


def _global_pool(layer: GlobalAvgPool, p: Params, h: torch.Tensor) -> torch.Tensor:
    return torch.mean(h, dim=tuple(range(1, h.ndim - 1)))


LAYERS: dict[type[Layer], Callable[..., torch.Tensor]] = {
    Dense: _dense, Conv2D: _conv2d, GroupNorm: _group_norm, LayerNorm: _layer_norm,
    Embedding: _embedding, SelfAttention: _attention, Activation: _activation,
    AvgPool2D: _avg_pool, GlobalAvgPool: _global_pool,
}


def forward(network: Network, params: Params, x: torch.Tensor,
            outputs: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The network's output on ``x`` (channels-last images, or token ids); ``outputs``, when
    given, receives each named layer's output."""
    return network.run(LAYERS, params, x, outputs)


class Attention(nn.Module):
    """:class:`regcore.network.SelfAttention` as Hugging Face's BERT holds it: four
    ``nn.Linear`` projections (``query``, ``key``, ``value``, ``output``)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        for name in SelfAttention.PROJECTIONS:
            self.add_module(name, nn.Linear(dim, dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        mixed = attend(self.query(h), self.key(h), self.value(h), self.heads)
        return self.output(mixed)


class GlobalPool(nn.Module):
    """Mean over the spatial axes of ``(N, C, H, W)``, or the steps of ``(N, T, d)``."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.mean(h, dim=(2, 3) if h.ndim == 4 else 1)


_MODULES: dict[type[Layer], Callable[..., nn.Module]] = {
    Dense: lambda layer: nn.Linear(layer.fan_in, layer.fan_out),
    Conv2D: lambda layer: nn.Conv2d(layer.in_channels, layer.filters, layer.kernel_size),
    GroupNorm: lambda layer: nn.GroupNorm(layer.groups, layer.channels, eps=layer.eps),
    LayerNorm: lambda layer: nn.LayerNorm(layer.dim, eps=layer.eps),
    Embedding: lambda layer: nn.Embedding(layer.vocab, layer.dim),
    SelfAttention: lambda layer: Attention(layer.dim, layer.heads),
    Activation: lambda layer: nn.ReLU() if layer.function == "relu" else nn.Tanh(),
    AvgPool2D: lambda layer: nn.AvgPool2d(layer.size),
    GlobalAvgPool: lambda layer: GlobalPool(),
}

#: torch's parameter name → the canonical one, by the owning module's type.
_LEAF_NAMES: tuple[tuple[type[nn.Module], dict[str, str]], ...] = (
    ((nn.GroupNorm, nn.LayerNorm), {"weight": "gamma", "bias": "beta"}),
    ((nn.Embedding,), {"weight": "embeddings"}),
    ((nn.Linear, nn.Conv2d), {"weight": "kernel", "bias": "bias"}),
)


#: Layers that act on the last axis as the features, which an ``(N, C, H, W)`` image is not.
_FEATURES_LAST = (Dense, LayerNorm, SelfAttention, Embedding)


class LayerNet(nn.Module):
    """The network as ``nn.Module`` children named after the layer descriptions (``conv_0``,
    ``norm_0``, ``attention.query``...), on channels-last images it turns to ``(N, C, H, W)``
    once, at the input, as a torch data pipeline would hand them over.

    So images stay ``(N, C, H, W)`` until a global pool: a description that puts a dense, norm
    or attention layer on an image, or ends on one, is a :class:`regcore.SpecError` here (the
    functional :func:`forward` runs it)."""

    def __init__(self, network: Network) -> None:
        super().__init__()
        shapes = network.shapes()
        for layer, shape in zip(network.stack, shapes, strict=False):
            if isinstance(layer, _FEATURES_LAST) and len(shape) == 3:
                raise SpecError(f"LayerNet: layer {layer.name!r} on an image {shape}: torch "
                                "holds it (N, C, H, W), not channels last")
        if len(shapes[-1]) == 3:
            raise SpecError(f"LayerNet: the network ends on an image {shapes[-1]}, which torch "
                            "holds (N, C, H, W), not channels last")
        self.spec = network
        for i, layer in enumerate(network.stack):
            self.add_module(getattr(layer, "name", f"{layer.kind}_{i}"),
                            _MODULES[type(layer)](layer))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.permute(0, 3, 1, 2) if x.ndim == 4 else x
        for module in self.children():
            h = module(h)
        return h

    def layer_modules(self) -> dict[str, nn.Module]:
        """The module of each named layer (whose output an activity item may name)."""
        return {layer.name: getattr(self, layer.name) for layer in self.spec.stack
                if hasattr(layer, "name")}

    def canonical_name(self, name: str) -> str:
        """``conv_0.weight`` → ``conv_0.kernel``, ``norm.weight`` → ``norm.gamma``,
        ``embed.weight`` → ``embed.embeddings``."""
        owner, _, leaf = name.rpartition(".")
        module = self.get_submodule(owner)
        for types, names in _LEAF_NAMES:
            if isinstance(module, types):
                return f"{owner}.{names[leaf]}"
        raise KeyError(name)

    @torch.no_grad()
    def load_canonical(self, params: Params) -> LayerNet:
        """Copy canonical parameters in, through each one's view of torch's storage."""
        first = next(iter(params.values()))
        self.to(device=first.device, dtype=first.dtype)
        for p in module_params(self):
            p.view(p.param).copy_(params[self.canonical_name(p.info.name)])
        return self

    def canonical(self) -> dict[str, torch.Tensor]:
        """The parameters back in the canonical names and layout."""
        return {self.canonical_name(p.info.name): p.view(p.param.detach()).contiguous().clone()
                for p in module_params(self)}

    def canonical_grads(self) -> dict[str, torch.Tensor]:
        """The parameters' ``.grad`` in the canonical layout (zeros where there is none)."""
        return {self.canonical_name(p.info.name): p.view(
            p.param.grad if p.param.grad is not None else torch.zeros_like(p.param)
        ).detach().contiguous().clone() for p in module_params(self)}
