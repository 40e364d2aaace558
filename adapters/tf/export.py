"""A spec as a plain Keras 3 + TensorFlow snippet: ``export(spec) -> str`` (entry point
``regcore.exporters``).

The snippet imports ``re``, ``keras`` and ``tensorflow`` only, never regcore, and defines:

* ``regularization(model) -> tf.Tensor``: the spec's penalty on a built Keras model's (or layer's)
  trainable variables, a 0-dim tensor that ``tf.GradientTape`` differentiates; add it to the
  training loss. Variables are named by the layer path from the model down plus the variable's
  name (``dense_0.kernel``; the top model's own name left out) and get their role from the
  owning layer's type, as :mod:`regcore_adapters.keras.params` does (normalization layers:
  ``gamma``/``scale`` → ``norm_scale``, ``beta`` → ``bias``; ``Embedding``: ``embedding``; other
  layers: ``*bias*`` → ``bias``, ``ndim >= 2`` → ``weight``, else ``other``; the snippet holds
  that ``_role`` itself, copied as written). Keras's kernel layout is the canonical one. The
  penalty functions are the TF backend's own kernels (:mod:`regcore_adapters.tf.penalties`),
  copied as written, with regcore's ``ORTHOGONAL_EPSILON`` as a constant: ``tf.abs`` has
  subgradient 0 at 0; norms go through a guarded square root, so an all-zero group or row has
  gradient 0, not NaN. float16/bfloat16 variables accumulate in float32. It runs eagerly and
  inside ``tf.function`` (with or without XLA).
* ``decay(model, lr)``: ``v.assign(v * (1 - lr * rate))`` for the spec's decoupled-decay variables;
  call it before ``optimizer.apply_gradients`` (AdamW's order).

Selection runs when the snippet runs, by regcore's rules; a rule that selects nothing raises
``ValueError``. Importing this module imports no TensorFlow or Keras: the snippet is only text.
"""

from __future__ import annotations

from pathlib import Path

from regcore import Spec
from regcore import export_support as support

CONTRACT = (
    "regularization(model) -> tf.Tensor: the penalty on a built Keras model's trainable",
    "variables (roles from layer types, names layer.path.variable), 0-dim, differentiable by",
    "tf.GradientTape: loss = data_loss + regularization(model).",
    "decay(model, lr): v.assign(v * (1 - lr * rate)) on the decayed variables; call it before",
    "optimizer.apply_gradients (AdamW's order).",
)

IMPORTS = "import keras\nimport tensorflow as tf\n"

ROLES = Path(__file__).parent.parent / "keras" / "params.py"
"""The backend's role inference, ``_role(layer, variable)``, copied as written too."""

RUNTIME = '''\
def _walk(layer, prefix, seen):
    # Keras 3 has no public accessor for a layer's direct sublayers; Layer.losses walks these.
    for child in layer._flatten_layers(include_self=False, recursive=False):
        if id(child) not in seen:  # a shared layer once, under its first path
            seen.add(id(child))
            yield prefix + child.name, child
            yield from _walk(child, f"{prefix}{child.name}.", seen)


def _variables(model):
    """{dotted name: (role, variable, why it has no canonical layout or "")} for every
    trainable variable, in layer order."""
    if not model.built:
        raise ValueError(f"model: {model.name!r} is not built, so it has no variables yet")
    out = {}
    for path, layer in [("", model), *_walk(model, "", {id(model)})]:
        for variable in layer._trainable_variables:  # the layer's own, not its sublayers'
            name = f"{path}.{variable.name}" if path else variable.name
            out[name] = (_role(layer, variable), variable, _noncanonical(layer, variable))
    return out


def _infos(variables):
    return [(name, role, tuple(v.shape)) for name, (role, v, _) in variables.items()]


def _noncanonical_of(variables):
    return {name: why for name, (_, _, why) in variables.items() if why}


def regularization(model):
    """The spec's penalty on model's trainable variables: a 0-dim tensor (tf.GradientTape)."""
    variables = _variables(model)
    plan = _penalty_plan(_infos(variables), _noncanonical_of(variables))
    wide = any(tf.as_dtype(v.dtype) == tf.float64 for _, v, _ in variables.values())
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
    return support.snippet(spec, module=__name__, framework="Keras 3 + TensorFlow",
                           contract=CONTRACT, imports=IMPORTS, runtime=RUNTIME,
                           helpers=[support.definitions(ROLES, ["_role", "_noncanonical"])])
