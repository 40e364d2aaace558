"""Shared builders for the regcore-jax tests (plans and a small MLP case)."""

from __future__ import annotations

import numpy as np

from regcore import L2, ModelSpec, Orthogonal, ParamInfo, Plan, Rule, Select, Spec, Term

MLP = ModelSpec((4, 5, 3), "relu", "softmax_xent")
MLP_SPEC = Spec(penalties=(Rule(L2(0.01, convention="sum")),
                           Rule(Orthogonal(0.1, "rows", convention="sum"))))


def term_plan(term: Term, shape: tuple[int, ...]) -> Plan:
    """``term`` on one parameter ``w`` of ``shape``."""
    return Spec(penalties=(Rule(term, Select()),)).resolve([ParamInfo("w", shape, "weight")])


def mlp_case(backend, dtype: str):
    """Plan, parameters, inputs and integer labels for :data:`MLP` as ``backend`` arrays."""
    rng = np.random.default_rng(0)
    params = {p.name: backend.asarray(rng.normal(size=p.shape), dtype=dtype, device="cpu")
              for p in MLP.params()}
    x = backend.asarray(rng.normal(size=(8, 4)), dtype=dtype, device="cpu")
    y = backend.asarray(rng.integers(0, 3, size=8), dtype="int64", device="cpu")
    return MLP_SPEC.resolve(MLP.params()), params, x, y
