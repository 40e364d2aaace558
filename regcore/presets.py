"""The weight-decay recipes people actually run, as specs: which parameters each decays, written
as regcore selections (role, name pattern, number of dimensions), so a recipe means the same
parameters in any framework and ``regcore diff`` can compare a setup against it.

Each preset takes the rate and ``decoupled``: ``True`` (the default) gives decoupled decay at
that rate (``DecoupledWeightDecay``: torch ``AdamW(weight_decay=rate)``, Keras
``AdamW(weight_decay=rate)``), ``False`` the coupled L2 that ``SGD/Adam(weight_decay=rate)`` add to
the gradient (``L2(rate, convention="torch_weight_decay")``). The torch adapter's
``build_optimizer(preset, model, torch.optim.AdamW, lr=...)`` turns either into the param groups
the recipe builds.

============================  ==========================================================
:func:`torch_default`         everything trainable (``AdamW(model.parameters(), wd)``)
:func:`keras_default`         ``kernel`` variables, the ``kernel_regularizer`` habit
:func:`nanogpt`               ``p.dim() >= 2`` (nanoGPT's ``configure_optimizers``)
:func:`timm`                  ``ndim >= 2`` and not ``*.bias``, minus a no-decay list
                              (timm's ``param_groups_weight_decay``)
:func:`hf_trainer_names`      Hugging Face ``Trainer``'s name patterns (``bias``,
                              ``layernorm``, ``rmsnorm``, ``norm`` components)
============================  ==========================================================

Recipes that also decide by the *class* of the owning module — Hugging Face ``Trainer``
(``nn.LayerNorm`` layers) and torchvision's reference ``set_weight_decay`` (norm classes) — need
the model: ``regcore_adapters.torch.presets`` builds those from it. Every preset here is proven
equal to the library's own grouping where the library is installable
(``tests/presets/``, ``nox -s presets``: timm and transformers).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from regcore.decay import DecoupledWeightDecay
from regcore.selection import Select
from regcore.spec import Rule, Spec
from regcore.terms import L2

#: Hugging Face ``Trainer.get_decay_parameter_names`` (transformers 5.x): a parameter whose
#: lower-cased dotted name contains one of these (``re.search``) is not decayed.
HF_NO_DECAY_PATTERNS = (r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)",
                        r"_norm(?:$|\.)")


def decay(rate: float, select: Select, *, decoupled: bool = True) -> Spec:
    """``rate`` on the parameters ``select`` picks: decoupled decay, or (``decoupled=False``)
    the coupled L2 of ``weight_decay=rate`` on SGD/Adam."""
    return decays([(rate, select)], decoupled=decoupled)


def decays(rates: Sequence[tuple[float, Select]], *, decoupled: bool = True) -> Spec:
    """Several ``(rate, select)`` groups in one spec (rates of 0 left out), as :func:`decay`."""
    kept = [(rate, select) for rate, select in rates if rate != 0]
    if decoupled:
        return Spec(weight_decay=tuple(DecoupledWeightDecay(r, s) for r, s in kept))
    return Spec(tuple(Rule(L2(r, convention="torch_weight_decay"), s) for r, s in kept))


def excluding(patterns: Sequence[str] = (), *, ignore_case: bool = False,
              names: Sequence[str] = (), globs: Sequence[str] = ()) -> str:
    """A ``Select.name`` pattern (``re.fullmatch``) for names in which none of ``patterns`` is
    found (``re.search``; case-insensitively with ``ignore_case``), that are none of ``names``
    and that match none of the shell-style ``globs`` (``fnmatch``: ``*``, ``?``, ``[...]``)."""
    whole = [re.escape(n) + "\\Z" for n in names] + [fnmatch.translate(g) for g in globs]
    out = f"(?!{'|'.join(whole)})" if whole else ""
    if patterns:
        found = "|".join(f"(?:{p})" for p in patterns)
        out += f"(?!.*?(?{'i' if ignore_case else ''}:{found}))"
    return out + ".*"


def torch_default(rate: float, *, decoupled: bool = True) -> Spec:
    """``optimizer(model.parameters(), weight_decay=rate)``: every trainable parameter, biases
    and norm scales included."""
    return decay(rate, Select(), decoupled=decoupled)


def keras_default(rate: float) -> Spec:
    """``kernel_regularizer=keras.regularizers.L2(rate)`` on every layer with a kernel, Keras's
    ``rate·Σw²``: the variables named ``kernel`` (dense and convolution kernels), not a
    recurrent layer's ``recurrent_kernel`` nor a separable conv's ``depthwise_kernel``, which
    take ``recurrent_regularizer``/``depthwise_regularizer``."""
    return Spec((Rule(L2(rate, convention="sum"),
                      Select(roles=("weight",), name=r"(?:.*\.)?kernel")),))


def nanogpt(rate: float, *, decoupled: bool = True) -> Spec:
    """nanoGPT's ``configure_optimizers``: decay iff ``p.dim() >= 2`` (embeddings included;
    every bias and norm scale not)."""
    return decay(rate, Select(min_ndim=2), decoupled=decoupled)


def timm(rate: float, no_weight_decay: Sequence[str] = (), *, decoupled: bool = True) -> Spec:
    """timm's ``param_groups_weight_decay(model, rate, no_weight_decay_list)``: no decay where
    ``ndim <= 1``, or the name ends with ``.bias``, or matches one of ``no_weight_decay`` (timm
    1.x: shell-style patterns, ``fnmatch``; ``create_optimizer_v2`` passes
    ``model.no_weight_decay()``, e.g. a ViT's ``{"pos_embed", "cls_token", "dist_token"}``);
    frozen parameters are in no group."""
    select = Select(min_ndim=2, name=excluding([r"\.bias\Z"], globs=sorted(no_weight_decay)))
    return decay(rate, select, decoupled=decoupled)


def hf_trainer_names(rate: float, *, decoupled: bool = True) -> Spec:
    """The name half of Hugging Face ``Trainer``'s rule: no decay where the lower-cased name
    contains ``bias``, ``layernorm``, ``rmsnorm``, a ``norm`` component or ``_norm``
    (:data:`HF_NO_DECAY_PATTERNS`). The Trainer also leaves out every parameter of an
    ``nn.LayerNorm`` whatever its name: ``regcore_adapters.torch.presets.hf_trainer(model, rate)``
    adds that half."""
    return decay(rate, Select(name=excluding(HF_NO_DECAY_PATTERNS, ignore_case=True)),
                 decoupled=decoupled)
