"""A spec applied to a Keras 3 model the way a Keras user would write it by hand, on any Keras
backend (tensorflow, jax, torch: ``keras`` only, never ``tensorflow``).

* :func:`apply_spec` — penalties as the layers' own regularizers (``kernel_regularizer``,
  ``bias_regularizer``, ``gamma_regularizer``, ``embeddings_regularizer``...), so ``model.losses``
  carries exactly the spec's penalty, ``model.fit`` adds it to the loss, and a saved ``.keras``
  model reloads with it;
* :func:`build_optimizer` — decoupled weight decay as a Keras optimizer's ``weight_decay`` with
  ``exclude_from_weight_decay`` for the variables the spec does not decay.

For a hand-written ``tf.GradientTape`` loop that does not want regularizers on the layers,
:func:`regcore_adapters.tf.keras_native.penalty` is the penalty as a function of the
variables.

Use :func:`apply_spec` and :func:`build_optimizer` together for a spec with both parts: penalties
never become ``weight_decay`` (Keras's is decoupled: ``v ← v − lr·wd·v``, not the gradient of
a loss term).

Keras keeps an optimizer's learning rate in ``keras.config.floatx()``; a float64 model trained
with the default float32 floatx steps by the float32 rounding of ``lr``. Set
``keras.config.set_floatx("float64")`` before building the optimizer for float64 work.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from regcore import Plan, Spec, SpecError
from regcore_adapters.keras.params import KerasParam, layer_paths, model_params
from regcore_adapters.keras.regularizers import activity_to_keras, to_keras


def resolve(spec: Spec, model: keras.layers.Layer) -> tuple[Plan, dict[str, KerasParam]]:
    """``spec`` resolved against ``model``'s trainable variables (:func:`model_params`) and, for
    its activity items, its layers by dotted path (:func:`layer_paths`)."""
    if not isinstance(spec, Spec):
        raise SpecError(f"spec: expected a regcore.Spec, got {type(spec).__name__}")
    params = model_params(model)
    return (spec.resolve([p.info for p in params], list(layer_paths(model))),
            {p.info.name: p for p in params})


def apply_spec(spec: Spec, model: keras.layers.Layer, *, replace: bool = False) -> Plan:
    """Attach ``spec``'s penalties to ``model`` (in place) as regularizers; return the plan.

    Each selected variable gets one regularizer (:func:`~regcore_adapters.keras.regularizers.
    to_keras`: Keras's ``L1``/``L2``/``L1L2`` where that is the same maths, else a registered
    ``SpecRegularizer``), set both on the variable (which ``model.losses`` reads) and on the
    owning layer's attribute (which ``get_config`` saves). Unselected variables are left alone.

    Frozen variables (``trainable=False``) are not selected unless the spec asks with
    ``include_frozen=True``, which is refused here: Keras's ``model.losses`` skips them.

    Raises :class:`regcore.SpecError` if a selected variable already has a regularizer (the
    penalty would no longer be the spec's; pass ``replace=True`` to overwrite it) or if its layer
    has no regularizer attribute Keras would save (attach with :func:`penalty` instead). The
    spec's decoupled weight decay is not a loss term: see :func:`build_optimizer`.
    """
    plan, by_name = resolve(spec, model)
    chosen: dict[str, list[Any]] = {}
    for a in plan.penalties:
        chosen.setdefault(a.param, []).append(a.term)
    for name in chosen:  # check everything before changing anything
        p = by_name[name]
        if not p.info.trainable:
            raise SpecError(
                f"param {name!r} is frozen (trainable=False), and Keras's model.losses skips the "
                "regularizers of non-trainable variables, so a regularizer on it would add "
                "nothing; the spec selects it with include_frozen=True: add its penalty with "
                "regcore_adapters.tf.keras_native.penalty instead"
            )
        if p.regularizer_attr is None:
            raise SpecError(
                f"param {name!r}: layer {p.layer.name!r} ({type(p.layer).__name__}) has no "
                f"regularizer attribute for {p.variable.name!r} that Keras saves; add the "
                "penalty to the loss with regcore_adapters.tf.keras_native.penalty instead"
            )
        if p.variable.regularizer is not None and not replace:
            raise SpecError(
                f"param {name!r} already has the regularizer {p.variable.regularizer!r}; the "
                "model's penalty would be that plus the spec's (pass replace=True to overwrite)"
            )
    activity = _activity_regularizers(plan, model, replace)
    for name, terms in chosen.items():
        p = by_name[name]
        regularizer = to_keras(terms, p.variable.dtype)
        p.variable.regularizer = regularizer
        setattr(p.layer, p.regularizer_attr, regularizer)
    for layer, regularizer in activity:
        layer.activity_regularizer = regularizer
    return plan


def _activity_regularizers(plan: Plan, model: keras.layers.Layer, replace: bool
                           ) -> list[tuple[keras.layers.Layer, keras.regularizers.Regularizer]]:
    """Each layer the plan's activity items select, with the ``activity_regularizer`` that adds
    them (Keras divides it by the batch size: ``batch_mean`` as it is, ``sum`` through
    :class:`~regcore_adapters.keras.regularizers.BatchSum`); checked, not yet set."""
    layers = layer_paths(model)
    by_layer: dict[str, list[Any]] = {}
    for a in plan.activity:
        by_layer.setdefault(a.layer, []).append(a)
    out = []
    for name, items in by_layer.items():
        layer = layers[name]
        if len({a.reduction for a in items}) > 1:
            raise SpecError(f"activity[{items[1].rule}]: layer {name!r} gets activity terms with "
                            "both reductions, which one Keras activity_regularizer cannot hold")
        if layer.activity_regularizer is not None and not replace:
            raise SpecError(
                f"activity[{items[0].rule}]: layer {name!r} already has the activity_regularizer "
                f"{layer.activity_regularizer!r}; the model's penalty would be that plus the "
                "spec's (pass replace=True to overwrite)")
        out.append((layer, activity_to_keras([a.term for a in items], items[0].reduction,
                                             layer.compute_dtype)))
    return out


def build_optimizer(spec: Spec, model: keras.layers.Layer, optimizer: type,
                    **optimizer_kwargs: Any) -> keras.optimizers.Optimizer:
    """``optimizer(weight_decay=rate, **optimizer_kwargs)`` with every variable the spec does
    not decay excluded (``exclude_from_weight_decay(var_list=...)``).

    Every Keras 3 optimizer applies ``weight_decay`` the same decoupled way, ``v ← v − v·wd·lr``
    before the update (AdamW's rule), which is :class:`regcore.DecoupledWeightDecay`; the rate is
    passed as a ``numpy.float64`` so a float64 model decays by the rate itself, not by its
    float32 rounding. Raises
    :class:`regcore.SpecError` where that is not the spec: decay items with different rates
    (Keras has one ``weight_decay`` per optimizer), or ``weight_decay`` passed by the caller.
    Penalties are not translated here (see :func:`apply_spec`).
    """
    if not (isinstance(optimizer, type) and issubclass(optimizer, keras.optimizers.Optimizer)):
        raise SpecError(f"optimizer: expected a keras.optimizers.Optimizer class, got "
                        f"{optimizer!r}")
    if "weight_decay" in optimizer_kwargs:
        raise SpecError("weight_decay: set by the spec; do not pass it to build_optimizer")
    plan, by_name = resolve(spec, model)
    rates = sorted(set(plan.decay.values()))
    if len(rates) > 1:
        raise SpecError(
            f"weight_decay: the spec decays with rates {rates}, but a Keras optimizer has one "
            "weight_decay; use one rate, or one optimizer per variable group"
        )
    # np.float64, a float subclass Keras accepts: Keras casts a Python float to a float64
    # variable's dtype through float32 (0.1 → 0.10000000149...), a NumPy float64 exactly
    # no decay: None, except AdamW, which refuses None (and would otherwise decay by 0.004)
    frozen = [n for n in plan.decay if not by_name[n].info.trainable]
    if frozen:
        raise SpecError(
            f"weight_decay: the frozen parameter {frozen[0]!r} (trainable=False) is selected with "
            "include_frozen=True, but a Keras optimizer only updates the trainable variables "
            "it is given, so its weight_decay would not reach it"
        )
    none = 0.0 if issubclass(optimizer, keras.optimizers.AdamW) else None
    opt = optimizer(weight_decay=np.float64(rates[0]) if rates else none, **optimizer_kwargs)
    if rates:
        excluded = [p.variable for n, p in by_name.items() if n not in plan.decay]
        if excluded:
            opt.exclude_from_weight_decay(var_list=excluded)
    return opt

