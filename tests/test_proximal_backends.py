"""Every installed backend's ``proximal_train`` on problems with known exact zeros (float64).

* lasso: the result matches scikit-learn's ``Lasso`` within a derived bound, zero for zero;
* group lasso: irrelevant features' rows become exactly 0 as whole groups, the others keep
  every entry;
* an all-zero group (a feature that is 0 in every sample, its row starting at 0) stays exactly 0,
  never NaN (``0/‖0‖``).

A backend whose framework is not installed here is skipped with the loader's reason, as in
``test_properties``; one that does not implement ``proximal_train`` is skipped naming it.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

import regcore
from regcore import L1, GroupLasso, ModelSpec, Rule, Spec, UnsupportedError
from regcore_conformance.tolerance import Tolerance, network_chain
from tests.installed import backend_params

REFERENCE = regcore.load_backend("numpy")


@cache
def _backend(name: str) -> regcore.Backend:
    return regcore.load_backend(name)


def _run(name: str, model: ModelSpec, plan, params, x, y, *, lr: float, steps: int):
    """``proximal_train`` in float64 on CPU through backend ``name``; NumPy results, and a check
    that the caller's parameters were left as they were."""
    b = _backend(name)
    given = {k: b.asarray(v, dtype="float64", device="cpu") for k, v in params.items()}
    try:
        final = b.proximal_train(model, plan, given, b.asarray(x, dtype="float64", device="cpu"),
                                 b.asarray(y, dtype="float64", device="cpu"), lr=lr, steps=steps)
    except UnsupportedError as exc:
        pytest.skip(f"{name}: {exc}")
    for k, v in params.items():
        np.testing.assert_array_equal(b.to_numpy(given[k]), v)
    out = {k: b.to_numpy(final[k]) for k in params}
    assert all(v.dtype == np.float64 for v in out.values())
    return out


# -- lasso against scikit-learn ------------------------------------------------------------------
N, D, ALPHA, LR, STEPS = 200, 6, 0.1, 0.35, 300
LINEAR = ModelSpec((D, 1), None, "half_mse")  # Σ(ŷ − y)²/(2n): scikit-learn's data term
LASSO = Spec(penalties=(Rule(L1(ALPHA, convention="sklearn_lasso", data_loss="half_mse")),))


@cache
def _lasso_data() -> tuple[np.ndarray, np.ndarray]:
    """Three relevant features of six, so the lasso's zeros are strict: every zero coefficient's
    ``|x_jᵀr|/n`` is below 0.2·α at the optimum (identified in finitely many steps)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, D)) + 0.5
    beta = np.array([1.5, -2.0, 0.0, 0.8, 0.0, 0.0])
    return x, (x @ beta + 0.7 + 0.1 * rng.standard_normal(N))[:, None]


def _contraction(x: np.ndarray) -> float:
    """``q``: the proximal gradient map of the lasso contracts distances by ``q`` (2-norm, over
    kernel and bias). The smooth part's Hessian is ``AᵀA/n``, ``A = [x, 1]``, eigenvalues in
    ``[μ, L]``; the gradient step contracts by ``max(|1 − lr·μ|, |1 − lr·L|)`` and soft
    thresholding (the identity on the bias) is nonexpansive."""
    a = np.hstack([x, np.ones((len(x), 1))])
    eig = np.linalg.eigvalsh(a.T @ a / len(x))
    q = max(abs(1 - LR * eig[0]), abs(1 - LR * eig[-1]))
    assert q < 1
    return q


def _distance_bound(params: dict[str, np.ndarray], plan, x, y, q: float) -> float:
    """``‖w − w*‖₂ ≤ (‖w − T(w)‖₂ + ε)/(1 − q)`` for a contraction ``T`` with fixed point ``w*``,
    ``T`` one reference proximal step and ``ε`` the bound on that step's own rounding (the SGD
    trajectory tolerance of one step, normwise, over the √(entries) of the 2-norm)."""
    after = REFERENCE.proximal_train(LINEAR, plan, params, x, y, lr=LR, steps=1)
    moved = np.sqrt(sum(np.sum((after[k] - params[k]) ** 2) for k in params))
    size = sum(v.size for v in params.values())
    scale = max(float(np.max(np.abs(v))) for v in params.values())
    eps = Tolerance("float64", network_chain(LINEAR.sizes, N), steps=1).value * scale
    return (moved + eps * np.sqrt(size)) / (1 - q)


@pytest.mark.parametrize("name", backend_params())
def test_lasso_matches_sklearn_with_exact_zeros(name):
    """After ``STEPS`` proximal steps the kernel has exactly scikit-learn's zeros, and kernel and
    bias are within ``bound(ours) + bound(sklearn)`` of scikit-learn's (both bounds from
    :func:`_distance_bound`, so neither solver's accuracy is assumed)."""
    linear_model = pytest.importorskip("sklearn.linear_model")
    x, y = _lasso_data()
    plan = LASSO.resolve(LINEAR.params())
    start = {"dense_0.kernel": np.zeros((D, 1)), "dense_0.bias": np.zeros(1)}
    ours = _run(name, LINEAR, plan, start, x, y, lr=LR, steps=STEPS)
    fit = linear_model.Lasso(alpha=ALPHA, tol=1e-14, max_iter=100_000).fit(x, y[:, 0])
    theirs = {"dense_0.kernel": fit.coef_[:, None], "dense_0.bias": np.array([fit.intercept_])}
    q = _contraction(x)
    bound = _distance_bound(ours, plan, x, y, q) + _distance_bound(theirs, plan, x, y, q)
    assert bound < 1e-9  # the derived bound is itself tight: a loose one would hide nothing
    zeros = theirs["dense_0.kernel"] == 0
    assert 0 < np.count_nonzero(zeros) < D  # some zeros, some not
    np.testing.assert_array_equal(ours["dense_0.kernel"] == 0, zeros)
    for k in theirs:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=0, atol=bound)


