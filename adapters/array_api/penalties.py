"""Every term's value and analytic (sub)gradient in Array API functions only.

A second hand-derived implementation beside :mod:`regcore_adapters.numpy.penalties`, written
from the term definitions (``docs/spec-format.md``), not from that module: the suite checks both
against the float64 reference and the central-difference oracle. ``kernel(xp, rule, w)`` takes
the term as plain data (:func:`regcore.export_support.term_data`: ``kind``, the ``sum``-form
coefficients, the options) and returns ``(value, grad)`` in ``w``'s dtype; every coefficient is
rounded to that dtype once (:meth:`Standard.scalar`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from regcore import ORTHOGONAL_EPSILON, ActivityAssignment, Term
from regcore.export_support import term_data
from regcore_adapters.array_api.namespace import Standard

Kernel = Callable[[Standard, dict, Any], tuple[Any, Any]]


def _l2(xp: Standard, rule: dict, w: Any) -> tuple[Any, Any]:
    c = xp.scalar(rule["coef"], w)
    return c * xp.sum(w * w), (c + c) * w


def _l1(xp: Standard, rule: dict, w: Any) -> tuple[Any, Any]:
    c = xp.scalar(rule["coef"], w)  # the subgradient of |w| at 0 is sign(0) = 0
    return c * xp.sum(xp.abs(w)), c * xp.sign(w)


def _elastic_net(xp: Standard, rule: dict, w: Any) -> tuple[Any, Any]:
    (v1, g1), (v2, g2) = (_l1(xp, {"coef": rule["l1"]}, w), _l2(xp, {"coef": rule["l2"]}, w))
    return v1 + v2, g1 + g2


def groups(xp: Standard, w: Any, axis: int) -> tuple[Any, tuple[int, ...]]:
    """``w`` as a ``(groups, members)`` matrix, a group being a slice along ``axis``, and the
    permutation that brought ``axis`` first."""
    axis %= w.ndim
    order = (axis, *(a for a in range(w.ndim) if a != axis))
    return xp.reshape(xp.permute_dims(w, order), (w.shape[axis], -1)), order


def ungroup(xp: Standard, g: Any, w: Any, order: tuple[int, ...]) -> Any:
    moved = xp.reshape(g, tuple(w.shape[a] for a in order))
    return xp.permute_dims(moved, tuple(order.index(a) for a in range(w.ndim)))


def _group_lasso(xp: Standard, rule: dict, w: Any) -> tuple[Any, Any]:
    g, order = groups(xp, w, rule["axis"])
    norms = xp.sqrt(xp.sum(g * g, axis=1, keepdims=True))
    c = xp.scalar(rule["coef"], w)
    if rule["scale_by_size"]:
        c = c * xp.sqrt(xp.scalar(g.shape[1], w))
    nonzero = norms != 0  # an all-zero group's subgradient is 0; inf or NaN norms propagate
    unit = xp.where(nonzero, g / xp.where(nonzero, norms, xp.ones_like(norms)),
                    xp.zeros_like(g))
    return c * xp.sum(norms), ungroup(xp, c * unit, w, order)


def _orthogonal(xp: Standard, rule: dict, w: Any) -> tuple[Any, Any]:
    """Keras 3's OrthogonalRegularizer: with ``u_i = v_i / max(|v_i|, eps)`` over the rows (or
    columns) ``v_i`` of w, ``coef · Σ_{i<j} |u_i·u_j| / (k(k−1)/2)``; a row clamped at eps is
    divided by the constant eps (no gradient through its norm)."""
    by_rows = rule["mode"] == "rows"
    v = w if by_rows else xp.matrix_transpose(w)
    k = v.shape[0]
    eps = xp.scalar(ORTHOGONAL_EPSILON, w)
    norms = xp.sqrt(xp.sum(v * v, axis=1, keepdims=True))
    clamped = norms <= eps
    scale = xp.where(clamped, eps, norms)
    u = v / scale
    gram = u @ xp.matrix_transpose(u)
    upper = xp.triu(xp.ones_like(gram), k=1)  # each pair once: |G| is symmetric
    c = xp.scalar(rule["coef"], w) / xp.scalar(k * (k - 1) / 2, w)
    value = c * xp.sum(xp.abs(gram) * upper)
    d_gram = c * xp.sign(gram) * upper
    d_u = (d_gram + xp.matrix_transpose(d_gram)) @ u
    # through u = v/|v|: (d_u − u (u·d_u)) / |v|; through u = v/eps: d_u / eps
    radial = xp.sum(u * d_u, axis=1, keepdims=True)
    d_v = xp.where(clamped, d_u, d_u - u * radial) / scale
    return value, d_v if by_rows else xp.matrix_transpose(d_v)


KERNELS: dict[str, Kernel] = {
    "l2": _l2, "l1": _l1, "elastic_net": _elastic_net, "group_lasso": _group_lasso,
    "orthogonal": _orthogonal,
}
"""The kernel of each term kind."""


def term(xp: Standard, t: Term, w: Any) -> tuple[Any, Any]:
    """``t``'s value and (sub)gradient at ``w``; an unknown kind is refused by name."""
    rule = term_data(t)
    if rule["kind"] not in KERNELS:
        from regcore import UnsupportedError

        raise UnsupportedError(f"{xp.label}: no kernel for the {rule['kind']!r} term")
    return KERNELS[rule["kind"]](xp, rule, w)


def activity(xp: Standard, assignments: tuple[ActivityAssignment, ...],
             outputs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The activity penalties on the named layer ``outputs``: the value and, per output named,
    its gradient (``batch_mean`` divides both by the output's first axis)."""
    total: Any = 0
    grads: dict[str, Any] = {}
    for a in assignments:
        out = outputs[a.layer]
        value, grad = term(xp, a.term, out)
        if a.reduction == "batch_mean":
            m = xp.scalar(out.shape[0], out)
            value, grad = value / m, grad / m
        total = total + value
        grads[a.layer] = grads[a.layer] + grad if a.layer in grads else grad
    return total, grads
