"""Three native translations of a spec for an ``nn.Module``, each usable on its own.

1. :class:`PenaltyLoss` — an ``nn.Module`` whose ``forward()`` is the penalty, to add to the loss;
2. :func:`param_groups` / :func:`build_optimizer` — ``torch.optim`` parameter groups whose
   ``weight_decay`` is the spec, where that is the same maths (else :class:`regcore.SpecError`);
3. :class:`GradientPenalty` — adds the penalty's gradient to ``.grad`` after ``backward()`` with
   multi-tensor ``foreach`` ops, computing the penalty value only when asked.

plus :class:`DecoupledDecay` for AdamW-style decay outside AdamW (``p ← p − lr·rate·p``), and
:func:`build_optimizer_and_penalty`, which splits one spec between 2. and 1. (coupled L2 plus
AdamW's decay, say).

Frozen parameters (``requires_grad=False``) are not selected unless a selection says
``include_frozen=True``: none of these creates a ``.grad`` for them, decays them or puts them in an
optimizer group. A tied parameter counts once (see
:func:`regcore_adapters.torch.modules.module_params`).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from regcore import L2, Spec, SpecError, activity
from regcore_adapters.torch import foreach
from regcore_adapters.torch.activity import ActivityHooks
from regcore_adapters.torch.modules import TorchParam, module_params
from regcore_adapters.torch.penalties import KERNELS


def _resolve(spec: Spec, module: nn.Module, refuse_activity: str = ""):
    """The plan of ``spec``'s penalties and decay on ``module``'s parameters (its activity
    items are :class:`ActivityHooks`'), and the parameters by name; where the caller cannot
    apply activity items (``refuse_activity`` names it), a spec with some is a SpecError."""
    if not isinstance(spec, Spec):
        raise SpecError(f"spec: expected a regcore.Spec, got {type(spec).__name__}")
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    if refuse_activity:
        activity.refuse(spec.activity, refuse_activity, "PenaltyLoss(spec, model) adds it to the "
                        "loss from forward hooks")
    params = module_params(module)
    return (dataclasses.replace(spec, activity=()).resolve([p.info for p in params]),
            {p.info.name: p for p in params})


def _kernel_total(terms: list[tuple[TorchParam, Any]]) -> torch.Tensor | None:
    """Σ of the terms' penalties by their per-tensor kernels (``None`` if there are none)."""
    total: torch.Tensor | None = None
    for p, term in terms:
        value = KERNELS[type(term)](term, p.view(p.param))
        total = value if total is None else total + value
    return total


def _add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    return b if a is None else a if b is None else a + b


class _Split:
    """A plan's penalties split into multi-tensor groups of elementwise parts (L2, L1, elastic
    net; see :mod:`foreach`) and the other terms, each through its per-tensor kernel."""

    def __init__(self, spec: Spec, module: nn.Module, refuse_activity: str = "") -> None:
        plan, by_name = _resolve(spec, module, refuse_activity)
        pairs = [(by_name[a.param], a.term) for a in plan.penalties]
        self.groups = foreach.groups((p.param, term) for p, term in pairs)
        self.other = [(p, term) for p, term in pairs if not foreach.elementwise_parts(term)]
        for p, term in self.other:
            if foreach.is_dtensor(p.param):  # FSDP2's sharded parameters are
                raise SpecError(
                    f"{term.kind} on {p.info.name!r}: the parameter is sharded (a DTensor, as "
                    "under FSDP's fully_shard), and this term needs whole rows or columns, "
                    "which a shard does not hold; regularize it with DistributedDataParallel, "
                    "or keep the parameter unsharded"
                )
        self.tensors = [t for g in self.groups for t in g.params]
        self.first = next(iter(by_name.values())).param

    def zero(self) -> torch.Tensor:
        return torch.zeros((), dtype=self.first.dtype, device=self.first.device)

    def value(self) -> torch.Tensor:
        """The penalty, differentiable (a 0-dim zero of the first parameter's dtype and device
        if the spec selects nothing)."""
        fused = (foreach.ElementwisePenalty.apply(self.groups, *self.tensors)
                 if self.groups else None)
        total = _add(fused, _kernel_total(self.other))
        return total if total is not None else self.zero()


class PenaltyLoss(nn.Module):
    """``PenaltyLoss(spec, model)()`` is the spec's penalty on ``model``'s parameters, a 0-dim
    tensor that autograd differentiates; add it to the training loss. It holds references to the
    parameters without registering them (it has no parameters of its own).

    Elementwise terms (L2, L1, elastic net) are computed with multi-tensor ``torch._foreach``
    kernels, a few per distinct coefficient (:mod:`regcore_adapters.torch.foreach`); group lasso
    and orthogonal terms per tensor.

    The spec's activity penalties (:mod:`regcore.activity`) are recorded by forward hooks on the
    layers they name (``model.named_modules()`` names, or ``layers``: name → module) as the model
    runs; each call adds those of the model's last forward pass, once (``loss = criterion(
    model(x), y) + penalty()``), so build it once, before the loop.
    """

    def __init__(self, spec: Spec, module: nn.Module,
                 layers: Mapping[str, nn.Module] | None = None) -> None:
        super().__init__()
        self._split = _Split(spec, module)
        self._activity = ActivityHooks(spec, module, layers) if spec.activity else None
        #: The spec it applies (what :func:`regcore_adapters.torch.reading.read_setup` reads).
        self.spec = spec

    def forward(self) -> torch.Tensor:
        value = self._split.value()
        return value + self._activity.take(value) if self._activity is not None else value


_COUPLED = (torch.optim.SGD, torch.optim.Adam, torch.optim.RMSprop, torch.optim.Adagrad)


def _decoupled(optimizer: type, kwargs: dict[str, Any]) -> bool:
    """Whether ``optimizer``'s ``weight_decay`` is decoupled (AdamW) rather than coupled L2."""
    if not (isinstance(optimizer, type) and issubclass(optimizer, _COUPLED)):
        raise SpecError(
            f"optimizer: regcore knows the weight_decay of torch.optim.SGD, Adam, AdamW, RMSprop "
            f"and Adagrad, got {optimizer!r}; use PenaltyLoss or GradientPenalty instead"
        )
    return issubclass(optimizer, torch.optim.AdamW) or bool(
        kwargs.get("decoupled_weight_decay", False)
    )


def param_groups(spec: Spec, module: nn.Module, optimizer: type,
                 **optimizer_kwargs: Any) -> list[dict[str, Any]]:
    """Parameter groups for ``optimizer(groups, **optimizer_kwargs)`` that apply ``spec``.

    * coupled L2 (any convention, coefficient ``s`` in sum form) → ``weight_decay = 2s`` on
      optimizers whose decay is coupled (SGD, Adam, RMSprop, Adagrad);
    * decoupled decay → ``weight_decay = rate`` on AdamW (or Adam with
      ``decoupled_weight_decay=True``), and on SGD without momentum, where it is the same maths;
    * a parameter with both, on SGD without momentum, gets their sum.

    Raises :class:`regcore.SpecError` where ``weight_decay`` would not be the same maths: L1,
    elastic net, group lasso or orthogonal terms (only a squared norm's gradient is ``wd·p``);
    coupled L2 on a decoupled optimizer; decoupled decay on Adam or on SGD with momentum.
    Unselected trainable parameters land in a ``weight_decay=0`` group, so every trainable
    parameter is optimized; frozen ones (``requires_grad=False``) are in no group. A spec that
    selects a frozen parameter (``include_frozen=True``) is refused: an optimizer skips a
    parameter without a gradient, so its ``weight_decay`` would silently not apply.
    """
    plan, by_name = _resolve(spec, module, f"{getattr(optimizer, '__name__', optimizer)}'s "
                                           "weight_decay")
    decoupled = _decoupled(optimizer, optimizer_kwargs)
    sgd_plain = issubclass(optimizer, torch.optim.SGD) and not optimizer_kwargs.get("momentum")
    name = optimizer.__name__
    wd: dict[str, float] = defaultdict(float)
    for a in plan.penalties:
        if type(a.term) is not L2:
            raise SpecError(
                f"penalties[{a.rule}]: {a.term.kind} on {a.param!r} cannot be an optimizer "
                "weight_decay (weight_decay adds wd·p to the gradient, the gradient of an L2 "
                "penalty only); build_optimizer_and_penalty puts it in a PenaltyLoss beside the "
                "optimizer"
            )
        if decoupled:
            raise SpecError(
                f"penalties[{a.rule}]: coupled L2 on {a.param!r} cannot be {name}'s weight_decay, "
                "which is decoupled; build_optimizer_and_penalty(spec, model, "
                f"{name}, ...) puts the decay in {name} and the L2 in a PenaltyLoss"
            )
        wd[a.param] += 2 * a.term.scaled()["coef"]
    frozen = [n for n in wd if not by_name[n].info.trainable]
    frozen += [n for n in plan.decay if not by_name[n].info.trainable and n not in frozen]
    if frozen:
        raise SpecError(
            f"{name}'s weight_decay cannot reach the frozen parameter {frozen[0]!r} "
            "(requires_grad=False: the optimizer skips a parameter without a gradient), which "
            "the spec selects with include_frozen=True; use GradientPenalty or DecoupledDecay "
            "for it"
        )
    for param, rate in plan.decay.items():
        if not (decoupled or sgd_plain):
            raise SpecError(
                f"weight_decay: decoupled decay on {param!r} is not {name}'s coupled weight_decay"
                + (" with momentum" if issubclass(optimizer, torch.optim.SGD) else "")
                + "; use torch.optim.AdamW, or DecoupledDecay beside the optimizer"
            )
        wd[param] += rate
    groups: dict[float, list[nn.Parameter]] = {}
    for pname, tp in by_name.items():
        if tp.info.trainable:  # frozen parameters are left out, as timm's groups leave them
            groups.setdefault(wd.get(pname, 0.0), []).append(tp.param)
    return [{"params": params, "weight_decay": value} for value, params in groups.items()]


def build_optimizer(spec: Spec, module: nn.Module, optimizer: type,
                    **optimizer_kwargs: Any) -> torch.optim.Optimizer:
    """``optimizer(param_groups(spec, module, optimizer, **kw), **kw)``: the kwargs that build the
    optimizer are the ones the translation was checked against."""
    if "weight_decay" in optimizer_kwargs:
        raise SpecError("weight_decay: set by the spec; do not pass it to build_optimizer")
    groups = param_groups(spec, module, optimizer, **optimizer_kwargs)
    return optimizer(groups, **optimizer_kwargs)


class OptimizerAndPenalty(NamedTuple):
    """What :func:`build_optimizer_and_penalty` returns."""

    optimizer: torch.optim.Optimizer
    penalty: PenaltyLoss


def build_optimizer_and_penalty(spec: Spec, module: nn.Module, optimizer: type,
                                **optimizer_kwargs: Any) -> OptimizerAndPenalty:
    """One spec, split between the optimizer's ``weight_decay`` and a :class:`PenaltyLoss`, for
    a spec ``build_optimizer`` alone cannot express, such as coupled L2 plus AdamW's decay (the
    common modern recipe)::

        opt, penalty = build_optimizer_and_penalty(spec, model, torch.optim.AdamW, lr=1e-3)
        loss = criterion(model(x), y) + penalty()      # build both once, outside the loop

    The optimizer gets what its ``weight_decay`` is exactly: decoupled decay on AdamW (or Adam
    with ``decoupled_weight_decay=True``) and on SGD without momentum; coupled L2 on SGD, Adam,
    RMSprop and Adagrad. The :class:`PenaltyLoss` gets every other penalty rule (coupled L2 on a
    decoupled optimizer, L1, elastic net, group lasso, orthogonal). Decoupled decay that the
    optimizer cannot carry (Adam, SGD with momentum) is refused: use AdamW, or
    :class:`DecoupledDecay` beside the optimizer.
    """
    if not isinstance(spec, Spec):
        raise SpecError(f"spec: expected a regcore.Spec, got {type(spec).__name__}")
    decoupled = _decoupled(optimizer, optimizer_kwargs)
    in_optimizer = [r for r in spec.penalties if type(r.term) is L2 and not decoupled]
    in_loss = [r for r in spec.penalties if not (type(r.term) is L2 and not decoupled)]
    opt = build_optimizer(Spec(in_optimizer, spec.weight_decay), module, optimizer,
                          **optimizer_kwargs)
    return OptimizerAndPenalty(opt, PenaltyLoss(Spec(in_loss, activity=spec.activity), module))


class GradientPenalty:
    """After ``loss.backward()``, ``GradientPenalty(spec, model)()`` adds the penalty's gradient to
    every selected parameter's ``.grad``: L2 and L1 parts with one ``torch._foreach_add_`` per
    coefficient, other terms through autograd on just their parameters. Pass ``value=True`` to
    also get the penalty value (otherwise it is not computed and ``None`` is returned).

    Loss scaling (``torch.amp.GradScaler``): the ``.grad``s hold ``S·∇loss`` between
    ``scaler.scale(loss).backward()`` and ``scaler.unscale_(optimizer)``, so the penalty's gradient
    must carry ``S`` too, or it ends up divided by ``S``. Either call it after
    ``scaler.unscale_(optimizer)`` (the ``.grad``s are plain gradients again; ``scaler.step``
    does not unscale twice), or before, with ``scale=scaler.get_scale()``, which adds
    ``scale·∇penalty``. The value returned is the penalty itself, never scaled.
    """

    def __init__(self, spec: Spec, module: nn.Module) -> None:
        self._split = _Split(spec, module, "GradientPenalty")

    @staticmethod
    def _grads(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        return [p.grad for p in params]

    def __call__(self, value: bool = False, *, scale: float = 1.0) -> torch.Tensor | None:
        """Add ``scale·∇penalty`` to the ``.grad``s (``scale``: the loss scale they carry, a
        positive finite float such as ``GradScaler.get_scale()``; 1 without loss scaling)."""
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (
                math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale: expected a positive finite number (the loss scale), got "
                             f"{scale!r}")
        split = self._split
        with torch.no_grad():
            total = None
            if value:  # before the update below: the value at the parameters as they are
                for g in split.groups:
                    total = _add(total, g.value())
            for g in split.groups:
                g.add_grad_(self._grads(g.params), scale)
        for p, term in split.other:
            with torch.enable_grad():
                leaf = p.param.detach().requires_grad_(True)
                term_value = KERNELS[type(term)](term, p.view(leaf))
                (grad,) = torch.autograd.grad(term_value, leaf)
            self._grads([p.param])[0].add_(grad, alpha=scale)
            if value:
                total = _add(total, term_value.detach())
        if not value:
            return None
        return total if total is not None else split.zero()


class DecoupledDecay:
    """``DecoupledDecay(spec, model).step(lr)``: ``p ← p − lr·rate·p`` for the spec's decoupled
    decay items, one ``torch._foreach_mul_`` per rate — AdamW's decay beside any optimizer. Call it
    before ``optimizer.step()`` (AdamW's order)."""

    def __init__(self, spec: Spec, module: nn.Module) -> None:
        plan, by_name = _resolve(spec, module)
        self._by_rate: dict[float, list[nn.Parameter]] = defaultdict(list)
        for name, rate in plan.decay.items():
            self._by_rate[rate].append(by_name[name].param)

    def step(self, lr: float) -> None:
        with torch.no_grad():
            for rate, params in self._by_rate.items():
                torch._foreach_mul_(params, 1 - lr * rate)
