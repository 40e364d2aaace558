"""The k-fold path against scikit-learn's RidgeCV, LassoCV and ElasticNetCV on the same folds.

The spec is written in scikit-learn's own convention (``sklearn_ridge`` with the training-fold
size, ``sklearn_lasso``, ``sklearn_elasticnet``, all against ``mse``), so the path's grid values
*are* scikit-learn's ``alphas`` (for the elastic net, ``alpha·l1_ratio``). The folds are the
path's own (:func:`regcore_apps.path.kfold`), handed to scikit-learn as ``cv=``.

Tolerance, derived (both solutions approximate the same strongly convex minimizer ``w*``):

* ours: the path records each fit's last step ``‖G‖ = ‖p_K − p_{K−1}‖/lr``; proximal gradient
  with step ``1/L`` gives ``‖p_K − w*‖ ≤ 2‖G‖/μ`` with ``μ = 2·λ_min(ZᵀZ/m)`` the data loss's
  strong convexity (``Z = [x, 1]``, the training fold; the penalty only adds convexity);
* scikit-learn's coordinate descent stops at a duality gap ``≤ tol·‖y_c‖²`` on
  ``½‖y − Xw‖² + ...`` (its ``enet_coordinate_descent``; a ``ConvergenceWarning`` is an
  error here), so ``‖w_s − w*‖ ≤ √(2·tol·‖y_c‖²/(m·μ_s))`` with ``μ_s = λ_min(X_cᵀX_c/m)``;
  Ridge solves exactly (Cholesky): its distance is float64 rounding, covered by the floor;
* a validation MSE is quadratic, so ``|v(w) − v(w_s)| ≤ ‖∇v(w_s)‖·δ + λ_max(2Z_vᵀZ_v/m_v)·δ²/2``
  with ``δ`` the two distances added, bounded with the largest ``‖∇v‖`` over the grid;
* plus float64 rounding of the losses themselves, ``2·γ(m·d + ...)`` relative
  (:class:`regcore_conformance.tolerance.Tolerance`).

The choice must be the same grid value, and the test checks first that the best mean validation
loss beats the runner-up by more than the tolerance, so the comparison can tell them apart.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from regcore import L1, L2, ElasticNet, Rule, Spec, convert, load_backend
from regcore_apps.path import Settings, kfold, log_grid, run
from regcore_apps.path.data import problem
from regcore_conformance.tolerance import Tolerance, network_chain

sklearn = pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import ElasticNetCV, LassoCV, RidgeCV  # noqa: E402

K, SEED, STEPS, TOL_CD = 5, 0, 300, 1e-13
RATIO = 0.6  # ElasticNetCV's l1_ratio


@pytest.fixture(scope="module")
def data():
    prob = problem("synthetic")
    return prob, kfold(prob.x.shape[0], K, SEED)


def _distance(prob, rows, last_step, sklearn_gap: bool):
    """Bound on ‖ours − scikit-learn's‖ for fits on ``rows`` (see the module docstring)."""
    z = np.hstack([prob.x[rows], np.ones((len(rows), 1))])
    ours = 2 * np.asarray(last_step) / (2 * np.linalg.eigvalsh(z.T @ z / len(rows))[0])
    if not sklearn_gap:
        return ours
    xc = prob.x[rows] - prob.x[rows].mean(axis=0)
    yc = prob.y[rows, 0] - prob.y[rows, 0].mean()
    mu_s = np.linalg.eigvalsh(xc.T @ xc / len(rows))[0]
    return ours + np.sqrt(2 * TOL_CD * (yc @ yc) / (len(rows) * mu_s))


def _bounds(prob, folds, result, sklearn_gap: bool) -> np.ndarray:
    """Per fold and grid value: the derived bound on |our validation MSE − scikit-learn's|."""
    out = np.zeros((K, len(result["grid"])))
    n_terms = network_chain(prob.model.sizes, prob.x.shape[0])
    for f, (tr, va) in enumerate(folds):
        delta = _distance(prob, tr, result["last_step"][f], sklearn_gap)
        z_va = np.hstack([prob.x[va], np.ones((len(va), 1))])
        curvature = np.linalg.eigvalsh(2 * z_va.T @ z_va / len(va))[-1]
        # ‖∇v‖ at any solution on the path: 2/m_v·‖Z_vᵀ(Z_v w − y_v)‖ ≤ 2/m_v·‖Z_v‖·‖residual‖
        residual = np.sqrt(np.asarray(result["val_loss"][f]) * len(va))
        grad = 2 / len(va) * np.linalg.norm(z_va, 2) * residual
        rounding = Tolerance("float64", n_terms).value * np.asarray(result["val_loss"][f])
        out[f] = grad * delta + curvature * delta**2 / 2 + rounding
    return out


def _path(spec, grid, backend="numpy"):
    prob = problem("synthetic")
    return run(load_backend(backend), prob, spec, grid, Settings(folds=K, seed=SEED,
                                                                 steps=STEPS))


