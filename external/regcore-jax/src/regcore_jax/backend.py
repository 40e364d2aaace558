"""The JAX backend class and the compiled functions it runs."""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from regcore import (
    ActivityAssignment,
    Assignment,
    Backend,
    Harness,
    ModelSpec,
    Network,
    Optimizer,
    Plan,
    ProximalTraining,
    SnippetRunner,
    check_shapes,
    export_support,
    proximal,
)
from regcore_jax import optim
from regcore_jax import proximal as prox
from regcore_jax.models import objective
from regcore_jax.penalties import KERNELS, accumulation_dtype

try:  # a context manager: jax.enable_x64(True) in JAX 0.10; jax.experimental's in older ones
    _enable_x64 = jax.enable_x64
except AttributeError:  # pragma: no cover - older JAX
    from jax.experimental import enable_x64 as _enable_x64

DEVICES = ("cpu", "gpu")
_CACHE_SIZE = 128  # compiled functions kept per kind (penalty, loss, training run)

Penalties = tuple[Assignment, ...]
Coefs = tuple[tuple[Any, ...], ...] | None
"""Per assignment of a plan, its term's ``scaled()`` coefficients as arrays
(:func:`penalty_coefs`), or ``None`` (each term's own, as constants)."""


def x64() -> Any:
    """A context in which float64 (and int64) arrays stay 64-bit: JAX's default silently
    truncates them to 32 bits. Scoped, so the process's own JAX configuration is left alone."""
    return _enable_x64(True)


def find_device(name: str) -> jax.Device | None:
    """The first JAX device of platform ``name`` (``cpu`` or ``gpu``), ``None`` if there is
    none in this process."""
    if name not in DEVICES:
        raise ValueError(f"device: expected one of {', '.join(DEVICES)}, got {name!r}")
    try:
        return jax.devices(name)[0]
    except RuntimeError:  # "Unknown backend: 'gpu' requested, but no platforms ..."
        return None


def penalty_value(penalties: Penalties | Plan, params: Mapping[str, jax.Array],
                  coefs: Coefs = None) -> jax.Array:
    """``Σ`` over ``penalties`` (a plan's assignments) of the term's penalty on its parameter: a
    0-dim array in the parameters' promoted dtype, float32 at least for float16/bfloat16.
    ``coefs`` (:func:`penalty_coefs`) replaces the terms' coefficients, so that a compiled
    function serves every plan of the same :func:`plan_structure`.

    Given the :class:`regcore.Plan` itself, it first checks ``params`` against the plan's names
    and shapes (:func:`regcore.check_shapes`; under ``jax.jit`` at trace time only, so free)."""
    if isinstance(penalties, Plan):
        check_shapes("jax", penalties, params)
        penalties = penalties.penalties
    dtype = functools.reduce(jnp.promote_types,
                             (accumulation_dtype(p.dtype) for p in params.values()))
    total = jnp.zeros((), dtype=dtype)
    for i, a in enumerate(penalties):
        value = KERNELS[type(a.term)](a.term, params[a.param], None if coefs is None else coefs[i])
        total = total + value.astype(dtype)
    return total


def plan_structure(penalties: Penalties) -> tuple[Hashable, ...]:
    """What the computation of :func:`penalty_value` with ``coefs`` depends on: each assignment's
    parameter and :func:`regcore.export_support.term_structure` (not its coefficients)."""
    return tuple((a.param, export_support.term_structure(a.term)) for a in penalties)


def penalty_coefs(penalties: Penalties, params: Mapping[str, jax.Array]) -> Coefs:
    """Each assignment's ``term.scaled()`` coefficients as 0-dim arrays of its parameter's
    accumulation dtype: each one rounding of the float64 value, as the kernels' own ``_coef``."""
    return tuple(tuple(np.asarray(v, dtype=accumulation_dtype(params[a.param].dtype))
                       for v in a.term.scaled().values()) for a in penalties)


def total_loss(model: ModelSpec | Network, penalties: Penalties, params: Mapping[str, jax.Array],
               x: jax.Array, y: jax.Array, coefs: Coefs = None,
               activity: tuple[ActivityAssignment, ...] = ()) -> jax.Array:
    """Data loss (plus the ``activity`` penalties on layer outputs) plus penalty, in the wider
    of their dtypes."""
    loss = objective(model, params, x, y, activity)
    penalty = penalty_value(penalties, params, coefs)
    dtype = jnp.promote_types(loss.dtype, penalty.dtype)
    return loss.astype(dtype) + penalty.astype(dtype)


