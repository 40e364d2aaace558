"""The k-fold regularization path on one backend: fit every fold along the grid with warm starts.

For each fold, and then once on all the data, the model is trained at every grid value from the
largest down, each fit starting from the previous value's parameters (the first from the
initial parameters): the most regularized fit is the simplest, and each next one is a small
move away. Every fit is ``steps`` full-batch steps on the backend:

* ``optimizer="sgd"``: :meth:`regcore.Backend.proximal_train` — L1, elastic-net and group-lasso
  terms through their proximal (shrinkage) step, so coefficients reach exactly 0;
* ``optimizer="adam"``: :meth:`regcore.Backend.train` with Adam (fresh moments per value): no
  proximal step exists for Adam's per-coordinate step sizes, so L1 terms train on their
  subgradient and coefficients hover near 0 instead of reaching it.

Losses recorded are data losses (no penalty), in float64: the training fold's and the validation
fold's. A proximal fit also records its last step's size, ``‖p_K − p_{K−1}‖₂ / lr`` (the
gradient mapping's norm): for a convex problem ``‖p_K − p*‖ ≤ 2·that/μ``, so it says how far
from converged the fit stopped (``null`` for Adam, whose step is no such certificate). Numbers
that are not finite (a diverged fit) are written as ``null``, so ``path.json`` is strict JSON.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from regcore import Backend, ModelSpec, Optimizer
from regcore.errors import SpecError
from regcore.proximal import split
from regcore.spec import Spec
from regcore.terms import L2
from regcore_apps.path import grid as grids
from regcore_apps.path.folds import kfold
from regcore_apps.path.select import choose, summarize

OPTIMIZERS = ("sgd", "adam")


class Fitter(Protocol):
    """What the path needs from one model on one backend. :class:`Problem` makes one for any
    backend's dense ``ModelSpec`` network; a user's own model has one per framework
    (:class:`regcore_apps.path.torch_problem.ModuleProblem` for an ``nn.Module``,
    :class:`regcore_apps.path.keras_problem.ModelProblem` for a Keras model, both on
    :mod:`regcore_apps.path.user_model`). Parameters are the fitter's own objects; only
    :meth:`numpy` turns them into NumPy."""

    def start(self) -> Any:
        """The initial parameters (a fresh copy every call)."""

    def data(self, rows: np.ndarray) -> Any:
        """The samples ``rows`` of the problem's data, ready for :meth:`fit` and :meth:`loss`."""

    def fit(self, spec: Spec, params: Any, data: Any, lr: float) -> tuple[Any, float]:
        """Parameters after the fit at ``spec`` starting from ``params`` (left untouched), and
        the last step's size ``‖p_K − p_{K−1}‖₂ / lr``."""

    def loss(self, params: Any, data: Any) -> float:
        """The data loss (no penalty), as a Python float."""

    def numpy(self, params: Any) -> dict[str, np.ndarray]:
        """The parameters by name, as float64 NumPy arrays."""


@dataclass(frozen=True)
class Problem:
    """A dense network any backend builds (``model``), its data (NumPy; float64 features) and
    initial parameters (canonical names)."""

    name: str
    model: ModelSpec
    x: np.ndarray
    y: np.ndarray
    init: dict[str, np.ndarray]

    @property
    def linear(self) -> bool:
        return self.model.layers == 1

    @property
    def classification(self) -> bool:
        return self.model.loss == "softmax_xent"

    def describe(self) -> dict[str, Any]:
        return {"sizes": list(self.model.sizes), "activation": self.model.activation,
                "loss": self.model.loss}

    def fitter(self, backend: Backend, settings: Settings) -> Fitter:
        return _BackendFitter(backend, self, settings)


@dataclass(frozen=True)
class Settings:
    """How the path runs. ``lr=None`` derives a step size for linear models (:func:`step_size`);
    a network needs one given."""

    folds: int = 5
    seed: int = 0
    optimizer: str = "sgd"
    lr: float | None = None
    steps: int = 300
    dtype: str = "float64"
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise SpecError(f"path optimizer: expected one of {', '.join(OPTIMIZERS)}, got "
                            f"{self.optimizer!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 2:
            raise SpecError(f"path steps: need an integer >= 2, got {self.steps!r}")
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and 0 < self.lr
                                        < float("inf")):
            raise SpecError(f"path lr: need a positive finite number, got {self.lr!r}")