def _fit_quietly(estimator, x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return estimator.fit(x, y)


def _margin_ok(mean: np.ndarray, bound: float) -> None:
    ordered = np.sort(mean)
    assert ordered[1] - ordered[0] > 2 * bound, (
        "the best and second-best grid values are within the tolerance; the comparison could "
        "not tell them apart (change the grid)")


def test_ridge_cv_same_folds(data):
    prob, folds = data
    m = len(folds[0][0])
    assert all(len(tr) == m for tr, _ in folds), "RidgeCV's alpha needs equal training folds"
    spec = Spec(penalties=(Rule(L2(1.0, convention="sklearn_ridge", n_samples=m,
                                   data_loss="mse")),))
    alphas = log_grid(0.1, 1000.0, 9)
    result = _path(spec, alphas)
    bound = _bounds(prob, folds, result, sklearn_gap=False)
    mean_bound = bound.mean(axis=0)
    _margin_ok(np.asarray(result["mean_val"]), mean_bound.max())
    cv = _fit_quietly(RidgeCV(alphas=alphas, cv=folds, scoring="neg_mean_squared_error"),
                      prob.x, prob.y[:, 0])
    assert cv.alpha_ == result["choice"]["min"]["value"]
    i = result["choice"]["min"]["index"]
    assert abs(-cv.best_score_ - result["mean_val"][i]) <= mean_bound[i]


@pytest.mark.parametrize("kind", ["lasso", "elastic_net"])
def test_lasso_and_elastic_net_cv_same_folds(data, kind):
    prob, folds = data
    if kind == "lasso":
        spec = Spec(penalties=(Rule(L1(0.1, convention="sklearn_lasso", data_loss="mse")),))
        grid = log_grid(0.002, 0.5, 9)  # alphas
        alphas = grid
        estimator = LassoCV(alphas=alphas, cv=folds, tol=TOL_CD, max_iter=1_000_000)
    else:
        spec = Spec(penalties=(Rule(ElasticNet.from_sklearn(0.1, RATIO, data_loss="mse")),))
        grid = log_grid(0.002, 0.5, 9)  # the axis is l1 = alpha·l1_ratio
        alphas = tuple(v / RATIO for v in grid)
        estimator = ElasticNetCV(l1_ratio=RATIO, alphas=alphas, cv=folds, tol=TOL_CD,
                                 max_iter=1_000_000)
    result = _path(spec, grid)
    cv = _fit_quietly(estimator, prob.x, prob.y[:, 0])
    assert np.allclose(cv.alphas_, alphas, rtol=1e-15)  # same order: largest first
    bound = _bounds(prob, folds, result, sklearn_gap=True)
    ours = np.asarray(result["val_loss"])  # (folds, grid)
    theirs = cv.mse_path_.T  # (folds, grid)
    assert np.all(np.abs(ours - theirs) <= bound), np.max(np.abs(ours - theirs) / bound)
    _margin_ok(np.asarray(result["mean_val"]), bound.mean(axis=0).max())
    assert result["choice"]["min"]["index"] == int(np.argmin(cv.mse_path_.mean(axis=1)))
    assert cv.alpha_ == alphas[result["choice"]["min"]["index"]]
    # The fit on all the data at the chosen value: scikit-learn's refit, coefficient by
    # coefficient, and the same exact zeros.
    i = result["choice"]["min"]["index"]
    everything = np.arange(prob.x.shape[0])
    delta = _distance(prob, everything, result["last_step"][K][i], sklearn_gap=True)
    ours_w = np.asarray(result["final"]["dense_0.kernel"])[:, 0]
    assert np.linalg.norm(ours_w - cv.coef_) <= delta
    np.testing.assert_array_equal(ours_w == 0, cv.coef_ == 0)


@pytest.mark.parametrize("kind", ["ridge", "lasso"])
def test_a_path_in_keras_terms_converts_to_scikit_learns_choice(data, kind):
    """The spec in the ``sum`` convention (Keras ``L2``/``L1``), scikit-learn's alphas from
    :func:`regcore.convert`: scikit-learn chooses the converted value of the path's choice."""
    prob, folds = data
    m = len(folds[0][0])
    if kind == "ridge":
        spec, grid = Spec(penalties=(Rule(L2(0.01, convention="sum")),)), log_grid(1e-3, 10, 9)
        target = {"n_samples": m, "data_loss": "mse"}
        alphas = [convert(L2(v, convention="sum"), "sklearn_ridge", **target).coef for v in grid]
        estimator = RidgeCV(alphas=alphas, cv=folds, scoring="neg_mean_squared_error")
    else:
        spec, grid = Spec(penalties=(Rule(L1(0.01, convention="sum")),)), log_grid(4e-3, 1, 9)
        alphas = [convert(L1(v, convention="sum"), "sklearn_lasso", data_loss="mse").coef
                  for v in grid]
        estimator = LassoCV(alphas=alphas, cv=folds, tol=TOL_CD, max_iter=1_000_000)
    result = _path(spec, grid)
    _margin_ok(np.asarray(result["mean_val"]),
               _bounds(prob, folds, result, sklearn_gap=kind == "lasso").mean(axis=0).max())
    cv = _fit_quietly(estimator, prob.x, prob.y[:, 0])
    assert cv.alpha_ == alphas[result["choice"]["min"]["index"]]
    assert alphas == sorted(alphas, reverse=True)  # exact factors: the order is kept
