"""Deliberately wrong backends: the conformance suite must fail each of them.

Each one is a real backend — the NumPy one, and for :data:`TORCH_MUTANTS` the PyTorch one — with
one classic regularization bug injected. docs/mutations.md lists them: the bug each models, the
check that catches it, and the test in tests/test_plugin.py that proves it.

The torch-based classes are built on first access (module ``__getattr__``), so importing this
module imports no torch; ``load_backend("tests.broken_backends:TorchWeightDecayAsSum")`` builds
one where torch is installed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from regcore import L1, L2, Optimizer, Plan, SpecError, Term
from regcore.spec import Assignment
from regcore_adapters.numpy import NumpyBackend
from regcore_adapters.numpy import penalties as kernels
from regcore_adapters.numpy.models import forward_backward

TORCH_MUTANTS = ("TorchWeightDecayAsSum", "TorchRolesFromNdim", "TorchConvLayoutReshaped")
"""Mutants built on the torch backend: their tests skip where torch is not installed."""


def _map_terms(plan: Plan, change: Callable[[Term], Term]) -> Plan:
    """``plan`` with every assigned term replaced by ``change(term)``."""
    return dataclasses.replace(plan, penalties=tuple(
        dataclasses.replace(a, term=change(a.term)) for a in plan.penalties))


class DoubleL2(NumpyBackend):
    """Keras L2(λ) fed to torch weight_decay=λ the other way round: the L2 term off by 2."""

    name = "double_l2"

    def penalty(self, plan, params):
        total, grads = super().penalty(plan, params)
        for a in plan.penalties:
            if isinstance(a.term, L2):
                value, grad = kernels.l2(a.term, params[a.param])
                total = total + value
                grads[a.param] = grads[a.param] + grad
        return total, grads


class SignOneAtZero(NumpyBackend):
    """JAX's abs'(0) = 1 leaking into the L1 subgradient."""

    name = "sign_one_at_zero"

    def penalty(self, plan, params):
        total, grads = super().penalty(plan, params)
        for a in plan.penalties:
            if isinstance(a.term, L1):
                w = params[a.param]
                s = np.asarray(a.term.scaled()["coef"], dtype=w.dtype)
                grads[a.param] = grads[a.param] + np.where(w == 0, s, 0)
        return total, grads


class DecayTwice(NumpyBackend):
    """The foreach weight-decay bug: decoupled decay applied twice per step."""

    name = "decay_twice"

    def train(self, model, plan, params, x, y, *, optimizer, steps):
        doubled = {name: 1 - (1 - optimizer.lr * rate) ** 2 for name, rate in plan.decay.items()}
        rates = {name: value / optimizer.lr for name, value in doubled.items()}
        return super().train(model, dataclasses.replace(plan, decay=rates), params, x, y,
                             optimizer=optimizer, steps=steps)


class AdamWForCoupledL2(NumpyBackend):
    """The fused-Adam bug: coupled L2 (Adam's weight_decay) applied with the AdamW rule."""

    name = "adamw_for_coupled_l2"

    def train(self, model, plan, params, x, y, *, optimizer, steps):
        if optimizer.name == "adam":
            moved = {a.param: 2 * a.term.scaled()["coef"] for a in plan.penalties
                     if isinstance(a.term, L2)}
            kept = tuple(a for a in plan.penalties if not isinstance(a.term, L2))
            plan = dataclasses.replace(plan, penalties=kept, decay={**plan.decay, **moved})
        return super().train(model, plan, params, x, y, optimizer=optimizer, steps=steps)


class CrashesInTrain(NumpyBackend):
    """A backend that raises: its report must not come out green."""

    name = "crashes_in_train"

    def train(self, model, plan, params, x, y, *, optimizer, steps):
        raise RuntimeError("training is broken")


class Float64Always(NumpyBackend):
    """Ignores the requested dtype and computes everything in float64."""

    name = "float64_always"

    def asarray(self, array, *, dtype, device):
        return super().asarray(array, dtype="float64" if dtype == "float32" else dtype,
                               device=device)


class UpdatesInPlace(NumpyBackend):
    """Trains the caller's arrays in place instead of copies."""

    name = "updates_in_place"

    def train(self, model, plan, params, x, y, *, optimizer, steps):
        final = super().train(model, plan, params, x, y, optimizer=optimizer, steps=steps)
        for name, value in final.items():
            params[name][...] = value
        return final


class HalfMseOverEntries(NumpyBackend):
    """``half_mse`` as ½·MSELoss (a mean over every entry) instead of Σ(ŷ−y)²/(2m): the same for
    one output, off by the number of outputs otherwise."""

    name = "half_mse_over_entries"

    def loss_and_grads(self, model, plan, params, x, y):
        if model.loss != "half_mse":
            return super().loss_and_grads(model, plan, params, x, y)
        loss, grads = forward_backward(dataclasses.replace(model, loss="mse"), params, x, y)
        penalty, pgrads = self.penalty(plan, params)
        return loss / 2 + penalty, {k: grads[k] / 2 + pgrads[k] for k in grads}


class BiasPenalized(NumpyBackend):
    """The role filter ignored: every penalty rule lands on the biases too (torch's
    ``weight_decay`` over all of ``model.parameters()``; a Keras ``bias_regularizer`` copied from
    the ``kernel_regularizer``), where the spec's selection left them out."""

    name = "bias_penalized"

    def penalty(self, plan, params):
        extra = []
        for rule, term in {a.rule: a.term for a in plan.penalties}.items():
            covered = {a.param for a in plan.penalties if a.rule == rule}
            for p in plan.params:
                if p.role != "bias" or p.name in covered:
                    continue
                try:
                    term.check_shape(p.name, p.shape)
                except SpecError:  # orthogonal on a 1-D bias: the bug cannot reach it
                    continue
                extra.append(Assignment(p.name, term, rule))
        return super().penalty(
            dataclasses.replace(plan, penalties=plan.penalties + tuple(extra)), params)


class BatchMeanTwice(NumpyBackend):
    """``λ/(2m)·Σθ²`` with the ``1/m`` applied twice: the batch_mean coefficient divided by the
    batch size once more (the penalty added to a loss that is then averaged over the batch
    again, or ``λ/m`` passed where the code divides by ``2m`` itself)."""

    name = "batch_mean_twice"

    def penalty(self, plan, params):
        def twice(term: Term) -> Term:
            if isinstance(term, L2) and term.convention == "batch_mean":
                return L2(term.coef / term.batch_size, convention="batch_mean",
                          batch_size=term.batch_size)
            return term

        return super().penalty(_map_terms(plan, twice), params)


class LastLayerUnpenalized(NumpyBackend):
    """The penalty silently missing on one layer: every term on the output layer's parameters
    dropped (``for layer in model.layers[:-1]``, a ``kernel_regularizer`` forgotten on the last
    ``Dense``). Networks of one layer are left alone: only "one layer of several" is modelled."""

    name = "last_layer_unpenalized"

    def penalty(self, plan, params):
        layers = {int(m.group(1)) for p in plan.params
                  if (m := re.match(r"dense_(\d+)\.", p.name))}
        if len(layers) >= 2:
            last = f"dense_{max(layers)}."
            plan = dataclasses.replace(plan, penalties=tuple(
                a for a in plan.penalties if not a.param.startswith(last)))
        return super().penalty(plan, params)


class DecoupledAsCoupled(NumpyBackend):
    """AdamW's ``weight_decay`` given to Adam: decoupled decay folded into the gradient as
    coupled L2 (``g += rate·p``, then the Adam update) instead of ``p ← p − lr·rate·p`` beside
    it. The reverse of :class:`AdamWForCoupledL2`. Under plain SGD the two are the same update,
    so only an Adam trajectory can tell."""

    name = "decoupled_as_coupled"

    def train(self, model, plan, params, x, y, *, optimizer, steps):
        folded = tuple(Assignment(name, L2(rate, convention="torch_weight_decay"), -1)
                       for name, rate in plan.decay.items())
        plan = dataclasses.replace(plan, penalties=plan.penalties + folded, decay={})
        return super().train(model, plan, params, x, y, optimizer=optimizer, steps=steps)


class BatchSizeFromData(NumpyBackend):
    """The ``m`` of a term read from the batch in hand (``x.shape[0]``) instead of the term: the
    tutorials' ``λ/(2m)·Σθ²`` with ``m`` the rows the loss sees, not the spec's ``batch_size``, and
    scikit-learn's ``n_samples`` the same way. Right only while the loss sees exactly the batch
    the spec was written for."""

    name = "batch_size_from_data"

    def loss_and_grads(self, model, plan, params, x, y):
        m = int(x.shape[0])

        def from_data(term: Term) -> Term:
            if isinstance(term, L2) and term.convention == "batch_mean":
                return dataclasses.replace(term, batch_size=m)
            if isinstance(term, L2) and term.convention == "sklearn_ridge":
                return dataclasses.replace(term, n_samples=m)
            return term

        return super().loss_and_grads(model, _map_terms(plan, from_data), params, x, y)


class AdamDefaults(NumpyBackend):
    """Adam built from the learning rate alone (``Adam(params, lr=lr)``): the optimizer's
    ``betas`` and ``eps`` dropped, so every run uses torch's defaults (0.9, 0.999) and 1e-8."""

    name = "adam_defaults"

    def train(self, model, plan, params, x, y, *, optimizer, steps):
        return super().train(model, plan, params, x, y,
                             optimizer=Optimizer(optimizer.name, optimizer.lr), steps=steps)


class PenalizedGradsOnly(NumpyBackend):
    """``penalty()`` returning gradients only for the parameters a term applies to (the dict
    built while looping over the plan's assignments), where the protocol promises one for every
    parameter, zeros where no term applies. Its own ``loss_and_grads`` adds them with
    ``.get(name, 0)``, so training is right: only a caller of ``penalty()`` is hurt."""

    name = "penalized_grads_only"

    def penalty(self, plan, params):
        total, grads = super().penalty(plan, params)
        return total, {a.param: grads[a.param] for a in plan.penalties}

    def loss_and_grads(self, model, plan, params, x, y):
        loss, grads = forward_backward(model, params, x, y)
        penalty, pgrads = self.penalty(plan, params)
        return loss + penalty, {k: g + pgrads.get(k, 0) for k, g in grads.items()}


class ActivityBatchTwice(NumpyBackend):
    """Keras's activity division done twice: ``activity_regularizer`` losses divided by the
    batch size by hand, on top of the division Keras 3 already does in ``Layer.__call__`` (or a
    torch hook that takes ``.mean()`` over the batch and then divides by ``m`` again), so every
    ``batch_mean`` activity penalty is ``m`` times too small."""

    name = "activity_batch_twice"

    def loss_and_grads(self, model, plan, params, x, y):
        with _activity_divided_twice():
            return super().loss_and_grads(model, plan, params, x, y)

    def train(self, model, plan, params, x, y, *, optimizer, steps):
        with _activity_divided_twice():
            return super().train(model, plan, params, x, y, optimizer=optimizer, steps=steps)


@contextlib.contextmanager
def _activity_divided_twice() -> Iterator[None]:
    """Inside the block, the NumPy backend's activity penalties divide ``batch_mean`` terms by
    the batch size twice."""
    real = kernels.activity

    def twice(assignments, outputs):
        value, grads = real(assignments, outputs)
        m = {a.layer: outputs[a.layer].shape[0] for a in assignments
             if a.reduction == "batch_mean"}
        if m:
            first = next(iter(m.values()))
            value = value / first  # the scenarios' outputs share one batch size
            grads = {k: g / m[k] if k in m else g for k, g in grads.items()}
        return value, grads

    kernels.activity = twice
    try:
        yield
    finally:
        kernels.activity = real


def _torch_weight_decay_as_sum(term: Term) -> Term:
    if isinstance(term, L2) and term.convention == "torch_weight_decay":
        return L2(term.coef, convention="sum")
    return term


@functools.cache
def _torch_mutants() -> dict[str, type]:
    from regcore_adapters.torch import TorchBackend  # imports torch

    class TorchWeightDecayAsSum(TorchBackend):
        """The PyTorch backend with torch's ``SGD(weight_decay=wd)`` ported as
        ``loss + wd·Σp²``: the ½ forgotten, so every ``torch_weight_decay`` L2 term is off by a
        factor 2 (its gradient ``2·wd·p`` instead of ``wd·p``)."""

        name = "torch_weight_decay_as_sum"

        def penalty(self, plan, params):
            return super().penalty(_map_terms(plan, _torch_weight_decay_as_sum), params)

        def loss_and_grads(self, model, plan, params, x, y):
            return super().loss_and_grads(
                model, _map_terms(plan, _torch_weight_decay_as_sum), params, x, y)

        def train(self, model, plan, params, x, y, *, optimizer, steps):
            return super().train(model, _map_terms(plan, _torch_weight_decay_as_sum), params,
                                 x, y, optimizer=optimizer, steps=steps)

    class TorchRolesFromNdim(TorchBackend):
        """The PyTorch backend whose native translations (``PenaltyLoss``, ``param_groups``,
        ``GradientPenalty``, ``DecoupledDecay``) take a parameter's role from its ``ndim`` alone
        (``>= 2``: ``weight``, else ``other``), the module type ignored: ``nn.Linear.bias``
        loses the ``bias`` role. Penalties on weights come out right; a spec that selects
        biases by role resolves to nothing (a ``SpecError``, which the suite took for "this
        translation cannot express the spec" and skipped), so a run stays green."""

        name = "torch_roles_from_ndim"

        def native_train(self, *args, **kwargs):
            with _roles_from_ndim():
                return super().native_train(*args, **kwargs)

        def native_penalty(self, *args, **kwargs):
            with _roles_from_ndim():
                return super().native_penalty(*args, **kwargs)

        def native_plan(self, *args, **kwargs):
            with _roles_from_ndim():
                return super().native_plan(*args, **kwargs)

    class TorchConvLayoutReshaped(TorchBackend):
        """The PyTorch backend whose native translations carry a conv kernel between torch's
        ``(out, in, kh, kw)`` and the canonical ``(kh, kw, in, out)`` with ``reshape`` instead
        of ``permute`` (the transpose forgotten, the shapes still right): Keras weights loaded
        into ``nn.Conv2d`` scrambled, and group lasso or orthogonal terms read the wrong axes.
        L2 and L1 cannot see it."""

        name = "torch_conv_layout_reshaped"

        def native_train(self, *args, **kwargs):
            with _conv_reshaped():
                return super().native_train(*args, **kwargs)

        def native_penalty(self, *args, **kwargs):
            with _conv_reshaped():
                return super().native_penalty(*args, **kwargs)

    return {"TorchWeightDecayAsSum": TorchWeightDecayAsSum,
            "TorchRolesFromNdim": TorchRolesFromNdim,
            "TorchConvLayoutReshaped": TorchConvLayoutReshaped}


@contextlib.contextmanager
def _conv_reshaped() -> Iterator[None]:
    """Inside the block, :func:`regcore_adapters.torch.modules.view_of`'s conv view reshapes."""
    from regcore_adapters.torch import modules

    real = modules._conv_to_keras
    modules._conv_to_keras = lambda t: t.reshape(*t.shape[2:], t.shape[1], t.shape[0])
    try:
        yield
    finally:
        modules._conv_to_keras = real


@contextlib.contextmanager
def _roles_from_ndim() -> Iterator[None]:
    """Inside the block, :func:`regcore_adapters.torch.modules.role_of` (which every torch native
    translation resolves roles with) looks at ``ndim`` only."""
    from regcore_adapters.torch import modules

    real = modules.role_of
    modules.role_of = lambda module, name, param: "weight" if param.ndim >= 2 else "other"
    try:
        yield
    finally:
        modules.role_of = real


def __getattr__(name: str) -> Any:
    if name in TORCH_MUTANTS:
        return _torch_mutants()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
