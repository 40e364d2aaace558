"""The scenario networks in torch: dense forward pass and data loss (autograd differentiates)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from regcore import ActivityAssignment, ModelSpec, Network
from regcore_adapters.torch import layers
from regcore_adapters.torch.penalties import activity_value


def forward(model: ModelSpec | Network, params: Mapping[str, torch.Tensor],
            x: torch.Tensor, outputs: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """``h_{i+1} = act(h_i @ dense_i.kernel + dense_i.bias)``, kernels ``(fan_in, fan_out)``;
    ``act`` is tanh or relu (``relu'(0) = 0``) after hidden layers, the output is linear. A
    :class:`regcore.Network` runs layer by layer (:func:`layers.forward`). ``outputs``, when
    given, receives each named layer's output (``dense_i`` after its activation)."""
    if isinstance(model, Network):
        return layers.forward(model, params, x, outputs)
    h = x
    for i in range(model.layers):
        h = h @ params[f"dense_{i}.kernel"] + params[f"dense_{i}.bias"]
        if i < model.layers - 1:
            h = torch.tanh(h) if model.activation == "tanh" else torch.relu(h)
        if outputs is not None:
            outputs[f"dense_{i}"] = h
    return h


def data_loss(kind: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``mse``: ``mean((ŷ - y)²)`` over all entries; ``half_mse``: ``Σ (ŷ - y)² / (2m)`` over the
    ``m`` rows; ``softmax_xent``: mean over rows of ``-log softmax(ŷ)[y]`` (int64 labels)."""
    if kind == "mse":
        return F.mse_loss(out, y, reduction="mean")
    if kind == "half_mse":
        r = out - y
        return torch.sum(r * r) / (2 * out.shape[0])
    if kind == "softmax_xent":
        return F.cross_entropy(out, y, reduction="mean")
    raise ValueError(f"unknown loss {kind!r}")


def objective(
    model: ModelSpec | Network, params: Mapping[str, torch.Tensor], x: torch.Tensor,
    y: torch.Tensor, activity: tuple[ActivityAssignment, ...] = (),
) -> torch.Tensor:
    """The data loss of ``model`` with ``params`` on ``(x, y)``, plus the ``activity``
    penalties on its layers' outputs, as a 0-dim tensor."""
    outputs: dict[str, torch.Tensor] = {}
    loss = data_loss(model.loss, forward(model, params, x, outputs), y)
    return loss + activity_value(activity, outputs) if activity else loss


class DenseNet(nn.Module):
    """The scenario network as a plain ``nn.Module``: ``dense_{i}`` are ``nn.Linear`` layers (torch
    layout, weight ``(out, in)``), each hidden one followed by its activation module ``act_{i}``
    (``nn.Tanh`` or ``nn.ReLU``), linear output."""

    def __init__(self, model: ModelSpec) -> None:
        super().__init__()
        self.spec = model
        for i, (fan_in, fan_out) in enumerate(zip(model.sizes, model.sizes[1:], strict=False)):
            self.add_module(f"dense_{i}", nn.Linear(fan_in, fan_out))
            if i < model.layers - 1:
                self.add_module(f"act_{i}", nn.Tanh() if model.activation == "tanh"
                                else nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.spec.layers):
            x = getattr(self, f"dense_{i}")(x)
            if i < self.spec.layers - 1:
                x = getattr(self, f"act_{i}")(x)
        return x

    def layer_modules(self) -> dict[str, nn.Module]:
        """The module whose output each layer an activity item may name is: ``dense_i``'s
        activation for a hidden layer (Keras's ``Dense(activation=...)`` output), the last
        ``nn.Linear`` for the output layer."""
        last = self.spec.layers - 1
        return {f"dense_{i}": getattr(self, f"act_{i}" if i < last else f"dense_{i}")
                for i in range(self.spec.layers)}

    @staticmethod
    def canonical_name(name: str) -> str:
        """``dense_0.weight`` → ``dense_0.kernel`` (the canonical name); other names unchanged."""
        layer, _, leaf = name.rpartition(".")
        return f"{layer}.kernel" if leaf == "weight" else name

    @torch.no_grad()
    def load_canonical(self, params: Mapping[str, torch.Tensor]) -> DenseNet:
        """Copy canonical ``dense_{i}.kernel`` ``(in, out)`` and ``dense_{i}.bias`` in."""
        for i in range(self.spec.layers):
            layer = getattr(self, f"dense_{i}")
            kernel, bias = params[f"dense_{i}.kernel"], params[f"dense_{i}.bias"]
            layer.to(device=kernel.device, dtype=kernel.dtype)
            layer.weight.copy_(kernel.T)
            layer.bias.copy_(bias)
        return self

    def canonical(self) -> dict[str, torch.Tensor]:
        """The parameters back in the canonical layout."""
        out = {}
        for i in range(self.spec.layers):
            layer = getattr(self, f"dense_{i}")
            out[f"dense_{i}.kernel"] = layer.weight.detach().T.contiguous()
            out[f"dense_{i}.bias"] = layer.bias.detach().clone()
        return out

    def canonical_grads(self) -> dict[str, torch.Tensor]:
        """The parameters' ``.grad`` in the canonical layout (zeros where there is none)."""
        out = {}
        for i in range(self.spec.layers):
            layer = getattr(self, f"dense_{i}")
            weight = layer.weight.grad if layer.weight.grad is not None else torch.zeros_like(
                layer.weight)
            bias = layer.bias.grad if layer.bias.grad is not None else torch.zeros_like(layer.bias)
            out[f"dense_{i}.kernel"] = weight.detach().T.contiguous()
            out[f"dense_{i}.bias"] = bias.detach().clone()
        return out


Net = DenseNet | layers.LayerNet


def build_net(model: ModelSpec | Network) -> Net:
    """The scenario network as torch modules: :class:`DenseNet` for a dense
    :class:`regcore.ModelSpec`, :class:`~regcore_adapters.torch.layers.LayerNet` for a
    :class:`regcore.Network`."""
    return layers.LayerNet(model) if isinstance(model, Network) else DenseNet(model)


class NetStack(nn.Module):
    """Independent networks side by side, for training several cases in one data-parallel
    wrapper: ``forward(x)`` is the list of each network's output on ``x``."""

    def __init__(self, nets: list[DenseNet]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [net(x) for net in self.nets]
