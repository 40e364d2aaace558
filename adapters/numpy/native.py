"""A spec in a hand-written NumPy training step, without new arrays on the hot path.

``InPlacePenalty(plan)`` (``plan = spec.resolve(infos)``) works on the step's own
``{name: array}`` dicts:

* :meth:`~InPlacePenalty.value` — the penalty alone, for logging: L2 parts are one
  ``np.vdot(w, w)`` per tensor (a BLAS dot, no temporary), L1 parts ``Σ|w|``;
* :meth:`~InPlacePenalty.add_grad_` — ``grads[name] += ∂penalty/∂w`` in place (L2 through a
  scratch buffer kept per shape and dtype, not a new array per call);
* :meth:`~InPlacePenalty.decay_` — decoupled decay ``w ← (1 − lr·rate)·w`` (AdamW's order:
  before the optimizer's update);
* :meth:`~InPlacePenalty.sgd_step_` — the fastest step for plain SGD: coupled L2 and decoupled
  decay folded into one factor, ``w ← (1 − lr·(2s + rate))·w − lr·g`` (the same maths as
  ``w − lr·(g + 2s·w)`` after decay; rounding differs in the last bits), other terms' gradients
  added to ``g`` first. It overwrites ``grads`` (``g ← lr·g``).

Every method first checks the dicts against the plan (:func:`regcore.check_shapes`): every
parameter the plan penalizes or decays present, no name the plan lacks, each array of the plan's
shape, and ``grads`` naming the same parameters as ``params`` — a :class:`regcore.SpecError`
naming the parameter, never a silently different value for a transposed kernel.

Terms other than L2/L1/elastic net (group lasso, orthogonal) go through the reference kernels
(:mod:`.penalties`). float16 parameters (and any dtype narrower than float32) go through them too,
so their penalty accumulates in float32 as the backend's does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, MutableMapping

import numpy as np

from regcore import L1, L2, ElasticNet, Plan, SpecError, Term, activity, check_shapes
from regcore_adapters.numpy.penalties import KERNELS, accumulation_dtype


def _parts(term: Term) -> tuple[float, float] | None:
    """``(s1, s2)`` of an elementwise term, ``s1·Σ|w| + s2·Σw²`` in sum form; ``None`` for the
    others."""
    if isinstance(term, L2):
        return 0.0, term.scaled()["coef"]
    if isinstance(term, L1):
        return term.scaled()["coef"], 0.0
    if isinstance(term, ElasticNet):
        scaled = term.scaled()
        return scaled["l1"], scaled["l2"]
    return None


class InPlacePenalty:
    """The plan's penalties and decay applied to a NumPy step's parameter and gradient dicts.

    A plan with activity penalties is refused: they are terms on layer outputs, whose gradients
    enter a hand-written backward pass at those outputs (as the NumPy backend's own does, with
    the data loss), not parameter dicts."""

    def __init__(self, plan: Plan) -> None:
        if not isinstance(plan, Plan):
            raise SpecError(f"plan: expected a regcore.Plan (spec.resolve(infos)), got "
                            f"{type(plan).__name__}")
        activity.refuse(plan.activity, "InPlacePenalty (parameter and gradient dicts)",
                        "add its gradient in the backward pass, at the layer's output, and give "
                        "InPlacePenalty the plan without it")
        self.plan = plan
        self.decay = dict(plan.decay)
        self._l1: dict[str, float] = defaultdict(float)
        self._l2: dict[str, float] = defaultdict(float)
        self._other: list[tuple[str, Term]] = []
        self._all = [(a.param, a.term) for a in plan.penalties]
        for name, term in self._all:
            parts = _parts(term)
            if parts is None:
                self._other.append((name, term))
            else:
                self._l1[name] += parts[0]
                self._l2[name] += parts[1]
        self._scratch: dict[tuple, np.ndarray] = {}

    @staticmethod
    def _fast(w: np.ndarray) -> bool:
        return accumulation_dtype(w.dtype) == w.dtype

    def value(self, params: Mapping[str, np.ndarray]) -> float:
        """The penalty at ``params`` (a Python float; no gradient computed)."""
        self._check(params)
        total = 0.0
        slow = list(self._other)
        for name in self._l1.keys() | self._l2.keys():
            w = params[name]
            if not self._fast(w):
                slow += [(n, t) for n, t in self._all if n == name and _parts(t) is not None]
                continue
            s1, s2 = self._l1[name], self._l2[name]
            if s2:
                flat = w.reshape(-1)
                total += float(w.dtype.type(s2) * np.vdot(flat, flat))
            if s1:
                total += float(w.dtype.type(s1) * np.sum(np.abs(w)))
        for name, term in slow:
            w = params[name]
            total += float(KERNELS[type(term)](term, w.astype(accumulation_dtype(w.dtype)))[0])
        return total

    def _check(self, params: Mapping[str, np.ndarray],
               grads: Mapping[str, np.ndarray] | None = None) -> None:
        check_shapes("numpy", self.plan, params)
        if grads is not None:
            check_shapes("numpy", self.plan, grads, what="grad")
            if grads.keys() != params.keys():
                raise SpecError(f"numpy: grads name {sorted(grads)}, params {sorted(params)}; "
                                "they must name the same parameters")

    def _scratch_for(self, w: np.ndarray) -> np.ndarray:
        key = (w.shape, w.dtype)
        if key not in self._scratch:
            self._scratch[key] = np.empty_like(w)
        return self._scratch[key]

    def _add_other_(self, params: Mapping[str, np.ndarray],
                    grads: MutableMapping[str, np.ndarray], scale: float,
                    coupled_l2: bool) -> None:
        """Add the gradients of every part but (when ``coupled_l2`` is false) fast L2 parts."""
        for name, term in self._other:
            w, g = params[name], grads[name]
            grad = KERNELS[type(term)](term, w.astype(accumulation_dtype(w.dtype)))[1]
            g += (scale * grad).astype(g.dtype, copy=False)
        for name in self._l1.keys() | self._l2.keys():
            w, g = params[name], grads[name]
            if not self._fast(w):
                for n, term in self._all:
                    if n == name and _parts(term) is not None:
                        grad = KERNELS[type(term)](term, w.astype(accumulation_dtype(w.dtype)))[1]
                        g += (scale * grad).astype(g.dtype, copy=False)
                continue
            kind = w.dtype.type
            s1, s2 = self._l1[name], self._l2[name]
            tmp = self._scratch_for(w)
            if s1:
                np.sign(w, out=tmp)  # sign(0) = 0: the reference subgradient
                tmp *= kind(scale * s1)
                g += tmp
            if s2 and coupled_l2:
                np.multiply(w, kind(scale * 2 * s2), out=tmp)
                g += tmp

    def add_grad_(self, params: Mapping[str, np.ndarray], grads: MutableMapping[str, np.ndarray],
                  scale: float = 1.0) -> None:
        """``grads[name] += scale · ∂penalty/∂params[name]`` for every penalized parameter."""
        self._check(params, grads)
        self._add_other_(params, grads, scale, coupled_l2=True)

    def decay_(self, params: MutableMapping[str, np.ndarray], lr: float) -> None:
        """``w ← (1 − lr·rate)·w`` for every decayed parameter."""
        self._check(params)
        for name, rate in self.decay.items():
            w = params[name]
            w *= w.dtype.type(1 - lr * rate)

    def sgd_step_(self, params: MutableMapping[str, np.ndarray],
                  grads: MutableMapping[str, np.ndarray], lr: float) -> None:
        """One plain SGD step with the penalty and decay: see the module docstring. Overwrites
        every ``grads[name]`` with ``lr·grads[name]``."""
        self._check(params, grads)
        self._add_other_(params, grads, 1.0, coupled_l2=False)
        for name, w in params.items():
            kind = w.dtype.type
            s2 = self._l2.get(name, 0.0) if self._fast(w) else 0.0
            factor = 1 - lr * (2 * s2 + self.decay.get(name, 0.0))
            if factor != 1:
                w *= kind(factor)
            g = grads[name]
            g *= kind(lr)
            w -= g
