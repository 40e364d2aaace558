"""The shrinkage operators of :mod:`regcore.proximal` as TF ops on ``tf.Variable``s.

As the penalty coefficients (:func:`regcore_adapters.tf.backend.penalty_coefs`), the thresholds
are arguments (:func:`thresholds`: ``step·coef`` in float64, rounded once to the parameter's
dtype), and a traced function depends only on the operators' :func:`structure`, so one trace
serves every λ of a regularization path. TF ops only: runs eagerly or inside a ``tf.function``,
with or without XLA.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import tensorflow as tf

from regcore.proximal import GroupShrink, ProxOp, Shrink


def structure(ops: tuple[ProxOp, ...]) -> tuple[Hashable, ...]:
    """What the graph of :func:`apply` depends on: each operator without its coefficient."""
    out: list[Hashable] = []
    for op in ops:
        if isinstance(op, Shrink):
            out.append(("shrink", op.param))
        elif isinstance(op, GroupShrink):
            out.append(("group_shrink", op.param, op.axis, op.scale_by_size))
        else:  # pragma: no cover - split() makes only these
            raise TypeError(f"unknown proximal operator {op!r}")
    return tuple(out)


def thresholds(ops: tuple[ProxOp, ...], variables: Mapping[str, tf.Variable],
               step: float) -> tuple[tf.Tensor, ...]:
    """Each operator's threshold ``step·coef`` (float64), as a 0-dim tensor of its parameter's
    dtype: one rounding, as the reference's."""
    return tuple(tf.constant(step * op.coef, variables[op.param].dtype) for op in ops)


def shrink(p: tf.Tensor, threshold: tf.Tensor) -> tf.Tensor:
    """``sign(p)·max(|p| − threshold, 0)``: entries within ``threshold`` of 0 become 0."""
    return tf.sign(p) * tf.maximum(tf.abs(p) - threshold, tf.zeros((), p.dtype))


def group_shrink(p: tf.Tensor, threshold: tf.Tensor, axis: int,
                 scale_by_size: bool) -> tf.Tensor:
    """Every group ``p_g`` (slice along ``axis``) ← ``p_g·max(1 − threshold·c_g/‖p_g‖, 0)``;
    an all-zero group stays 0 (its norm is replaced by 1, never divided by)."""
    rank = len(p.shape)
    axis %= rank
    others = [d for d in range(rank) if d != axis]
    size = 1
    for d in others:
        size *= int(p.shape[d])
    one = tf.ones((), p.dtype)
    weight = tf.sqrt(tf.constant(size, p.dtype)) if scale_by_size else one
    norms = tf.sqrt(tf.reduce_sum(p * p, axis=others, keepdims=True))
    safe = tf.where(norms != 0, norms, one)
    return p * tf.maximum(one - threshold * weight / safe, tf.zeros((), p.dtype))


def apply(ops: tuple[Hashable, ...], variables: Mapping[str, tf.Variable],
          thresholds: Sequence[tf.Tensor]) -> None:
    """The operators of a :func:`structure` ``ops``, in order, on ``variables`` in place."""
    for op, t in zip(ops, thresholds, strict=True):
        p = variables[op[1]]
        if op[0] == "shrink":
            p.assign(shrink(p.read_value(), t))
        else:
            p.assign(group_shrink(p.read_value(), t, op[2], op[3]))