def step_size(problem: Problem, x: np.ndarray, spec: Spec) -> float:
    """``1/L`` for a linear model on training inputs ``x``: ``L`` bounds the curvature of the data
    loss plus the smooth penalty, with ``Z = [x, 1]``:

    * ``mse`` (mean over ``m·d_out`` entries): ``2·λ_max(ZᵀZ/m)/d_out``;
    * ``half_mse`` (``Σ/(2m)``): ``λ_max(ZᵀZ/m)``;
    * ``softmax_xent``: ``½·λ_max(ZᵀZ/m)`` (Böhning's bound on the softmax Hessian);

    plus ``2·s`` for the largest sum-form ``Σw²`` coefficient ``s`` of the smooth plan (``l2``
    terms and elastic nets' ``l2`` parts; L1 parts are in the proximal step and add none).
    Proximal gradient with step ``1/L`` converges for every grid value. Orthogonal terms have no
    such bound: a spec with one needs ``lr`` given."""
    if not problem.linear:
        raise SpecError("path lr: a network's step size cannot be derived; give lr")
    z = np.hstack([x, np.ones((x.shape[0], 1))])
    top = float(np.linalg.eigvalsh(z.T @ z / x.shape[0])[-1])
    d_out = problem.model.sizes[-1]
    curvature = {"mse": 2 * top / d_out, "half_mse": top, "softmax_xent": 0.5 * top}
    smooth, _ = split(spec.resolve(problem.model.params()))
    l2 = [0.0]
    for a in smooth.penalties:
        if not isinstance(a.term, L2):
            raise SpecError(f"path lr: the spec's {a.term.kind} term has no curvature bound; "
                            "give lr")
        l2.append(a.term.scaled()["coef"])
    return 1.0 / (curvature[problem.model.loss] + 2 * max(l2))


class _BackendFitter:
    """A :class:`Problem` on a backend, through the backend protocol."""

    def __init__(self, backend: Backend, problem: Problem, settings: Settings) -> None:
        self.backend, self.problem, self.settings = backend, problem, settings
        self.empty = Spec().resolve(problem.model.params())

    def start(self) -> dict[str, Any]:
        return self.params(self.problem.init)

    def data(self, rows: np.ndarray) -> tuple[Any, Any]:
        settings = self.settings
        label = "int64" if self.problem.classification else settings.dtype
        return (self.backend.asarray(self.problem.x[rows], dtype=settings.dtype,
                                     device=settings.device),
                self.backend.asarray(self.problem.y[rows], dtype=label, device=settings.device))

    def params(self, values: dict[str, np.ndarray]) -> dict[str, Any]:
        return {k: self.backend.asarray(v, dtype=self.settings.dtype, device=self.settings.device)
                for k, v in values.items()}

    def fit(self, spec: Spec, params: dict[str, Any], data: tuple[Any, Any], lr: float
            ) -> tuple[dict[str, Any], float]:
        backend, model, steps = self.backend, self.problem.model, self.settings.steps
        plan = spec.resolve(model.params())
        if self.settings.optimizer != "sgd":  # Adam's moments must run on: one call, no last step
            adam = Optimizer("adam", lr)
            return backend.train(model, plan, params, *data, optimizer=adam, steps=steps), math.nan
        before = backend.proximal_train(model, plan, params, *data, lr=lr, steps=steps - 1)
        after = backend.proximal_train(model, plan, before, *data, lr=lr, steps=1)
        diff = [np.ravel(backend.to_numpy(after[k]).astype(np.float64)
                         - backend.to_numpy(before[k]).astype(np.float64)) for k in after]
        return after, float(np.linalg.norm(np.concatenate(diff))) / lr

    def loss(self, params: dict[str, Any], data: tuple[Any, Any]) -> float:
        value, _ = self.backend.loss_and_grads(self.problem.model, self.empty, params, *data)
        return float(self.backend.to_numpy(value))

    def numpy(self, params: dict[str, Any]) -> dict[str, np.ndarray]:
        return {k: self.backend.to_numpy(v).astype(np.float64) for k, v in params.items()}


