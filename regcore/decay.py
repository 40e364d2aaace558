"""Decoupled weight decay: an optimizer rule, not a loss term."""

from __future__ import annotations

from dataclasses import dataclass, field

from regcore import _validate
from regcore.errors import SpecError
from regcore.selection import DEFAULT_SELECT, Select


@dataclass(frozen=True)
class DecoupledWeightDecay:
    """AdamW-style decay, applied by the optimizer to each selected parameter before its update,
    with the gradient taken at the undecayed parameter::

        p ← p − lr · rate · p,   then   p ← p − lr · update(∇L(p_old))

    as torch ``AdamW(weight_decay=rate)`` and Keras optimizers' ``weight_decay=rate`` do (the decay
    is multiplied by the learning rate). It adds nothing to the loss and nothing to the gradient,
    so it is not a :class:`regcore.Term` and never appears in a penalty value. Only under plain SGD
    without momentum is it the same as a coupled L2 penalty (``half`` convention, ``coef = rate``).
    """

    rate: float
    select: Select = field(default=DEFAULT_SELECT)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", _validate.coefficient("weight_decay.rate", self.rate))
        if not isinstance(self.select, Select):
            raise SpecError(f"weight_decay.select: expected a Select, got {self.select!r}")
