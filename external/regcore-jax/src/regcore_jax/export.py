"""A spec as a plain JAX snippet: ``export(spec) -> str`` (entry point ``regcore.exporters``,
name ``jax``).

The snippet imports ``re``, ``jax`` and ``jax.numpy`` only, never regcore, and defines:

* ``regularization(params, roles) -> jax.Array``: the spec's penalty as a 0-dim array, a pure
  function of ``params`` that ``jax.grad`` differentiates (eagerly or under ``jax.jit``, with
  ``roles`` closed over); add it to the training loss. ``params`` maps dotted names to arrays in
  the canonical layout (kernels ``(fan_in, fan_out)``, Keras's and Flax's), ``roles`` maps the
  same names to ``weight``/``bias``/``norm_scale``/``embedding``/``other``. The value is in the
  parameters' promoted dtype, float32 at least: float16/bfloat16 parameters accumulate in
  float32 (``jax.grad`` casts their gradients back). The reference's subgradients, not JAX's
  defaults: ``|x|`` is a ``custom_jvp`` with derivative ``sign(x)`` (``jnp.abs``'s is 1 at 0),
  norms go through a guarded square root (gradient 0, not NaN, for an all-zero group or row),
  the orthogonal clamp ``max(‖v‖, 1e-7)`` is a ``where`` (no ½/½ split at a tie), and the Gram
  matrix is a matmul at ``Precision.HIGHEST`` (no TF32 on GPUs).
* ``decay(params, roles, lr) -> dict``: a new dict with ``p * (1 - lr * rate)`` for the spec's
  decoupled-decay parameters and the same arrays for the others; apply it before each optimizer
  update (AdamW's order), with gradients taken at the parameters before the decay.

Selection runs when the snippet runs (at trace time under ``jax.jit``), by regcore's rules: role,
``re.fullmatch`` on the dotted name, ``ndim``, ``min_ndim``; a rule that selects nothing, a second
term of one kind on a parameter, or a term undefined for a parameter's shape raises
``ValueError``. Coefficients are written in the ``sum`` form as ``repr`` floats, which read back
to the same double, and are rounded once to the accumulation dtype.

float64 parameters need JAX's x64 mode (``jax.config.update("jax_enable_x64", True)`` or the
scoped ``jax.enable_x64(True)``), as any float64 JAX code does.

Importing this module imports no JAX (and no NumPy): the snippet is only text. It uses regcore's
public names only, so the framework-free pieces the bundled exporters share are written here
again, to the same effect (header comment, rules as data, run-time selection).
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from collections.abc import Callable, Iterable
from importlib import metadata

from regcore import ORTHOGONAL_EPSILON, TERMS, Select, Spec, SpecError, Term

CONTRACT = (
    "regularization(params, roles) -> jax.Array: params maps dotted names to arrays in the",
    "canonical layout (kernels (fan_in, fan_out)), roles maps them to weight/bias/norm_scale/",
    "embedding/other; a 0-dim array (float32 at least; float16/bfloat16 accumulate in float32),",
    "a pure function of params: jax.grad(lambda p: data_loss(p) + regularization(p, roles)).",
    "decay(params, roles, lr) -> dict: p * (1 - lr * rate) on the decayed parameters, the same",
    "arrays elsewhere; apply it before each optimizer update (AdamW's order).",
    "float64 parameters need JAX's x64 mode (jax.enable_x64), as any float64 JAX code.",
)

# -- framework-free text: header, rules as data, run-time selection ------------------------------

_BASE_FIELDS = {f.name for f in dataclasses.fields(Term)}

_FORMULAS: dict[str, Callable[[dict[str, object]], str]] = {
    "l2": lambda t: f"{t['coef']!r} * sum(w**2)",
    "l1": lambda t: f"{t['coef']!r} * sum(|w|)",
    "elastic_net": lambda t: f"{t['l1']!r} * sum(|w|) + {t['l2']!r} * sum(w**2)",
    "group_lasso": lambda t: (
        f"{t['coef']!r}{' * sqrt(group size)' if t['scale_by_size'] else ''} * sum over the "
        f"slices g along axis {t['axis']} of ||w_g||_2 (an all-zero group has subgradient 0)"
    ),
    "orthogonal": lambda t: (
        f"{t['coef']!r} * mean |cosine| between distinct {t['mode']} of w, each divided by "
        "max(||v||, 1e-7) (Keras OrthogonalRegularizer)"
    ),
}
"""The penalty each term kind adds, in words, from its sum-form coefficients and options."""


def _regcore_version() -> str:
    try:
        return metadata.version("regcore")
    except metadata.PackageNotFoundError:  # pragma: no cover - regcore run from a source tree
        return "(version unknown)"


def check_spec(spec: object) -> Spec:
    """``spec`` itself; anything but a :class:`regcore.Spec` is a :class:`regcore.SpecError`."""
    if not isinstance(spec, Spec):
        raise SpecError(f"spec: expected a regcore.Spec, got {type(spec).__name__} {spec!r}")
    return spec


def kinds(spec: Spec) -> tuple[str, ...]:
    """The term kinds ``spec`` uses, in :data:`regcore.TERMS` order."""
    used = {rule.term.kind for rule in spec.penalties}
    return tuple(kind for kind in TERMS if kind in used)


def term_data(term: Term) -> dict[str, object]:
    """``kind``, the ``sum``-form coefficients and the options (axis, mode...) of ``term``."""
    options = {f.name: getattr(term, f.name) for f in dataclasses.fields(term)
               if f.name not in _BASE_FIELDS and f.name not in term.coefficients}
    return {"kind": term.kind, **term.scaled(), **options}


def select_data(select: Select) -> dict[str, object]:
    """The criteria ``select`` sets (``roles``, ``name``, ``ndim``, ``min_ndim``)."""
    data = {"roles": select.roles, "name": select.name, "ndim": select.ndim,
            "min_ndim": select.min_ndim}
    return {key: value for key, value in data.items() if value is not None}


def describe_select(select: Select) -> str:
    """``select`` in words."""
    parts = []
    if select.roles is not None:
        parts.append(f"role {' or '.join(select.roles)}")
    if select.name is not None:
        shown = select.name if select.name.isprintable() else repr(select.name)
        parts.append(f"the whole dotted name matching the regex {shown}")
    if select.ndim is not None:
        parts.append(f"ndim {' or '.join(map(str, select.ndim))}")
    if select.min_ndim is not None:
        parts.append(f"ndim >= {select.min_ndim}")
    return "parameters with " + " and ".join(parts) if parts else "every parameter"


def header(spec: Spec, *, contract: Iterable[str]) -> str:
    """The comment block the snippet starts with: provenance, the spec in words, the contract."""
    lines = [
        *textwrap.wrap(f"Exported by regcore {_regcore_version()} ({__name__}): plain JAX, no "
                       "regcore import.", width=98),
        "",
        "The spec in words (the code uses the canonical sum-form coefficients):",
    ]
    for i, rule in enumerate(spec.penalties):
        data = term_data(rule.term)
        scaled = ", ".join(f"{k}={v!r}" for k, v in rule.term.scaled().items())
        lines += [f"  penalties[{i}]: {rule.term!r}",
                  *_wrap(f"adds {_FORMULAS[rule.term.kind](data)} [sum form: {scaled}]"),
                  *_wrap(f"on {describe_select(rule.select)}")]
    for i, item in enumerate(spec.weight_decay):
        lines += [f"  weight_decay[{i}]: DecoupledWeightDecay({item.rate!r})",
                  *_wrap(f"p <- p * (1 - lr * {item.rate!r}) before each update, not part of "
                         "the penalty"),
                  *_wrap(f"on {describe_select(item.select)}")]
    if not spec.penalties and not spec.weight_decay:
        lines.append("  (empty: no penalty, no decay)")
    lines += [
        "A rule that selects no parameter, or gives a parameter a second term of one kind, or a",
        "term on a parameter it is undefined for, raises ValueError when the code runs.",
        "",
        *contract,
    ]
    return "\n".join(f"# {line}".rstrip() for line in lines) + "\n"


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, width=96, initial_indent="    ", subsequent_indent="      ",
                         break_long_words=False, break_on_hyphens=False)


def data_source(spec: Spec) -> str:
    """``PENALTIES`` and ``DECAY``: the spec's rules as literal data."""
    out = ["PENALTIES = ("]
    for i, rule in enumerate(spec.penalties):
        out += [f"    # penalties[{i}]: {rule.term!r}",
                f"    {{{_items(term_data(rule.term))},",
                f'     "select": {_literal(select_data(rule.select))}}},']
    out += [")", "DECAY = ("]
    for i, item in enumerate(spec.weight_decay):
        out += [f"    # weight_decay[{i}]: DecoupledWeightDecay({item.rate!r})",
                f'    {{"rate": {item.rate!r}, "select": {_literal(select_data(item.select))}}},']
    out.append(")")
    return "\n".join(out) + "\n"


