"""What the suite crosses with the scenarios: named penalty specs and term-level cases."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from regcore import (
    DEFAULT_SELECT,
    L1,
    L2,
    Activity,
    DecoupledWeightDecay,
    ElasticNet,
    GroupLasso,
    ModelSpec,
    Network,
    Orthogonal,
    Rule,
    Select,
    Spec,
    Term,
    proximal,
)
from regcore_conformance.scenarios import SCENARIOS, Scenario

# Name patterns stop at the layer ("dense_0\..*") and leave the rest to the role, so the same
# selection holds for canonical names (dense_0.kernel), torch's (dense_0.weight) and Keras's.
HIDDEN_KERNELS = Select(roles=("weight",), name=r"dense_[01]\..*")


@cache
def scenario_specs(scenario_name: str) -> dict[str, Spec]:
    """The penalty specs a scenario runs with, by name (each applies to that scenario)."""
    s: Scenario = SCENARIOS[scenario_name]
    m = s.stated_batch_size  # not always the rows of the data: see Scenario

    def one(term: Term, select: Select = DEFAULT_SELECT) -> Spec:
        return Spec(penalties=(Rule(term, select),))

    specs = {
        "none": Spec(),
        "l2_sum": one(L2(0.01, convention="sum")),
        "l2_half": one(L2(0.02, convention="half")),
        "l2_torch_weight_decay": one(L2(0.02, convention="torch_weight_decay")),
        "l2_batch_mean": one(L2(1.0, convention="batch_mean", batch_size=m)),
        "l1_sum": one(L1(0.01, convention="sum")),
        "elastic_net_sum": one(ElasticNet(0.01, 0.02, convention="sum")),
        "elastic_net_half": one(ElasticNet(0.01, 0.04, convention="half")),
        "group_lasso_rows": one(GroupLasso(0.05, convention="sum", axis=0)),
        "group_lasso_columns_sqrt": one(
            GroupLasso(0.05, convention="sum", axis=1, scale_by_size=True)
        ),
        "all_params_l2": one(L2(0.01, convention="sum"), Select()),
        "weights_l2_biases_l1": Spec(penalties=(
            Rule(L2(0.01, convention="sum")),
            Rule(L1(0.02, convention="sum"), Select(ndim=(1,))),
        )),
        "decoupled_decay": Spec(weight_decay=(DecoupledWeightDecay(0.1),)),
        "l2_and_bias_decay": Spec(
            penalties=(Rule(L2(0.01, convention="sum")),),
            weight_decay=(DecoupledWeightDecay(0.05, Select(roles=("bias",))),),
        ),
    }
    if not s.classification and s.model.outputs == 1:  # scikit-learn forms: one target
        loss = s.model.loss
        specs["l2_sklearn_ridge"] = one(
            L2(0.5, convention="sklearn_ridge", n_samples=m, data_loss=loss)
        )
        specs["l1_sklearn_lasso"] = one(L1(0.005, convention="sklearn_lasso", data_loss=loss))
        specs["elastic_net_sklearn"] = one(ElasticNet.from_sklearn(0.01, 0.3, data_loss=loss))
    if isinstance(s.model, Network):
        specs.update(_network_specs(s.model))
    if s.model.layers > 1 if isinstance(s.model, ModelSpec) else not s.model.tokens:
        specs.update(_activity_specs(s.model))
    if isinstance(s.model, ModelSpec) and s.model.layers > 1:
        specs["orthogonal_rows"] = one(Orthogonal(0.1, "rows", convention="sum"), HIDDEN_KERNELS)
        specs["orthogonal_columns"] = one(
            Orthogonal(0.1, "columns", convention="sum"), HIDDEN_KERNELS
        )
        specs["per_layer_l2"] = Spec(penalties=(
            Rule(L2(0.001, convention="sum"), Select(roles=("weight",), name=r"dense_0\..*")),
            Rule(L2(0.05, convention="half"), Select(roles=("weight",), name=r"dense_[12]\..*")),
        ))
        specs["l2_orthogonal_l1_decay"] = Spec(
            penalties=(
                Rule(L2(0.01, convention="sum")),
                Rule(Orthogonal(0.05, "rows", convention="sum"), HIDDEN_KERNELS),
                Rule(L1(0.001, convention="sum"), Select(roles=("bias",))),
            ),
            weight_decay=(DecoupledWeightDecay(0.02),),
        )
    return specs


def _activity_specs(model: ModelSpec | Network) -> dict[str, Spec]:
    """Activity penalties (:mod:`regcore.activity`) on the MLPs and the CNN: Keras's
    ``activity_regularizer`` form (L2, divided by the batch size) on the first hidden layer's
    output, and an undivided L1 on the outputs of the first and the last layer (the network's
    output itself) beside an L2 on the weights."""
    first, last = model.layer_names()[0], model.layer_names()[-1]
    return {
        "activity_l2": Spec(activity=(Activity(L2(0.01, convention="sum"), first),)),
        "activity_l1_sum_and_l2": Spec(
            penalties=(Rule(L2(0.01, convention="sum")),),
            activity=(Activity(L1(0.001, convention="sum"), f"{first}|{last}", "sum"),),
        ),
    }


MATRICES = Select(roles=("weight",), ndim=(2,))
"""A network's 2-D kernels (dense head, attention projections): where orthogonal applies."""


