"""A spec as a plain Keras 3 + TensorFlow snippet: ``export(spec) -> str`` (entry point
``regcore.exporters``).

The snippet imports ``re``, ``keras`` and ``tensorflow`` only, never regcore, and defines:

* ``regularization(model) -> tf.Tensor``: the spec's penalty on a built Keras model's (or layer's)
  trainable variables, a 0-dim tensor that ``tf.GradientTape`` differentiates; add it to the
  training loss. Variables are named by the layer path from the model down plus the variable's
  name (``dense_0.kernel``; the top model's own name left out) and get their role from the
  owning layer's type, as :mod:`regcore_adapters.tf.keras_params` does (normalization layers:
  ``gamma``/``scale`` → ``norm_scale``, ``beta`` → ``bias``; ``Embedding``: ``embedding``; other
  layers: ``*bias*`` → ``bias``, ``ndim >= 2`` → ``weight``, else ``other``). Keras's kernel layout
  is the canonical one. ``tf.abs`` has subgradient 0 at 0; norms go through a guarded square
  root, so an all-zero group or row has gradient 0, not NaN. float16/bfloat16 variables accumulate
  in float32. It runs eagerly and inside ``tf.function`` (with or without XLA).
* ``decay(model, lr)``: ``v.assign(v * (1 - lr * rate))`` for the spec's decoupled-decay variables;
  call it before ``optimizer.apply_gradients`` (AdamW's order).

Selection runs when the snippet runs, by regcore's rules; a rule that selects nothing raises
``ValueError``. Importing this module imports no TensorFlow or Keras: the snippet is only text.
"""

from __future__ import annotations

from regcore import Spec
from regcore import export_support as support

CONTRACT = (
    "regularization(model) -> tf.Tensor: the penalty on a built Keras model's trainable",
    "variables (roles from layer types, names layer.path.variable), 0-dim, differentiable by",
    "tf.GradientTape: loss = data_loss + regularization(model).",
    "decay(model, lr): v.assign(v * (1 - lr * rate)) on the decayed variables; call it before",
    "optimizer.apply_gradients (AdamW's order).",
)

PRELUDE = '''\
import re

import keras
import tensorflow as tf
'''

KERNELS = {
    "l2": '''\
def _l2(rule, w):
    return _coef(rule["coef"], w) * tf.reduce_sum(w * w)
''',
    "l1": '''\
def _l1(rule, w):
    return _coef(rule["coef"], w) * tf.reduce_sum(tf.abs(w))  # abs'(0) = 0 in TF
''',
    "elastic_net": '''\
def _elastic_net(rule, w):
    s1, s2 = _coef(rule["l1"], w), _coef(rule["l2"], w)
    return s1 * tf.reduce_sum(tf.abs(w)) + s2 * tf.reduce_sum(w * w)
''',
    "group_lasso": '''\
def _group_lasso(rule, w):
    """coef * c * sum of the slices' L2 norms along axis."""
    ndim = len(w.shape)
    axis = rule["axis"] % ndim
    moved = tf.transpose(w, [axis, *(i for i in range(ndim) if i != axis)]) if axis else w
    groups = tf.reshape(moved, (w.shape[axis], -1))
    coef = _coef(rule["coef"], w)
    if rule["scale_by_size"]:
        coef = coef * tf.sqrt(_coef(float(groups.shape[1]), w))
    return coef * tf.reduce_sum(_norm(groups, 1))
''',
    "orthogonal": '''\
def _orthogonal(rule, w):
    """coef * 0.5 * sum_{i != j} |G_ij| / (k (k - 1) / 2), G the Gram matrix of the k rows
    (columns) of w each divided by max(||v||, 1e-7)."""
    rows = w if rule["mode"] == "rows" else tf.transpose(w)
    size = int(rows.shape[0])
    norms = _norm(rows, 1, keepdims=True)
    eps = _coef(1e-7, w)
    v = rows * (1 / tf.where(norms > eps, norms, eps))  # a clamped row: no gradient via norm
    gram = tf.matmul(v, v, transpose_b=True)
    off = 1 - tf.eye(size, dtype=w.dtype)
    c = _coef(rule["coef"], w) * _coef(0.5, w) / _coef(size * (size - 1) / 2, w)
    return c * tf.reduce_sum(tf.abs(gram * off))
''',
}

