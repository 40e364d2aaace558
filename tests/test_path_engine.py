"""regcore_apps.path's pieces: folds, the grid axis, the selection rules, and the engine's warm
starts, checked on numbers worked out here (the NumPy backend)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from regcore import (
    L1,
    L2,
    DecoupledWeightDecay,
    ElasticNet,
    GroupLasso,
    Rule,
    Select,
    Spec,
    SpecError,
    load_backend,
)
from regcore_apps.path import (
    Settings,
    at,
    axis,
    checked,
    choose,
    default_grid,
    kfold,
    log_grid,
    run,
    step_size,
    summarize,
)
from regcore_apps.path.data import problem

# -- folds ----------------------------------------------------------------------------------------


def test_folds_partition_the_samples_with_sklearn_sizes():
    folds = kfold(23, 5, seed=3)
    assert [len(va) for _, va in folds] == [5, 5, 5, 4, 4]  # KFold's sizes
    assert np.array_equal(np.sort(np.concatenate([va for _, va in folds])), np.arange(23))
    for tr, va in folds:
        assert np.intersect1d(tr, va).size == 0 and len(tr) + len(va) == 23


def test_folds_come_from_the_seed_alone():
    a, b, c = kfold(50, 5, 1), kfold(50, 5, 1), kfold(50, 5, 2)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x[1], y[1]) for x, y in zip(a, c, strict=True))
    order = np.random.default_rng(1).permutation(50)  # the documented recipe
    assert np.array_equal(a[0][1], np.sort(order[:10]))


@pytest.mark.parametrize("n, k, seed", [(10, 1, 0), (3, 4, 0), (10, 2, -1), (10, 2.0, 0),
                                        (10, True, 0)])
def test_bad_folds_are_refused(n, k, seed):
    with pytest.raises(SpecError, match="path folds"):
        kfold(n, k, seed)


# -- the grid's axis ------------------------------------------------------------------------------


def test_the_reference_coefficient_becomes_the_grid_value_and_the_rest_scale():
    spec = Spec(penalties=(Rule(ElasticNet(0.02, 0.06, convention="half")),
                           Rule(L1(0.5, convention="sum"), Select(roles=("bias",)))),
                weight_decay=(DecoupledWeightDecay(0.1),))
    assert axis(spec).label == "elastic_net l1 (half convention)"
    scaled = at(spec, 0.2)
    en, l1 = scaled.penalties[0].term, scaled.penalties[1].term
    assert en.l1 == 0.2 and en.convention == "half"
    assert math.isclose(en.l2, 0.6, rel_tol=1e-15)  # l1/l2 ratio kept
    assert math.isclose(l1.coef, 5.0, rel_tol=1e-15)
    assert math.isclose(scaled.weight_decay[0].rate, 1.0, rel_tol=1e-15)
    assert scaled.penalties[1].select == spec.penalties[1].select


def test_a_decay_only_spec_varies_the_rate():
    spec = Spec(weight_decay=(DecoupledWeightDecay(0.01),))
    assert axis(spec).label == "weight_decay rate (decoupled convention)"
    assert at(spec, 0.3).weight_decay[0].rate == 0.3


@pytest.mark.parametrize("spec, match", [
    (Spec(), "nothing to vary"),
    (Spec(penalties=(Rule(L2(0.0, convention="sum")),)), "is 0"),
])
def test_a_spec_without_a_usable_axis_is_refused(spec, match):
    with pytest.raises(SpecError, match=match):
        axis(spec)


def test_log_grid_runs_largest_first_with_exact_ends():
    values = log_grid(1e-3, 10.0, 5)
    assert values[0] == 10.0 and values[-1] == 1e-3
    assert np.allclose(np.log10(values), [1, 0, -1, -2, -3])
    assert default_grid(Spec(penalties=(Rule(L2(0.01, convention="sum")),)))[8] == \
        pytest.approx(0.01, rel=1e-15)  # the spec's own value is on the default grid


@pytest.mark.parametrize("args", [(0.0, 1.0, 3), (2.0, 1.0, 3), (1.0, math.inf, 3),
                                  (1.0, 2.0, 0), (1.0, 2.0, 1)])
def test_bad_grids_are_refused(args):
    with pytest.raises(SpecError, match="path grid"):
        log_grid(*args)


@pytest.mark.parametrize("values", [[], [1.0, -1.0], [1.0, 1.0], [math.nan], ["1"]])
def test_bad_grid_values_are_refused(values):
    with pytest.raises(SpecError, match="path grid"):
        checked(values)


# -- the rules ------------------------------------------------------------------------------------


def test_min_and_one_standard_error_rules():
    losses = np.array([[5.0, 2.0, 1.2, 1.0, 1.5],
                       [5.2, 2.2, 1.4, 1.0, 1.5],
                       [4.8, 1.8, 1.0, 1.0, 1.5]])
    mean, se = summarize(losses)
    assert np.allclose(mean, [5.0, 2.0, 1.2, 1.0, 1.5])
    assert np.allclose(se, np.std(losses, axis=0, ddof=1) / np.sqrt(3))
    # min at index 3 (se 0): the 1se rule picks the largest value within 1.0 + 0 -> index 3
    assert choose(losses) == {"min": 3, "1se": 3}
    noisy = losses.copy()
    noisy[:, 3] = [0.6, 1.0, 1.4]  # mean 1.0, se 0.23: index 2 (mean 1.2) is within one se
    assert choose(noisy) == {"min": 3, "1se": 2}


def test_ties_go_to_the_larger_value_and_diverged_fits_never_win():
    assert choose(np.array([[1.0, 1.0, 2.0], [1.0, 1.0, 2.0]]))["min"] == 0
    assert choose(np.array([[np.nan, 1.0], [np.inf, 1.0]])) == {"min": 1, "1se": 1}


# -- the engine -----------------------------------------------------------------------------------


def _small(loss_spec, **settings):
    prob = problem("synthetic")
    return prob, run(load_backend("numpy"), prob, loss_spec, (0.3, 0.1, 0.03),
                     Settings(folds=3, seed=4, steps=settings.pop("steps", 5), **settings))


def test_every_fit_warm_starts_from_the_previous_value():
    """Rebuild fold 1's and the full-data path by hand: each fit is `steps` proximal steps from
    the previous grid value's parameters; the first starts at the initial parameters."""
    spec = Spec(penalties=(Rule(L1(0.1, convention="sum")),))
    prob, result = _small(spec)
    numpy = load_backend("numpy")
    tr, va = kfold(prob.x.shape[0], 3, 4)[1]
    params = prob.init
    for j, value in enumerate(result["grid"]):
        plan = at(spec, value).resolve(prob.model.params())
        lr = step_size(prob, prob.x[tr], at(spec, value))
        assert result["lr"][1][j] == lr
        params = numpy.proximal_train(prob.model, plan, params, prob.x[tr], prob.y[tr], lr=lr,
                                      steps=5)
        empty = Spec().resolve(prob.model.params())
        val, _ = numpy.loss_and_grads(prob.model, empty, params, prob.x[va], prob.y[va])
        train, _ = numpy.loss_and_grads(prob.model, empty, params, prob.x[tr], prob.y[tr])
        assert result["val_loss"][1][j] == float(val)
        assert result["train_loss"][1][j] == float(train)


