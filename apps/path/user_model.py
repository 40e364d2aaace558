"""The regularization path on a user's own model: what the torch ``nn.Module`` problem
(:mod:`regcore_apps.path.torch_problem`) and the Keras model problem
(:mod:`regcore_apps.path.keras_problem`) share, written once here; each framework's file holds only
the framework's calls.

* :class:`UserModelProblem`: the problem :func:`regcore_apps.path.run` accepts — checks the model,
  the ``loss`` (``"mse"``, ``"half_mse"``, ``"softmax_xent"`` or a callable) and the data, names
  them in ``describe()``, and makes the fitter on its framework's backend only.
* :class:`UserModelFitter`: the fit loop — resolve the spec against the model's own parameters,
  refuse a plan that selects a frozen one, split it into the smooth part and the shrinkage
  (:func:`regcore.proximal.split`: exact zeros for L1, elastic net and group lasso) for
  ``optimizer="sgd"`` (Adam trains on the subgradient), run ``steps`` steps, and measure the last
  step's size ``‖p_K − p_{K−1}‖₂ / lr`` (as the backend protocol's fitter,
  :class:`regcore_apps.path.engine.Fitter`; ``nan`` for Adam, whose step is no certificate).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from regcore import Backend, SpecError, proximal
from regcore.selection import ParamInfo
from regcore.spec import Plan, Spec

#: The losses a user-model problem knows by name (as the scenarios define them).
LOSSES = ("mse", "half_mse", "softmax_xent")


def check_loss_and_data(owner: str, loss: object, x: Any, y: Any) -> None:
    """:class:`SpecError` for a ``loss`` that is neither one of :data:`LOSSES` nor a callable, or
    data whose row counts differ (``owner`` names the problem class in the message)."""
    if isinstance(loss, str) and loss not in LOSSES:
        raise SpecError(f"{owner}.loss: expected one of {', '.join(LOSSES)} or a callable, got "
                        f"{loss!r}")
    if not callable(loss) and not isinstance(loss, str):
        raise SpecError(f"{owner}.loss: expected a name or a callable, got {loss!r}")
    if len(x) != len(y):
        raise SpecError(f"{owner}: x has {len(x)} rows, y {len(y)}")


def check_trainable(owner: str, plan: Plan) -> None:
    """The fitters step only trainable parameters: a :class:`SpecError` for a plan that selects
    a frozen one (``include_frozen=True``), whose penalty or decay the fit would otherwise ignore
    on one backend and apply on another."""
    frozen = [p.name for p in plan.params if not p.trainable]
    chosen = [n for n in (*(a.param for a in plan.penalties), *plan.decay) if n in frozen]
    if chosen:
        raise SpecError(f"{owner}: the path fits trainable parameters only; the spec selects the "
                        f"frozen parameter {chosen[0]!r} (include_frozen=True)")


def loss_name(loss: object) -> str:
    """A loss as ``describe()`` names it: the name given, or the callable's ``__name__``."""
    return loss if isinstance(loss, str) else getattr(loss, "__name__", "loss")


class UserModelProblem(abc.ABC):
    """A user's model of one framework, its ``loss`` and its data (NumPy ``x``, ``y``).

    A framework's problem is a frozen dataclass with the fields ``name``, its model field
    (:attr:`model_field`), ``loss``, ``x``, ``y``; it sets the class attributes below and
    implements :meth:`check_model` and :meth:`make_fitter`."""

    #: the registered backend the path runs on (``"torch"``)
    backend_name: ClassVar[str]
    #: the model, in messages (``"a torch module"``)
    what: ClassVar[str]
    #: the dataclass field holding the model, also its key in ``describe()`` (``"module"``)
    model_field: ClassVar[str]
    linear = False  # coefficient paths are drawn for the dense ModelSpec problems only

    name: str
    loss: Any
    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        self.check_model()
        check_loss_and_data(type(self).__name__, self.loss, self.x, self.y)

    @property
    def user_model(self) -> Any:
        return getattr(self, self.model_field)

    @property
    def classification(self) -> bool:
        return self.loss == "softmax_xent"

    def describe(self) -> dict[str, Any]:
        return {self.model_field: type(self.user_model).__name__, "loss": loss_name(self.loss)}

    def fitter(self, backend: Backend, settings: Any) -> UserModelFitter:
        if backend.name != self.backend_name:
            raise SpecError(f"{self.what}'s path runs on the {self.backend_name} backend, not "
                            f"{backend.name!r}")
        return self.make_fitter(backend, settings)

    @abc.abstractmethod
    def check_model(self) -> None:
        """:class:`SpecError` unless the model is one this framework's path can fit."""

    @abc.abstractmethod
    def make_fitter(self, backend: Backend, settings: Any) -> UserModelFitter:
        """The fitter, on ``backend`` (already checked to be :attr:`backend_name`)."""


