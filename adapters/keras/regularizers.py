"""Spec terms as ``keras.regularizers`` objects, and back.

:func:`to_keras` gives the regularizer a Keras user would write by hand where Keras has one that is
the same maths — Keras's ``L1``, ``L2`` and ``L1L2`` are the ``sum`` convention (``L2(l2)`` is
``l2·Σw²``, no ½), so any convention converts exactly via ``term.scaled()`` (exact rationals, one
rounding) — and a :class:`SpecRegularizer` otherwise: group lasso (Keras has none), orthogonal
(Keras 3.15's ``OrthogonalRegularizer`` raises on float64 variables; the formula is the same),
several terms on one variable, and wherever Keras would not compute the spec's number. Keras 3.15
casts a coefficient to the variable's dtype through float32 (``ops.cast(0.01, "float64")`` is
``0.009999999776482582``) and sums a float16/bfloat16 variable in its own dtype, so the built-in
is used for float32 variables, and for float64 ones only when every coefficient is a float32
number; and Keras's ``L1`` (``ops.abs``) has gradient 1 at 0 on JAX, so an L1 part is regcore's
there. :class:`SpecRegularizer` is written in ``keras.ops`` (:mod:`.kernels`) and is registered
with Keras
(``regcore>SpecRegularizer``), so a saved ``.keras`` model reloads with it once this module is
imported.

:func:`from_keras` reads a Keras regularizer as spec terms, for porting a Keras model's
regularization to another framework.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from regcore import L1, L2, ElasticNet, Orthogonal, SpecError, Term
from regcore.serialize import term_from_dict, term_to_dict
from regcore_adapters.keras.kernels import KERNELS


@keras.saving.register_keras_serializable(package="regcore", name="SpecRegularizer")
class SpecRegularizer(keras.regularizers.Regularizer):
    """``Σ`` of regcore terms on one variable, as ``keras.ops`` on any Keras backend
    (:mod:`regcore_adapters.keras.kernels`):
    float16/bfloat16 variables accumulate in float32, subgradients at 0 are the reference's
    (``|x|'(0) = 0``, an all-zero group's or row's gradient is 0, never NaN).

    ``get_config()`` is ``{"terms": [term dicts]}`` in regcore's JSON schema, so the saved model
    file states the spec's terms with their conventions.
    """

    def __init__(self, terms: Sequence[Term | dict[str, Any]]) -> None:
        if isinstance(terms, (Term, dict)) or not isinstance(terms, (list, tuple)) or not terms:
            raise SpecError(f"terms: expected a non-empty list of regcore terms, got {terms!r}")
        self.terms = tuple(
            t if isinstance(t, Term) else term_from_dict(f"terms[{i}]", t)
            for i, t in enumerate(terms)
        )
        for i, t in enumerate(self.terms):
            if not isinstance(t, Term):
                raise SpecError(f"terms[{i}]: expected a regcore term, got {t!r}")

    def __call__(self, x: Any) -> Any:
        total = KERNELS[type(self.terms[0])](self.terms[0], x)
        for term in self.terms[1:]:
            total = total + KERNELS[type(term)](term, x)
        return total

    def get_config(self) -> dict[str, Any]:
        return {"terms": [term_to_dict(t) for t in self.terms]}

    def __repr__(self) -> str:
        return f"SpecRegularizer({list(self.terms)!r})"


def _float32_exact(value: float) -> bool:
    try:
        return struct.unpack("f", struct.pack("f", value))[0] == value
    except OverflowError:
        return False


def _builtin_exact(scaled: dict[str, float], dtype: str) -> bool:
    """Whether Keras's built-in computes ``scaled``'s coefficients exactly on ``dtype``."""
    return dtype == "float32" or (
        dtype == "float64" and all(_float32_exact(c) for c in scaled.values())
    )


ABS_GRADIENT_AT_ZERO_IS_ONE = ("jax",)
"""Keras backends on which Keras's own ``L1`` (``ops.abs``) has gradient 1 at 0, not the
reference's subgradient 0 (measured, Keras 3.15.1): an L1 part goes through
:class:`SpecRegularizer` there."""


def _builtin_gradient(term: Term) -> bool:
    """Whether Keras's built-in for ``term`` has the reference's gradient on this backend."""
    return type(term) is L2 or keras.backend.backend() not in ABS_GRADIENT_AT_ZERO_IS_ONE


def to_keras(terms: Sequence[Term], dtype: str) -> keras.regularizers.Regularizer:
    """The regularizer that adds ``Σ terms`` to a variable of ``dtype``: Keras's own ``L2``,
    ``L1`` or ``L1L2`` for a single L2, L1 or elastic-net term (coefficients in the ``sum`` form)
    where Keras computes the spec's number and its gradient on the current Keras backend (see
    the module docstring and :data:`ABS_GRADIENT_AT_ZERO_IS_ONE`), else a
    :class:`SpecRegularizer`."""
    terms = tuple(terms)
    if len(terms) == 1 and _builtin_exact(terms[0].scaled(), dtype) and \
            _builtin_gradient(terms[0]):
        term, scaled = terms[0], terms[0].scaled()
        if type(term) is L2:
            return keras.regularizers.L2(scaled["coef"])
        if type(term) is L1:
            return keras.regularizers.L1(scaled["coef"])
        if type(term) is ElasticNet:
            return keras.regularizers.L1L2(l1=scaled["l1"], l2=scaled["l2"])
    return SpecRegularizer(terms)


def from_keras(regularizer: object) -> tuple[Term, ...]:
    """The spec terms a Keras regularizer adds (``()`` for ``None``): ``L2(l2)`` →
    ``L2(l2, convention="sum")`` etc. The coefficients are the ones Keras holds: Keras 3.15's
    ``L1`` and ``OrthogonalRegularizer`` store their coefficient as a float32 tensor, so
    ``L1(0.02)`` reads as ``0.019999999552965164``, the number it multiplies a float32 variable
    by. Raises :class:`SpecError` for a regularizer regcore does not know (a custom subclass:
    its maths is not declared anywhere)."""
    r = regularizer
    if r is None:
        return ()
    if isinstance(r, SpecRegularizer):
        return r.terms
    if isinstance(r, keras.regularizers.L1L2):
        l1, l2 = float(r.l1), float(r.l2)
        if l1 and l2:
            return (ElasticNet(l1, l2, convention="sum"),)
        return (L1(l1, convention="sum"),) if l1 else (L2(l2, convention="sum"),)
    if isinstance(r, keras.regularizers.L2):
        return (L2(float(r.l2), convention="sum"),)
    if isinstance(r, keras.regularizers.L1):
        return (L1(float(r.l1), convention="sum"),)
    if isinstance(r, keras.regularizers.OrthogonalRegularizer):
        return (Orthogonal(float(r.factor), r.mode, convention="sum"),)
    raise SpecError(
        f"regularizer: regcore does not know the maths of {type(r).__name__}; only Keras's L1, "
        "L2, L1L2, OrthogonalRegularizer and regcore's SpecRegularizer can be read"
    )


@keras.saving.register_keras_serializable(package="regcore", name="BatchSum")
class BatchSum(keras.regularizers.Regularizer):
    """An activity regularizer ``inner(x)·m``, ``m`` the batch size of ``x`` (its first axis):
    Keras divides every activity loss by ``m`` (``Layer.__call__``), so this is how an activity
    penalty with ``reduction="sum"`` (not divided) is written for Keras."""

    def __init__(self, inner: keras.regularizers.Regularizer | dict[str, Any]) -> None:
        self.inner = (inner if isinstance(inner, keras.regularizers.Regularizer)
                      else keras.regularizers.deserialize(inner))

    def __call__(self, x: Any) -> Any:
        value = self.inner(x)
        return value * ops.cast(ops.shape(x)[0], value.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"inner": keras.regularizers.serialize(self.inner)}

    def __repr__(self) -> str:
        return f"BatchSum({self.inner!r})"


def activity_to_keras(terms: Sequence[Term], reduction: str,
                      dtype: str) -> keras.regularizers.Regularizer:
    """The ``activity_regularizer`` for activity ``terms`` with ``reduction`` on a layer
    computing in ``dtype``: :func:`to_keras`'s regularizer for ``batch_mean`` (Keras divides
    by the batch size itself), wrapped in :class:`BatchSum` for ``sum``."""
    regularizer = to_keras(terms, dtype)
    return regularizer if reduction == "batch_mean" else BatchSum(regularizer)
