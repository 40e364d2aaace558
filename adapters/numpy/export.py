"""A spec as a plain NumPy snippet: ``export(spec) -> str`` (entry point ``regcore.exporters``).

The snippet imports ``re`` and ``numpy`` only, never regcore, and defines:

* ``regularization(params, roles) -> (value, grads)``: ``params`` maps dotted names to arrays in
  the canonical layout (kernels ``(fan_in, fan_out)``, Keras's), ``roles`` maps the same names to
  ``weight``/``bias``/``norm_scale``/``embedding``/``other``. ``value`` is the penalty as a NumPy
  float scalar (``np.float64``, which is a Python ``float``, for float64 parameters; ``np.float32``
  for float32, float16 and bfloat16 ones, which accumulate in float32) and ``grads`` maps every
  name to the penalty's (sub)gradient in the parameter's dtype (zeros where it has no term). The
  gradients are written by hand with the reference's subgradients: ``|x|'(0) = 0``, an all-zero
  group lasso group has gradient 0, and the orthogonal term divides a row by
  ``max(‖v‖, 1e-7)``, a clamped row's gradient not flowing through its norm.
* ``decay(params, roles, lr) -> dict``: a new dict with ``p * (1 - lr * rate)`` for the spec's
  decoupled-decay parameters and the same arrays for the others; call it before each optimizer
  update (AdamW's order), with gradients taken at the parameters before the decay.

Selection runs when the snippet runs, by regcore's rules; a rule that selects nothing raises
``ValueError``. Importing this module imports no NumPy: the snippet is only text.
"""

from __future__ import annotations

from regcore import Spec
from regcore import export_support as support

CONTRACT = (
    "regularization(params, roles) -> (value, grads): params maps dotted names to arrays in the",
    "canonical layout (kernels (fan_in, fan_out)), roles maps them to weight/bias/norm_scale/",
    "embedding/other; value is a NumPy float scalar (float32 for float32/float16 parameters),",
    "grads the (sub)gradient of every parameter in its dtype, derived by hand.",
    "decay(params, roles, lr) -> dict: p * (1 - lr * rate) on the decayed parameters, the same",
    "arrays elsewhere; apply it before each optimizer update (AdamW's order).",
)

PRELUDE = '''\
import re

import numpy as np
'''

HELPERS = '''\
def _accumulate(w):
    """w in the dtype its penalty accumulates in: float32 for float16/bfloat16, else its own."""
    return w.astype(np.promote_types(w.dtype, np.float32), copy=False)
'''

KERNELS = {
    "l2": '''\
def _l2(rule, w):
    s = np.asarray(rule["coef"], dtype=w.dtype)
    return s * np.sum(w * w), (2 * s) * w
''',
    "l1": '''\
def _l1(rule, w):
    s = np.asarray(rule["coef"], dtype=w.dtype)
    return s * np.sum(np.abs(w)), s * np.sign(w)  # sign(0) = 0: the subgradient at 0
''',
    "elastic_net": '''\
def _elastic_net(rule, w):
    s1, s2 = np.asarray(rule["l1"], dtype=w.dtype), np.asarray(rule["l2"], dtype=w.dtype)
    return s1 * np.sum(np.abs(w)) + s2 * np.sum(w * w), s1 * np.sign(w) + (2 * s2) * w
''',
    "group_lasso": '''\
def _group_lasso(rule, w):
    """coef * c * sum of the slices' L2 norms along axis; an all-zero group has gradient 0."""
    axis = rule["axis"]
    moved = np.moveaxis(w, axis, 0)
    groups = moved.reshape(w.shape[axis], -1)
    norms = np.sqrt(np.sum(groups * groups, axis=1))
    s = np.asarray(rule["coef"], dtype=w.dtype)
    if rule["scale_by_size"]:
        s = s * np.sqrt(np.asarray(groups.shape[1], dtype=w.dtype))
    safe = np.where(norms != 0, norms, 1)  # NaN/inf norms propagate, not 0
    unit = np.where((norms != 0)[:, None], groups / safe[:, None], 0)
    return s * np.sum(norms), np.moveaxis((s * unit).reshape(moved.shape), 0, axis)
''',
    "orthogonal": '''\
def _orthogonal(rule, w):
    """coef * 0.5 * sum_{i != j} |G_ij| / (k (k - 1) / 2), G the Gram matrix of the k rows
    (columns) of w each divided by max(||v||, 1e-7); |.| has subgradient 0 at 0."""
    rows = w if rule["mode"] == "rows" else w.T
    size = rows.shape[0]
    eps = np.asarray(1e-7, dtype=w.dtype)
    norms = np.sqrt(np.sum(rows * rows, axis=1, keepdims=True))
    clamped = norms <= eps
    inv = 1 / np.maximum(norms, eps)
    v = rows * inv
    gram = v @ v.T
    off = 1 - np.eye(size, dtype=w.dtype)
    c = (np.asarray(rule["coef"], dtype=w.dtype) * np.asarray(0.5, dtype=w.dtype)
         / np.asarray(size * (size - 1) / 2, dtype=w.dtype))
    dgram = c * np.sign(gram) * off
    dv = (dgram + dgram.T) @ v
    radial = np.sum(v * dv, axis=1, keepdims=True)
    drows = np.where(clamped, dv * inv, (dv - v * radial) * inv)
    return c * np.sum(np.abs(gram * off)), drows if rule["mode"] == "rows" else drows.T
''',
}

RUNTIME = '''\
def _infos(params, roles):
    missing = [name for name in params if name not in roles]
    if missing:
        raise ValueError(f"roles: no role for parameter(s) {missing}")
    return [(name, roles[name], tuple(np.shape(w))) for name, w in params.items()]


def regularization(params, roles):
    """The spec's penalty on params (canonical layout) and its (sub)gradient for every name."""
    plan = _penalty_plan(_infos(params, roles))
    params = {name: np.asarray(w) for name, w in params.items()}
    dtype = np.result_type(np.float32, *(w.dtype for w in params.values()))
    total = np.zeros((), dtype=dtype)
    grads = {name: np.zeros_like(w) for name, w in params.items()}
    for name, rule in plan:
        w = params[name]
        value, grad = _KERNELS[rule["kind"]](rule, _accumulate(w))
        total = total + value.astype(dtype)
        grads[name] = grads[name] + grad.astype(w.dtype)
    return total[()], grads


def decay(params, roles, lr):
    """A new dict: p * (1 - lr * rate) for the decayed parameters, the others as they are."""
    rates = _decay_plan(_infos(params, roles))
    return {name: w * np.asarray(1 - lr * rates[name], dtype=np.asarray(w).dtype)
            if name in rates else w for name, w in params.items()}
'''


def export(spec: Spec) -> str:
    """``spec`` as a NumPy snippet (see the module docstring for its contract)."""
    spec = support.check_spec(spec)
    used = support.kinds(spec)
    return support.assemble(
        support.header(spec, module=__name__, framework="NumPy", contract=CONTRACT),
        PRELUDE + "\n" + support.data_source(spec),
        support.selection_source(spec),
        HELPERS,
        *(KERNELS[kind] for kind in used),
        support.dispatch(spec),
        RUNTIME,
    )
