"""The conformance scenarios: data, model and initial parameters, all deterministic from seeds.

Scenario ids are test ids and report keys. :data:`RENAMED` maps the ids of earlier releases to
today's, so an expectations file written against an old id is refused with the new one named.

Data and parameters are made once in NumPy float64; every backend receives the same numbers cast
to its dtype.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from regcore import ModelSpec, Network, Optimizer
from regcore.network import (
    Activation,
    AvgPool2D,
    Conv2D,
    Dense,
    Embedding,
    GlobalAvgPool,
    GroupNorm,
    LayerNorm,
    SelfAttention,
)


@dataclass(frozen=True)
class Scenario:
    """A model, its data and the plain-SGD settings of the trajectory check.

    Three linear scenarios share one feature, ``y = 3x + 1 + noise``, the data of the classic
    linear-regression tutorials: ``linreg_half_mse`` fits it with ``1/(2m)Σ(h−y)²`` from θ = 0;
    ``linreg_mse`` with ``"mse"`` (Keras's loss, torch's ``MSELoss``) from θ = 0 — run with
    ``all_params_l2``, Keras's ``λΣθ²`` in a ``tf.GradientTape`` SGD loop, which the tf backend's
    ``keras_loop`` translation is, among every other spec; ``linreg_mse_glorot`` the same loss
    from a seeded Glorot start (run with ``l2_half``, torch's ``λ/2·Σw²``, among every other
    spec). ``linreg_multi`` has five correlated features; ``iris_mlp`` is a 4-16-16-3 ReLU MLP
    with cross-entropy on Iris. ``mlp_relu_half_mse`` crosses the other activation with the other
    regression loss on two outputs, where ``Σ(ŷ−y)²/(2m)`` (summed over outputs) and ½·MSE
    (averaged) differ.

    Numbers a backend could take from elsewhere are made to differ from it somewhere:
    ``spec_batch_size`` is the ``m`` the scenario's ``batch_mean`` and ``sklearn_ridge`` specs
    state (default: the rows of the data, as the tutorials' ``λ/(2m)`` has it); ``linreg_multi``
    and the two regression MLPs state another, so a backend that reads ``m`` from ``x.shape[0]``
    instead of the term fails. ``adam_betas``/``adam_eps`` are the Adam trajectory's (torch's
    defaults unless set); two scenarios set others, so a backend that builds Adam from the
    learning rate alone fails, and ``adam_lr`` differs between scenarios too.

    Two scenarios are not dense (:class:`regcore.Network`): ``cnn_images`` is conv → GroupNorm →
    ReLU → average pool → conv → ReLU → global pool → dense on 8×8 two-channel images of three
    classes; ``attention_tokens`` is embedding → LayerNorm → two-head self-attention → tanh →
    mean over steps → dense on six-token sequences of three classes. They carry 4-D kernels,
    norm scales, an embedding table and four attention projections, the parameters whose layouts
    and roles differ between frameworks.
    """

    name: str
    model: ModelSpec | Network
    make_data: Callable[[], tuple[np.ndarray, np.ndarray]]
    init: str  # "zeros" (θ = 0) or "glorot" (seeded uniform Glorot)
    seed: int
    lr: float
    steps: int
    adam_lr: float = 0.01
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    spec_batch_size: int | None = None

    def optimizer(self, name: str) -> Optimizer:
        """The trajectory check's optimizer: plain SGD at ``lr`` or Adam at ``adam_lr`` with
        ``adam_betas`` and ``adam_eps``."""
        if name == "sgd":
            return Optimizer(name, self.lr)
        return Optimizer(name, self.adam_lr, betas=self.adam_betas, eps=self.adam_eps)

    @property
    def classification(self) -> bool:
        return self.model.loss == "softmax_xent"

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        return _data(self.name)

    def initial_params(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in _params(self.name).items()}

    @property
    def batch_size(self) -> int:
        """The rows of the data: the batch every loss is computed on."""
        return int(self.data()[0].shape[0])

    @property
    def stated_batch_size(self) -> int:
        """The ``m`` the scenario's specs state (``spec_batch_size``, else :attr:`batch_size`)."""
        return self.spec_batch_size or self.batch_size


