"""Independent oracles for the VALUES of the NumPy reference penalties: the README conventions
table, a loop over groups, a literal NumPy transcription of Keras 3's ``OrthogonalRegularizer``
and scikit-learn's Lasso/ElasticNet optima; plus central finite differences of every gradient and
the subgradient 0 at exact zeros. (The conformance suite only compares backends with the
reference and the reference's gradients with its own values.)
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from regcore import L1, L2, ElasticNet, GroupLasso, Orthogonal
from regcore_adapters.numpy.penalties import KERNELS

EPS = np.finfo(np.float64).eps  # = 2u, u the unit roundoff of float64
# Non-exact comparisons: each side sums at most 24 positive terms, possibly in another order
# (relative error <= gamma(23) ~ 23u), then applies at most 4 more roundings (coefficient,
# products, sqrt), so |a - b| <= 2 * 27u * |b| < 32 * EPS * |b|.
RTOL = 32 * EPS


def ref(term, w):
    value, grad = KERNELS[type(term)](term, w)
    return float(value), grad


def sample(shape, seed, zeros=()):
    w = np.random.default_rng(seed).standard_normal(shape)
    for index in zeros:
        w[index] = 0.0
    return w


def _sq(w):
    return np.sum(w * w)


def _abs(w):
    return np.sum(np.abs(w))


# --- L2 / L1 / ElasticNet in every convention, from the README table --------------------------
# name: (term, value(w), grad(w), exact). "exact": every factor is the coefficient times a power
# of two, and scaling by a power of two commutes with rounding, so the reference must agree bit
# for bit; the others divide by m or n or use 1 - rho, and are compared with RTOL.
CONVENTION_CASES = {
    "l2_sum_keras": (L2(0.3, convention="sum"),
                     lambda w: 0.3 * _sq(w), lambda w: 2 * 0.3 * w, True),
    "l2_half": (L2(0.3, convention="half"), lambda w: 0.3 / 2 * _sq(w), lambda w: 0.3 * w, True),
    # torch SGD weight_decay=wd adds exactly wd * w to the gradient
    "l2_torch_weight_decay": (L2(0.02, convention="torch_weight_decay"),
                              lambda w: 0.02 / 2 * _sq(w), lambda w: 0.02 * w, True),
    "l2_batch_mean": (L2(1.5, convention="batch_mean", batch_size=30),
                      lambda w: 1.5 * _sq(w) / (2 * 30), lambda w: 1.5 * w / 30, False),
    "l2_sklearn_ridge_mse": (L2(1.5, convention="sklearn_ridge", n_samples=50, data_loss="mse"),
                             lambda w: 1.5 * _sq(w) / 50, lambda w: 2 * 1.5 * w / 50, False),
    "l2_sklearn_ridge_half_mse": (
        L2(1.5, convention="sklearn_ridge", n_samples=50, data_loss="half_mse"),
        lambda w: 1.5 * _sq(w) / (2 * 50), lambda w: 1.5 * w / 50, False),
    "l1_sum_keras": (L1(0.2, convention="sum"),
                     lambda w: 0.2 * _abs(w), lambda w: 0.2 * np.sign(w), True),
    "l1_sklearn_lasso_mse": (L1(0.2, convention="sklearn_lasso", data_loss="mse"),
                             lambda w: 2 * 0.2 * _abs(w), lambda w: 2 * 0.2 * np.sign(w), True),
    "l1_sklearn_lasso_half_mse": (L1(0.2, convention="sklearn_lasso", data_loss="half_mse"),
                                  lambda w: 0.2 * _abs(w), lambda w: 0.2 * np.sign(w), True),
    "elastic_net_sum_keras": (ElasticNet(0.2, 0.1, convention="sum"),
                              lambda w: 0.2 * _abs(w) + 0.1 * _sq(w),
                              lambda w: 0.2 * np.sign(w) + 2 * 0.1 * w, True),
    "elastic_net_half": (ElasticNet(0.2, 0.1, convention="half"),
                         lambda w: 0.2 * _abs(w) + 0.1 / 2 * _sq(w),
                         lambda w: 0.2 * np.sign(w) + 0.1 * w, True),
    "elastic_net_sklearn_mse": (ElasticNet.from_sklearn(0.2, 0.3, data_loss="mse"),
                                lambda w: 2 * 0.2 * 0.3 * _abs(w) + 0.2 * (1 - 0.3) * _sq(w),
                                lambda w: 2 * 0.2 * 0.3 * np.sign(w) + 2 * 0.2 * (1 - 0.3) * w,
                                False),
    "elastic_net_sklearn_half_mse": (ElasticNet.from_sklearn(0.2, 0.7, data_loss="half_mse"),
                                     lambda w: 0.2 * 0.7 * _abs(w) + 0.2 * (1 - 0.7) / 2 * _sq(w),
                                     lambda w: 0.2 * 0.7 * np.sign(w) + 0.2 * (1 - 0.7) * w,
                                     False),
}


@pytest.mark.parametrize("name", CONVENTION_CASES)
def test_convention_formulas(name):
    term, value_of, grad_of, exact = CONVENTION_CASES[name]
    w = sample((5, 4), 11, zeros=((0, 1), (3, 2)))
    value, grad = ref(term, w)
    assert grad.shape == w.shape and grad.dtype == w.dtype
    if exact:
        assert value == value_of(w)
        np.testing.assert_array_equal(grad, grad_of(w))
    else:
        np.testing.assert_allclose(value, value_of(w), rtol=RTOL, atol=0)
        np.testing.assert_allclose(grad, grad_of(w), rtol=RTOL, atol=0)


@pytest.mark.parametrize("term", [L1(0.2, convention="sum"),
                                  ElasticNet(0.2, 0.1, convention="half"),
                                  ElasticNet.from_sklearn(0.2, 0.7, data_loss="mse")],
                         ids=repr)
def test_l1_subgradient_is_zero_at_zero(term):
    w = sample((5, 4), 12, zeros=((1, 2), (4, slice(None))))
    grad = ref(term, w)[1]
    assert np.all(grad[w == 0] == 0) and np.all(grad[w != 0] != 0)


# --- GroupLasso: a loop over groups ------------------------------------------------------------
def group_lasso_oracle(coef, axis, scale_by_size, w):
    value, grad = 0.0, np.zeros_like(w)
    for g in range(w.shape[axis]):
        index = tuple(g if a == axis % w.ndim else slice(None) for a in range(w.ndim))
        group = w[index]
        c = coef * (np.sqrt(group.size) if scale_by_size else 1.0)
        norm = np.linalg.norm(group)
        value += c * norm
        if norm > 0:
            grad[index] = c * group / norm
    return value, grad


_ALL = slice(None)
GROUP_CASES = {  # name: (shape, axis, scale_by_size, the all-zero group)
    "rows": ((5, 4), 0, False, (2, _ALL)),
    "columns_sqrt": ((5, 4), 1, True, (_ALL, 1)),
    "last_axis_tensor_sqrt": ((3, 4, 2), -1, True, (_ALL, _ALL, 0)),
    "middle_axis_tensor": ((3, 4, 2), 1, False, (_ALL, 2, _ALL)),
    "vector_is_l1": ((6,), 0, False, (1,)),
}


@pytest.mark.parametrize("name", GROUP_CASES)
def test_group_lasso_matches_loop_over_groups(name):
    shape, axis, scale, zero_group = GROUP_CASES[name]
    w = sample(shape, 13, zeros=(zero_group,))
    value, grad = ref(GroupLasso(0.4, convention="sum", axis=axis, scale_by_size=scale), w)
    expected_value, expected_grad = group_lasso_oracle(0.4, axis, scale, w)
    np.testing.assert_allclose(value, expected_value, rtol=RTOL, atol=0)
    np.testing.assert_allclose(grad, expected_grad, rtol=RTOL, atol=0)
    assert np.all(grad[zero_group] == 0) and np.all(np.isfinite(grad))  # all-zero group: 0


# --- Orthogonal: Keras 3's OrthogonalRegularizer.__call__, transcribed --------------------------
def keras_orthogonal(factor, mode, x):
    """keras/src/regularizers/regularizers.py, with ops.nn.normalize's order-2 branch
    ``x * minimum(rsqrt(sum(x**2)), 1 / epsilon)``, epsilon = backend.epsilon() = 1e-7."""
    axis = 1 if mode == "rows" else 0
    with np.errstate(divide="ignore"):  # rsqrt(0) = inf, then clamped to 1/epsilon
        inv = np.minimum(1 / np.sqrt(np.sum(x * x, axis=axis, keepdims=True)), 1 / 1e-7)
    inputs = x * inv
    if mode == "rows":
        product, size = inputs @ inputs.T, inputs.shape[0]
    else:
        product, size = inputs.T @ inputs, inputs.shape[1]
    product_no_diagonal = product * (1.0 - np.eye(size))
    num_pairs = size * (size - 1.0) / 2.0
    return factor * 0.5 * np.sum(np.abs(product_no_diagonal)) / num_pairs


@pytest.mark.parametrize("special_norm", [None, 0.0, 1e-5, 1e-8],
                         ids=["random", "zero", "norm_1e-5", "norm_1e-8_clamped"])
@pytest.mark.parametrize("mode", ["rows", "columns"])
def test_orthogonal_matches_keras(mode, special_norm):
    w = sample((5, 4) if mode == "rows" else (4, 5), 14)
    vectors = w if mode == "rows" else w.T  # a view: writing a row of it writes w
    if special_norm is not None:
        direction = np.random.default_rng(15).standard_normal(vectors.shape[1])
        vectors[2] = special_norm * direction / np.linalg.norm(direction)
    value, grad = ref(Orthogonal(0.5, mode, convention="sum"), w)
    expected = keras_orthogonal(0.5, mode, w)
    # |G_ij| <= 1, so the value is <= factor and both sides' rounding errors are absolute: each
    # G_ij is a dot of <= 5 normalized entries (<= ~11u), summed over 20 entries (<= 20u).
    np.testing.assert_allclose(value, expected, rtol=0, atol=0.5 * RTOL)
    assert np.all(np.isfinite(grad))
    if special_norm == 1e-8:  # the clamp is live: plain cosines give another value
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        cosines = np.abs(unit @ unit.T)[~np.eye(5, dtype=bool)]
        assert abs(0.5 * np.mean(cosines) - expected) > 1e-3


# --- finite differences of the reference gradient, away from kinks ------------------------------
FD_TERMS = {
    "l2_batch_mean": (L2(1.5, convention="batch_mean", batch_size=30), (5, 4)),
    "l1_sklearn_lasso": (L1(0.2, convention="sklearn_lasso", data_loss="mse"), (5, 4)),
    "elastic_net_sklearn": (ElasticNet.from_sklearn(0.2, 0.3, data_loss="half_mse"), (5, 4)),
    "group_lasso_sqrt_tensor": (GroupLasso(0.4, convention="sum", axis=1, scale_by_size=True),
                                (3, 4, 2)),
    "orthogonal_rows": (Orthogonal(0.5, "rows", convention="sum"), (5, 4)),
    "orthogonal_columns": (Orthogonal(0.5, "columns", convention="sum"), (4, 5)),
}
H = 1e-5
# Central differences: truncation <= H**2 / 6 * M3 <= 2e-8 for third derivatives M3 <= 1e3 (all
# |w_i|, group and row norms >= 0.5 here), rounding <= 2 * gamma(24) * |f| / (2H) <= 4e-9 for
# |f| <= 13: the sum stays below 1e-7.
FD_ATOL = 1e-7


@pytest.mark.parametrize("name", FD_TERMS)
def test_gradient_matches_central_differences(name):
    term, shape = FD_TERMS[name]
    z = sample(shape, 16)
    w = np.sign(z) * (0.5 + np.abs(z))  # |w_i| >= 0.5: no L1 kink within H
    if isinstance(term, Orthogonal):  # no |G_ij| kink within H either
        v = w / np.linalg.norm(w, axis=1 if term.mode == "rows" else 0, keepdims=True)
        gram = v @ v.T if term.mode == "rows" else v.T @ v
        assert np.min(np.abs(gram[~np.eye(len(gram), dtype=bool)])) > 1e-3
    grad = ref(term, w)[1]
    fd = np.empty_like(w)
    for index in np.ndindex(shape):
        step = np.zeros_like(w)
        step[index] = H
        fd[index] = (ref(term, w + step)[0] - ref(term, w - step)[0]) / (2 * H)
    np.testing.assert_allclose(grad, fd, rtol=0, atol=FD_ATOL)


# --- scikit-learn optima: the sklearn conventions with data_loss="mse" ---------------------------
@pytest.mark.parametrize("kind", ["Lasso", "ElasticNet"])
def test_sklearn_solution_is_optimal_for_reference_objective(kind):
    linear_model = pytest.importorskip("sklearn.linear_model")
    exceptions = pytest.importorskip("sklearn.exceptions")
    rng = np.random.default_rng(17)
    n, alpha, ratio, tol = 50, 0.1, 0.6, 1e-12
    X = rng.standard_normal((n, 5))
    y = X @ np.array([1.5, 0.0, -2.0, 0.0, 0.3]) + 0.1 * rng.standard_normal(n)
    options = dict(fit_intercept=False, tol=tol, max_iter=100000)
    if kind == "Lasso":
        model = linear_model.Lasso(alpha, **options)
        term, l1, l2 = L1(alpha, convention="sklearn_lasso", data_loss="mse"), alpha, 0.0
    else:
        model = linear_model.ElasticNet(alpha, l1_ratio=ratio, **options)
        term = ElasticNet.from_sklearn(alpha, ratio, data_loss="mse")
        l1, l2 = alpha * ratio, alpha * (1 - ratio)
    with warnings.catch_warnings():
        warnings.simplefilter("error", exceptions.ConvergenceWarning)
        w = model.fit(X, y).coef_
    # sklearn stops at a duality gap <= tol * |y|^2 / n of its objective |r|^2/(2n) + l1|w|_1 +
    # l2/2 |w|^2; F = mean(r^2) + P(w) is twice that, so F(w) - min F <= 2 * gap. F's smooth part
    # has Hessian (2/n) X'X + 2 l2 I with eigenvalues in [mu, L], so |w - w*| <= r = sqrt(4 gap /
    # mu) and its gradient is off by <= L r; plus the rounding of X'r (gamma(n) |X|'|r|).
    gap = tol * (y @ y) / n
    assert model.dual_gap_ <= gap
    eigenvalues = np.linalg.eigvalsh(2 / n * X.T @ X) + 2 * l2
    r = np.sqrt(4 * gap / eigenvalues[0])
    resid = y - X @ w
    slack = eigenvalues[-1] * r + 2 * n * EPS * (np.abs(X).T @ np.abs(resid)) * 2 / n
    value, grad = ref(term, w)
    g = -2 / n * X.T @ resid + grad  # reference subgradient of F; sign(0) = 0 at zeros
    nonzero = w != 0
    assert nonzero.any() and not nonzero.all() and np.all(np.abs(w[nonzero]) > r)
    assert np.all(np.abs(g[nonzero]) <= slack[nonzero])
    assert np.all(np.abs(g[~nonzero]) <= 2 * l1 + slack[~nonzero])

    # the reference VALUE: no coordinate step lowers F by more than the gap allows
    def objective(v):
        return np.mean((y - X @ v) ** 2) + ref(term, v)[0]

    f = objective(w)
    for i in range(len(w)):
        for step in (-1e-4, 1e-4):
            v = w.copy()
            v[i] += step
            assert f <= objective(v) + 2 * gap + 4 * n * EPS * f