def _items(data: dict[str, object]) -> str:
    return ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in data.items())


def _literal(value: object) -> str:
    """A Python literal for ``value``: strings double-quoted (``json.dumps`` writes only escapes
    Python reads the same), floats as ``repr`` (which reads back to the same double)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(map(_literal, value)) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + _items(value) + "}"
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    raise TypeError(f"no literal for {type(value).__name__} {value!r}")


_SELECTION = '''\
def _describe(select):
    parts = [f"{key}={value!r}" for key, value in select.items()]
    return f"Select({', '.join(parts)})"


def _matches(select, name, role, shape):
    """Every criterion given holds: roles (any of), name (re.fullmatch), ndim (any of),
    min_ndim; a criterion left out matches everything."""
    return (("roles" not in select or role in select["roles"])
            and ("name" not in select or re.fullmatch(select["name"], name) is not None)
            and ("ndim" not in select or len(shape) in select["ndim"])
            and ("min_ndim" not in select or len(shape) >= select["min_ndim"]))


def _select(where, select, infos):
    """Names of the parameters ``select`` matches, in order; ValueError if there are none."""
    chosen = [name for name, role, shape in infos if _matches(select, name, role, shape)]
    if not chosen:
        available = ", ".join(f"{n} ({r}, ndim {len(s)})" for n, r, s in infos) or "none"
        raise ValueError(
            f"{where}: {_describe(select)} selects no parameter; available: {available}")
    return chosen
{check_shape}

def _penalty_plan(infos):
    """(name, rule) pairs in rule order; ``infos`` are (name, role, canonical shape) triples."""
    {shapes}plan, first = [], {}
    for i, rule in enumerate(PENALTIES):
        for name in _select(f"penalties[{i}]", rule["select"], infos):
            {check_call}other = first.setdefault((name, rule["kind"]), i)
            if other != i:
                raise ValueError(
                    f"penalties[{i}]: parameter {name!r} already gets a {rule['kind']} term "
                    f"from penalties[{other}]; narrow one selection or merge the rules")
            plan.append((name, rule))
    return plan


def _decay_plan(infos):
    """{name: rate} of the decoupled weight decay."""
    rates, owner = {}, {}
    for i, item in enumerate(DECAY):
        for name in _select(f"weight_decay[{i}]", item["select"], infos):
            if name in owner:
                raise ValueError(f"weight_decay[{i}]: parameter {name!r} is already decayed "
                                 f"by weight_decay[{owner[name]}]")
            owner[name], rates[name] = i, item["rate"]
    return rates
'''

_SHAPE_CHECKS = {
    "group_lasso": '''\
    if rule["kind"] == "group_lasso" and not -len(shape) <= rule["axis"] < len(shape):
        raise ValueError(f"group_lasso.axis: axis {rule['axis']} is out of range for parameter "
                         f"{name!r} of shape {shape}")
''',
    "orthogonal": '''\
    if rule["kind"] == "orthogonal":
        if len(shape) != 2:
            raise ValueError(f"orthogonal: parameter {name!r} has shape {shape}; needs a 2-D "
                             "parameter")
        size = shape[0] if rule["mode"] == "rows" else shape[1]
        if size < 2:
            raise ValueError(f"orthogonal.mode: parameter {name!r} of shape {shape} has {size} "
                             f"{rule['mode']}; needs at least 2")
''',
}


def selection_source(spec: Spec) -> str:
    """The run-time selection and resolution functions (they read ``PENALTIES``/``DECAY``), with
    shape checks for the term kinds ``spec`` uses that are undefined for some shapes."""
    checks = [_SHAPE_CHECKS[kind] for kind in kinds(spec) if kind in _SHAPE_CHECKS]
    check_shape = ("\n\ndef _check_shape(rule, name, shape):\n"
                   '    """ValueError where the term is undefined for a parameter of `shape`."""\n'
                   + "".join(checks)) if checks else ""
    shapes = "shapes = {name: shape for name, _, shape in infos}\n    " if checks else ""
    check_call = "_check_shape(rule, name, shapes[name])\n            " if checks else ""
    return (_SELECTION.replace("{check_shape}", check_shape).replace("{shapes}", shapes)
            .replace("{check_call}", check_call))


def dispatch(spec: Spec) -> str:
    """``_KERNELS``: term kind -> the snippet's function ``_<kind>``, for the kinds used."""
    items = [f'"{kind}": _{kind}' for kind in kinds(spec)]
    line = f"_KERNELS = {{{', '.join(items)}}}"
    if len(line) <= 100:
        return line + "\n"
    return "_KERNELS = {\n" + "".join(f"    {item},\n" for item in items) + "}\n"