def run(backend: Backend, problem: Problem | Any, spec: Spec, values: tuple[float, ...],
        settings: Settings, progress: Callable[[], None] | None = None) -> dict[str, Any]:
    """The path of ``problem`` on ``backend``: a plain-data result (JSON-ready; its keys are
    documented in ``docs/path.md``). ``problem`` is a :class:`Problem` or any object with its
    ``name``, ``x``, ``linear``, ``describe()`` and ``fitter(backend, settings)`` (a
    :class:`Fitter`). ``values`` is the grid (:func:`regcore_apps.path.grid.checked` sorts it
    largest first); ``progress()`` is called after every fit."""
    values = grids.checked(values)
    axis = grids.axis(spec)
    specs = [grids.at(spec, v) for v in values]
    folds = kfold(problem.x.shape[0], settings.folds, settings.seed)
    fitter = problem.fitter(backend, settings)
    started = time.perf_counter()
    n_val = len(values)
    train = np.full((settings.folds, n_val), np.nan)
    val = np.full((settings.folds, n_val), np.nan)
    last_step = np.full((settings.folds + 1, n_val), np.nan)
    lrs = np.zeros((settings.folds + 1, n_val))
    splits = [*folds, (np.arange(problem.x.shape[0]), None)]
    full_path: list[dict[str, np.ndarray]] = []
    for f, (tr, va) in enumerate(splits):
        data_tr = fitter.data(tr)
        data_va = fitter.data(va) if va is not None else None
        params = fitter.start()
        for j, s in enumerate(specs):
            lr = settings.lr if settings.lr is not None else step_size(problem, problem.x[tr], s)
            lrs[f, j] = lr
            params, last_step[f, j] = fitter.fit(s, params, data_tr, lr)
            if data_va is not None:
                train[f, j] = fitter.loss(params, data_tr)
                val[f, j] = fitter.loss(params, data_va)
            else:
                full_path.append(fitter.numpy(params))
            if progress is not None:
                progress()
    chosen = choose(val)
    mean_val, se_val = summarize(val)
    mean_train, se_train = summarize(train)
    result: dict[str, Any] = {
        "backend": backend.name, "device": settings.device, "dtype": settings.dtype,
        "problem": problem.name, "model": problem.describe(),
        "axis": {"term": axis.term, "name": axis.name, "convention": axis.convention,
                 "label": axis.label, "spec_value": axis.value},
        "grid": list(values),
        "folds": {"k": settings.folds, "seed": settings.seed,
                  "validation_sizes": [int(len(va)) for _, va in folds]},
        "optimizer": settings.optimizer, "proximal": settings.optimizer == "sgd",
        "steps": settings.steps, "lr": lrs.tolist(),
        "train_loss": _plain(train), "val_loss": _plain(val),
        "mean_train": _plain(mean_train), "se_train": _plain(se_train),
        "mean_val": _plain(mean_val), "se_val": _plain(se_val),
        "last_step": _plain(last_step),
        "choice": {rule: {"index": i, "value": values[i]} for rule, i in chosen.items()},
        "final": {k: _plain(v) for k, v in full_path[chosen["min"]].items()},
        "seconds": time.perf_counter() - started,
    }
    if problem.linear:
        kernels = np.stack([p["dense_0.kernel"] for p in full_path])  # (grid, d_in, d_out)
        result["coefficients"] = {
            "names": [f"w[{i},{o}]" if kernels.shape[2] > 1 else f"w[{i}]"
                      for i in range(kernels.shape[1]) for o in range(kernels.shape[2])],
            "path": kernels.reshape(len(values), -1).tolist(),
            "zeros": [int(np.count_nonzero(k == 0)) for k in kernels],
        }
    return result


def _plain(array: np.ndarray) -> list:
    """``array.tolist()`` with every non-finite number as ``None`` (strict JSON)."""
    return np.where(np.isfinite(array), array, None).tolist()
