"""The penalty of a spec on a Keras model as a function of its variables, for a hand-written
``tf.GradientTape`` loop (TensorFlow's own kernels, :mod:`regcore_adapters.tf.functions`).

The translations that work on any Keras backend live in :mod:`regcore_adapters.keras.native`
and are re-exported here: :func:`apply_spec`, :func:`build_optimizer`, :func:`resolve`.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from regcore import Spec
from regcore.activity import refuse as refuse_activity
from regcore_adapters.keras.native import apply_spec, build_optimizer, resolve
from regcore_adapters.tf.functions import penalty_value

__all__ = ["apply_spec", "build_optimizer", "penalty", "resolve"]


def penalty(spec: Spec, model: keras.layers.Layer) -> Callable[[], tf.Tensor]:
    """A function returning the spec's penalty on ``model``'s current variables (a 0-dim tensor a
    ``tf.GradientTape`` differentiates); add it to the loss. Resolved once, here. A spec with
    activity penalties is refused: they are terms on layer outputs, added by the layers on
    each call (:func:`apply_spec`), not a function of the variables."""
    if isinstance(spec, Spec):
        refuse_activity(spec.activity, "penalty(spec, model), a function of the variables,",
                        "attach it with apply_spec(spec, model) (activity_regularizer)")
    plan, by_name = resolve(spec, model)
    variables = {a.param: by_name[a.param].variable for a in plan.penalties}

    def value() -> tf.Tensor:
        return penalty_value(plan.penalties, {k: tf.convert_to_tensor(v)
                                              for k, v in variables.items()})

    return value
