"""regcore's ``Optimizer`` as pure JAX functions: decoupled decay, then SGD or torch's Adam.

Written out rather than taken from optax (not a dependency): the update is torch's, in the
parameters' dtype, with ``ε`` added to the bias-corrected ``√v̂``. The state is a pytree threaded
through :func:`update`, so a whole training run is one ``lax.fori_loop`` under ``jax.jit``.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from regcore import Optimizer

Params = dict[str, jax.Array]


def decay_factors(optimizer: Optimizer, decay: Mapping[str, float]) -> dict[str, float]:
    """``1 − lr·rate`` per decayed parameter, computed in float64 (rounded once to the
    parameter's dtype where it is applied, as torch and the reference do)."""
    return {name: 1 - optimizer.lr * rate for name, rate in decay.items()}


def init(optimizer: Optimizer, params: Mapping[str, jax.Array]) -> tuple:
    """Fresh optimizer state: ``()`` for SGD; for Adam the moments ``(m, v)``, zeros of each
    parameter's shape and dtype."""
    if optimizer.name == "sgd":
        return ()
    return ({k: jnp.zeros_like(p) for k, p in params.items()},
            {k: jnp.zeros_like(p) for k, p in params.items()})


def update(optimizer: Optimizer, factors: Mapping[str, float], params: Mapping[str, jax.Array],
           grads: Mapping[str, jax.Array], state: tuple, t: jax.Array) -> tuple[Params, tuple]:
    """Step ``t`` (1-based): new parameters and state from ``grads``, as torch orders it.

    * decoupled decay first (AdamW's order): ``p ← p·(1 − lr·rate)`` for ``name in factors``;
    * ``sgd``: ``p ← p − lr·g``;
    * ``adam`` (torch's ``Adam``, no amsgrad): ``m ← m + (g − m)(1−β₁)``;
      ``v ← β₂v + (1−β₂)g²``; ``p ← p − (lr/(1−β₁ᵗ))·m / (√v/√(1−β₂ᵗ) + ε)``.

    The bias corrections are computed in float64 from ``t`` and rounded once to the parameter's
    dtype, as torch and the reference compute them in Python floats (needs x64 enabled).
    """
    lr = optimizer.lr
    new: Params = {}
    if optimizer.name == "adam":
        beta1, beta2 = optimizer.betas
        t64 = jnp.asarray(t, jnp.float64)
        step_size64 = lr / (1 - jnp.asarray(beta1, jnp.float64) ** t64)
        correction64 = jnp.sqrt(1 - jnp.asarray(beta2, jnp.float64) ** t64)
        moments, squares = dict(state[0]), dict(state[1])
    for name, p in params.items():
        kind = p.dtype
        factor = factors.get(name)
        if factor is not None:  # decoupled: p ← p·(1 − lr·rate)
            p = p * jnp.asarray(factor, kind)
        g = grads[name]
        if optimizer.name == "sgd":
            new[name] = p - jnp.asarray(lr, kind) * g
            continue
        m = moments[name] + (g - moments[name]) * jnp.asarray(1 - beta1, kind)  # torch's lerp
        v = squares[name] * jnp.asarray(beta2, kind) + jnp.asarray(1 - beta2, kind) * g * g
        denom = jnp.sqrt(v) / correction64.astype(kind) + jnp.asarray(optimizer.eps, kind)
        new[name] = p - step_size64.astype(kind) * m / denom
        moments[name], squares[name] = m, v
    return new, (() if optimizer.name == "sgd" else (moments, squares))
