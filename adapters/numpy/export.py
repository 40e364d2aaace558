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
  ``max(‖v‖, ORTHOGONAL_EPSILON)``, a clamped row's gradient not flowing through its norm. The
  kernels are the NumPy backend's own (:mod:`regcore_adapters.numpy.penalties`), copied as
  written, with regcore's ``ORTHOGONAL_EPSILON`` as a constant.
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

IMPORTS = "import numpy as np\n"

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
    return support.snippet(spec, module=__name__, framework="NumPy", contract=CONTRACT,
                           imports=IMPORTS, runtime=RUNTIME)
