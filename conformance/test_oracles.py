"""Independent oracles: closed-form ridge, scikit-learn's Ridge, and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from regcore import L2, ModelSpec, Network, Optimizer, Rule, Spec, convert
from regcore_conformance import reference
from regcore_conformance.scenarios import SCENARIOS
from regcore_conformance.tolerance import UNIT_ROUNDOFF, Bound, gamma, model_chain

RIDGE_COEF = {"linreg_half_mse": L2(1.0, convention="batch_mean", batch_size=100),
              "linreg_mse": L2(0.01, convention="sum"),  # Keras L2(0.01)
              "linreg_mse_glorot": L2(0.02, convention="half"),
              "linreg_multi": L2(0.05, convention="sum")}


def _ridge_problem(name: str):
    """Design matrix with a ones column, targets, the data-loss weight c (loss = c·Σr²) and the
    penalty's sum-form coefficient s (penalty = s·Σw², intercept unpenalized)."""
    scenario = SCENARIOS[name]
    x, y = scenario.data()
    m = x.shape[0]
    c = 1 / m if scenario.model.loss == "mse" else 1 / (2 * m)
    s = RIDGE_COEF[name].scaled()["coef"]
    return scenario, x, y, c, s


def _closed_form(x, y, alpha):
    xm, ym = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - xm, y - ym
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)
    return w, ym - xm @ w


@pytest.mark.regcore_needs("Harness")
def test_ridge_oracles(backend, device, dtype, linear_scenario, checker):
    """Gradient descent to convergence equals the closed-form ridge solution and scikit-learn's
    ``Ridge(alpha)`` with ``alpha`` from :func:`regcore.convert` (so the conversion is checked).

    Tolerance: with step 1/L on this strongly convex quadratic (Hessian eigenvalues μ..L), after
    T steps ``‖θ_T − θ*‖ ≤ (1 − μ/L)^T ‖θ_0 − θ*‖``; rounding perturbs the computed gradient by at
    most ``γ_n·M`` (M: the gradient evaluated on absolute values at θ*), which moves the fixed point
    by at most ``γ_n·M/μ``. The check allows twice the sum (inputs rounded to the dtype once).
    """
    scenario, x, y, c, s = _ridge_problem(linear_scenario)
    m, d = x.shape
    alpha = s / c
    w_star, b_star = _closed_form(x, y, alpha)
    theta_star = np.concatenate([w_star.ravel(), b_star.ravel()])

    a = np.hstack([x, np.ones((m, 1))])
    hessian = 2 * c * a.T @ a + 2 * s * np.diag([1.0] * d + [0.0])
    eig = np.linalg.eigvalsh(hessian)
    mu, big_l = eig[0], eig[-1]
    params0 = scenario.initial_params()
    theta0 = np.concatenate([params0["dense_0.kernel"].ravel(), params0["dense_0.bias"].ravel()])
    start = np.max(np.abs(theta0 - theta_star))
    rate = 1 - mu / big_l
    target = UNIT_ROUNDOFF["float64"] * np.max(np.abs(theta_star))
    steps = min(20_000, math.ceil(math.log(target / start) / math.log(rate)))

    spec = Spec(penalties=(Rule(RIDGE_COEF[linear_scenario]),))
    plan = spec.resolve(scenario.model.params())
    final = backend.train(
        scenario.model, plan,
        {k: backend.asarray(v, dtype=dtype, device=device) for k, v in params0.items()},
        backend.asarray(x, dtype=dtype, device=device),
        backend.asarray(y, dtype=dtype, device=device),
        optimizer=Optimizer("sgd", float(1 / big_l)), steps=steps,
    )
    got = np.concatenate([np.asarray(backend.to_numpy(final["dense_0.kernel"])).ravel(),
                          np.asarray(backend.to_numpy(final["dense_0.bias"])).ravel()])

    n = m + d + 1
    magnitude = np.max(2 * c * np.abs(a).T @ (np.abs(a) @ np.abs(theta_star) + np.abs(y).ravel())
                       + 2 * s * np.abs(theta_star))
    scale = float(np.max(np.abs(theta_star)))
    bound = 2 * (rate**steps * start + gamma(n, UNIT_ROUNDOFF[dtype]) * magnitude / mu) / scale
    tol = Bound(bound, f"2((1-mu/L)^T |θ0-θ*| + gamma({n}, u_{dtype}) M/mu)/|θ*|, T={steps}")
    check = checker(device=device, dtype=dtype, scenario=linear_scenario, case="ridge_oracle")
    check.compare("closed_form_ridge", got, theta_star, tol)

    sk_term = convert(RIDGE_COEF[linear_scenario], "sklearn_ridge", n_samples=m,
                      data_loss=scenario.model.loss)
    from sklearn.linear_model import Ridge  # here: importing it costs every run a second

    sk = Ridge(alpha=sk_term.coef, fit_intercept=True, solver="cholesky").fit(x, y.ravel())
    sk_theta = np.concatenate([np.ravel(sk.coef_), np.ravel(sk.intercept_)])
    check.compare("sklearn_ridge", got, sk_theta, tol)
    check.verify()


