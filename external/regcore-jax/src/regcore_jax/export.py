"""A spec as a plain JAX snippet: ``export(spec) -> str`` (entry point ``regcore.exporters``,
name ``jax``).

The snippet imports ``re``, ``jax`` and ``jax.numpy`` only, never regcore, and defines:

* ``regularization(params, roles) -> jax.Array``: the spec's penalty as a 0-dim array, a pure
  function of ``params`` that ``jax.grad`` differentiates (eagerly or under ``jax.jit``, with
  ``roles`` closed over); add it to the training loss. ``params`` maps dotted names to arrays in
  the canonical layout (kernels ``(fan_in, fan_out)``, Keras's and Flax's), ``roles`` maps the
  same names to ``weight``/``bias``/``norm_scale``/``embedding``/``other``. The value is in the
  parameters' promoted dtype, float32 at least: float16/bfloat16 parameters accumulate in
  float32 (``jax.grad`` casts their gradients back). The penalty functions are the JAX backend's
  own kernels (:mod:`regcore_jax.penalties`), copied as written, with regcore's
  ``ORTHOGONAL_EPSILON`` as a constant; they give the reference's subgradients, not JAX's
  defaults: ``|x|`` is a ``custom_jvp`` with derivative ``sign(x)`` (``jnp.abs``'s is 1 at 0),
  norms go through a guarded square root (gradient 0, not NaN, for an all-zero group or row),
  the orthogonal clamp ``max(‖v‖, ORTHOGONAL_EPSILON)`` is a ``where`` (no ½/½ split at a
  tie), and the Gram matrix is a matmul at ``Precision.HIGHEST`` (no TF32 on GPUs).
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
selection, the copying of the kernels' source — come from :mod:`regcore.export_support`,
regcore's public kit for exporters.
"""

from __future__ import annotations

from regcore import Spec
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

IMPORTS = "import jax\nimport jax.numpy as jnp\n"

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
    return support.snippet(spec, module=__name__, framework="JAX", contract=CONTRACT,
                           imports=IMPORTS, runtime=RUNTIME)