HELPERS = '''\
def _coef(value, w):
    return tf.constant(value, dtype=w.dtype)


def _accumulate(w):
    """w in the dtype its penalty accumulates in: float32 for float16/bfloat16, else its own."""
    return tf.cast(w, tf.float32) if w.dtype in (tf.float16, tf.bfloat16) else w
'''

NORM = '''\
def _norm(x, axis, keepdims=False):
    """||x||_2 along axis, with gradient 0 (not NaN) where it is 0: sqrt never sees a 0."""
    squares = tf.reduce_sum(x * x, axis=axis, keepdims=keepdims)
    positive = squares != 0  # NaN/inf propagate; only an exact 0 is guarded
    root = tf.sqrt(tf.where(positive, squares, tf.ones_like(squares)))
    return tf.where(positive, root, tf.zeros_like(squares))
'''

RUNTIME = '''\
_NORMS = tuple(getattr(keras.layers, n) for n in (
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization")
    if hasattr(keras.layers, n))


def _role(layer, variable):
    name, ndim = variable.name, len(variable.shape)
    if isinstance(layer, _NORMS):
        return "bias" if name == "beta" else "norm_scale"
    if isinstance(layer, keras.layers.Embedding) and name == "embeddings":
        return "embedding"
    if "bias" in name:
        return "bias"
    return "weight" if ndim >= 2 else "other"


def _walk(layer, prefix, seen):
    # Keras 3 has no public accessor for a layer's direct sublayers; Layer.losses walks these.
    for child in layer._flatten_layers(include_self=False, recursive=False):
        if id(child) not in seen:  # a shared layer once, under its first path
            seen.add(id(child))
            yield prefix + child.name, child
            yield from _walk(child, f"{prefix}{child.name}.", seen)


def _variables(model):
    """{dotted name: (role, variable)} for every trainable variable, in layer order."""
    if not model.built:
        raise ValueError(f"model: {model.name!r} is not built, so it has no variables yet")
    out = {}
    for path, layer in [("", model), *_walk(model, "", {id(model)})]:
        for variable in layer._trainable_variables:  # the layer's own, not its sublayers'
            name = f"{path}.{variable.name}" if path else variable.name
            out[name] = (_role(layer, variable), variable)
    return out


def _infos(variables):
    return [(name, role, tuple(v.shape)) for name, (role, v) in variables.items()]


def regularization(model):
    """The spec's penalty on model's trainable variables: a 0-dim tensor (tf.GradientTape)."""
    variables = _variables(model)
    plan = _penalty_plan(_infos(variables))
    wide = any(tf.as_dtype(v.dtype) == tf.float64 for _, v in variables.values())
    dtype = tf.float64 if wide else tf.float32
    total = tf.zeros((), dtype=dtype)
    for name, rule in plan:
        w = _accumulate(variables[name][1].value)
        total = total + tf.cast(_KERNELS[rule["kind"]](rule, w), dtype)
    return total


def decay(model, lr):
    """v <- v * (1 - lr * rate) for the decayed variables."""
    variables = _variables(model)
    for name, rate in _decay_plan(_infos(variables)).items():
        variable = variables[name][1]
        variable.assign(variable.value * (1 - lr * rate))
'''


def export(spec: Spec) -> str:
    """``spec`` as a Keras 3 + TensorFlow snippet (see the module docstring for its contract)."""
    spec = support.check_spec(spec)
    used = support.kinds(spec)
    needs_norm = any(kind in ("group_lasso", "orthogonal") for kind in used)
    return support.assemble(
        support.header(spec, module=__name__, framework="Keras 3 + TensorFlow",
                       contract=CONTRACT),
        PRELUDE + "\n" + support.data_source(spec),
        support.selection_source(spec),
        HELPERS,
        NORM if needs_norm else "",
        *(KERNELS[kind] for kind in used),
        support.dispatch(spec),
        RUNTIME,
    )