def assemble(header_text: str, *parts: str) -> str:
    """The header, a blank line, then the source parts joined by two blank lines."""
    body = "\n\n\n".join(part.strip("\n") for part in parts if part.strip())
    return f"{header_text.rstrip()}\n\n{body}\n"


# -- the JAX code --------------------------------------------------------------------------------

PRELUDE = '''\
import re

import jax
import jax.numpy as jnp
'''

HELPERS = '''\
def _coef(value, w):
    """A coefficient as a 0-dim array of w's dtype (one rounding of the float64 value)."""
    return jnp.asarray(value, dtype=w.dtype)


def _accumulate(w):
    """w in the dtype its penalty accumulates in: float32 for float16/bfloat16, else its own."""
    return w.astype(jnp.promote_types(w.dtype, jnp.float32))
'''

ABS = '''\
@jax.custom_jvp
def _abs0(x):
    """|x| with derivative sign(x): 0 at x = 0 (jnp.abs's is 1 there)."""
    return jnp.abs(x)


@_abs0.defjvp
def _abs0_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return jnp.abs(x), jnp.sign(x) * t
'''

NORM = '''\
def _norm(x, axis, keepdims=False):
    """||x||_2 along axis, with gradient 0 (not NaN) where it is 0: sqrt never sees a 0."""
    squares = jnp.sum(x * x, axis=axis, keepdims=keepdims)
    positive = squares > 0
    root = jnp.sqrt(jnp.where(positive, squares, jnp.ones_like(squares)))
    return jnp.where(positive, root, jnp.zeros_like(squares))
'''

