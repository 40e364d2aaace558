"""An ``nn.Module``'s parameters as the spec sees them: dotted name, role from the module type,
and the canonical (Keras) layout that axis-dependent terms refer to.

Roles come from the type of the module that owns the parameter, not from name suffixes:

* ``nn.Linear``, ``nn.Bilinear``, convolutions, recurrent layers, ``nn.MultiheadAttention``:
  ``weight*`` → ``weight``, ``bias*`` → ``bias``;
* normalization layers (BatchNorm, InstanceNorm, LayerNorm, GroupNorm, RMSNorm): the scale
  (``weight``) → ``norm_scale``, the shift (``bias``) → ``bias``;
* ``nn.Embedding``, ``nn.EmbeddingBag``: ``weight`` → ``embedding``;
* any other module's own parameters: a name containing ``bias`` → ``bias``, else ``ndim >= 2`` →
  ``weight``, else ``other``.

Layout: a spec's group-lasso axis and orthogonal mode refer to the canonical kernel layout
``(fan_in, fan_out)`` (``(*kernel_size, in, out)`` for convolutions), which is Keras's. torch stores
``nn.Linear.weight`` as ``(out, in)`` and convolution weights as ``(out, in, *kernel_size)``, so
those are presented to the penalty through a transposing view; the same spec then means the same
penalty in every framework. Elementwise terms (L1, L2, elastic net) do not depend on layout.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from regcore import ParamInfo

_NORMS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
_EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)
_WEIGHTED = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd, nn.RNNBase, nn.RNNCellBase,
             nn.MultiheadAttention)


@dataclass(frozen=True)
class TorchParam:
    """A parameter, its spec description, and the view that gives its canonical layout."""

    info: ParamInfo
    param: nn.Parameter
    view: Callable[[torch.Tensor], torch.Tensor]


def _identity(t: torch.Tensor) -> torch.Tensor:
    return t


def _transpose(t: torch.Tensor) -> torch.Tensor:
    return t.T


def _conv_to_keras(t: torch.Tensor) -> torch.Tensor:
    return t.permute(*range(2, t.ndim), 1, 0)


def role_of(module: nn.Module, name: str, param: torch.Tensor) -> str:
    """The spec role of ``module``'s own parameter ``name``."""
    if isinstance(module, _NORMS):
        return "norm_scale" if name == "weight" else "bias"
    if isinstance(module, _EMBEDDINGS):
        return "embedding"
    if isinstance(module, _WEIGHTED):
        return "bias" if "bias" in name else "weight"
    if "bias" in name:
        return "bias"
    return "weight" if param.ndim >= 2 else "other"


#: Recurrent and attention matrices stored ``(fan_out, fan_in)``: ``weight_ih_l0``,
#: ``weight_hh_l1_reverse``, ``weight_hr_l0``, a cell's ``weight_ih``, attention's
#: ``in_proj_weight`` and ``q/k/v_proj_weight``.
_OUT_IN = re.compile(r"weight_(ih|hh|hr)(_l\d+(_reverse)?)?|(in|q|k|v)_proj_weight")


def view_of(module: nn.Module, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The view from torch's storage layout to the canonical one: dense-like matrices
    transposed to ``(fan_in, fan_out)``, convolutions to ``(*k, in/groups, out)`` — Keras's
    ``Conv2D(groups=...)`` layout, a depthwise ``Conv2d(C, C·m, groups=C)`` included, ``(*k, 1,
    C·m)``; Keras's ``DepthwiseConv2D`` spreads the same outputs over two axes ``(*k, C, m)`` and
    has no canonical layout (``keras_params``). Recurrent gates stay in torch's order (LSTM
    ``i, f, g, o`` is Keras's; GRU ``r, z, n`` is Keras's ``z, r, h`` reordered, which no term
    depends on: every term sums over whole rows or columns)."""
    if name == "weight" and isinstance(module, nn.Linear):
        return _transpose
    if name == "weight" and isinstance(module, nn.modules.conv._ConvNd):
        return _conv_to_keras
    if isinstance(module, (nn.RNNBase, nn.RNNCellBase, nn.MultiheadAttention)) and \
            _OUT_IN.fullmatch(name):
        return _transpose
    return _identity


def noncanonical_of(module: nn.Module, name: str) -> str:
    """Why ``module``'s parameter ``name`` has no canonical layout (``""``: it has one)."""
    if isinstance(module, nn.MultiheadAttention) and name == "in_proj_weight":
        return ("fused query/key/value projections, nn.MultiheadAttention.in_proj_weight; "
                "Keras's MultiHeadAttention keeps three")
    return ""


def module_params(module: nn.Module) -> list[TorchParam]:
    """Every parameter of ``module`` once, in ``named_parameters()`` order: ``requires_grad=False``
    ones as frozen (``ParamInfo.trainable``), and a tensor owned by several modules (tied) under
    its first name, with every other owner's name, role and canonical shape in
    ``ParamInfo.aliases`` so that selecting it cannot depend on the order modules were
    registered in (:func:`regcore.Spec.resolve` refuses a selection the owners disagree on)."""
    owners: dict[int, list[tuple[ParamInfo, Callable[[torch.Tensor], torch.Tensor]]]] = {}
    tensors: dict[int, nn.Parameter] = {}
    for prefix, owner in module.named_modules():
        for name, param in owner.named_parameters(recurse=False):
            view = view_of(owner, name)
            full = f"{prefix}.{name}" if prefix else name
            shape = tuple(view(param.detach()).shape)
            info = ParamInfo(full, shape, role_of(owner, name, param),
                             trainable=param.requires_grad,
                             noncanonical=noncanonical_of(owner, name))
            owners.setdefault(id(param), []).append((info, view))
            tensors[id(param)] = param
    out: list[TorchParam] = []
    for key, seen in owners.items():
        (first, view), *others = seen
        info = dataclasses.replace(first, aliases=tuple(o for o, _ in others)) if others else first
        out.append(TorchParam(info, tensors[key], view))
    return out
