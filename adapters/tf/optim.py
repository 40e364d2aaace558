"""``regcore.Optimizer`` as TF ops on ``tf.Variable``s: decoupled decay, then SGD or torch's Adam.

This is the functional path's optimizer, written out rather than taken from
``keras.optimizers``: ``keras.optimizers.Adam`` folds the bias corrections into the step size,
``lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√v + ε)``, so its ``ε`` is added to the *uncorrected* ``√v`` — torch's
(and :class:`regcore.Optimizer`'s) ``ε`` is added to ``√v̂ = √v/√(1−β₂ᵗ)``. The two differ by a
factor ``√(1−β₂ᵗ)`` on ``ε``, which matters most in the first steps, the ones the suite checks.

The optimizer state (:func:`slots`) is a nest of ``tf.Variable``s passed to :func:`apply` as an
argument, so one traced step function serves every training run of the same configuration.
"""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf

from regcore import Optimizer


def decay_factors(optimizer: Optimizer, decay: Mapping[str, float]) -> dict[str, float]:
    """``1 − lr·rate`` per decayed parameter, computed in float64 (rounded once to the
    parameter's dtype where it is applied, as torch and the reference do)."""
    return {name: 1 - optimizer.lr * rate for name, rate in decay.items()}


def decay_factor_tensors(optimizer: Optimizer, decay: Mapping[str, float],
                         variables: Mapping[str, tf.Variable]) -> dict[str, tf.Tensor]:
    """:func:`decay_factors` as 0-dim tensors of each parameter's dtype (one rounding of the
    float64 factor, as a constant of that dtype would be), for a step function that takes them
    as arguments and so serves every decay rate."""
    return {name: tf.constant(factor, variables[name].dtype)
            for name, factor in decay_factors(optimizer, decay).items()}


def slots(optimizer: Optimizer, variables: Mapping[str, tf.Variable]) -> dict:
    """Fresh optimizer state: nothing for SGD; for Adam the moments ``m``, ``v`` (zeros of each
    parameter's shape and dtype) and the step counter ``t``."""
    if optimizer.name == "sgd":
        return {}
    return {
        "m": {k: tf.Variable(tf.zeros_like(p), trainable=False) for k, p in variables.items()},
        "v": {k: tf.Variable(tf.zeros_like(p), trainable=False) for k, p in variables.items()},
        "t": tf.Variable(0, dtype=tf.int64, trainable=False),
    }


def apply(optimizer: Optimizer, factors: Mapping[str, float | tf.Tensor],
          variables: Mapping[str, tf.Variable], grads: Mapping[str, tf.Tensor],
          state: Mapping) -> None:
    """One update of ``variables`` with ``grads``, in the parameters' dtype, as torch orders it.

    * decoupled decay first (AdamW's order): ``p ← p·(1 − lr·rate)`` for ``name in factors``
      (a float, rounded here to the parameter's dtype, or a tensor of that dtype);
    * ``sgd``: ``p ← p − lr·g``;
    * ``adam`` (torch's ``Adam``, no amsgrad): ``m ← m + (g − m)(1−β₁)``;
      ``v ← β₂v + (1−β₂)g²``; ``p ← p − (lr/(1−β₁ᵗ))·m / (√v/√(1−β₂ᵗ) + ε)``.

    TF ops only, so it runs eagerly or traced inside a ``tf.function`` (with or without XLA). The
    bias corrections are computed in float64 from ``t`` and rounded once to the parameter's dtype,
    as torch and the reference compute them in Python floats.
    """
    lr = optimizer.lr
    if optimizer.name == "adam":
        beta1, beta2 = optimizer.betas
        state["t"].assign_add(1)
        t = tf.cast(state["t"], tf.float64)
        step_size64 = lr / (1 - tf.pow(tf.constant(beta1, tf.float64), t))
        correction64 = tf.sqrt(1 - tf.pow(tf.constant(beta2, tf.float64), t))
    for name, p in variables.items():
        kind = p.dtype
        factor = factors.get(name)
        if factor is not None:  # decoupled: p ← p·(1 − lr·rate)
            p.assign(p * (factor if isinstance(factor, tf.Tensor) else tf.constant(factor, kind)))
        g = grads[name]
        if optimizer.name == "sgd":
            p.assign_sub(tf.constant(lr, kind) * g)
            continue
        m, v = state["m"][name], state["v"][name]
        m.assign_add((g - m) * tf.constant(1 - beta1, kind))  # torch: exp_avg.lerp_(g, 1 − β₁)
        v.assign(v * tf.constant(beta2, kind) + tf.constant(1 - beta2, kind) * g * g)
        denom = tf.sqrt(v) / tf.cast(correction64, kind) + tf.constant(optimizer.eps, kind)
        p.assign_sub(tf.cast(step_size64, kind) * m / denom)
