"""Proximal gradient (ISTA) steps: a plan split into a smooth part and shrinkage operators.

Plain (sub)gradient descent on ``λ·Σ|w|`` never lands on 0: each step jumps across it. The
proximal step does. With step size ``η`` (the SGD learning rate), one step is::

    p ← (1 − η·rate)·p                      decoupled decay, if the plan has it (AdamW's order)
    p ← p − η·∇(data loss + smooth penalty)(p_old)
    p ← prox_{η·h}(p)                       h: the non-smooth terms

:func:`split` decides which part of every term is which:

* ``l2`` and ``orthogonal`` stay in the gradient (the smooth plan);
* ``l1`` becomes :class:`Shrink` — soft thresholding ``sign(p)·max(|p| − η·c, 0)``, ``c`` its
  ``sum``-form coefficient — so entries whose gradient step lands within ``η·c`` of 0 become
  exactly 0;
* ``elastic_net`` splits: its ``Σw²`` part joins the smooth plan as an ``l2`` term, its ``Σ|w|``
  part becomes a :class:`Shrink`;
* ``group_lasso`` becomes :class:`GroupShrink` — block soft thresholding of every group
  ``p_g ← p_g·max(1 − η·c·c_g/‖p_g‖, 0)`` — so whole groups become exactly 0.

The fixed points are the minimizers of the whole objective (for a convex one), which is why a
regularization path uses this step where the optimizer is plain SGD; Adam has no such step and
trains on the subgradient. Nothing here imports a framework: backends implement the operators
in their own ops (optional :meth:`regcore.Backend.proximal_train`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from regcore.spec import Assignment, Plan
from regcore.terms import L1, L2, ElasticNet, GroupLasso


@dataclass(frozen=True)
class Shrink:
    """Soft thresholding of every entry of ``param`` by ``step·coef`` (``coef`` in sum form)."""

    param: str
    coef: float


@dataclass(frozen=True)
class GroupShrink:
    """Block soft thresholding of the groups of ``param`` (slices along ``axis``, as
    :class:`regcore.GroupLasso`) by ``step·coef·c_g``, ``c_g = √(group size)`` if
    ``scale_by_size`` else 1."""

    param: str
    coef: float
    axis: int
    scale_by_size: bool


ProxOp = Shrink | GroupShrink


def split(plan: Plan) -> tuple[Plan, tuple[ProxOp, ...]]:
    """The plan's smooth part (evaluated by gradient) and its shrinkage operators, in rule order.

    The smooth plan keeps the parameters and the decoupled decay; shrinkage operators apply in
    order (they touch different parameters or commute: two terms of one kind on one parameter
    are refused when the spec is resolved)."""
    smooth: list[Assignment] = []
    ops: list[ProxOp] = []
    for a in plan.penalties:
        term = a.term
        if isinstance(term, L1):
            ops.append(Shrink(a.param, term.scaled()["coef"]))
        elif isinstance(term, ElasticNet):
            scaled = term.scaled()
            if scaled["l2"] != 0:
                smooth.append(Assignment(a.param, L2(scaled["l2"], convention="sum"), a.rule))
            ops.append(Shrink(a.param, scaled["l1"]))
        elif isinstance(term, GroupLasso):
            ops.append(GroupShrink(a.param, term.scaled()["coef"], term.axis,
                                   term.scale_by_size))
        else:
            smooth.append(a)
    return Plan(plan.params, tuple(smooth), dict(plan.decay), plan.activity), tuple(ops)


def merged_shrinks(ops: tuple[ProxOp, ...]) -> tuple[ProxOp, ...]:
    """``ops`` with the :class:`Shrink` operators of one parameter summed into one (an ``l1``
    rule and an ``elastic_net`` rule on one parameter: soft thresholding by ``a`` then by ``b``
    is soft thresholding by ``a + b``), so a backend applies one per parameter."""
    total: dict[str, float] = {}
    rest: list[ProxOp] = []
    for op in ops:
        if isinstance(op, Shrink):
            total[op.param] = total.get(op.param, 0.0) + op.coef
        else:
            rest.append(op)
    return tuple(Shrink(p, c) for p, c in total.items()) + tuple(rest)


def apply(ops: tuple[ProxOp, ...], params: Mapping[str, Any], step: float,
          shrink: Callable[[Any, float], None],
          group_shrink: Callable[[Any, float, int, bool], None]) -> None:
    """Apply ``ops`` in order with step size ``step`` through a backend's in-place operators:
    ``shrink(p, threshold)`` and ``group_shrink(p, threshold, axis, scale_by_size)``, with
    ``threshold = step·coef`` computed here in float64 (the backend rounds it to ``p``'s dtype
    once)."""
    for op in ops:
        if isinstance(op, Shrink):
            shrink(params[op.param], step * op.coef)
        elif isinstance(op, GroupShrink):
            group_shrink(params[op.param], step * op.coef, op.axis, op.scale_by_size)
        else:
            raise TypeError(f"unknown proximal operator {op!r}")
