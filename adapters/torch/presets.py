"""The recipes whose rule depends on the class of the owning module, built from the model (the
rest, rules on names and shapes alone, are :mod:`regcore.presets`):

* :func:`hf_trainer` — Hugging Face ``Trainer.get_decay_parameter_names``: no decay inside an
  ``nn.LayerNorm`` (any depth), nor where the lower-cased name matches
  :data:`regcore.presets.HF_NO_DECAY_PATTERNS`;
* :func:`torchvision` — torchvision's reference scripts' ``set_weight_decay``: a norm layer's own
  parameters (weight and bias) at ``norm_weight_decay``, custom keys at their own rates, the
  rest at ``weight_decay``.

Each returns a :class:`regcore.Spec` whose selections are name patterns (the model's own names);
``build_optimizer(spec, model, torch.optim.AdamW, lr=...)`` gives the recipe's param groups.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from regcore import Spec
from regcore.presets import HF_NO_DECAY_PATTERNS, decay, decays, excluding
from regcore.reading import select_names
from regcore.selection import Select

#: torchvision ``references/classification/utils.py``'s default ``norm_classes``.
TORCHVISION_NORMS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm, nn.LocalResponseNorm)


def _inside(model: nn.Module, classes: tuple[type[nn.Module], ...]) -> list[str]:
    """Names of the parameters held, at any depth, by a module of one of ``classes``."""
    out: list[str] = []
    for prefix, module in model.named_modules():
        if isinstance(module, classes):
            out += [f"{prefix}.{n}" if prefix else n for n, _ in module.named_parameters()]
    return out


def hf_trainer(model: nn.Module, rate: float, *, decoupled: bool = True) -> Spec:
    """``Trainer``'s decay/no-decay split of ``model`` at ``rate`` (``TrainingArguments
    (weight_decay=rate)``; its default optimizer is AdamW, so ``decoupled``)."""
    names = _inside(model, (nn.LayerNorm,))
    select = Select(name=excluding(HF_NO_DECAY_PATTERNS, ignore_case=True, names=names))
    return decay(rate, select, decoupled=decoupled)


def torchvision(model: nn.Module, weight_decay: float, norm_weight_decay: float | None = None,
                norm_classes: Sequence[type[nn.Module]] | None = None,
                custom_keys_weight_decay: Sequence[tuple[str, float]] | None = None, *,
                decoupled: bool = False) -> Spec:
    """torchvision's ``set_weight_decay(model, weight_decay, norm_weight_decay, norm_classes,
    custom_keys_weight_decay)``: a custom key matches a parameter's own name (``bias``), or its
    full name where the key has a dot (``encoder.pos_embedding``); then a parameter owned
    directly by a norm layer gets ``norm_weight_decay`` (when given); the rest ``weight_decay``.
    The reference scripts pair it with SGD (coupled) by default, AdamW for ViTs."""
    classes = tuple(norm_classes) if norm_classes else TORCHVISION_NORMS
    keys = list(custom_keys_weight_decay or ())
    groups: dict[str, list[str]] = {key: [] for key, _ in keys}
    groups.update(norm=[], other=[])
    for prefix, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            full = f"{prefix}.{name}" if prefix else name
            key = next((k for k, _ in keys if k == (full if "." in k else name)), None)
            if key is None:
                key = "norm" if norm_weight_decay is not None and isinstance(module, classes) \
                    else "other"
            groups[key].append(full)
    rates = {**dict(keys), "norm": norm_weight_decay or 0.0, "other": weight_decay}
    return decays([(rates[k], select_names(ns)) for k, ns in groups.items() if ns],
                  decoupled=decoupled)