class UserModelFitter(abc.ABC):
    """:class:`regcore_apps.path.engine.Fitter` for a :class:`UserModelProblem`: :meth:`data` and
    :meth:`fit` are written here; a framework implements the rest (its arrays, its step).

    A fit runs on a *work* object the framework chooses (:meth:`begin`): torch's is a deep copy of
    the module, Keras's the one clone whose variables the parameters are loaded into."""

    def __init__(self, problem: UserModelProblem, backend: Backend, settings: Any) -> None:
        self.problem, self.backend, self.settings = problem, backend, settings
        self.owner = type(problem).__name__

    def data(self, rows: np.ndarray) -> tuple[Any, Any]:
        label = "int64" if self.problem.classification else self.settings.dtype
        return (self.array(self.problem.x[rows], self.settings.dtype),
                self.array(self.problem.y[rows], label))

    def data_loss(self, output: Any, target: Any) -> Any:
        """The problem's loss of the model's ``output``: by name, or its callable."""
        loss = self.problem.loss
        return self.named_loss(loss, output, target) if isinstance(loss, str) \
            else loss(output, target)

    def fit(self, spec: Spec, params: Any, data: Any, lr: float) -> tuple[Any, float]:
        work = self.begin(params)
        plan = spec.resolve(list(self.param_infos(work)))
        check_trainable(self.owner, plan)
        if self.settings.optimizer == "sgd":
            smooth, shrinks = proximal.split(plan)
            shrinks = proximal.merged_shrinks(shrinks)
        else:
            smooth, shrinks = plan, ()
        step = self.stepper(work, smooth, shrinks, data, lr)
        for _ in range(self.settings.steps - 1):
            step()
        if self.settings.optimizer != "sgd":
            step()
            return self.result(work), math.nan  # as the backend's fitter: no certificate
        before = self.values(work)
        step()
        after = self.values(work)
        moved = np.concatenate([np.ravel(after[k] - before[k]) for k in after])
        return self.result(work), float(np.linalg.norm(moved)) / lr

    # -- the framework's calls -------------------------------------------------------------------

    @abc.abstractmethod
    def start(self) -> Any:
        """The initial parameters (a fresh copy every call)."""

    @abc.abstractmethod
    def array(self, values: np.ndarray, dtype: str) -> Any:
        """``values`` as the framework's array of ``dtype`` on the path's device."""

    @abc.abstractmethod
    def named_loss(self, name: str, output: Any, target: Any) -> Any:
        """The loss :data:`LOSSES` names, in the framework."""

    @abc.abstractmethod
    def begin(self, params: Any) -> Any:
        """The work object a fit starting from ``params`` runs on (``params`` stay as given)."""

    @abc.abstractmethod
    def param_infos(self, work: Any) -> Sequence[ParamInfo]:
        """The model's parameters, as the spec resolves against them."""

    @abc.abstractmethod
    def stepper(self, work: Any, smooth: Plan, shrinks: tuple[Any, ...], data: Any, lr: float
                ) -> Callable[[], None]:
        """One training step on ``work``: decoupled decay and the optimizer's step on the data
        loss plus ``smooth``'s penalties, then ``shrinks`` (none for Adam)."""

    @abc.abstractmethod
    def values(self, work: Any) -> dict[str, np.ndarray]:
        """``work``'s parameters now, as float64 NumPy copies, by name."""

    @abc.abstractmethod
    def result(self, work: Any) -> Any:
        """The parameters after the fit (what :meth:`fit` returns and :meth:`loss` reads)."""

    @abc.abstractmethod
    def loss(self, params: Any, data: Any) -> float:
        """The data loss (no penalty), as a Python float."""

    @abc.abstractmethod
    def numpy(self, params: Any) -> dict[str, np.ndarray]:
        """The parameters by name, as float64 NumPy arrays."""