def _network_specs(model: Network) -> dict[str, Spec]:
    """What a conv or sequence network adds: group lasso on each output filter or unit (the
    kernel's last axis, the canonical one), orthogonal on its 2-D kernels, the norm scales and
    the embedding table selected by role, and a mixed spec."""
    specs = {
        "group_lasso_filters": Spec(penalties=(Rule(GroupLasso(0.05, convention="sum",
                                                               axis=-1)),)),
        "orthogonal_rows": Spec(penalties=(Rule(Orthogonal(0.1, "rows", convention="sum"),
                                                MATRICES),)),
        "orthogonal_columns": Spec(penalties=(
            Rule(Orthogonal(0.1, "columns", convention="sum"), MATRICES),)),
        "norm_scale_l2": Spec(penalties=(
            Rule(L2(0.05, convention="sum"), Select(roles=("norm_scale",))),)),
        "l2_group_lasso_orthogonal_decay": Spec(
            penalties=(
                Rule(L2(0.01, convention="sum")),
                Rule(GroupLasso(0.02, convention="sum", axis=0)),
                Rule(Orthogonal(0.05, "rows", convention="sum"), MATRICES),
            ),
            weight_decay=(DecoupledWeightDecay(0.02, Select(roles=("norm_scale", "bias"))),),
        ),
    }
    if model.tokens:
        specs["embedding_l2"] = Spec(penalties=(
            Rule(L2(0.01, convention="sum"), Select(roles=("embedding",))),))
    return specs


@cache
def shrinkage_cases() -> tuple[tuple[str, str], ...]:
    """The ``(scenario, spec)`` pairs whose plan has a shrinkage operator (an L1, elastic-net or
    group-lasso term, :func:`regcore.proximal.split`): the proximal check's cases. On every other
    spec a proximal step is a plain SGD step, which the SGD trajectory check covers already."""
    return tuple(
        (name, spec_name)
        for name, scenario in SCENARIOS.items()
        for spec_name, spec in scenario_specs(name).items()
        if proximal.split(spec.resolve(scenario.model.params(), scenario.model.layer_names()))[1]
    )


@dataclass(frozen=True)
class TermCase:
    """One term on one parameter of ``shape``; ``zeros`` lists index slices set to exactly 0 so
    the subgradient at 0 (single entries, whole groups, whole rows) is checked too."""

    name: str
    term: Term
    shape: tuple[int, ...]
    zeros: tuple[tuple[slice | int, ...], ...] = ()
    row_norms: tuple[tuple[int, float], ...] = ()  # (row, norm): rows rescaled to that norm

    def array(self) -> np.ndarray:
        rng = np.random.default_rng(_seed(self.name))
        w = rng.standard_normal(self.shape)
        for index in self.zeros:
            w[index] = 0.0
        for row, norm in self.row_norms:
            w[row] *= norm / np.linalg.norm(w[row])
        return w


def _seed(name: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(name))


_ALL = slice(None)
TERM_CASES: dict[str, TermCase] = {
    c.name: c
    for c in (
        TermCase("l2_sum_vector", L2(0.3, convention="sum"), (7,)),
        TermCase("l2_sum_tensor", L2(0.3, convention="sum"), (3, 4, 2)),
        TermCase("l2_half", L2(0.3, convention="half"), (5, 4)),
        TermCase("l2_torch_weight_decay", L2(0.3, convention="torch_weight_decay"), (5, 4)),
        TermCase("l2_batch_mean", L2(2.0, convention="batch_mean", batch_size=32), (5, 4)),
        TermCase("l2_sklearn_ridge_mse",
                 L2(1.5, convention="sklearn_ridge", n_samples=50, data_loss="mse"), (5, 4)),
        TermCase("l2_sklearn_ridge_half_mse",
                 L2(1.5, convention="sklearn_ridge", n_samples=50, data_loss="half_mse"), (5, 4)),
        TermCase("l1_sum_with_zeros", L1(0.2, convention="sum"), (5, 4), ((0, 1), (3, _ALL))),
        TermCase("l1_sklearn_lasso", L1(0.2, convention="sklearn_lasso", data_loss="mse"),
                 (6,), ((2,),)),
        TermCase("elastic_net_sum_with_zeros", ElasticNet(0.2, 0.1, convention="sum"), (5, 4),
                 ((1, 2),)),
        TermCase("elastic_net_half", ElasticNet(0.2, 0.1, convention="half"), (5, 4)),
        TermCase("elastic_net_sklearn",
                 ElasticNet.from_sklearn(0.2, 0.7, data_loss="half_mse"), (5, 4), ((0, 0),)),
        TermCase("group_lasso_rows_zero_group", GroupLasso(0.4, convention="sum", axis=0),
                 (5, 4), ((2, _ALL),)),
        TermCase("group_lasso_columns_sqrt_zero_group",
                 GroupLasso(0.4, convention="sum", axis=1, scale_by_size=True), (5, 4),
                 ((_ALL, 1),)),
        TermCase("group_lasso_last_axis_tensor", GroupLasso(0.4, convention="sum", axis=-1),
                 (3, 4, 2), ((_ALL, _ALL, 0),)),
        TermCase("group_lasso_vector_is_l1", GroupLasso(0.4, convention="sum", axis=0), (6,),
                 ((1,),)),
        TermCase("orthogonal_rows", Orthogonal(0.5, "rows", convention="sum"), (5, 4)),
        TermCase("orthogonal_columns", Orthogonal(0.5, "columns", convention="sum"), (4, 6)),
        TermCase("orthogonal_rows_zero_row", Orthogonal(0.5, "rows", convention="sum"), (5, 4),
                 ((3, _ALL),)),
        # Keras divides by max(‖v‖, 1e-7): one row just above ε (normalized), one below (clamped)
        TermCase("orthogonal_rows_tiny_rows", Orthogonal(0.5, "rows", convention="sum"), (5, 4),
                 row_norms=((1, 1e-5), (3, 1e-8))),
    )
}
