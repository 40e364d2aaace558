"""Read an optax setup back into a spec: what weight decay does this ``(params, tx)`` apply, to
which parameters?

optax transformations are closures, not records; :func:`read_setup` walks the ones optax builds
(``chain``, ``masked``, ``add_decayed_weights``, ``scale_by_*``, ``trace``, ``scale``...) through
their closure variables, in order, and reads each ``add_decayed_weights(rate, mask)``:

* followed only by linear scaling (``scale``, ``scale_by_schedule``: what
  ``scale_by_learning_rate`` builds), as in ``optax.adamw``: decoupled decay. The update is then
  ``-lr·(T(g) + (rate/k)·p)`` where ``k`` is the constant scaling applied before the decay
  (``adamw``: 1; ``adafactor``, which scales by the learning rate before its decay: ``lr``), so
  the rate is ``rate/k`` (``p ← p − lr·(rate/k)·p``, torch AdamW's form);
* preceded only by constant scaling (``chain(add_decayed_weights(rate), adam(lr))``): coupled L2,
  ``rate/k`` in the ``torch_weight_decay`` convention (added to the gradient, as torch's
  ``Adam(weight_decay=rate)``); so is a decay in plain SGD (``chain(add_decayed_weights(rate),
  sgd(lr))``), where both readings are the same maths, as torch's ``SGD(weight_decay=rate)``;
* between two non-linear transformations (``optax.lamb``: after the Adam scaling, before the
  trust ratio), with no learning-rate scaling after it (``p ← p + rate·p``: growth), with a
  schedule as its rate or before it: neither; noted, not read;
* a mask (a pytree of booleans with the params' structure or a prefix of it, or a function of
  the params returning one) selects its leaves.

A transformation regcore does not walk — ``inject_hyperparams`` (which builds its inner
transformation at each step), ``MultiSteps``, ``multi_transform``, ``named_chain``, a mask inside
a mask, anything custom — may decay inside or change what a decay around it means, so nothing is
read and a note says which; :func:`read_decay` then takes ``(params, rate, mask)`` as the user
states them. Parameter names are the pytree paths joined by dots (``Dense_0.kernel``); roles come
from the leaf's key (:func:`param_infos`). The result is a :class:`regcore.Reading`: a spec
selecting parameters by those names, and notes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import jax

from regcore import L2, DecoupledWeightDecay, ParamInfo, Reading, Rule, Spec, select_names

#: Transformations of the update that add no decay of their own: the gradient preconditioners
#: (every ``scale_by_*``), momentum, clipping, constant and scheduled scaling.
_KNOWN = ("trace", "ema", "clip", "clip_by_global_norm", "clip_by_block_rms", "identity", "scale",
          "scale_by_schedule", "add_decayed_weights")
#: The linear ones: ``scale(step_size)``, ``scale_by_schedule(step_size_fn)`` (what
#: ``scale_by_learning_rate`` builds), ``identity``.
_LINEAR = ("scale", "scale_by_schedule", "identity")


def _key(entry: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _leaves(tree: Any) -> list[tuple[str, Any]]:
    """``(dotted path, leaf)`` for every leaf of ``tree``, in JAX's flattening order."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [(".".join(_key(k) for k in path), leaf) for path, leaf in flat]


def _role(name: str, ndim: int) -> str:
    last = name.rsplit(".", 1)[-1].lower()
    if "bias" in last:
        return "bias"
    if last in ("scale", "gamma"):
        return "norm_scale"
    if "embed" in last:
        return "embedding"
    return "weight" if ndim >= 2 else "other"


def param_infos(params: Any) -> list[ParamInfo]:
    """``params`` (a pytree of arrays: flax's ``{"Dense_0": {"kernel": ...}}``) as the spec sees
    it: dotted paths, shapes as stored (flax kernels are ``(fan_in, fan_out)``, the canonical
    layout), roles from the leaf's key (``*bias*`` → ``bias``; ``scale``/``gamma`` →
    ``norm_scale``; ``*embed*`` → ``embedding``; else ``ndim >= 2`` → ``weight``)."""
    return [ParamInfo(name, tuple(leaf.shape), _role(name, len(leaf.shape)))
            for name, leaf in _leaves(params)]


