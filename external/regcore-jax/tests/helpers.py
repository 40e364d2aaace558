"""Shared builders for the regcore-jax tests: plans, a small MLP case, the parameters with exact
zeros the subgradient tests share, and the transforms and dtypes they run under."""

from __future__ import annotations

import jax
import numpy as np

from regcore import (
    L1,
    L2,
    ElasticNet,
    GroupLasso,
    ModelSpec,
    Orthogonal,
    ParamInfo,
    Plan,
    Rule,
    Select,
    Spec,
    Term,
)

TRANSFORMS = {"eager": lambda f: f, "jit": jax.jit}
DTYPES = ("float32", "float64")

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


def _with_zero(shape: tuple[int, ...], index) -> np.ndarray:
    w = np.random.default_rng(1).standard_normal(shape)
    w[index] = 0.0
    return w


# (term, parameter, entries whose reference subgradient is exactly 0)
_W_L1 = _with_zero((5, 4), (np.array([0, 2, 4]), np.array([1, 3, 0])))
_W_ROW = _with_zero((5, 4), 2)
_W_COLUMN = _with_zero((5, 4), (slice(None), 1))
ZERO_CASES = {
    "l1": (L1(0.3, convention="sum"), _W_L1, _W_L1 == 0),
    "elastic_net": (ElasticNet(0.3, 0.2, convention="sum"), _W_L1, _W_L1 == 0),
    "group_lasso_zero_group": (GroupLasso(0.4, convention="sum", axis=1), _W_COLUMN,
                               _W_COLUMN == 0),
    "orthogonal_zero_row": (Orthogonal(0.5, "rows", convention="sum"), _W_ROW, _W_ROW == 0),
    # rows 0 ⟂ 1 exactly: |G_01| sits at its kink; with abs'(0) = 1 both rows would move
    "orthogonal_exact_pair": (Orthogonal(0.5, "rows", convention="sum"),
                              np.array([[1.0, 0.0], [0.0, 2.0]]), np.ones((2, 2), bool)),
}
