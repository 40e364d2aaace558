"""The TensorFlow functions :class:`~regcore_adapters.tf.backend.TFBackend` runs, and the caches
of their compiled forms: the penalty as TF ops (:func:`penalty_value`, which the Keras helpers
use too), the scenario objective, gradients by ``tf.GradientTape``, and the training steps.
Nothing here imports the backend class (it imports this module)."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from regcore import ActivityAssignment, Assignment, ModelSpec, Network, Optimizer
from regcore_adapters.tf import optim
from regcore_adapters.tf import proximal as prox
from regcore_adapters.tf.models import objective
from regcore_adapters.tf.penalties import KERNELS, accumulation_dtype, coefficients, structure

MODES = ("eager", "function", "jit")
"""How :meth:`TFBackend.penalty`, :meth:`~TFBackend.loss_and_grads` and each training step run:
``eager`` (op by op), ``function`` (``tf.function``, ``jit_compile=False``) or ``jit``
(``tf.function(jit_compile=True)``: XLA)."""
DEFAULT_MODE = "function"

_CACHE_SIZE = 128  # compiled functions kept per kind (penalty, loss, step, proximal step)

Penalties = tuple[Assignment, ...]
Activity = tuple[ActivityAssignment, ...]
"""A plan's activity penalties (:mod:`regcore.activity`): part of a compiled function's
configuration, their coefficients constants in its graph."""
Coefs = tuple[tuple[tf.Tensor, ...], ...] | None
"""Per assignment of a plan, its term's coefficients as tensors (:func:`penalty_coefs`), or
``None`` (each term's own ``scaled()``, as constants)."""


def promote(*dtypes: tf.DType) -> tf.DType:
    """The floating dtype that holds all of ``dtypes`` (NumPy's promotion of float32/float64)."""
    return tf.as_dtype(np.result_type(*(d.as_numpy_dtype for d in dtypes)))


def penalty_value(penalties: Penalties, params: Mapping[str, tf.Tensor],
                  coefs: Coefs = None) -> tf.Tensor:
    """``Σ`` over ``penalties`` (a plan's assignments) of the term's penalty on its parameter: a
    0-dim tensor in the parameters' promoted dtype, float32 at least for float16/bfloat16.
    ``coefs`` (:func:`penalty_coefs`) replaces the terms' coefficients, so that a traced
    function serves every plan of the same :func:`plan_structure`."""
    dtype = promote(*(accumulation_dtype(p.dtype) for p in params.values()))
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


def total_loss(model: ModelSpec | Network, penalties: Penalties, params: Mapping[str, tf.Tensor],
               x: tf.Tensor, y: tf.Tensor, coefs: Coefs = None,
               activity: Activity = ()) -> tf.Tensor:
    """Data loss (plus the ``activity`` penalties on layer outputs) plus penalty, in the wider of
    their dtypes."""
    loss = objective(model, params, x, y, activity)
    penalty = penalty_value(penalties, params, coefs)
    dtype = promote(loss.dtype, penalty.dtype)
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
    # an embedding table's gradient is tf.IndexedSlices (tf.gather's): the protocol returns dense
    return value, {name: tf.convert_to_tensor(g) for name, g in zip(names, grads, strict=True)}


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


def loss_fn(mode: str, model: ModelSpec | Network, penalties: Penalties,
            activity: Activity = ()) -> Callable[..., Any]:
    """``(params, x, y, coefs) -> (loss + penalty, grads)``; one function per model,
    :func:`plan_structure` and ``activity``."""
    def make():
        def loss_and_grads(params, x, y, coefs):
            return value_and_grads(
                lambda q: total_loss(model, penalties, q, x, y, coefs, activity), params)

        return compile_fn(loss_and_grads, mode)

    return _LOSS_FNS.get((mode, model, plan_structure(penalties), activity), make)


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


def _train_step(mode: str, model: ModelSpec | Network, penalties: Penalties,
                optimizer: Optimizer, decayed: tuple[str, ...],
                activity: Activity = ()) -> Callable[..., None]:
    """:func:`step_fn`'s step as a plain Python function of the two shared compiled parts, for
    another compiled function to call. Not the compiled step itself: on TensorFlow 2.21 one
    compiled step called from two compiled callers fails in the second with "Called a function
    referencing variables which have been deleted" (the first caller's variables)."""
    gradients = loss_fn(mode, model, penalties, activity)
    update = apply_fn(mode, optimizer, decayed)

    def train_step(variables, state, x, y, coefs, factors):
        _, grads = gradients({k: v.read_value() for k, v in variables.items()}, x, y, coefs)
        update(variables, state, grads, factors)

    return train_step


def step_fn(mode: str, model: ModelSpec | Network, penalties: Penalties, optimizer: Optimizer,
            decayed: tuple[str, ...], activity: Activity = ()) -> Callable[..., Any]:
    """``(variables, state, x, y, coefs, factors) -> None``: one training step, updating
    ``variables`` (and the optimizer ``state``) in place: gradients at the current values by
    :func:`loss_fn`'s function, then :func:`apply_fn`'s with the decay ``factors``
    (:func:`optim.decay_factor_tensors`) of the ``decayed`` parameters.

    The two parts are traced on their own and shared: the gradients once per model and plan
    structure (with :meth:`TFBackend.loss_and_grads` and every optimizer), the update once per
    optimizer and decayed set (with every plan). A step's own trace is the two calls, which
    TensorFlow inlines when it optimizes the graph, so a step still runs as one graph."""
    def make():
        return compile_fn(_train_step(mode, model, penalties, optimizer, decayed, activity),
                          mode)

    return _STEP_FNS.get((mode, model, plan_structure(penalties), optimizer, decayed, activity),
                         make)


def proximal_step_fn(mode: str, model: ModelSpec | Network, penalties: Penalties,
                     optimizer: Optimizer, decayed: tuple[str, ...], shrinks: tuple[Hashable, ...],
                     activity: Activity = ()) -> Callable[..., Any]:
    """``(variables, state, x, y, coefs, factors, thresholds) -> None``: :func:`step_fn`'s step
    on the smooth plan (the same shared gradient and update functions), then the shrinkage
    operators of :func:`prox.structure` ``shrinks`` with their ``thresholds``
    (:func:`prox.thresholds`), as one traced function; one per step configuration and
    ``shrinks``, so every λ of a path shares one trace."""
    def make():
        step = _train_step(mode, model, penalties, optimizer, decayed, activity)

        def proximal_step(variables, state, x, y, coefs, factors, thresholds):
            step(variables, state, x, y, coefs, factors)
            prox.apply(shrinks, variables, thresholds)

        return compile_fn(proximal_step, mode)

    return _PROX_FNS.get((mode, model, plan_structure(penalties), optimizer, decayed, shrinks,
                          activity), make)