def _closure(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return dict(inspect.getclosurevars(fn).nonlocals)
    except TypeError:  # not a Python function
        return {}


def _steps(update: Callable[..., Any], mask: Any) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """``(transformation name, its closure, the mask over it)`` in the order they run; a
    transformation regcore does not walk is one step under its own name."""
    name = getattr(update, "__qualname__", type(update).__name__).split(".<locals>")[0]
    env = _closure(update)
    if name == "chain" and "update_fns" in env:
        for fn in env["update_fns"]:
            yield from _steps(fn, mask)
    elif name == "with_extra_args_support" and "tx" in env:
        yield from _steps(env["tx"].update, mask)
    elif name == "masked" and "inner" in env and mask is None:
        yield from _steps(env["inner"].update, env.get("mask"))
    else:  # a mask inside a mask is "masked" here: not known, so nothing is read
        yield ("masked (inside a mask)" if name == "masked" else name), env, mask


def _known(name: str) -> bool:
    return name in _KNOWN or name.startswith("scale_by_")


def _factor(name: str, env: dict[str, Any]) -> float | None:
    """A linear step's constant factor (``None``: a schedule, or not linear)."""
    if name == "identity":
        return 1.0
    step = env.get("step_size")
    return float(step) if name == "scale" and isinstance(step, (int, float)) else None


def _mask(mask: Any, params: Any, names: list[str]) -> list[str]:
    """The names ``mask`` selects: a pytree of booleans with ``params``'s structure or a prefix
    of it (optax broadcasts a leaf over its subtree), or a function of the params giving one."""
    if mask is None:
        return names
    tree = mask(params) if callable(mask) else mask
    full = jax.tree.map(lambda keep, sub: jax.tree.map(lambda _: bool(keep), sub), tree, params)
    return [n for n, (_, keep) in zip(names, _leaves(full), strict=True) if keep]


def read_decay(params: Any, rate: float, mask: Any = None, *, decoupled: bool = True) -> Reading:
    """``add_decayed_weights(rate, mask)`` on ``params`` as a :class:`Reading`: decoupled
    (``optax.adamw``'s place) or, with ``decoupled=False``, coupled L2 (before a gradient
    transformation)."""
    names = _mask(mask, params, [n for n, _ in _leaves(params)])
    if not rate or not names:
        return Reading(Spec())
    if decoupled:
        return Reading(Spec(weight_decay=(DecoupledWeightDecay(float(rate), select_names(names)),)))
    return Reading(Spec((Rule(L2(float(rate), convention="torch_weight_decay"),
                              select_names(names)),)))


def _classify(steps: list[tuple[str, dict[str, Any], Any]], index: int) -> tuple[str, float]:
    """How the decay at ``steps[index]`` acts: ``("decoupled", k)`` or ``("coupled", k)`` with
    ``k`` the constant scaling before it (see the module docstring), else ``(why, 0)``."""
    before, after = steps[:index], steps[index + 1:]
    factors = [_factor(n, env) if n in _LINEAR else None for n, env, _ in before]
    k = 1.0
    for f in factors:
        k *= f if f is not None else 1.0
    if all(f is not None for f in factors) and not all(n in _LINEAR for n, _, _ in after):
        return "coupled", k  # (after constant scaling only, before the gradient transformations)
    if all(n in _LINEAR for n, _, _ in after):
        if not any(n in ("scale", "scale_by_schedule") for n, _, _ in after):
            return "no learning-rate scaling after it (p <- p + rate*p: growth)", 0.0
        if any(n in _LINEAR and f is None for (n, _, _), f in zip(before, factors, strict=True)):
            return "a schedule before it", 0.0
        if all(f is not None for f in factors):  # plain SGD: both readings are the same maths;
            return "coupled", k  # coupled, as torch's SGD(weight_decay) reads
        return "decoupled", k
    first = next(n for (n, _, _), f in zip(before, factors, strict=True) if f is None)
    return f"{first} before it and {after[0][0]} after it", 0.0


def read_setup(params: Any, tx: Any) -> Reading:
    """The weight decay the optax transformation ``tx`` applies to ``params``."""
    steps = list(_steps(tx.update, None))
    unknown = sorted({n for n, _, _ in steps if not _known(n)})
    if unknown:
        return Reading(Spec(), (f"{', '.join(unknown)}: not walked by regcore (a wrapper, or "
                                "maths it does not know), so no decay is read; state it with "
                                "read_decay(params, rate, mask)",))
    rules: list[Rule] = []
    decay: list[DecoupledWeightDecay] = []
    notes: list[str] = []
    for index, (name, env, mask) in enumerate(steps):
        if name != "add_decayed_weights":
            continue
        rate = env.get("weight_decay")
        if callable(rate):
            notes.append("add_decayed_weights with a schedule as its rate: not read")
            continue
        if not rate:
            continue
        how, k = _classify(steps, index)
        if how not in ("decoupled", "coupled") or k <= 0:
            why = how if how not in ("decoupled", "coupled") else f"a scaling of {k:g} before it"
            notes.append(f"add_decayed_weights({rate:g}) with {why}: neither coupled L2 nor "
                         "decoupled decay; not read")
            continue
        read = read_decay(params, rate / k, mask, decoupled=how == "decoupled")
        rules += read.spec.penalties
        decay += read.spec.weight_decay
    return Reading(Spec(tuple(rules), weight_decay=tuple(decay)), tuple(notes))


def decay_mask(spec: Spec, params: Any) -> dict[float, Any]:
    """The other way: ``{rate: mask}`` for ``optax.adamw(lr, weight_decay=rate, mask=mask)``
    (one entry per rate) applying ``spec``'s decoupled decay to ``params``."""
    plan = spec.resolve(param_infos(params))
    names = [n for n, _ in _leaves(params)]
    _, treedef = jax.tree_util.tree_flatten(params)
    rates = sorted(set(plan.decay.values()))
    return {rate: jax.tree_util.tree_unflatten(treedef, [plan.decay.get(n) == rate
                                                         for n in names])
            for rate in rates}