# -- group lasso ---------------------------------------------------------------------------------
WIDE = ModelSpec((4, 3), None, "half_mse")


def _group_data(zero_feature: bool) -> tuple[np.ndarray, np.ndarray]:
    """Three targets from features 0 and 1; features 2 and 3 are noise (or, ``zero_feature``,
    feature 3 is 0 in every sample)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 4))
    if zero_feature:
        x[:, 3] = 0.0
    w = np.array([[1.0, -0.5, 2.0], [0.7, 1.2, -1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    return x, x @ w + 0.05 * rng.standard_normal((64, 3))


def _group_plan(scale_by_size: bool):
    term = GroupLasso(0.2, convention="sum", axis=0, scale_by_size=scale_by_size)
    return Spec(penalties=(Rule(term),)).resolve(WIDE.params())


@pytest.mark.parametrize("scale_by_size", [False, True])
@pytest.mark.parametrize("name", backend_params())
def test_group_shrink_zeroes_whole_groups(name, scale_by_size):
    x, y = _group_data(zero_feature=False)
    rng = np.random.default_rng(4)
    start = {"dense_0.kernel": rng.uniform(-0.5, 0.5, (4, 3)), "dense_0.bias": np.zeros(3)}
    final = _run(name, WIDE, _group_plan(scale_by_size), start, x, y, lr=0.1, steps=200)
    kernel = final["dense_0.kernel"]
    assert np.all(kernel[2:] == 0)  # the noise features' rows, every entry
    assert np.all(kernel[:2] != 0)  # the relevant rows keep every entry


@pytest.mark.parametrize("scale_by_size", [False, True])
@pytest.mark.parametrize("name", backend_params())
def test_all_zero_group_stays_zero_without_nan(name, scale_by_size):
    """Feature 3 is 0 everywhere and its row starts at 0: its gradient is 0, so the shrink
    meets an all-zero group at every step (``‖p_g‖ = 0``)."""
    x, y = _group_data(zero_feature=True)
    start = {"dense_0.kernel": np.zeros((4, 3)), "dense_0.bias": np.zeros(3)}
    final = _run(name, WIDE, _group_plan(scale_by_size), start, x, y, lr=0.1, steps=5)
    assert all(np.all(np.isfinite(v)) for v in final.values())
    assert np.all(final["dense_0.kernel"][3] == 0)
    assert np.any(final["dense_0.kernel"][:2] != 0)