def test_the_full_data_fit_at_the_choice_is_returned_with_the_coefficient_path():
    spec = Spec(penalties=(Rule(L1(0.1, convention="sum")),))
    _, result = _small(spec, steps=300)
    i = result["choice"]["min"]["index"]
    path = np.asarray(result["coefficients"]["path"])
    assert path.shape == (3, 8)
    assert np.array_equal(path[i], np.ravel(result["final"]["dense_0.kernel"]))
    assert result["coefficients"]["zeros"] == [int(np.sum(p == 0)) for p in path]
    assert result["coefficients"]["zeros"][0] > 0  # L1 through the proximal step: exact zeros


def test_adam_trains_on_the_subgradient_and_reaches_no_exact_zero():
    spec = Spec(penalties=(Rule(L1(0.1, convention="sum")),))
    _, result = _small(spec, optimizer="adam", lr=0.05, steps=50)
    assert result["proximal"] is False
    assert result["coefficients"]["zeros"] == [0, 0, 0]


def test_group_lasso_zeroes_whole_groups():
    spec = Spec(penalties=(Rule(GroupLasso(0.5, convention="sum", axis=0)),))
    _, result = _small(spec, steps=300)
    assert result["coefficients"]["zeros"][0] > 0


def test_step_size_is_one_over_the_curvature_bound():
    prob = problem("synthetic")
    z = np.hstack([prob.x, np.ones((200, 1))])
    top = np.linalg.eigvalsh(z.T @ z / 200)[-1]
    spec = Spec(penalties=(Rule(ElasticNet(0.1, 0.25, convention="sum")),))
    assert step_size(prob, prob.x, spec) == pytest.approx(1 / (2 * top + 0.5), rel=1e-14)
    with pytest.raises(SpecError, match="give lr"):
        step_size(problem("iris"), problem("iris").x, spec)


def test_bad_settings_are_refused():
    for bad in ({"optimizer": "lbfgs"}, {"steps": 1}, {"steps": 2.5}, {"lr": 0.0},
                {"lr": math.inf}):
        with pytest.raises(SpecError, match="path"):
            Settings(**bad)
