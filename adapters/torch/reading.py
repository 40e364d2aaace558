"""Read an existing torch training setup back into a spec: what regularization does this
``(model, optimizer)`` actually apply, to which parameters, in canonical numbers?

:func:`read_setup` looks at the optimizer's param groups (each group's ``weight_decay`` and
whether the optimizer's decay is coupled or decoupled) and, if given, the
:class:`~regcore_adapters.torch.native.PenaltyLoss` added to the loss. The result is a
:class:`regcore.reading.Reading`: a :class:`regcore.Spec` whose rules select parameters by the
model's own names (:func:`~regcore_adapters.torch.modules.module_params`), and a list of what it
could not express, never a silent drop:

* ``weight_decay`` on SGD, Adam, RMSprop and Adagrad (and Adam without
  ``decoupled_weight_decay``) adds ``wd·p`` to the gradient: coupled L2, convention
  ``torch_weight_decay`` (``wd/2·Σp²``); with momentum too, since the decay enters the gradient
  before it;
* on AdamW, or Adam with ``decoupled_weight_decay=True``: decoupled decay, rate ``wd``;
* a frozen parameter (``requires_grad=False``) in a decayed group is not decayed (the optimizer
  skips a parameter without a gradient): left out, and noted;
* a parameter in no param group is not trained: nothing applies to it;
* an optimizer whose ``weight_decay`` regcore does not know is not read: noted, with its rates.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from regcore import L2, DecoupledWeightDecay, ParamInfo, Rule, Spec
from regcore.reading import Reading, select_names
from regcore_adapters.torch.modules import module_params
from regcore_adapters.torch.native import PenaltyLoss

_COUPLED = (torch.optim.SGD, torch.optim.Adam, torch.optim.RMSprop, torch.optim.Adagrad)


def _decoupled(optimizer: torch.optim.Optimizer, group: dict) -> bool:
    return isinstance(optimizer, torch.optim.AdamW) or bool(
        group.get("decoupled_weight_decay", False))


def read_setup(model: nn.Module, optimizer: torch.optim.Optimizer,
               penalty: PenaltyLoss | None = None) -> Reading:
    """The regularization ``optimizer`` (built on ``model``'s parameters) and ``penalty`` (a
    :class:`PenaltyLoss` added to the loss, if any) apply, as a :class:`Reading`."""
    names = {id(p.param): p.info.name for p in module_params(model)}
    coupled: dict[float, list[str]] = defaultdict(list)
    decoupled: dict[float, list[str]] = defaultdict(list)
    notes: list[str] = []
    known = isinstance(optimizer, _COUPLED)
    for index, group in enumerate(optimizer.param_groups):
        wd = float(group.get("weight_decay", 0.0) or 0.0)
        if wd == 0.0:
            continue
        params = [p for p in group["params"] if id(p) in names]
        if len(params) < len(group["params"]):
            notes.append(f"param group {index}: {len(group['params']) - len(params)} "
                         "parameter(s) not in the model: not read")
        if not known:
            notes.append(f"param group {index}: weight_decay={wd:g} on "
                         f"{type(optimizer).__name__}, whose decay regcore does not know: not "
                         "read")
            continue
        frozen = [names[id(p)] for p in params if not p.requires_grad]
        if frozen:
            notes.append(f"param group {index}: weight_decay={wd:g} on frozen "
                         f"{', '.join(frozen)}: not applied (no gradient, the optimizer skips "
                         "them)")
        target = decoupled if _decoupled(optimizer, group) else coupled
        target[wd] += [names[id(p)] for p in params if p.requires_grad]
    rules = list(penalty.spec.penalties) if penalty is not None else []
    rules += [Rule(L2(wd, convention="torch_weight_decay"), select_names(ps))
              for wd, ps in coupled.items() if ps]
    decay = list(penalty.spec.weight_decay) if penalty is not None else []
    decay += [DecoupledWeightDecay(wd, select_names(ps)) for wd, ps in decoupled.items() if ps]
    activity = penalty.spec.activity if penalty is not None else ()
    return Reading(Spec(rules, weight_decay=decay, activity=activity), tuple(notes))


def param_infos(model: nn.Module) -> list[ParamInfo]:
    """``model``'s parameters as the spec sees them (the names :func:`read_setup` selects)."""
    return [p.info for p in module_params(model)]


def layer_names(model: nn.Module) -> list[str]:
    """``model``'s submodules by ``named_modules()`` name (what a ``PenaltyLoss``'s activity
    items name)."""
    return [name for name, _ in model.named_modules() if name]
