"""Read an optax setup back into a spec: what weight decay does this ``(params, tx)`` apply, to
which parameters?

optax transformations are closures, not records; :func:`read_setup` walks the ones optax builds
(``chain``, ``masked``, ``add_decayed_weights``, ``scale_by_*``, ``trace``...) through their
closure variables, in order, and reads each ``add_decayed_weights(rate, mask)``:

* followed only by ``scale_by_learning_rate``/``scale`` (``optax.adamw``'s place, after the
  Adam scaling): decoupled decay, rate ``rate`` (``p ← p − lr·rate·p``);
* followed by a gradient transformation (``scale_by_adam``, ``trace``...): coupled L2, the
  ``torch_weight_decay`` convention (``rate·p`` added to the gradient, as torch's
  ``Adam(weight_decay=rate)``);
* a mask (a pytree of booleans, or a function of the params returning one) selects its leaves;
* a schedule as the rate, a decay after the learning-rate scaling (``p ← p + rate·p``: growth,
  not decay), or a transformation regcore does not know: not read, and noted.

Where ``tx`` cannot be walked (a custom transformation), :func:`read_decay` takes
``(params, rate, mask)`` as the user states them. Parameter names are the pytree paths joined by
dots (``Dense_0.kernel``); roles come from the leaf's key (:func:`param_infos`). The result is a
:class:`regcore.reading.Reading`: a spec selecting parameters by those names, and notes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import jax

from regcore import L2, DecoupledWeightDecay, ParamInfo, Reading, Rule, Spec, select_names

#: Transformations that only scale the update by the learning rate (or a constant): a decay
#: followed by nothing else is decoupled.
_LR = ("scale_by_learning_rate", "scale", "scale_by_schedule")


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
    """``(transformation name, its closure, the mask over it)`` in the order they run."""
    name = getattr(update, "__qualname__", type(update).__name__).split(".<locals>")[0]
    env = _closure(update)
    if name == "chain" and "update_fns" in env:
        for fn in env["update_fns"]:
            yield from _steps(fn, mask)
    elif name == "with_extra_args_support" and "tx" in env:
        yield from _steps(env["tx"].update, mask)
    elif name == "masked" and "inner" in env and mask is None:
        yield from _steps(env["inner"].update, env.get("mask"))
    elif name == "masked" or _wraps(env):  # a mask in a mask, multi_transform...
        yield "wrapper", {"name": name}, mask
    else:
        yield name, env, mask


def _wraps(env: dict[str, Any]) -> bool:
    """Whether a transformation's closure holds other transformations (which it would run)."""
    values = list(env.values())
    for v in list(values):
        if isinstance(v, dict):
            values += list(v.values())
        elif isinstance(v, (list, tuple)):
            values += list(v)
    return any(hasattr(v, "update") and hasattr(v, "init") for v in values)


def _mask(mask: Any, params: Any, names: list[str]) -> list[str]:
    if mask is None:
        return names
    tree = mask(params) if callable(mask) else mask
    chosen = [bool(v) for _, v in _leaves(tree)]
    if len(chosen) != len(names):
        raise ValueError(f"mask has {len(chosen)} leaves, params {len(names)}")
    return [n for n, keep in zip(names, chosen, strict=True) if keep]


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


def read_setup(params: Any, tx: Any) -> Reading:
    """The weight decay the optax transformation ``tx`` applies to ``params``."""
    steps = list(_steps(tx.update, None))
    rules: list[Rule] = []
    decay: list[DecoupledWeightDecay] = []
    notes: list[str] = []
    for index, (name, env, mask) in enumerate(steps):
        if name == "wrapper":
            notes.append(f"{env['name']} wraps transformations regcore does not walk (a mask "
                         "inside a mask, multi_transform...): any decay inside is not read")
            continue
        if name != "add_decayed_weights":
            continue
        rate = env.get("weight_decay")
        later = [n for n, _, _ in steps[index + 1:]]
        if callable(rate):
            notes.append("add_decayed_weights with a schedule as its rate: not read")
            continue
        if not rate:
            continue
        if not any(n in _LR for n in later):
            notes.append(f"add_decayed_weights({rate:g}) after the learning-rate scaling "
                         "(p <- p + rate*p): not a decay; not read")
            continue
        unknown = [n for n in later if n not in _LR and not n.startswith("scale_by_")
                   and n != "trace"]
        if unknown:
            notes.append(f"add_decayed_weights({rate:g}) followed by {', '.join(unknown)}, "
                         "whose maths regcore does not know: not read")
            continue
        read = read_decay(params, rate, mask,
                          decoupled=all(n in _LR for n in later))
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
