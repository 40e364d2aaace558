"""The scenario network trained through each native translation, for the conformance suite: a
table of :class:`Translation` objects keyed by name (:data:`TRANSLATIONS`), and of penalty
functions (:data:`PENALTY_TRANSLATIONS`).

Every translation starts from the same canonical parameters, builds the torch network
(:func:`~regcore_adapters.torch.models.build_net`: ``nn.Linear`` layers, or the conv and sequence
modules of :class:`~regcore_adapters.torch.layers.LayerNet`) and runs full-batch
``torch.optim.SGD`` or ``Adam``; only where the spec enters differs:

* ``loss_term``: ``loss = data + PenaltyLoss()``; decoupled decay by :class:`DecoupledDecay`;
* ``param_groups``: ``loss = data``; penalty and decay are the optimizer's ``weight_decay``
  (SGD for SGD; Adam for coupled L2 and AdamW for decoupled decay);
* ``param_groups_fused``: the same optimizers built with ``fused=True`` (one kernel per step that
  applies ``weight_decay`` in the same pass: the fastest on the CPU, see the benchmarks);
* ``grad_side``: ``loss = data``; :class:`GradientPenalty` after ``backward()``, then
  :class:`DecoupledDecay`.

Penalty translations (:data:`PENALTY_TRANSLATIONS`): ``loss_term`` is ``PenaltyLoss()`` and its
autograd gradient; ``grad_side`` is what ``GradientPenalty(value=True)`` adds to zero ``.grad``s
and the value it returns.

:func:`plan` is what every translation resolves the spec to on that network (roles from the
module types, :func:`~regcore_adapters.torch.modules.module_params`), renamed to canonical names,
for the suite to compare with the reference's plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from regcore import ModelSpec, Network, Optimizer, Plan, Spec, capabilities
from regcore_adapters.torch.models import Net, build_net, data_loss
from regcore_adapters.torch.modules import module_params
from regcore_adapters.torch.native import (
    DecoupledDecay,
    GradientPenalty,
    PenaltyLoss,
    build_optimizer,
)
from regcore_adapters.torch.optim import torch_optimizer


@dataclass(frozen=True)
class Translation:
    """One native translation: where the spec enters a training step."""

    name: str
    #: ``loss``: ``PenaltyLoss()`` added to the data loss; ``gradient``: ``GradientPenalty``
    #: after ``backward()``; ``optimizer``: the optimizer's ``weight_decay`` (param groups).
    penalty: str
    #: The optimizer built with ``fused=True`` (``optimizer`` translations only).
    fused: bool = False

    def optimizer(self, optimizer: Optimizer, spec: Spec, net: Net) -> torch.optim.Optimizer:
        """The optimizer the step ends with: ``build_optimizer``'s param groups where the spec
        is the optimizer's (SGD for SGD; Adam for coupled L2 and AdamW for decoupled decay),
        else the plain one."""
        if self.penalty != "optimizer":
            return torch_optimizer(optimizer, list(net.parameters()))
        kw = {"fused": True} if self.fused else {}
        if optimizer.name == "sgd":
            return build_optimizer(spec, net, torch.optim.SGD, lr=optimizer.lr, **kw)
        cls = torch.optim.AdamW if spec.weight_decay else torch.optim.Adam
        return build_optimizer(spec, net, cls, lr=optimizer.lr, betas=optimizer.betas,
                               eps=optimizer.eps, **kw)


TRANSLATIONS = {t.name: t for t in (
    Translation("loss_term", "loss"),
    Translation("param_groups", "optimizer"),
    Translation("param_groups_fused", "optimizer", fused=True),
    Translation("grad_side", "gradient"),
)}
"""The training translations by name (``TorchBackend.native_translations``)."""


def lookup(table: Mapping[str, Any], name: str, what: str = "native_translations") -> Any:
    """``table[name]``, or :class:`regcore.UnknownTranslationError` (calls past the backend's
    check)."""
    return capabilities.lookup("torch", table, name, what)


def train(translation: str, model: ModelSpec | Network, spec: Spec,
          params: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, *,
          optimizer: Optimizer, steps: int) -> dict[str, torch.Tensor]:
    net = build_net(model).load_canonical(params)
    train_net(translation, model, spec, net, x, y, optimizer=optimizer, steps=steps)
    return net.canonical()


@dataclass
class NetStep:
    """One network's part of a training step under a translation: its optimizer and the pieces
    that put the spec into the loss, the gradient or the parameters. Building it is where a
    translation refuses a spec (:class:`regcore.SpecError`)."""

    net: Net
    opt: torch.optim.Optimizer
    penalty: PenaltyLoss | None
    grad_side: GradientPenalty | None
    decay: DecoupledDecay | None

    @classmethod
    def build(cls, translation: str, optimizer: Optimizer, spec: Spec, net: Net) -> NetStep:
        how = lookup(TRANSLATIONS, translation)
        return cls(net, how.optimizer(optimizer, spec, net),
                   PenaltyLoss(spec, net, net.layer_modules()) if how.penalty == "loss"
                   else None,
                   GradientPenalty(spec, net) if how.penalty == "gradient" else None,
                   None if how.penalty == "optimizer" else DecoupledDecay(spec, net))


def run_steps(parts: Sequence[NetStep], model: ModelSpec | Network, x: torch.Tensor,
              y: torch.Tensor, *, lr: float, steps: int,
              forward: Callable[[torch.Tensor], Sequence[torch.Tensor]],
              data_weight: float = 1.0) -> None:
    """``steps`` training steps of the networks of ``parts`` at once. ``forward(x)`` returns one
    output per network (a ``DistributedDataParallel`` wrapper of all of them averages their
    gradients in one reduction per step); one ``backward()`` of the summed losses gives each
    network its own loss's gradient exactly, since the networks share no parameter."""
    for _ in range(steps):
        for part in parts:
            part.opt.zero_grad(set_to_none=True)
        total = None
        for part, out in zip(parts, forward(x), strict=True):
            loss = data_loss(model.loss, out, y)
            if data_weight != 1.0:
                loss = loss * data_weight
            if part.penalty is not None:
                loss = loss + part.penalty()
            total = loss if total is None else total + loss
        if total is None:
            raise ValueError("run_steps: no network to train")
        total.backward()
        for part in parts:
            if part.grad_side is not None:
                part.grad_side()
        for part in parts:
            if part.decay is not None:
                part.decay.step(lr)
        for part in parts:
            part.opt.step()