def _linear_one_feature() -> tuple[np.ndarray, np.ndarray]:
    """One feature, y = 3x + 1 + noise."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 2.0, size=(100, 1))
    return x, 3.0 * x + 1.0 + 0.1 * rng.standard_normal((100, 1))


def _linear_multi() -> tuple[np.ndarray, np.ndarray]:
    """Five correlated features, a sparse true coefficient vector, one target."""
    rng = np.random.default_rng(1)
    mix = np.eye(5) + 0.3 * rng.standard_normal((5, 5))
    x = rng.standard_normal((80, 5)) @ mix
    beta = np.array([[2.0], [-1.0], [0.0], [0.5], [0.0]])
    return x, x @ beta + 1.0 + 0.2 * rng.standard_normal((80, 1))


def _mlp_regression() -> tuple[np.ndarray, np.ndarray]:
    """Three inputs, two smooth nonlinear targets."""
    rng = np.random.default_rng(2)
    x = rng.uniform(-2.0, 2.0, size=(64, 3))
    y = np.stack([np.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2], np.cos(x[:, 1]) - x[:, 2]], axis=1)
    return x, y + 0.05 * rng.standard_normal(y.shape)


def _iris() -> tuple[np.ndarray, np.ndarray]:
    """The Iris data that ships inside scikit-learn (no download), features standardized.

    Read from the file ``sklearn.datasets.load_iris`` reads (``datasets/data/iris.csv``), the
    same way, without importing scikit-learn: collecting the suite needs Iris's row count, and
    importing scikit-learn would cost every run, and every test worker, over a second
    (tests/test_scenarios_data.py proves the numbers equal ``load_iris``'s)."""
    found = importlib.util.find_spec("sklearn")
    if found is None or found.origin is None:
        raise ModuleNotFoundError("No module named 'sklearn'", name="sklearn")
    rows = (Path(found.origin).parent / "datasets" / "data" / "iris.csv").read_text().split()
    n_samples, n_features = map(int, rows[0].split(",")[:2])
    table = np.array([row.split(",") for row in rows[1:1 + n_samples]], dtype=np.float64)
    x, y = table[:, :n_features], table[:, n_features]
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x.astype(np.float64), y.astype(np.int64)


def _images() -> tuple[np.ndarray, np.ndarray]:
    """32 images 8×8×2 (channels last): noise plus a class's pattern, a bright 3×3 patch in a
    class-dependent corner of channel 0 and a stripe on channel 1."""
    rng = np.random.default_rng(6)
    y = rng.integers(0, 3, size=32)
    x = 0.5 * rng.standard_normal((32, 8, 8, 2))
    for i, label in enumerate(y):
        row, col = ((0, 0), (0, 5), (5, 2))[label]
        x[i, row:row + 3, col:col + 3, 0] += 1.5
        x[i, :, 2 * label:2 * label + 2, 1] += 1.0
    return x, y.astype(np.int64)


def _tokens() -> tuple[np.ndarray, np.ndarray]:
    """32 sequences of 6 tokens from a vocabulary of 10; the class is how many tokens are below 3,
    capped at 2."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 10, size=(32, 6))
    y = np.minimum(np.sum(x < 3, axis=1), 2)
    return x.astype(np.int64), y.astype(np.int64)


CNN = Network((8, 8, 2), (
    Conv2D("conv_0", 2, 4, (3, 3)), GroupNorm("norm_0", 2, 4), Activation("relu"),
    AvgPool2D(2), Conv2D("conv_1", 4, 6, (2, 2)), Activation("relu"), GlobalAvgPool(),
    Dense("dense_0", 6, 3),
), "softmax_xent")
ATTENTION = Network((6,), (
    Embedding("embed", 10, 8), LayerNorm("norm", 8), SelfAttention("attention", 8, 2),
    Activation("tanh"), GlobalAvgPool(), Dense("head", 8, 3),
), "softmax_xent")

RENAMED = {"linreg_seed": "linreg_half_mse", "seed000_keras_linreg": "linreg_mse",
           "seed002_linreg": "linreg_mse_glorot", "seed004_iris_mlp": "iris_mlp"}
"""Scenario ids before regcore 0.1's rename -> today's (they named tutorials not in the project)."""

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("linreg_half_mse", ModelSpec((1, 1), None, "half_mse"), _linear_one_feature,
                 "zeros", 0, lr=0.1, steps=20),
        Scenario("linreg_mse", ModelSpec((1, 1), None, "mse"), _linear_one_feature,
                 "zeros", 0, lr=0.1, steps=20),
        Scenario("linreg_mse_glorot", ModelSpec((1, 1), None, "mse"), _linear_one_feature,
                 "glorot", 3, lr=0.1, steps=20),
        Scenario("linreg_multi", ModelSpec((5, 1), None, "mse"), _linear_multi,
                 "glorot", 1, lr=0.05, steps=20, adam_lr=0.02, adam_betas=(0.8, 0.99),
                 adam_eps=1e-3, spec_batch_size=50),  # 80 rows
        Scenario("mlp_regression", ModelSpec((3, 16, 16, 2), "tanh", "mse"), _mlp_regression,
                 "glorot", 2, lr=0.05, steps=10, spec_batch_size=32),  # 64 rows
        Scenario("mlp_relu_half_mse", ModelSpec((3, 8, 8, 2), "relu", "half_mse"),
                 _mlp_regression, "glorot", 5, lr=0.05, steps=10, adam_betas=(0.85, 0.98),
                 adam_eps=1e-4, spec_batch_size=16),  # 64 rows
        Scenario("iris_mlp", ModelSpec((4, 16, 16, 3), "relu", "softmax_xent"), _iris,
                 "glorot", 4, lr=0.1, steps=10),
        Scenario("cnn_images", CNN, _images, "glorot", 6, lr=0.1, steps=5, adam_lr=0.02,
                 spec_batch_size=16),  # 32 rows
        # the key projection's bias has an exactly zero gradient (each query's softmax is
        # shift-invariant), so Adam divides rounding noise by √v̂ + ε: ε = 1e-6 keeps it small
        Scenario("attention_tokens", ATTENTION, _tokens, "glorot", 7, lr=0.1, steps=5,
                 adam_betas=(0.85, 0.99), adam_eps=1e-6, spec_batch_size=20),  # 32 rows
    )
}

MLP_SCENARIOS = tuple(n for n, s in SCENARIOS.items()
                      if isinstance(s.model, ModelSpec) and s.model.layers > 1)
"""The dense scenarios with hidden layers (the data-parallel run trains these)."""
NETWORK_SCENARIOS = tuple(n for n, s in SCENARIOS.items() if isinstance(s.model, Network))
"""The conv and sequence scenarios (:class:`regcore.Network`)."""


@cache
def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = SCENARIOS[name].make_data()
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


@cache
def _params(name: str) -> dict[str, np.ndarray]:
    scenario = SCENARIOS[name]
    if scenario.init == "zeros":
        return {info.name: np.zeros(info.shape) for info in scenario.model.params()}
    return glorot(scenario.model, scenario.seed)


def glorot(model: ModelSpec | Network, seed: int) -> dict[str, np.ndarray]:
    """Seeded initial parameters: kernels and embedding tables uniform Glorot
    (``±√(6/(fan_in + fan_out))``, a conv kernel's fans times its window), biases uniform ±0.1,
    norm scales uniform in 1 ± 0.1, drawn in parameter order from ``default_rng(1000 + seed)``."""
    rng = np.random.default_rng(1000 + seed)
    params = {}
    for info in model.params():
        if info.role == "bias":
            params[info.name] = rng.uniform(-0.1, 0.1, size=info.shape)
        elif info.role == "norm_scale":
            params[info.name] = rng.uniform(0.9, 1.1, size=info.shape)
        else:
            window = int(np.prod(info.shape[:-2]))
            limit = np.sqrt(6.0 / (window * sum(info.shape[-2:])))
            params[info.name] = rng.uniform(-limit, limit, size=info.shape)
    return params
