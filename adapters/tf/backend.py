"""The TensorFlow backend class and the compiled functions it runs."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import tensorflow as tf

from regcore import (
    Assignment,
    Backend,
    ModelSpec,
    Optimizer,
    ParamInfo,
    Plan,
    Spec,
    check_params,
    check_shapes,
    proximal,
)
from regcore.export_support import load_snippet
from regcore_adapters.tf import optim
from regcore_adapters.tf import proximal as prox
from regcore_adapters.tf.models import objective
from regcore_adapters.tf.penalties import KERNELS, accumulation_dtype, coefficients, structure

MODES = ("eager", "function", "jit")
"""How :meth:`TFBackend.penalty`, :meth:`~TFBackend.loss_and_grads` and each training step run:
``eager`` (op by op), ``function`` (``tf.function``, ``jit_compile=False``) or ``jit``
(``tf.function(jit_compile=True)``: XLA)."""
DEFAULT_MODE = "function"

_DEVICES = {"cpu": "/CPU:0", "gpu": "/GPU:0"}
_CACHE_SIZE = 128  # compiled functions kept per kind (penalty, loss, step, proximal step)

Penalties = tuple[Assignment, ...]
Coefs = tuple[tuple[tf.Tensor, ...], ...] | None
"""Per assignment of a plan, its term's coefficients as tensors (:func:`penalty_coefs`), or
``None`` (each term's own ``scaled()``, as constants)."""


def _promote(*dtypes: tf.DType) -> tf.DType:
    """The floating dtype that holds all of ``dtypes`` (NumPy's promotion of float32/float64)."""
    return tf.as_dtype(np.result_type(*(d.as_numpy_dtype for d in dtypes)))


def penalty_value(penalties: Penalties, params: Mapping[str, tf.Tensor],
                  coefs: Coefs = None) -> tf.Tensor:
    """``Σ`` over ``penalties`` (a plan's assignments) of the term's penalty on its parameter: a
    0-dim tensor in the parameters' promoted dtype, float32 at least for float16/bfloat16.
    ``coefs`` (:func:`penalty_coefs`) replaces the terms' coefficients, so that a traced
    function serves every plan of the same :func:`plan_structure`."""
    dtype = _promote(*(accumulation_dtype(p.dtype) for p in params.values()))
    total = tf.zeros((), dtype=dtype)
    for i, a in enumerate(penalties):
        value = KERNELS[type(a.term)](a.term, params[a.param],
                                      None if coefs is None else coefs[i])
        total = total + tf.cast(value, dtype)
    return total


def plan_structure(penalties: Penalties) -> tuple[Hashable, ...]:
    """What the graph of :func:`penalty_value` with ``coefs`` depends on: each assignment's
    parameter and term :func:`~regcore_adapters.tf.penalties.structure` (not its coefficients)."""
    return tuple((a.param, structure(a.term)) for a in penalties)


def penalty_coefs(penalties: Penalties, params: Mapping[str, Any]) -> Coefs:
    """Each assignment's coefficients, rounded once to its parameter's accumulation dtype."""
    return tuple(coefficients(a.term, params[a.param].dtype) for a in penalties)


def total_loss(model: ModelSpec, penalties: Penalties, params: Mapping[str, tf.Tensor],
               x: tf.Tensor, y: tf.Tensor, coefs: Coefs = None) -> tf.Tensor:
    """Data loss plus penalty, in the wider of their dtypes."""
    loss, penalty = objective(model, params, x, y), penalty_value(penalties, params, coefs)
    dtype = _promote(loss.dtype, penalty.dtype)
    return tf.cast(loss, dtype) + tf.cast(penalty, dtype)


def value_and_grads(
    fn: Callable[[Mapping[str, Any]], tf.Tensor], params: Mapping[str, Any]
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """``fn(params)`` and ``∂fn/∂params[k]`` for every ``k`` (tensors or ``tf.Variable``s) by
    ``tf.GradientTape``; zeros where the value does not depend on a parameter."""
    names = list(params)
    sources = [params[k] for k in names]
    with tf.GradientTape() as tape:
        tape.watch(sources)
        value = fn(params)
    grads = tape.gradient(value, sources, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return value, dict(zip(names, grads, strict=True))


# -- compiled functions --------------------------------------------------------------------------
# Each factory closes over the static configuration only (model, the plan's structure, optimizer)
# and takes every tensor and variable as an argument, the penalty coefficients and decay factors
# included, so a cached tf.function is traced once per input signature (shapes, dtypes, device)
# and reused by every later call with the same configuration: plans that differ only in their
# coefficients (L2 at 0.01 or 0.02, any convention) share one trace.


class _LRU:
    """The last ``maxsize`` compiled functions by key, made by ``make()`` on a miss."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize, self._fns = maxsize, OrderedDict()

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        fn = self._fns.pop(key, None)
        if fn is None:
            fn = make()
        self._fns[key] = fn
        if len(self._fns) > self.maxsize:
            self._fns.popitem(last=False)
        return fn

    def clear(self) -> None:
        self._fns.clear()


_PENALTY_FNS, _LOSS_FNS, _APPLY_FNS, _STEP_FNS, _PROX_FNS = (_LRU(_CACHE_SIZE) for _ in range(5))


def compile_fn(fn: Callable[..., Any], mode: str) -> Callable[..., Any]:
    """``fn`` as ``mode`` runs it: itself, or a ``tf.function`` with XLA off or on.

    TensorFlow's retracing warning counts traces per Python *code object*, so every function a
    factory above makes (one per configuration, each traced once per input signature) counted as
    retracing of one function, and warned after five configurations ("5 out of the last 5 calls
    ... triggered tf.function retracing") where nothing was traced twice. Wrapped in a
    ``functools.partial`` (which has no ``__code__``), each compiled function is counted on its
    own, so the warning still fires for what it is meant for: one function retraced again and
    again (shapes or dtypes changing every call)."""
    if mode == "eager":
        return fn
    return tf.function(functools.partial(fn), jit_compile=mode == "jit", autograph=False)


def penalty_fn(mode: str, penalties: Penalties) -> Callable[..., Any]:
    """``(params, coefs) -> (penalty, grads)``, ``coefs`` from :func:`penalty_coefs`; one
    function per :func:`plan_structure`."""
    def make():
        def penalty_and_grads(params, coefs):
            return value_and_grads(lambda q: penalty_value(penalties, q, coefs), params)

        return compile_fn(penalty_and_grads, mode)

    return _PENALTY_FNS.get((mode, plan_structure(penalties)), make)


def loss_fn(mode: str, model: ModelSpec, penalties: Penalties) -> Callable[..., Any]:
    """``(params, x, y, coefs) -> (loss + penalty, grads)``; one function per model and
    :func:`plan_structure`."""
    def make():
        def loss_and_grads(params, x, y, coefs):
            return value_and_grads(lambda q: total_loss(model, penalties, q, x, y, coefs),
                                   params)

        return compile_fn(loss_and_grads, mode)

    return _LOSS_FNS.get((mode, model, plan_structure(penalties)), make)


def apply_fn(mode: str, optimizer: Optimizer, decayed: tuple[str, ...]) -> Callable[..., Any]:
    """``(variables, state, grads, factors) -> None``: :func:`optim.apply`, updating
    ``variables`` (and the optimizer ``state``) in place with ``grads``, the ``decayed``
    parameters first multiplied by their decay ``factors``; one function per optimizer and set
    of decayed parameters."""
    def make():
        def apply_update(variables, state, grads, factors):
            optim.apply(optimizer, factors, variables, grads, state)

        return compile_fn(apply_update, mode)

    return _APPLY_FNS.get((mode, optimizer, decayed), make)


def _train_step(mode: str, model: ModelSpec, penalties: Penalties, optimizer: Optimizer,
                decayed: tuple[str, ...]) -> Callable[..., None]:
    """:func:`step_fn`'s step as a plain Python function of the two shared compiled parts, for
    another compiled function to call. Not the compiled step itself: on TensorFlow 2.21 one
    compiled step called from two compiled callers fails in the second with "Called a function
    referencing variables which have been deleted" (the first caller's variables)."""
    gradients, update = loss_fn(mode, model, penalties), apply_fn(mode, optimizer, decayed)

    def train_step(variables, state, x, y, coefs, factors):
        _, grads = gradients({k: v.read_value() for k, v in variables.items()}, x, y, coefs)
        update(variables, state, grads, factors)

    return train_step


def step_fn(mode: str, model: ModelSpec, penalties: Penalties, optimizer: Optimizer,
            decayed: tuple[str, ...]) -> Callable[..., Any]:
    """``(variables, state, x, y, coefs, factors) -> None``: one training step, updating
    ``variables`` (and the optimizer ``state``) in place: gradients at the current values by
    :func:`loss_fn`'s function, then :func:`apply_fn`'s with the decay ``factors``
    (:func:`optim.decay_factor_tensors`) of the ``decayed`` parameters.

    The two parts are traced on their own and shared: the gradients once per model and plan
    structure (with :meth:`TFBackend.loss_and_grads` and every optimizer), the update once per
    optimizer and decayed set (with every plan). A step's own trace is the two calls, which
    TensorFlow inlines when it optimizes the graph, so a step still runs as one graph."""
    def make():
        return compile_fn(_train_step(mode, model, penalties, optimizer, decayed), mode)

    return _STEP_FNS.get((mode, model, plan_structure(penalties), optimizer, decayed), make)


def proximal_step_fn(mode: str, model: ModelSpec, penalties: Penalties, optimizer: Optimizer,
                     decayed: tuple[str, ...], shrinks: tuple[Hashable, ...]) -> Callable[..., Any]:
    """``(variables, state, x, y, coefs, factors, thresholds) -> None``: :func:`step_fn`'s step
    on the smooth plan (the same shared gradient and update functions), then the shrinkage
    operators of :func:`prox.structure` ``shrinks`` with their ``thresholds``
    (:func:`prox.thresholds`), as one traced function; one per step configuration and
    ``shrinks``, so every λ of a path shares one trace."""
    def make():
        step = _train_step(mode, model, penalties, optimizer, decayed)

        def proximal_step(variables, state, x, y, coefs, factors, thresholds):
            step(variables, state, x, y, coefs, factors)
            prox.apply(shrinks, variables, thresholds)

        return compile_fn(proximal_step, mode)

    return _PROX_FNS.get((mode, model, plan_structure(penalties), optimizer, decayed, shrinks),
                         make)


def _check(params: Mapping[str, Any], plan: Plan | Sequence[ParamInfo] | None = None, *,
           complete: bool = False) -> None:
    """:class:`TypeError` for anything but floating-point TF tensors or variables; with ``plan``
    (or the model's parameters), :class:`regcore.SpecError` for names or shapes not its."""
    check_params("tf", params, (tf.Tensor, tf.Variable), lambda t: t.dtype.is_floating)
    if plan is not None:
        check_shapes("tf", plan, params, complete=complete)


class TFBackend(Backend):
    """Native TensorFlow: penalties and networks as TF ops, gradients by ``tf.GradientTape``,
    training with TF ops on ``tf.Variable``s (:mod:`regcore_adapters.tf.optim`).

    ``mode`` (one of :data:`MODES`) picks how each call's computation runs; the Python functions
    are the same in every mode, wrapped (or not) by :func:`compile_fn`.
    """

    name = "tf"
    devices = ("cpu", "gpu")
    dtypes = ("float64", "float32")
    low_precision_dtypes = ("float16", "bfloat16")
    native_paths = ("keras_loop", "keras_fit")
    native_penalty_paths = ("keras_losses", "keras_saved")
    distributed_paths = ("keras_loop", "keras_fit")  # regcore_adapters.tf.distributed.PATHS
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
        if device not in _DEVICES:
            raise ValueError(f"device: expected one of {', '.join(_DEVICES)}, got {device!r}")
        host = np.array(array, dtype=tf.as_dtype(dtype).as_numpy_dtype, copy=True)
        with tf.device(_DEVICES[device]):
            # tf.identity places the copy on the device (an eager constant starts on the host)
            return tf.identity(tf.constant(host))

    def to_numpy(self, x: Any) -> np.ndarray:
        if isinstance(x, (tf.Tensor, tf.Variable)):
            return x.numpy()
        return np.asarray(x)

    @contextmanager
    def _on(self, params: Mapping[str, Any],
            plan: Plan | Sequence[ParamInfo] | None = None, *,
            complete: bool = True) -> Iterator[None]:
        """Run on the device the parameters live on, after :func:`_check`."""
        _check(params, plan, complete=complete)
        with tf.device(next(iter(params.values())).device):
            yield

    def penalty(
        self, plan: Plan, params: Mapping[str, tf.Tensor]
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        params = dict(params)
        with self._on(params, plan, complete=False):
            coefs = penalty_coefs(plan.penalties, params)
            return penalty_fn(self.mode, plan.penalties)(params, coefs)

    def loss_and_grads(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, tf.Tensor],
        x: tf.Tensor, y: tf.Tensor,
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        params = dict(params)
        with self._on(params, plan):
            coefs = penalty_coefs(plan.penalties, params)
            return loss_fn(self.mode, model, plan.penalties)(params, x, y, coefs)

    def train(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, tf.Tensor],
        x: tf.Tensor, y: tf.Tensor, *, optimizer: Optimizer, steps: int,
    ) -> dict[str, tf.Tensor]:
        """Each step: gradients at the current parameters (``tf.GradientTape``); then, for decayed
        parameters, ``p ← (1 − lr·rate)·p``; then the SGD or Adam update. The parameters are
        copied into fresh ``tf.Variable``s (the caller's tensors are untouched)."""
        step = step_fn(self.mode, model, plan.penalties, optimizer, tuple(sorted(plan.decay)))
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
                                tuple(sorted(smooth.decay)), prox.structure(ops))
        return self._run(step, smooth, params, x, y, optimizer, steps,
                         lambda variables: (prox.thresholds(ops, variables, lr),))

    def _run(self, step: Callable[..., Any], plan: Plan, params: Mapping[str, tf.Tensor],
             x: tf.Tensor, y: tf.Tensor, optimizer: Optimizer, steps: int,
             extra: Callable[[Mapping[str, tf.Variable]], tuple] = lambda variables: (),
             ) -> dict[str, tf.Tensor]:
        """``steps`` calls of ``step(variables, state, x, y, coefs, factors, *extra(variables))``
        on fresh ``tf.Variable`` copies of ``params``, on their device."""
        with self._on(params, plan):
            variables = {k: tf.Variable(v, name=k) for k, v in params.items()}
            state = optim.slots(optimizer, variables)
            coefs = penalty_coefs(plan.penalties, variables)
            factors = optim.decay_factor_tensors(optimizer, plan.decay, variables)
            more = extra(variables)
            for _ in range(steps):
                step(variables, state, x, y, coefs, factors, *more)
            return {k: tf.identity(v) for k, v in variables.items()}

    def native_train(
        self, path: str, model: ModelSpec, spec: Spec, params: Mapping[str, tf.Tensor],
        x: tf.Tensor, y: tf.Tensor, *, optimizer: Optimizer, steps: int,
    ) -> dict[str, tf.Tensor]:
        """``train`` through the Keras translation on a Keras model (see ``keras_training``)."""
        _check(params, model.params())
        from regcore_adapters.tf import keras_training

        return keras_training.train(path, model, spec, params, x, y, optimizer=optimizer,
                                    steps=steps)

    def distributed_train(
        self, path: str, model: ModelSpec, spec: Spec, params: Mapping[str, tf.Tensor],
        x: tf.Tensor, y: tf.Tensor, *, optimizer: Optimizer, steps: int, world_size: int,
    ) -> dict[str, tf.Tensor]:
        """``native_train`` under ``tf.distribute.MirroredStrategy`` over ``world_size`` logical
        CPUs, in a worker process of its own (see ``regcore_adapters.tf.distributed``)."""
        _check(params, model.params())
        from regcore_adapters.tf import distributed

        final = distributed.train(path, model, spec, {k: self.to_numpy(v) for k, v in
                                                      params.items()},
                                  self.to_numpy(x), self.to_numpy(y), optimizer=optimizer,
                                  steps=steps, world_size=world_size)
        return {k: tf.constant(v) for k, v in final.items()}

    def distributed_loss_and_grads(
        self, path: str, model: ModelSpec, spec: Spec, params: Mapping[str, tf.Tensor],
        x: tf.Tensor, y: tf.Tensor, *, world_size: int,
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """One ``keras_loop`` step's global loss and summed gradient under ``MirroredStrategy``
        (see ``regcore_adapters.tf.distributed``)."""
        _check(params, model.params())
        from regcore_adapters.tf import distributed

        if world_size not in self.distributed_world_sizes:
            raise ValueError(f"world_size: expected one of {self.distributed_world_sizes}, got "
                             f"{world_size!r}")
        loss, grads = distributed.loss_and_grads(
            path, model, spec, {k: self.to_numpy(v) for k, v in params.items()},
            self.to_numpy(x), self.to_numpy(y), world_size=world_size)
        dtype = next(iter(params.values())).dtype
        return tf.constant(loss, dtype), {k: tf.constant(v) for k, v in grads.items()}

    def native_penalty(
        self, path: str, model: ModelSpec, spec: Spec, params: Mapping[str, tf.Tensor]
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """``Σ model.losses`` of a Keras model with the spec applied (see ``keras_training``)."""
        _check(params, model.params())
        from regcore_adapters.tf import keras_training

        return keras_training.penalty(path, model, spec, params)

    def exported_penalty(
        self, code: str, model: ModelSpec, params: Mapping[str, tf.Tensor]
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """The snippet's ``regularization(net)`` on the Keras scenario model loaded with
        ``params`` (under ``floatx`` of their dtype) and its ``tf.GradientTape`` gradient, run as
        :attr:`mode` says (the snippet must trace under ``tf.function`` and XLA too)."""
        from regcore_adapters.tf import keras_training

        _check(params, model.params())
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
        from regcore_adapters.tf import keras_training

        _check(params, model.params())
        decay = load_snippet(code)["decay"]
        with keras_training.floatx(next(iter(params.values())).dtype), self._on(params):
            net = keras_training.build_model(model, params)
            compile_fn(lambda: decay(net, lr), self.mode)()
            variables = keras_training.canonical_variables(net, model)
            return {k: tf.identity(v.value) for k, v in variables.items()}

    def native_plan(self, path: str, model: ModelSpec, spec: Spec) -> Plan:
        """The plan the Keras translation resolves on the scenario model (``keras_training``)."""
        from regcore_adapters.tf import keras_training

        return keras_training.plan(path, model, spec)
