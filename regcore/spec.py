"""A spec: penalty rules plus decoupled weight decay, resolved against a model's parameters."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

from regcore._validate import as_tuple
from regcore.activity import Activity, ActivityAssignment
from regcore.decay import DecoupledWeightDecay
from regcore.errors import SpecError
from regcore.selection import DEFAULT_SELECT, ParamInfo, Select
from regcore.terms import Term


@dataclass(frozen=True)
class Rule:
    """Add ``term`` to the loss for every parameter ``select`` matches."""

    term: Term
    select: Select = field(default=DEFAULT_SELECT)

    def __post_init__(self) -> None:
        if isinstance(self.term, DecoupledWeightDecay):
            raise SpecError(
                "rule.term: DecoupledWeightDecay is an optimizer rule, not a loss term; "
                "put it in Spec(weight_decay=[...])"
            )
        if not isinstance(self.term, Term):
            raise SpecError(f"rule.term: expected a penalty term, got {self.term!r}")
        if not isinstance(self.select, Select):
            raise SpecError(f"rule.select: expected a Select, got {self.select!r}")


@dataclass(frozen=True)
class Assignment:
    """One term on one parameter, from rule number ``rule``."""

    param: str
    term: Term
    rule: int


@dataclass(frozen=True)
class Plan:
    """A spec resolved against concrete parameters: what every backend evaluates.

    ``penalties`` lists (parameter, term) pairs in rule order; ``decay`` maps a parameter name to
    its decoupled weight-decay rate (absent: no decay); ``activity`` lists the terms on layer
    outputs (:mod:`regcore.activity`), which a backend adds to the loss on each batch.
    """

    params: tuple[ParamInfo, ...]
    penalties: tuple[Assignment, ...]
    decay: dict[str, float]
    activity: tuple[ActivityAssignment, ...] = ()

    def terms_for(self, name: str) -> tuple[Term, ...]:
        return tuple(a.term for a in self.penalties if a.param == name)


@dataclass(frozen=True)
class Spec:
    """Penalty rules (loss terms), decoupled weight-decay items (optimizer rules) and activity
    items (terms on layer outputs, :mod:`regcore.activity`).

    Resolution rules, documented once here:

    * a rule or decay item that selects no parameter is an error naming the rule and listing the
      available parameters;
    * one parameter may get terms of different kinds (L2 + orthogonal), which add up;
    * two rules giving one parameter terms of the same kind are an error (which coefficient was
      meant is ambiguous: narrow one selection or merge the rules), and so is one parameter
      selected by two decay items;
    * frozen parameters (``ParamInfo.trainable`` false) are selected only by a selection with
      ``include_frozen=True``;
    * a shared (tied) parameter is one parameter; a selection that picks it under one owner's name
      and role but not under another's, or a group-lasso/orthogonal term on it where its owners
      see different layouts, is an error naming both owners (the result must not depend on which
      owner a framework lists first);
    * a group-lasso/orthogonal term on a parameter with no canonical layout
      (``ParamInfo.noncanonical``: torch's fused query/key/value projections, a Keras
      ``EinsumDense`` kernel with several output axes) is an error saying why.
    """

    penalties: tuple[Rule, ...] = ()
    weight_decay: tuple[DecoupledWeightDecay, ...] = ()
    activity: tuple[Activity, ...] = ()

    def __post_init__(self) -> None:
        penalties = as_tuple("spec.penalties", self.penalties)
        decay = as_tuple("spec.weight_decay", self.weight_decay)
        activity = as_tuple("spec.activity", self.activity)
        for i, item in enumerate(activity):
            if not isinstance(item, Activity):
                raise SpecError(f"spec.activity[{i}]: expected a regcore.Activity, got {item!r}")
        object.__setattr__(self, "activity", activity)
        for i, rule in enumerate(penalties):
            if isinstance(rule, DecoupledWeightDecay):
                raise SpecError(
                    f"spec.penalties[{i}]: DecoupledWeightDecay is an optimizer rule, not a loss "
                    "term; put it in Spec(weight_decay=[...])"
                )
            if not isinstance(rule, Rule):
                raise SpecError(f"spec.penalties[{i}]: expected a Rule, got {rule!r}")
        for i, item in enumerate(decay):
            if not isinstance(item, DecoupledWeightDecay):
                raise SpecError(
                    f"spec.weight_decay[{i}]: expected a DecoupledWeightDecay, got {item!r}"
                )
        object.__setattr__(self, "penalties", penalties)
        object.__setattr__(self, "weight_decay", decay)

    def resolve(self, params: Iterable[ParamInfo], layers: Sequence[str] | None = None) -> Plan:
        """Match every rule against ``params``; raise :class:`SpecError` on the cases above.

        ``params`` is any iterable of :class:`regcore.ParamInfo` (e.g. ``ModelSpec.params()``);
        anything else (``None``, a non-iterable, an item of another type) is a :class:`SpecError`.
        ``layers`` names the layers whose outputs activity items may select (e.g.
        ``ModelSpec.layer_names()``); a spec with activity items needs them, and an item that
        names no layer, or two items giving one layer terms of the same kind, are errors.
        """
        params = _params("params", params)
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise SpecError(f"params: duplicate parameter names {dup}")
        assignments: list[Assignment] = []
        kinds: dict[tuple[str, str], int] = {}
        for i, rule in enumerate(self.penalties):
            chosen = _select(f"penalties[{i}]", rule.select, params)
            for p in chosen:
                _check_layouts(f"penalties[{i}]", rule.term, p)  # the reason first: no layout
                rule.term.check_shape(p.name, p.shape)
                other = kinds.setdefault((p.name, rule.term.kind), i)
                if other != i:
                    raise SpecError(
                        f"penalties[{i}]: parameter {p.name!r} already gets a {rule.term.kind} "
                        f"term from penalties[{other}]; narrow one selection or merge the rules"
                    )
                assignments.append(Assignment(p.name, rule.term, i))
        decay: dict[str, float] = {}
        owner: dict[str, int] = {}
        for i, item in enumerate(self.weight_decay):
            for p in _select(f"weight_decay[{i}]", item.select, params):
                if p.name in owner:
                    raise SpecError(
                        f"weight_decay[{i}]: parameter {p.name!r} is already decayed by "
                        f"weight_decay[{owner[p.name]}]"
                    )
                owner[p.name] = i
                decay[p.name] = item.rate
        return Plan(params, tuple(assignments), decay, self._resolve_activity(layers))

    def _resolve_activity(self, layers: Sequence[str] | None) -> tuple[ActivityAssignment, ...]:
        if not self.activity:
            return ()
        if layers is None:
            raise SpecError("spec.activity: activity penalties apply to layer outputs; resolve "
                            "the spec with the model's layer names (layers=...)")
        out: list[ActivityAssignment] = []
        kinds: dict[tuple[str, str], int] = {}
        for i, item in enumerate(self.activity):
            for layer in item.select(f"activity[{i}]", list(layers)):
                other = kinds.setdefault((layer, item.term.kind), i)
                if other != i:
                    raise SpecError(f"activity[{i}]: layer {layer!r} already gets a "
                                    f"{item.term.kind} activity term from activity[{other}]")
                out.append(ActivityAssignment(layer, item.term, item.reduction, i))
        return tuple(out)


def _select(where: str, select: Select, params: Sequence[ParamInfo]) -> list[ParamInfo]:
    chosen = [p for p in params if _matches(where, select, p)]
    if not chosen:
        available = ", ".join(p.describe() for p in params) or "none"
        frozen = (" (frozen parameters are selected only with include_frozen=True)"
                  if any(not p.trainable for p in params) else "")
        raise SpecError(
            f"{where}: {select.describe()} selects no parameter{frozen}; available: {available}"
        )
    return chosen


def _matches(where: str, select: Select, param: ParamInfo) -> bool:
    """``select.matches(param)``, the same under every owner of a shared parameter."""
    hit = select.matches(param)
    for alias in param.aliases:
        if select.matches(alias) != hit:
            yes, no = (param, alias) if hit else (alias, param)
            raise SpecError(
                f"{where}: {select.describe()} selects the shared parameter {param.name!r} as "
                f"{yes.name!r} ({yes.role}) but not as {no.name!r} ({no.role}), the same tensor "
                "tied to two owners, so the result would depend on which owner counts; make the "
                "selection agree for both names, e.g. exclude both from this rule with "
                f"name=r'(?!({_names_pattern(param)})$).*' and select them in a rule of their own "
                f"with name=r'{_names_pattern(param)}'"
            )
    return hit


def _names_pattern(param: ParamInfo) -> str:
    return "|".join(re.escape(p.name) for p in param.owners())


def _check_layouts(where: str, term: Term, param: ParamInfo) -> None:
    """A layout-dependent term on a parameter with no canonical layout, or on a shared tensor its
    owners see in different layouts (an embedding ``(vocab, dim)`` tied to a head whose canonical
    kernel is ``(dim, vocab)``), is ambiguous: which rows are rows depends on the framework or
    the owner."""
    if not term.layout_dependent:
        return
    for owner in param.owners():
        if owner.noncanonical:
            raise SpecError(
                f"{where}: {term.kind} on {owner.name!r} {owner.shape}: the parameter has no "
                f"canonical (fan_in, fan_out) layout ({owner.noncanonical}), and this term "
                "depends on which axis holds the rows, so its value would not mean the same in "
                "another framework; exclude it from this rule or use an elementwise term (L1, "
                "L2, elastic net)"
            )
    for alias in param.aliases:
        if alias.shape != param.shape:
            raise SpecError(
                f"{where}: {term.kind} on the shared parameter {param.name!r} is ambiguous: its "
                f"owners see it as {param.name!r} {param.shape} and {alias.name!r} {alias.shape} "
                "(different layouts), and this term depends on which axis holds the rows; "
                "exclude it from this rule or untie the parameters"
            )


def _params(field_name: str, value: object) -> tuple[ParamInfo, ...]:
    if isinstance(value, (str, bytes)):
        raise SpecError(f"{field_name}: expected an iterable of regcore.ParamInfo, got {value!r}")
    try:
        iterator = iter(cast("Iterable[object]", value))  # not iterable: TypeError, below
    except TypeError:
        raise SpecError(
            f"{field_name}: expected an iterable of regcore.ParamInfo, got {value!r}"
        ) from None
    params: list[ParamInfo] = []
    for i, item in enumerate(tuple(iterator)):
        if not isinstance(item, ParamInfo):
            raise SpecError(
                f"{field_name}[{i}]: expected a regcore.ParamInfo, got {type(item).__name__} "
                f"{item!r}"
            )
        params.append(item)
    return tuple(params)
