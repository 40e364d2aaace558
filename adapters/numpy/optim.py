"""Optimizer updates by hand, in the parameters' dtype, exactly as torch orders them."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from regcore import Optimizer


class Stepper:
    """Applies one update per call: decoupled decay first (AdamW's order), then SGD or Adam."""

    def __init__(self, optimizer: Optimizer, decay: Mapping[str, float]) -> None:
        self.opt, self.decay, self.t = optimizer, decay, 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        self.t += 1
        lr = self.opt.lr
        for name, p in params.items():
            kind = p.dtype.type
            rate = self.decay.get(name)
            if rate is not None:  # decoupled: p ← p − lr·rate·p
                p *= kind(1 - lr * rate)
            g = grads[name]
            if self.opt.name == "sgd":
                p -= kind(lr) * g
                continue
            beta1, beta2 = self.opt.betas
            m = self.m.setdefault(name, np.zeros_like(p))
            v = self.v.setdefault(name, np.zeros_like(p))
            m += (g - m) * kind(1 - beta1)  # torch: exp_avg.lerp_(grad, 1 - beta1)
            v *= kind(beta2)
            v += kind(1 - beta2) * g * g
            step_size = kind(lr / (1 - beta1**self.t))
            denom = np.sqrt(v) / kind(np.sqrt(1 - beta2**self.t)) + kind(self.opt.eps)
            p -= step_size * m / denom
