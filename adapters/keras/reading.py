"""Read an existing Keras training setup back into a spec: the layers' regularizers
(``kernel_regularizer``, ``bias_regularizer``, ``gamma_regularizer``...) and the optimizer's
``weight_decay`` with its exclusions (``exclude_from_weight_decay``), as a
:class:`regcore.reading.Reading` whose rules select variables by their paths in the model
(:func:`~regcore_adapters.keras.params.model_params`).

* a regularizer regcore knows (Keras's ``L1``, ``L2``, ``L1L2``, ``OrthogonalRegularizer``,
  regcore's own) becomes its terms in the ``sum`` convention, which is Keras's
  (:func:`~regcore_adapters.keras.regularizers.from_keras`); any other is noted, not read;
* a regularizer on a frozen variable is noted: Keras's ``model.losses`` skips it;
* a layer's ``activity_regularizer`` becomes an activity item (:mod:`regcore.activity`) on its
  path, ``batch_mean`` (Keras divides each activity loss by the batch size), or ``sum`` for
  regcore's ``BatchSum``;
* ``weight_decay`` is decoupled in every Keras 3 optimizer (``v ← v − lr·wd·v``), applied to
  each trainable variable the optimizer does not exclude — asked of the optimizer itself
  (``Optimizer._use_weight_decay``, the check its update runs), so name patterns
  (``var_names``) and variable lists are read as Keras reads them.
"""

from __future__ import annotations

import re
from collections import defaultdict

import keras

from regcore import Activity, DecoupledWeightDecay, ParamInfo, Rule, Spec, SpecError, Term
from regcore.reading import Reading, select_names
from regcore_adapters.keras.params import layer_paths, model_params
from regcore_adapters.keras.regularizers import BatchSum, from_keras


def read_setup(model: keras.layers.Layer,
               optimizer: keras.optimizers.Optimizer | None = None) -> Reading:
    """The regularization ``model``'s layers and ``optimizer`` (if any) apply, as a
    :class:`regcore.reading.Reading`."""
    by_term: dict[Term, list[str]] = defaultdict(list)
    notes: list[str] = []
    params = model_params(model)
    for p in params:
        try:
            terms = from_keras(p.variable.regularizer)
        except SpecError as exc:
            notes.append(f"{p.info.name}: {exc}: not read")
            continue
        if terms and not p.info.trainable:
            notes.append(f"{p.info.name}: its regularizer is on a frozen variable, which "
                         "model.losses skips: not applied")
            continue
        for term in terms:
            by_term[term].append(p.info.name)
    decay: list[DecoupledWeightDecay] = []
    wd = None if optimizer is None else optimizer.weight_decay
    if wd:
        decayed = [p.info.name for p in params
                   if p.info.trainable and optimizer._use_weight_decay(p.variable)]
        if decayed:
            decay.append(DecoupledWeightDecay(float(wd), select_names(decayed)))
    rules = [Rule(term, select_names(names)) for term, names in by_term.items()]
    activity = _activity(model, notes)
    return Reading(Spec(rules, weight_decay=decay, activity=activity), tuple(notes))


def _activity(model: keras.layers.Layer, notes: list[str]) -> list[Activity]:
    """The layers' ``activity_regularizer``s as activity items (unknown ones noted)."""
    out = []
    for path, layer in layer_paths(model).items():
        regularizer = layer.activity_regularizer
        if regularizer is None:
            continue
        summed = isinstance(regularizer, BatchSum)
        try:
            for term in from_keras(regularizer.inner if summed else regularizer):
                out.append(Activity(term, re.escape(path), "sum" if summed else "batch_mean"))
        except SpecError as exc:
            notes.append(f"{path}: activity_regularizer: {exc}: not read")
    return out


def layer_names(model: keras.layers.Layer) -> list[str]:
    """``model``'s layers by dotted path (what :func:`read_setup`'s activity items name)."""
    return list(layer_paths(model))


def param_infos(model: keras.layers.Layer) -> list[ParamInfo]:
    """``model``'s variables as the spec sees them (the names :func:`read_setup` selects)."""
    return [p.info for p in model_params(model)]
