"""The TensorFlow backend class. It imports the modules that do the work (:mod:`.functions`,
:mod:`.keras_training`, :mod:`.distributed`); none of them imports it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import tensorflow as tf

from regcore import (
    Backend,
    DataParallel,
    Harness,
    ModelSpec,
    NativeTranslations,
    Optimizer,
    Plan,
    ProximalTraining,
    SnippetRunner,
    Spec,
    proximal,
)
from regcore.export_support import load_snippet
from regcore_adapters.tf import distributed, keras_training, optim
from regcore_adapters.tf import proximal as prox
from regcore_adapters.tf.functions import (
    DEFAULT_MODE,
    MODES,
    compile_fn,
    loss_fn,
    penalty_coefs,
    penalty_fn,
    proximal_step_fn,
    step_fn,
)

DEVICES = {"cpu": "/CPU:0", "gpu": "/GPU:0"}
"""Each device name as TensorFlow's device string."""


class TFBackend(Backend, Harness, ProximalTraining, NativeTranslations, DataParallel,
                SnippetRunner):
    """Native TensorFlow: penalties and networks as TF ops, gradients by ``tf.GradientTape``,
    training with TF ops on ``tf.Variable``s (:mod:`regcore_adapters.tf.optim`).

    ``mode`` (one of :data:`MODES`) picks how each call's computation runs; the Python functions
    are the same in every mode, wrapped (or not) by :func:`compile_fn`.
    """

    name = "tf"
    devices = ("cpu", "gpu")
    dtypes = ("float64", "float32")
    low_precision_dtypes = ("float16", "bfloat16")
    array_types = (tf.Tensor, tf.Variable)
    native_translations = tuple(keras_training.TRANSLATIONS)
    native_penalty_translations = tuple(keras_training.PENALTY_TRANSLATIONS)
    distributed_translations = distributed.TRANSLATIONS
    distributed_world_sizes = (2,)

    def __init__(self, mode: str = DEFAULT_MODE) -> None:
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        # full-precision float32 matmuls on Ampere+ GPUs, as the reference
        tf.config.experimental.enable_tensor_float_32_execution(False)

    def device_available(self, device: str) -> bool:
        if device == "gpu":
            return bool(tf.config.list_physical_devices("GPU"))
        return device == "cpu"

    def versions(self) -> dict[str, str]:
        import keras

        return {"tensorflow": tf.__version__, "keras": keras.__version__}

    def asarray(self, array: Any, *, dtype: str, device: str) -> tf.Tensor:
        """``bfloat16`` through NumPy as ``tf.bfloat16.as_numpy_dtype`` (ml_dtypes' bfloat16,
        which TensorFlow ships): exact for numbers bfloat16 holds (ml_dtypes rounds any other
        float64 through float32, twice)."""
        host = np.array(array, dtype=tf.as_dtype(dtype).as_numpy_dtype, copy=True)
        with tf.device(DEVICES[device]):
            # tf.identity places the copy on the device (an eager constant starts on the host)
            return tf.identity(tf.constant(host))

    def to_numpy(self, x: Any) -> np.ndarray:
        if isinstance(x, (tf.Tensor, tf.Variable)):
            return x.numpy()
        return np.asarray(x)

    @contextmanager
    def _on(self, params: Mapping[str, Any]) -> Iterator[None]:
        """Run on the device the parameters live on."""
        with tf.device(next(iter(params.values())).device):
            yield

    def penalty(
        self, plan: Plan, params: Mapping[str, tf.Tensor]
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        params = dict(params)
        with self._on(params):
            coefs = penalty_coefs(plan.penalties, params)
            return penalty_fn(self.mode, plan.penalties)(params, coefs)

    def loss_and_grads(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, tf.Tensor],
        x: tf.Tensor, y: tf.Tensor,
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        params = dict(params)
        with self._on(params):
            coefs = penalty_coefs(plan.penalties, params)
            return loss_fn(self.mode, model, plan.penalties, plan.activity)(params, x, y, coefs)

    def train(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, tf.Tensor],
        x: tf.Tensor, y: tf.Tensor, *, optimizer: Optimizer, steps: int,
    ) -> dict[str, tf.Tensor]:
        """Each step: gradients at the current parameters (``tf.GradientTape``); then, for decayed
        parameters, ``p ← (1 − lr·rate)·p``; then the SGD or Adam update. The parameters are
        copied into fresh ``tf.Variable``s (the caller's tensors are untouched)."""
        step = step_fn(self.mode, model, plan.penalties, optimizer, tuple(sorted(plan.decay)),
                       plan.activity)
        return self._run(step, plan, params, x, y, optimizer, steps)

    def proximal_train(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, tf.Tensor],
        x: tf.Tensor, y: tf.Tensor, *, lr: float, steps: int,
    ) -> dict[str, tf.Tensor]:
        """:meth:`train`'s SGD step on the smooth part of the plan, then the shrinkage operators
        of :func:`regcore.proximal.split`, each step one :func:`proximal_step_fn` call (the
        thresholds are arguments: a new λ does not retrace)."""
        smooth, ops = proximal.split(plan)
        ops = proximal.merged_shrinks(ops)
        optimizer = Optimizer("sgd", lr)
        step = proximal_step_fn(self.mode, model, smooth.penalties, optimizer,
                                tuple(sorted(smooth.decay)), prox.structure(ops), smooth.activity)
        return self._run(step, smooth, params, x, y, optimizer, steps,
                         lambda variables: (prox.thresholds(ops, variables, lr),))

    def _run(self, step: Callable[..., Any], plan: Plan, params: Mapping[str, tf.Tensor],
             x: tf.Tensor, y: tf.Tensor, optimizer: Optimizer, steps: int,
             extra: Callable[[Mapping[str, tf.Variable]], tuple] = lambda variables: (),
             ) -> dict[str, tf.Tensor]:
        """``steps`` calls of ``step(variables, state, x, y, coefs, factors, *extra(variables))``
        on fresh ``tf.Variable`` copies of ``params``, on their device."""
        with self._on(params):
            variables = {k: tf.Variable(v, name=k) for k, v in params.items()}
            state = optim.slots(optimizer, variables)
            coefs = penalty_coefs(plan.penalties, variables)
            factors = optim.decay_factor_tensors(optimizer, plan.decay, variables)
            more = extra(variables)
            for _ in range(steps):
                step(variables, state, x, y, coefs, factors, *more)
            return {k: tf.identity(v) for k, v in variables.items()}

    def native_train(
        self, translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, tf.Tensor],
        x: tf.Tensor, y: tf.Tensor, *, optimizer: Optimizer, steps: int,
    ) -> dict[str, tf.Tensor]:
        """``train`` through the Keras translation on a Keras model (see ``keras_training``)."""
        return keras_training.train(translation, model, spec, params, x, y, optimizer=optimizer,
                                    steps=steps)

    def distributed_train(
        self, translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, tf.Tensor],
        x: tf.Tensor, y: tf.Tensor, *, optimizer: Optimizer, steps: int, world_size: int,
    ) -> dict[str, tf.Tensor]:
        """``native_train`` under ``tf.distribute.MirroredStrategy`` over ``world_size`` logical
        CPUs, in a worker process of its own (see ``regcore_adapters.tf.distributed``)."""
        final = distributed.train(translation, model, spec, *self._host(params, x, y),
                                  optimizer=optimizer, steps=steps, world_size=world_size)
        return {k: tf.constant(v) for k, v in final.items()}

    def distributed_loss_and_grads(
        self, translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, tf.Tensor],
        x: tf.Tensor, y: tf.Tensor, *, world_size: int,
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """One ``keras_loop`` step's global loss and summed gradient under ``MirroredStrategy``
        (see ``regcore_adapters.tf.distributed``)."""
        loss, grads = distributed.loss_and_grads(translation, model, spec,
                                                 *self._host(params, x, y), world_size=world_size)
        dtype = next(iter(params.values())).dtype
        return tf.constant(loss, dtype), {k: tf.constant(v) for k, v in grads.items()}

    def _host(self, params: Mapping[str, Any], x: Any,
              y: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """``params``, ``x`` and ``y`` as NumPy arrays for the worker process."""
        return {k: self.to_numpy(v) for k, v in params.items()}, self.to_numpy(x), self.to_numpy(y)

    def native_penalty(
        self, translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, tf.Tensor]
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """``Σ model.losses`` of a Keras model with the spec applied (see ``keras_training``)."""
        return keras_training.penalty(translation, model, spec, params)

    def exported_penalty(
        self, code: str, model: ModelSpec, params: Mapping[str, tf.Tensor]
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """The snippet's ``regularization(net)`` on the Keras scenario model loaded with
        ``params`` (under ``floatx`` of their dtype) and its ``tf.GradientTape`` gradient, run as
        :attr:`mode` says (the snippet must trace under ``tf.function`` and XLA too)."""
        regularization = load_snippet(code)["regularization"]
        with keras_training.floatx(next(iter(params.values())).dtype), self._on(params):
            net = keras_training.build_model(model, params)
            variables = keras_training.canonical_variables(net, model)
            sources = [v.value for v in variables.values()]

            def value_and_grads():
                with tf.GradientTape() as tape:
                    value = regularization(net)
                return value, tape.gradient(value, sources,
                                            unconnected_gradients=tf.UnconnectedGradients.ZERO)

            value, grads = compile_fn(value_and_grads, self.mode)()
        return value, dict(zip(variables, grads, strict=True))

    def exported_decay(
        self, code: str, model: ModelSpec, params: Mapping[str, tf.Tensor], lr: float
    ) -> dict[str, tf.Tensor]:
        """The snippet's ``decay(net, lr)`` on the Keras scenario model, run as :attr:`mode`
        says."""
        decay = load_snippet(code)["decay"]
        with keras_training.floatx(next(iter(params.values())).dtype), self._on(params):
            net = keras_training.build_model(model, params)
            compile_fn(lambda: decay(net, lr), self.mode)()
            variables = keras_training.canonical_variables(net, model)
            return {k: tf.identity(v.value) for k, v in variables.items()}

    def native_plan(self, translation: str, model: ModelSpec, spec: Spec) -> Plan:
        """The plan the Keras translation resolves on the scenario model (``keras_training``)."""
        return keras_training.plan(translation, model, spec)
