"""What an existing training setup applies, read back as a spec: the shared result type of the
adapters' ``read_setup`` (torch: :mod:`regcore_adapters.torch.reading`; Keras:
:mod:`regcore_adapters.keras.reading`), which :func:`regcore.diff.compare` compares across
frameworks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from regcore.selection import Select
from regcore.spec import Spec


@dataclass(frozen=True)
class Reading:
    """What a setup applies: ``spec`` (rules selecting parameters by the model's own names) and
    ``notes``, one line per thing the spec does not say (a frozen parameter in a decayed group,
    a regularizer or optimizer whose maths regcore does not know): never a silent drop."""

    spec: Spec
    notes: tuple[str, ...] = field(default=())


def select_names(names: Sequence[str]) -> Select:
    """A selection of exactly these parameter names."""
    return Select(name="|".join(re.escape(n) for n in names))