# -- compiled functions --------------------------------------------------------------------------
# Each factory closes over the static configuration only (model, the plan's structure, optimizer,
# decay) and takes every array as an argument, the penalty coefficients included, so a cached
# jax.jit function is traced once per input signature (shapes, dtypes, device) and reused by every
# later call with the same configuration: plans that differ only in their coefficients (L2 at 0.01
# or 0.02, any convention) share one compilation.


class _Structure:
    """A plan's assignments as a cache key that compares by :func:`plan_structure`: the cache
    keeps the first plan of a structure, whose parameter names, term classes and options are all
    its compiled function reads once coefficients are passed."""

    def __init__(self, penalties: Penalties) -> None:
        self.penalties, self.key = penalties, plan_structure(penalties)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Structure) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _penalty_fn(plan: _Structure) -> Callable[..., Any]:
    return jax.jit(jax.value_and_grad(functools.partial(penalty_value, plan.penalties)))


def penalty_fn(penalties: Penalties) -> Callable[..., Any]:
    """``(params, coefs) -> (penalty, grads)``, ``coefs`` from :func:`penalty_coefs`; one
    function per :func:`plan_structure`."""
    return _penalty_fn(_Structure(penalties))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _loss_fn(model: ModelSpec | Network, plan: _Structure,
             activity: tuple[ActivityAssignment, ...]) -> Callable[..., Any]:
    return jax.jit(jax.value_and_grad(
        functools.partial(total_loss, model, plan.penalties, activity=activity)))


def loss_fn(model: ModelSpec | Network, penalties: Penalties,
            activity: tuple[ActivityAssignment, ...] = ()) -> Callable[..., Any]:
    """``(params, x, y, coefs) -> (loss + penalty, grads)``; one function per model,
    :func:`plan_structure` and ``activity`` (its coefficients constants of the program)."""
    return _loss_fn(model, _Structure(penalties), activity)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _train_fn(model: ModelSpec | Network, plan: _Structure, optimizer: Optimizer,
              decay: tuple[tuple[str, float], ...],
              shrinks: tuple[Hashable, ...],
              activity: tuple[ActivityAssignment, ...]) -> Callable[..., Any]:
    factors = optim.decay_factors(optimizer, dict(decay))
    grad = jax.grad(functools.partial(total_loss, model, plan.penalties, activity=activity))

    def run(params, x, y, steps, coefs, thresholds=()):
        def step(i, carry):
            p, state = optim.update(optimizer, factors, carry[0], grad(carry[0], x, y, coefs),
                                    carry[1], i + 1)
            return prox.apply(shrinks, p, thresholds), state

        return jax.lax.fori_loop(0, steps, step, (params, optim.init(optimizer, params)))[0]

    return jax.jit(run)


def train_fn(model: ModelSpec | Network, penalties: Penalties, optimizer: Optimizer,
             decay: tuple[tuple[str, float], ...],
             shrinks: tuple[Hashable, ...] = (),
             activity: tuple[ActivityAssignment, ...] = ()) -> Callable[..., Any]:
    """``(params, x, y, steps, coefs, thresholds=()) -> params``: ``steps`` training steps as one
    ``lax.fori_loop`` (``steps`` is traced, so one compilation serves every run length). Each
    step: gradients at the current parameters, then :func:`optim.update`, then the shrinkage
    operators of :func:`prox.structure` ``shrinks`` (none for :meth:`JaxBackend.train`) with
    their ``thresholds``, traced too: one compilation serves every λ, and every plan of the same
    :func:`plan_structure`."""
    return _train_fn(model, _Structure(penalties), optimizer, decay, shrinks, activity)