KERNELS = {
    "l2": '''\
def _l2(rule, w):
    return _coef(rule["coef"], w) * jnp.sum(w * w)
''',
    "l1": '''\
def _l1(rule, w):
    return _coef(rule["coef"], w) * jnp.sum(_abs0(w))
''',
    "elastic_net": '''\
def _elastic_net(rule, w):
    s1, s2 = _coef(rule["l1"], w), _coef(rule["l2"], w)
    return s1 * jnp.sum(_abs0(w)) + s2 * jnp.sum(w * w)
''',
    "group_lasso": '''\
def _group_lasso(rule, w):
    """coef * c * sum of the slices' L2 norms along axis (canonical layout)."""
    axis = rule["axis"] % w.ndim
    groups = jnp.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    coef = _coef(rule["coef"], w)
    if rule["scale_by_size"]:
        coef = coef * jnp.sqrt(_coef(float(groups.shape[1]), w))
    return coef * jnp.sum(_norm(groups, 1))
''',
    "orthogonal": '''\
def _orthogonal(rule, w):
    """coef * 0.5 * sum_{i != j} |G_ij| / (k (k - 1) / 2), G the Gram matrix of the k rows
    (columns) of w (canonical layout) each divided by max(||v||, {eps})."""
    rows = w if rule["mode"] == "rows" else w.T
    size = rows.shape[0]
    norms = _norm(rows, 1, keepdims=True)
    eps = _coef({eps}, w)
    v = rows * (1 / jnp.where(norms <= eps, eps, norms))  # a clamped row: no gradient via norm
    gram = jnp.matmul(v, v.T, precision=jax.lax.Precision.HIGHEST)
    off = 1 - jnp.eye(size, dtype=w.dtype)
    c = _coef(rule["coef"], w) * _coef(0.5, w) / _coef(size * (size - 1) / 2, w)
    return c * jnp.sum(_abs0(gram * off))
'''.replace("{eps}", repr(ORTHOGONAL_EPSILON)),
}

_NEEDS_ABS = ("l1", "elastic_net", "orthogonal")
_NEEDS_NORM = ("group_lasso", "orthogonal")

RUNTIME = '''\
def _infos(params, roles):
    missing = [name for name in params if name not in roles]
    if missing:
        raise ValueError(f"roles: no role for parameter(s) {missing}")
    return [(name, roles[name], tuple(jnp.shape(w))) for name, w in params.items()]


def regularization(params, roles):
    """The spec's penalty on params (canonical layout): a 0-dim array, pure in params, that
    jax.grad differentiates."""
    plan = _penalty_plan(_infos(params, roles))
    params = {name: jnp.asarray(w) for name, w in params.items()}
    dtype = jnp.dtype(jnp.float32)
    for w in params.values():
        dtype = jnp.promote_types(dtype, w.dtype)
    total = jnp.zeros((), dtype=dtype)
    for name, rule in plan:
        total = total + _KERNELS[rule["kind"]](rule, _accumulate(params[name])).astype(dtype)
    return total


def decay(params, roles, lr):
    """A new dict: p * (1 - lr * rate) for the decayed parameters, the others as they are."""
    rates = _decay_plan(_infos(params, roles))
    out = dict(params)
    for name, rate in rates.items():
        w = jnp.asarray(params[name])
        out[name] = w * jnp.asarray(1 - lr * rate, dtype=w.dtype)
    return out
'''


def export(spec: Spec) -> str:
    """``spec`` as a JAX snippet (see the module docstring for its contract)."""
    spec = check_spec(spec)
    used = kinds(spec)
    return assemble(
        header(spec, contract=CONTRACT),
        PRELUDE + "\n" + data_source(spec),
        selection_source(spec),
        HELPERS,
        ABS if any(kind in _NEEDS_ABS for kind in used) else "",
        NORM if any(kind in _NEEDS_NORM for kind in used) else "",
        *(KERNELS[kind] for kind in used),
        dispatch(spec),
        RUNTIME,
    )