def _finite_difference_check(model: ModelSpec | Network, plan, params, x, y):
    """Central differences D(h) with h = u^(1/3)·max(1, |θ_i|) against the analytic gradient.

    Per entry the allowed gap is ``2·(|D(h) − D(2h)|/3 + γ_n·|f|/h)``: the first term is
    Richardson's estimate of the O(h²) truncation error, the second bounds the rounding error of
    two loss evaluations divided by 2h. Returns the largest gap/allowance ratio (pass: <= 1).
    """
    ref = reference.REFERENCE
    f0, grads = ref.loss_and_grads(model, plan, params, x, y)
    u = UNIT_ROUNDOFF["float64"]
    n = model_chain(model, x.shape[0])
    worst = 0.0
    for name, value in params.items():
        flat = value.reshape(-1)
        for i in range(flat.size):
            h = u ** (1 / 3) * max(1.0, abs(flat[i]))

            def diff(step, flat=flat, i=i):
                keep = flat[i]
                flat[i] = keep + step
                up = reference.loss_value(model, plan, params, x, y)
                flat[i] = keep - step
                down = reference.loss_value(model, plan, params, x, y)
                flat[i] = keep
                return (up - down) / (2 * step)

            d1, d2 = diff(h), diff(2 * h)
            allowed = 2 * (abs(d1 - d2) / 3 + gamma(n, u) * abs(f0) / h)
            gap = abs(d1 - grads[name].reshape(-1)[i])
            worst = max(worst, gap / allowed if allowed > 0 else (0.0 if gap == 0 else np.inf))
    return worst


def test_reference_finite_differences(backend, scenario_case, checker):
    """The reference's hand-derived gradients agree with central finite differences.

    The reference is the NumPy backend at float64, whatever backend the suite runs on, so this
    runs once, in the NumPy backend's run; another backend's run would repeat the same numbers.
    """
    if backend.name != "numpy":
        pytest.skip(f"{backend.name}: the reference's own finite-difference check runs in the "
                    "numpy backend's run (it does not depend on the backend under test)")
    name, spec = scenario_case
    scenario = SCENARIOS[name]
    x, y = scenario.data()
    worst = _finite_difference_check(scenario.model, reference.scenario_plan(name, spec),
                                     scenario.initial_params(), x, y)
    check = checker(backend="reference", device="cpu", dtype="float64", scenario=name, case=spec)
    check.compare("reference_finite_differences", np.float64(worst), 0.0,
                  Bound(1.0, "per entry |FD-g| <= 2(|D(h)-D(2h)|/3 + gamma_n |f|/h)"),
                  scale_floor=1.0)
    check.verify()