class JaxBackend(Backend, Harness, ProximalTraining, SnippetRunner):
    """Native JAX: penalties and networks as ``jax.numpy`` expressions, gradients by
    ``jax.grad``, everything run under ``jax.jit`` (training as one ``lax.fori_loop``).

    float64: JAX truncates 64-bit arrays to 32 bits unless x64 is enabled. Every method runs
    inside the scoped :func:`x64` context instead of flipping ``jax_enable_x64`` for the whole
    process, so float64 inputs give float64 results and float32 stay float32; the arrays returned
    keep their dtype outside it. Matmuls run at ``Precision.HIGHEST`` (no TF32 on GPUs).
    """

    name = "jax"
    devices = DEVICES
    dtypes = ("float64", "float32")
    low_precision_dtypes = ("float16", "bfloat16")
    array_types = (jax.Array,)

    def device_available(self, device: str) -> bool:
        return find_device(device) is not None

    def versions(self) -> dict[str, str]:
        import jaxlib

        return {"jax": jax.__version__, "jaxlib": jaxlib.__version__}

    def asarray(self, array: Any, *, dtype: str, device: str) -> jax.Array:
        target = find_device(device)
        if target is None:
            raise ValueError(f"device {device!r}: JAX has no such device in this process")
        # jnp.dtype knows "bfloat16" (ml_dtypes', which JAX ships): exact for numbers bfloat16
        # holds (ml_dtypes rounds any other float64 through float32, twice)
        with x64():
            return jax.device_put(np.array(array, dtype=jnp.dtype(dtype), copy=True), target)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(jax.device_get(x))

    def penalty(
        self, plan: Plan, params: Mapping[str, jax.Array]
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        with x64():
            value, grads = penalty_fn(plan.penalties)(dict(params),
                                                      penalty_coefs(plan.penalties, params))
        return value, {k: grads[k] for k in params}

    def loss_and_grads(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, jax.Array],
        x: jax.Array, y: jax.Array,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        with x64():
            value, grads = loss_fn(model, plan.penalties, plan.activity)(
                dict(params), x, y, penalty_coefs(plan.penalties, params))
        return value, {k: grads[k] for k in params}

    def train(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, jax.Array],
        x: jax.Array, y: jax.Array, *, optimizer: Optimizer, steps: int,
    ) -> dict[str, jax.Array]:
        """Each step: gradients at the current parameters (``jax.grad``); then, for decayed
        parameters, ``p ← (1 − lr·rate)·p``; then the SGD or Adam update. JAX arrays are
        immutable, so the caller's parameters are untouched; results keep their dtypes."""
        run = train_fn(model, plan.penalties, optimizer, tuple(sorted(plan.decay.items())),
                       activity=plan.activity)
        with x64():
            final = run(dict(params), x, y, steps, penalty_coefs(plan.penalties, params))
        return {k: final[k] for k in params}

    def proximal_train(
        self, model: ModelSpec, plan: Plan, params: Mapping[str, jax.Array],
        x: jax.Array, y: jax.Array, *, lr: float, steps: int,
    ) -> dict[str, jax.Array]:
        """:meth:`train`'s SGD steps on the smooth part of the plan, each followed by the
        shrinkage operators of :func:`regcore.proximal.split`, in the same jitted
        ``lax.fori_loop`` (:func:`train_fn` with ``shrinks``)."""
        smooth, ops = proximal.split(plan)
        ops = proximal.merged_shrinks(ops)
        run = train_fn(model, smooth.penalties, Optimizer("sgd", lr),
                       tuple(sorted(smooth.decay.items())), prox.structure(ops), smooth.activity)
        with x64():
            final = run(dict(params), x, y, steps, penalty_coefs(smooth.penalties, params),
                        prox.thresholds(ops, params, lr))
        return {k: final[k] for k in params}

    def exported_penalty(
        self, code: str, model: ModelSpec, params: Mapping[str, jax.Array]
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """The snippet's ``regularization(params, roles)`` (roles from ``model``), its value and
        ``jax.grad`` under ``jax.jit``, in the scoped :func:`x64` context; gradients keep the
        parameters' dtypes."""
        regularization, roles = load_snippet(code)["regularization"], _roles(model)
        run = jax.jit(jax.value_and_grad(lambda p: regularization(p, roles)))
        with x64():
            value, grads = run(dict(params))
        return value, {k: grads[k] for k in params}

    def exported_decay(
        self, code: str, model: ModelSpec, params: Mapping[str, jax.Array], lr: float
    ) -> dict[str, jax.Array]:
        """The snippet's ``decay(params, roles, lr)`` once, in the scoped :func:`x64` context
        (JAX arrays are immutable: the caller's ``params`` are untouched)."""
        with x64():
            after = load_snippet(code)["decay"](dict(params), _roles(model), lr)
        return {k: after[k] for k in params}


load_snippet = export_support.load_snippet  # the namespace a snippet's code leaves


def _roles(model: ModelSpec) -> dict[str, str]:
    return {p.name: p.role for p in model.params()}
