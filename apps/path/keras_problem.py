"""The regularization path (:mod:`regcore_apps.path`) on a user's own Keras 3 model.

``ModelProblem(name, model, loss, x, y)`` is a problem :func:`regcore_apps.path.run` accepts with
the tf backend (the loop and the checks: :mod:`regcore_apps.path.user_model`; here, the Keras and
TensorFlow calls): the fitter trains a clone of ``model`` (``keras.models.clone_model``, every
layer rebuilt in the path's dtype, the weights copied in; its trainable weights as given are the
initial ones; the caller's model is never changed), the spec is resolved against the model's own
variable names and roles (:mod:`regcore_adapters.keras.params`: role by layer type; Keras
kernels are already in the canonical layout), and each fit is the same step as the backend's
:meth:`~regcore_adapters.tf.TFBackend.proximal_train`: plain SGD on the data loss plus the smooth
terms, decoupled decay before it, then the shrinkage of :mod:`regcore.proximal` (exact zeros for
L1, elastic net and group lasso); or torch's Adam (:mod:`regcore_adapters.tf.optim`) on the
subgradient with ``Settings(optimizer="adam")``. ``loss`` is ``"mse"``, ``"half_mse"``,
``"softmax_xent"`` (as the scenarios define them) or any ``loss(output, target) -> 0-dim tensor``.
A network has no derived step size: give ``Settings(lr=...)``.

The model is called as ``model(x)`` (Keras's inference mode: dropout off, batch normalization on
its moving statistics, which stay as given). Sequential and functional models are covered (what
``clone_model`` clones); a subclassed model is refused. Parameters between fits are tensors by
name; one clone per path holds them while a fit runs, so each step is one traced function per
plan structure, with coefficients, thresholds and decay factors as arguments: every grid value
shares one trace (the backend's ``mode`` picks eager, ``tf.function`` or XLA).

    from regcore_apps.path import Settings, run
    from regcore_apps.path.keras_problem import ModelProblem

    problem = ModelProblem("mine", my_model, "softmax_xent", x, y)
    result = run(load_backend("tf"), problem, spec, grid, Settings(lr=0.1, steps=100))
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from regcore import Backend, Optimizer, SpecError
from regcore.selection import ParamInfo
from regcore.spec import Plan
from regcore_adapters.keras.params import model_params
from regcore_adapters.keras.training import floatx
from regcore_adapters.tf import optim
from regcore_adapters.tf import proximal as prox
from regcore_adapters.tf.functions import (
    Penalties,
    compile_fn,
    penalty_coefs,
    penalty_value,
    plan_structure,
)
from regcore_adapters.tf.models import data_loss
from regcore_apps.path.user_model import UserModelFitter, UserModelProblem

#: The path's ``--device`` names as TensorFlow's device strings.
DEVICES = {"cpu": "/CPU:0", "gpu": "/GPU:0"}


def promoted(*dtypes: tf.DType) -> tf.DType:
    """The floating dtype that holds all of ``dtypes`` (NumPy's promotion of float32/float64)."""
    return tf.as_dtype(np.result_type(*(d.as_numpy_dtype for d in dtypes)))


@dataclass(frozen=True)
class ModelProblem(UserModelProblem):
    """A user's built Keras ``model``, its ``loss`` and its data (NumPy)."""

    backend_name = "tf"
    what = "a Keras model"
    model_field = "model"

    name: str
    model: keras.Model
    loss: str | Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
    x: np.ndarray
    y: np.ndarray

    def check_model(self) -> None:
        if not isinstance(self.model, keras.Model):
            raise SpecError(f"ModelProblem.model: expected a Keras model, got "
                            f"{type(self.model).__name__}")
        if not self.model.built:
            raise SpecError(f"ModelProblem.model: {self.model.name!r} is not built; call it on "
                            "a batch or give it an Input first")

    def make_fitter(self, backend: Backend, settings: Any) -> ModelFitter:
        if keras.backend.backend() != "tensorflow":
            raise SpecError(f"a Keras model's path needs Keras on its tensorflow backend, not "
                            f"{keras.backend.backend()!r}")
        return ModelFitter(self, backend, settings)


def _clone(model: keras.Model, dtype: tf.DType) -> keras.Model:
    """``model``'s layers rebuilt with ``dtype`` (nested models too), its weights copied in."""
    def rebuild(layer: keras.layers.Layer) -> keras.layers.Layer:
        return layer.__class__.from_config({**layer.get_config(), "dtype": dtype.name})

    try:
        with floatx(dtype):
            clone = keras.models.clone_model(model, clone_function=rebuild, recursive=True)
    except (TypeError, ValueError) as e:  # a subclassed model: no config to rebuild it from
        raise SpecError(f"ModelProblem.model: keras.models.clone_model cannot copy "
                        f"{type(model).__name__} (a Sequential or functional model can be): "
                        f"{e}") from e
    if [w.shape for w in clone.weights] != [w.shape for w in model.weights]:
        raise SpecError(f"ModelProblem.model: the clone of {model.name!r} has other weights")
    for dst, src in zip(clone.weights, model.weights, strict=True):
        dst.assign(np.asarray(src.numpy(), dtype=dtype.as_numpy_dtype))
    return clone


class ModelFitter(UserModelFitter):
    """The fitter of a :class:`ModelProblem`: parameters are tensors by name, loaded into one
    clone of the model (:attr:`work`) for each fit and loss; the work object of a fit is the
    clone's variables by name."""

    problem: ModelProblem

    def __init__(self, problem: ModelProblem, backend: Backend, settings: Any) -> None:
        super().__init__(problem, backend, settings)
        self.dtype = tf.as_dtype(settings.dtype)
        if settings.device not in DEVICES:
            raise SpecError(f"path device: expected one of {', '.join(DEVICES)}, got "
                            f"{settings.device!r}")
        with tf.device(DEVICES[settings.device]):
            self.work = _clone(problem.model, self.dtype)
        params = model_params(self.work)
        self.infos = [kp.info for kp in params]
        names, cloned = [kp.info.name for kp in model_params(problem.model)], \
            [i.name for i in self.infos]
        if cloned != names:  # start() reads the model's values under its own names
            raise SpecError(f"ModelProblem.model: the clone's variables {cloned} are not the "
                            f"model's {names}")
        self.variables = {kp.info.name: kp.variable.value for kp in params}  # the tf.Variables
        # frozen variables (trainable=False) are loaded and read, never stepped
        self.trainable = tuple(kp.info.name for kp in params if kp.info.trainable)
        self.steps: dict[Hashable, Callable[..., None]] = {}
        self.evaluate = compile_fn(self._loss, backend.mode)

    def start(self) -> dict[str, tf.Tensor]:
        return {kp.info.name: self.array(kp.variable.numpy(), self.settings.dtype)
                for kp in model_params(self.problem.model)}

    def array(self, values: np.ndarray, dtype: str) -> tf.Tensor:
        return self.backend.asarray(values, dtype=dtype, device=self.settings.device)

    def named_loss(self, name: str, output: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
        return data_loss(name, output, target)

    def _loss(self, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        return self.data_loss(self.work(x), y)

    def _load(self, params: Mapping[str, tf.Tensor]) -> None:
        for name, v in self.variables.items():
            v.assign(params[name])

    def _compiled_step(self, penalties: Penalties, optimizer: Optimizer,
                       decayed: tuple[str, ...], shrinks: tuple[Hashable, ...]
                       ) -> Callable[..., None]:
        """``(variables, state, x, y, coefs, factors, thresholds) -> None``: gradients of data
        loss plus ``penalties`` at the current values, :func:`optim.apply` (decay, then SGD or
        Adam), then the ``shrinks``; compiled once per configuration (not per coefficient)."""
        key = (plan_structure(penalties), optimizer, decayed, shrinks)
        if key not in self.steps:
            def step(variables, state, x, y, coefs, factors, thresholds):
                trained = {k: variables[k] for k in self.trainable}
                sources = list(trained.values())
                with tf.GradientTape() as tape:
                    tape.watch(sources)
                    loss = self._loss(x, y)
                    penalty = penalty_value(penalties, {k: v.read_value() for k, v
                                                        in variables.items()}, coefs)
                    dtype = promoted(loss.dtype, penalty.dtype)
                    value = tf.cast(loss, dtype) + tf.cast(penalty, dtype)
                grads = tape.gradient(value, sources,
                                      unconnected_gradients=tf.UnconnectedGradients.ZERO)
                optim.apply(optimizer, factors, trained,
                            dict(zip(trained, grads, strict=True)), state)
                prox.apply(shrinks, variables, thresholds)

            self.steps[key] = compile_fn(step, self.backend.mode)
        return self.steps[key]

    def begin(self, params: Mapping[str, tf.Tensor]) -> dict[str, tf.Variable]:
        self._load(params)
        return self.variables

    def param_infos(self, work: dict[str, tf.Variable]) -> Sequence[ParamInfo]:
        return self.infos

    def stepper(self, work: dict[str, tf.Variable], smooth: Plan, shrinks: tuple[Any, ...],
                data: Any, lr: float) -> Callable[[], None]:
        optimizer = Optimizer(self.settings.optimizer, lr)
        step = self._compiled_step(smooth.penalties, optimizer, tuple(sorted(smooth.decay)),
                                   prox.structure(shrinks))
        trained = {k: work[k] for k in self.trainable}
        args = (work, optim.slots(optimizer, trained), *data,
                penalty_coefs(smooth.penalties, work),
                optim.decay_factor_tensors(optimizer, smooth.decay, trained),
                prox.thresholds(shrinks, work, lr))
        return lambda: step(*args)

    def values(self, work: dict[str, tf.Variable]) -> dict[str, np.ndarray]:
        return {name: v.numpy().astype(np.float64) for name, v in work.items()}

    def result(self, work: dict[str, tf.Variable]) -> dict[str, tf.Tensor]:
        return {name: tf.identity(v) for name, v in work.items()}

    def loss(self, params: Mapping[str, tf.Tensor], data: Any) -> float:
        self._load(params)
        return float(self.evaluate(*data))

    def numpy(self, params: Mapping[str, tf.Tensor]) -> dict[str, np.ndarray]:
        return {k: v.numpy().astype(np.float64) for k, v in params.items()}
