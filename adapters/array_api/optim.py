"""Optimizer updates and proximal shrinkage in Array API functions, in the parameters' dtype,
in torch's order (decoupled decay first, as AdamW; Adam's moments as ``torch.optim.Adam``).
Each step returns new arrays: nothing is written in place."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from regcore import Optimizer
from regcore.proximal import GroupShrink, ProxOp, Shrink
from regcore_adapters.array_api.namespace import Standard
from regcore_adapters.array_api.penalties import groups, ungroup


class Stepper:
    """One update of every parameter per :meth:`step`; SGD or Adam, with decoupled decay."""

    def __init__(self, xp: Standard, optimizer: Optimizer, decay: Mapping[str, float]) -> None:
        self.xp, self.opt, self.decay, self.t = xp, optimizer, decay, 0
        self.m: dict[str, Any] = {}
        self.v: dict[str, Any] = {}

    def step(self, params: Mapping[str, Any], grads: Mapping[str, Any]) -> dict[str, Any]:
        xp, opt = self.xp, self.opt
        self.t += 1
        new = {}
        for name, p in params.items():
            rate = self.decay.get(name)
            if rate is not None:  # decoupled: p <- p - lr·rate·p
                p = p * xp.scalar(1 - opt.lr * rate, p)
            g = grads[name]
            if opt.name == "sgd":
                new[name] = p - xp.scalar(opt.lr, p) * g
                continue
            beta1, beta2 = opt.betas
            m = self.m.get(name, xp.zeros_like(p))
            v = self.v.get(name, xp.zeros_like(p))
            m = m + (g - m) * xp.scalar(1 - beta1, p)  # torch: exp_avg.lerp_(grad, 1 - beta1)
            v = v * xp.scalar(beta2, p) + xp.scalar(1 - beta2, p) * g * g
            self.m[name], self.v[name] = m, v
            step_size = xp.scalar(opt.lr / (1 - beta1**self.t), p)
            denom = (xp.sqrt(v) / xp.scalar(math.sqrt(1 - beta2**self.t), p)
                     + xp.scalar(opt.eps, p))
            new[name] = p - step_size * m / denom
        return new


def shrink(xp: Standard, ops: tuple[ProxOp, ...], params: Mapping[str, Any], step: float
           ) -> dict[str, Any]:
    """``params`` after the proximal operators ``ops`` with step size ``step`` (thresholds
    ``step·coef`` in float64, rounded to the parameter's dtype once): soft thresholding
    ``sign(p)·max(|p| − t, 0)``, and group shrinkage ``p_g·max(1 − t·c_g/‖p_g‖, 0)`` (an all-zero
    group stays 0)."""
    out = dict(params)
    for op in ops:
        p = out[op.param]
        t = xp.scalar(step * op.coef, p)
        zero = xp.zeros_like(p)
        if isinstance(op, Shrink):
            out[op.param] = xp.sign(p) * xp.where(xp.abs(p) > t, xp.abs(p) - t, zero)
        elif isinstance(op, GroupShrink):
            g, order = groups(xp, p, op.axis)
            if op.scale_by_size:
                t = t * xp.sqrt(xp.scalar(g.shape[1], p))
            norms = xp.sqrt(xp.sum(g * g, axis=1, keepdims=True))
            safe = xp.where(norms != 0, norms, xp.ones_like(norms))
            factor = 1 - t / safe
            factor = xp.where(factor > 0, factor, xp.zeros_like(factor))
            out[op.param] = ungroup(xp, g * factor, p, order)
        else:
            raise TypeError(f"unknown proximal operator {op!r}")
    return out
