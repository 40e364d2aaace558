"""The path gives the same answer on every installed backend as on the NumPy reference.

Each backend session runs this file (``nox -s torch tf jax``): the path on the synthetic linear
problem (L1, elastic net, group lasso, all through the proximal step) and on the Iris MLP, in
float64 and float32, against the NumPy float64 path. Mean validation losses must agree within the
suite's trajectory tolerance for the longest chain of steps (``steps × grid`` from one warm-start
chain; :class:`regcore_conformance.tolerance.Tolerance`), and the chosen values must be the same.
The linear fits are contractions, so the tolerance is a bound there; for the MLP it is the
suite's heuristic, as for its MLP trajectories.
"""

from __future__ import annotations

import numpy as np
import pytest

from regcore import L1, L2, ElasticNet, GroupLasso, Rule, Spec, load_backend
from regcore_apps.path import Settings, run
from regcore_apps.path.data import problem
from regcore_conformance.tolerance import Tolerance, network_chain
from tests.installed import backend_params

OTHERS = backend_params(exclude=("numpy",))
LINEAR_SPECS = {
    "l1": Spec(penalties=(Rule(L1(0.05, convention="sum")),)),
    "elastic_net": Spec(penalties=(Rule(ElasticNet.from_sklearn(0.05, 0.5, data_loss="mse")),)),
    "group_lasso": Spec(penalties=(Rule(GroupLasso(0.1, convention="sum", axis=0)),)),
}
GRID = (0.3, 0.1, 0.03, 0.01)
_REFERENCE: dict = {}


def _path(backend: str, data: str, spec_name: str, dtype: str) -> dict:
    if data == "synthetic":
        spec, settings = LINEAR_SPECS[spec_name], Settings(folds=3, steps=150, dtype=dtype)
    else:
        spec = Spec(penalties=(Rule(L2(1e-3, convention="sum")),))
        settings = Settings(folds=3, steps=25, lr=0.1, dtype=dtype)
    grid = GRID if data == "synthetic" else (0.1, 1e-2, 1e-3, 1e-4)
    return run(load_backend(backend), problem(data), spec, grid, settings)


def _reference(data: str, spec_name: str) -> dict:
    key = (data, spec_name)
    if key not in _REFERENCE:
        _REFERENCE[key] = _path("numpy", data, spec_name, "float64")
    return _REFERENCE[key]


CASES = [("synthetic", s) for s in LINEAR_SPECS] + [("iris", "l2")]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("data", "spec_name"), CASES)
@pytest.mark.parametrize("backend", OTHERS)
def test_path_agrees_with_the_numpy_reference(backend, data, spec_name, dtype):
    if dtype not in load_backend(backend).dtypes:
        pytest.skip(f"{backend} has no {dtype}")
    ref = _reference(data, spec_name)
    got = _path(backend, data, spec_name, dtype)
    prob = problem(data)
    tol = Tolerance(dtype, network_chain(prob.model.sizes, prob.x.shape[0]),
                    steps=got["steps"] * len(got["grid"])).value
    want = np.asarray(ref["mean_val"])
    error = np.max(np.abs(np.asarray(got["mean_val"]) - want)) / np.max(np.abs(want))
    assert error <= tol, f"mean validation loss off by {error:.3g} > {tol:.3g}"
    assert got["choice"] == ref["choice"]
    if "coefficients" in ref and dtype == "float64":  # exact zeros where the reference has them
        assert got["coefficients"]["zeros"] == ref["coefficients"]["zeros"]
        assert any(ref["coefficients"]["zeros"])
