"""The shrinkage operators of ``regcore.proximal`` as pure ``jax.numpy`` functions.

A training run's graph depends only on the operators' :func:`structure`; their thresholds
(:func:`thresholds`: ``step·coef`` in float64, rounded once to the parameter's dtype) are
arguments of the jitted run, so one compilation serves every λ of a regularization path.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import jax
import jax.numpy as jnp

from regcore import proximal

Params = dict[str, jax.Array]


def structure(ops: tuple[proximal.ProxOp, ...]) -> tuple[Hashable, ...]:
    """What :func:`apply` compiles to: each operator without its coefficient."""
    out: list[Hashable] = []
    for op in ops:
        if isinstance(op, proximal.Shrink):
            out.append(("shrink", op.param))
        elif isinstance(op, proximal.GroupShrink):
            out.append(("group_shrink", op.param, op.axis, op.scale_by_size))
        else:  # pragma: no cover - split() makes only these
            raise TypeError(f"unknown proximal operator {op!r}")
    return tuple(out)


def thresholds(ops: tuple[proximal.ProxOp, ...], params: Mapping[str, jax.Array],
               step: float) -> tuple[jax.Array, ...]:
    """Each operator's threshold ``step·coef`` (float64) as a 0-dim array of its parameter's
    dtype: one rounding, as the reference's (needs x64 enabled for float64)."""
    return tuple(jnp.asarray(step * op.coef, params[op.param].dtype) for op in ops)


def shrink(p: jax.Array, threshold: jax.Array) -> jax.Array:
    """``sign(p)·max(|p| − threshold, 0)``: entries within ``threshold`` of 0 become 0."""
    return jnp.sign(p) * jnp.maximum(jnp.abs(p) - threshold, jnp.zeros((), p.dtype))


def group_shrink(p: jax.Array, threshold: jax.Array, axis: int,
                 scale_by_size: bool) -> jax.Array:
    """Every group ``p_g`` (slice along ``axis``) ← ``p_g·max(1 − threshold·c_g/‖p_g‖, 0)``;
    an all-zero group stays 0 (its norm is replaced by 1, never divided by)."""
    axis %= p.ndim
    others = tuple(d for d in range(p.ndim) if d != axis)
    one = jnp.ones((), p.dtype)
    size = p.size // p.shape[axis]
    weight = jnp.sqrt(jnp.asarray(size, p.dtype)) if scale_by_size else one
    norms = jnp.sqrt(jnp.sum(p * p, axis=others, keepdims=True))
    safe = jnp.where(norms != 0, norms, one)
    return p * jnp.maximum(one - threshold * weight / safe, jnp.zeros((), p.dtype))


def apply(ops: tuple[Hashable, ...], params: Mapping[str, jax.Array],
          thresholds: Sequence[jax.Array]) -> Params:
    """New parameters: the operators of a :func:`structure` ``ops`` applied in order."""
    new = dict(params)
    for op, t in zip(ops, thresholds, strict=True):
        if op[0] == "shrink":
            new[op[1]] = shrink(new[op[1]], t)
        else:
            new[op[1]] = group_shrink(new[op[1]], t, op[2], op[3])
    return new