def train_net(translation: str, model: ModelSpec | Network, spec: Spec, net: Net, x: torch.Tensor,
              y: torch.Tensor, *, optimizer: Optimizer, steps: int) -> None:
    """``steps`` steps of ``translation`` (a name of :data:`TRANSLATIONS`) on ``net`` in
    place."""
    run_steps([NetStep.build(translation, optimizer, spec, net)], model, x, y, lr=optimizer.lr,
              steps=steps, forward=lambda batch: [net(batch)])


def _loss_term_penalty(spec: Spec, net: Net) -> torch.Tensor:
    value = PenaltyLoss(spec, net, net.layer_modules())()
    if value.requires_grad:
        value.backward()
    return value.detach()


def _grad_side_penalty(spec: Spec, net: Net) -> torch.Tensor:
    return GradientPenalty(spec, net)(value=True)


PENALTY_TRANSLATIONS: dict[str, Callable[[Spec, Net], torch.Tensor]] = {
    "loss_term": _loss_term_penalty, "grad_side": _grad_side_penalty}
r"""The penalty translations by name (``TorchBackend.native_penalty_translations``): each
returns the value, leaving the gradient in the zeroed ``.grad``\ s."""


def penalty(translation: str, model: ModelSpec | Network, spec: Spec,
            params: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The penalty and its gradient (canonical names and layout) through ``translation``."""
    evaluate = lookup(PENALTY_TRANSLATIONS, translation, "native_penalty_translations")
    net = build_net(model).load_canonical(params)
    net.zero_grad(set_to_none=True)
    value = evaluate(spec, net)
    return value, net.canonical_grads()


def plan(translation: str, model: ModelSpec | Network, spec: Spec) -> Plan:
    """The plan ``translation`` runs: ``spec`` resolved on the torch network's parameters as the
    native translations resolve it (:func:`~regcore_adapters.torch.modules.module_params`: roles
    from the module types, shapes through the canonical views), with ``dense_{i}.weight``
    renamed canonically (``net.canonical_name``)."""
    lookup({**TRANSLATIONS, **PENALTY_TRANSLATIONS}, translation,
           "native_translations + native_penalty_translations")
    net = build_net(model)
    canonical = net.canonical_name
    resolved = spec.resolve([p.info for p in module_params(net)], list(net.layer_modules()))
    return dataclasses.replace(
        resolved,
        params=tuple(dataclasses.replace(p, name=canonical(p.name)) for p in resolved.params),
        penalties=tuple(dataclasses.replace(a, param=canonical(a.param))
                        for a in resolved.penalties),
        decay={canonical(k): v for k, v in resolved.decay.items()},
    )

