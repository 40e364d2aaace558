"""Deliberately wrong backends: the conformance suite must fail each of them.

Each one is the NumPy backend with one classic regularization bug injected.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from regcore import L1, L2
from regcore_adapters.numpy import NumpyBackend
from regcore_adapters.numpy import penalties as kernels
from regcore_adapters.numpy.models import forward_backward


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
