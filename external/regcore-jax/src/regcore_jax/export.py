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

Importing this module imports no JAX (and no NumPy): the snippet is only text. The
framework-free pieces every exporter shares — header comment, rules as data, run-time
selection — come from :mod:`regcore.export_support`, regcore's public kit for exporters.
"""

from __future__ import annotations

from regcore import ORTHOGONAL_EPSILON, Spec
from regcore import export_support as support

CONTRACT = (
    "regularization(params, roles) -> jax.Array: params maps dotted names to arrays in the",
    "canonical layout (kernels (fan_in, fan_out)), roles maps them to weight/bias/norm_scale/",
    "embedding/other; a 0-dim array (float32 at least; float16/bfloat16 accumulate in float32),",
    "a pure function of params: jax.grad(lambda p: data_loss(p) + regularization(p, roles)).",
    "decay(params, roles, lr) -> dict: p * (1 - lr * rate) on the decayed parameters, the same",
    "arrays elsewhere; apply it before each optimizer update (AdamW's order).",
    "float64 parameters need JAX's x64 mode (jax.enable_x64), as any float64 JAX code.",
)

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
    positive = squares != 0  # NaN/inf propagate; only an exact 0 is guarded
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
    spec = support.check_spec(spec)
    used = support.kinds(spec)
    return support.assemble(
        support.header(spec, module=__name__, framework="JAX", contract=CONTRACT),
        PRELUDE + "\n" + support.data_source(spec),
        support.selection_source(spec),
        HELPERS,
        ABS if any(kind in _NEEDS_ABS for kind in used) else "",
        NORM if any(kind in _NEEDS_NORM for kind in used) else "",
        *(KERNELS[kind] for kind in used),
        support.dispatch(spec),
        RUNTIME,
    )
