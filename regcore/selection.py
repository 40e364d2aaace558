"""Which parameters a rule applies to.

A parameter is described backend-neutrally by :class:`ParamInfo` (name, shape, role, whether it
is trainable, and the other names a shared tensor is reached under); adapters derive the role from
the layer type (a LayerNorm weight is a ``norm_scale``, not a ``weight``). A :class:`Select`
matches on role, name pattern and number of dimensions; every criterion given must hold.

Frozen parameters (torch ``requires_grad=False``, Keras ``trainable=False``) are never selected
unless a selection asks for them with ``include_frozen=True``: like torch's ``weight_decay`` and
Keras's ``model.losses``, regcore neither regularizes nor touches what training does not train.

Shared (tied) parameters — one tensor owned by two modules, such as an embedding tied to the output
head — are one parameter, counted once, named after the owner the framework lists first, with the
other owners in :attr:`ParamInfo.aliases`. Whether a selection picks it must not depend on which
owner is listed first: a selection that matches it under one owner's name and role but not under
another's is a :class:`SpecError` (:func:`regcore.Spec.resolve`) naming both, and so is a
layout-dependent term (group lasso, orthogonal) on a tensor whose owners see it in different
layouts.

The default selection, used whenever a rule names none, is :data:`DEFAULT_SELECT`: kernels and
weight matrices (role ``weight``) are penalized; biases, normalization scales and embeddings are
not. That is the common practice (Keras regularizes only what it is told to; the usual torch
recipe excludes ``ndim <= 1`` and ``.bias``), stated here once.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass

from regcore import _validate
from regcore.errors import SpecError

ROLES = ("weight", "bias", "norm_scale", "embedding", "other")
"""``weight``: dense/conv kernels; ``bias``: additive offsets (including a norm layer's shift);
``norm_scale``: the multiplicative scale of a normalization layer; ``embedding``: embedding
tables; ``other``: anything else."""


@dataclass(frozen=True)
class ParamInfo:
    """A parameter as the spec sees it: dotted name, shape (canonical layout) and role.

    ``trainable=False`` marks a frozen parameter (selected only by ``include_frozen=True``).
    ``aliases`` describes the same tensor as its other owners see it (a tied parameter): each a
    :class:`ParamInfo` with that owner's name, role and canonical shape. ``noncanonical`` says
    why a parameter has no canonical ``(fan_in, fan_out)`` layout (torch's fused query/key/value
    projections, a Keras ``EinsumDense`` kernel with several output axes): ``""`` when it has
    one. A layout-dependent term (group lasso, orthogonal) on such a parameter is refused, since
    its rows and columns mean something else in each framework.
    """

    name: str
    shape: tuple[int, ...]
    role: str
    trainable: bool = True
    aliases: tuple[ParamInfo, ...] = ()
    noncanonical: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SpecError(f"param.name: expected a non-empty string, got {self.name!r}")
        if isinstance(self.shape, (str, bytes)) or not isinstance(self.shape, (tuple, list)):
            raise SpecError(f"param {self.name!r}.shape: expected a tuple, got {self.shape!r}")
        shape = tuple(_non_negative_int(f"param {self.name!r}.shape", d) for d in self.shape)
        object.__setattr__(self, "shape", shape)
        _validate.choice(f"param {self.name!r}.role", self.role, ROLES)
        if not isinstance(self.trainable, bool):
            raise SpecError(f"param {self.name!r}.trainable: expected True or False, got "
                            f"{_validate.show(self.trainable)}")
        aliases = _validate.as_tuple(f"param {self.name!r}.aliases", self.aliases)
        for alias in aliases:
            if not isinstance(alias, ParamInfo) or alias.aliases:
                raise SpecError(f"param {self.name!r}.aliases: expected ParamInfo items without "
                                f"aliases of their own, got {alias!r}")
        object.__setattr__(self, "aliases", aliases)
        if not isinstance(self.noncanonical, str):
            raise SpecError(f"param {self.name!r}.noncanonical: expected a string, got "
                            f"{_validate.show(self.noncanonical)}")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def owners(self) -> tuple[ParamInfo, ...]:
        """This parameter as every owner sees it: itself, then its aliases."""
        return (self, *self.aliases)

    def describe(self) -> str:
        """``name (role, ndim N)``, ``, frozen`` for a frozen one, and a tied one's other names."""
        frozen = ", frozen" if not self.trainable else ""
        tied = "".join(f", tied to {a.name} ({a.role})" for a in self.aliases)
        return f"{self.name} ({self.role}, ndim {self.ndim}{frozen}{tied})"


@dataclass(frozen=True)
class Select:
    """Match parameters by ``roles`` (any of), ``name`` (a regex that must match the whole
    dotted name, ``re.fullmatch``), ``ndim`` (any of these dimension counts) and ``min_ndim``.

    A criterion left as ``None`` matches everything; ``Select()`` selects every trainable
    parameter. Frozen parameters are matched only with ``include_frozen=True``.
    """

    roles: tuple[str, ...] | None = None
    name: str | None = None
    ndim: tuple[int, ...] | None = None
    min_ndim: int | None = None
    include_frozen: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.include_frozen, bool):
            raise SpecError(f"select.include_frozen: expected true or false, got "
                            f"{_validate.show(self.include_frozen)}")
        if self.roles is not None:
            roles = _validate.as_tuple("select.roles", self.roles)
            if not roles:
                raise SpecError("select.roles: an empty list selects nothing; omit it instead")
            for role in roles:
                _validate.choice("select.roles", role, ROLES)
            object.__setattr__(self, "roles", roles)
        if self.name is not None:
            if not isinstance(self.name, str):
                raise SpecError(
                    f"select.name: expected a regular expression, got {_validate.show(self.name)}"
                )
            try:
                re.compile(self.name)
            # OverflowError: a{4294967296}; FutureWarning ("Possible nested set" for "[[a]"),
            # an exception only where warnings are errors (python -W error)
            except (re.error, OverflowError, FutureWarning) as exc:
                raise SpecError(
                    f"select.name: invalid regular expression {_validate.show(self.name)}: {exc}"
                ) from None
            except RecursionError:  # thousands of nested groups
                raise SpecError(
                    f"select.name: invalid regular expression {_validate.show(self.name)}: "
                    "nested too deeply"
                ) from None
        if self.ndim is not None:
            dims = _validate.as_tuple("select.ndim", self.ndim)
            if not dims:
                raise SpecError("select.ndim: an empty list selects nothing; omit it instead")
            object.__setattr__(
                self, "ndim", tuple(_non_negative_int("select.ndim", d) for d in dims)
            )
        if self.min_ndim is not None:
            _non_negative_int("select.min_ndim", self.min_ndim)

    def matches(self, param: ParamInfo) -> bool:
        """Whether ``param`` (as its own owner sees it; aliases are :meth:`Spec.resolve`'s
        business) is selected."""
        return (
            (param.trainable or self.include_frozen)
            and (self.roles is None or param.role in self.roles)
            and (self.name is None or re.fullmatch(self.name, param.name) is not None)
            and (self.ndim is None or param.ndim in self.ndim)
            and (self.min_ndim is None or param.ndim >= self.min_ndim)
        )

    def describe(self) -> str:
        parts = [
            f"{key}={value!r}"
            for key, value in (
                ("roles", self.roles), ("name", self.name),
                ("ndim", self.ndim), ("min_ndim", self.min_ndim),
            )
            if value is not None
        ]
        if self.include_frozen:
            parts.append("include_frozen=True")
        return f"Select({', '.join(parts)})"


def _non_negative_int(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise SpecError(f"{field}: expected a non-negative integer, got {_validate.show(value)}")
    return _validate.writable_int(field, int(value))


DEFAULT_SELECT = Select(roles=("weight",))
"""The selection of a rule that names none: role ``weight`` only."""
