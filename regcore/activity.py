"""Activity regularization: penalties on layer outputs, not on parameters.

An :class:`Activity` item puts an elementwise term (L2, L1, elastic net, in the ``sum``
convention) on the output of every layer whose name fully matches ``layers``, on each batch the
model sees, and adds it to the loss:

* ``reduction="batch_mean"``: ``term(output) / m`` with ``m`` the output's batch size (its first
  axis). This is Keras's ``activity_regularizer``: Keras 3 (and ``tf.keras`` 2 before it) divides
  each activity loss by the batch size in ``Layer.__call__``, so ``Dense(...,
  activity_regularizer=L2(0.01))`` adds ``0.01·Σ out² / m``.
* ``reduction="sum"``: ``term(output)``, not divided (``loss += λ·out.pow(2).sum()`` in a torch
  forward hook).

Which output a name means is the model's: in :class:`regcore.Network` each described layer's own
output (a ``Conv2D``'s before the ``Activation`` that follows it); in a dense
:class:`regcore.ModelSpec`, ``dense_i``'s output after its activation, as Keras's
``Dense(activation=...)`` returns it. Layout-dependent terms (group lasso, orthogonal) are refused:
an output has no kernel layout.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from regcore import _validate
from regcore.errors import SpecError
from regcore.terms import L1, L2, ElasticNet, Term

REDUCTIONS = ("batch_mean", "sum")
_ELEMENTWISE = (L2, L1, ElasticNet)


@dataclass(frozen=True)
class Activity:
    """``term`` on the outputs of the layers named by ``layers`` (a regular expression matched
    against the whole name), divided by the batch size with ``reduction="batch_mean"``."""

    term: Term
    layers: str
    reduction: str = "batch_mean"

    def __post_init__(self) -> None:
        if not isinstance(self.term, _ELEMENTWISE):
            raise SpecError(
                f"activity.term: expected an elementwise term (l2, l1, elastic_net), got "
                f"{getattr(self.term, 'kind', None) or repr(self.term)}: a layer output has no "
                "rows or columns for group lasso or orthogonal to mean")
        if self.term.convention != "sum":
            raise SpecError(
                f"activity.term: {self.term.kind} in the {self.term.convention!r} convention; an "
                "activity term is written in the 'sum' convention (coef times the sum over the "
                "output) and the division by the batch is the activity's reduction")
        if not isinstance(self.layers, str) or not self.layers:
            raise SpecError(f"activity.layers: expected a regular expression naming layers, got "
                            f"{_validate.show(self.layers)}")
        try:
            re.compile(self.layers)
        except re.error as exc:
            raise SpecError(f"activity.layers: invalid regular expression "
                            f"{self.layers!r}: {exc}") from None
        _validate.choice("activity.reduction", self.reduction, REDUCTIONS)

    def select(self, where: str, layers: Sequence[str]) -> list[str]:
        """The names in ``layers`` this item applies to; :class:`SpecError` if none."""
        chosen = [name for name in layers if re.fullmatch(self.layers, name)]
        if not chosen:
            raise SpecError(f"{where}: layers={self.layers!r} names no layer; available: "
                            f"{', '.join(layers) or 'none'}")
        return chosen


@dataclass(frozen=True)
class ActivityAssignment:
    """One activity term on the output of ``layer``, from activity item number ``rule``."""

    layer: str
    term: Term
    reduction: str
    rule: int


DATA_PARALLEL = ("each replica would add its own shard's term (a sum comes out 1/W of the whole "
                 "batch's); train the spec in one process (docs/distributed.md)")
"""Why every data-parallel path refuses activity items, for :func:`refuse`'s ``instead``."""


def refuse(activity: Sequence[object], where: str, instead: str) -> None:
    """The one :class:`SpecError` for activity items (a spec's or a plan's ``activity``) given to
    ``where``, something that cannot apply them, saying what to use ``instead``; nothing when
    there are none."""
    if activity:
        raise SpecError(f"activity[0]: {where} cannot apply an activity penalty (a term on a "
                        f"layer's output, on each forward pass); {instead}")
