"""Specs to and from JSON-compatible dicts (schema version 1).

::

    {
      "schema_version": 1,
      "penalties": [
        {"term": {"kind": "l2", "coef": 0.01, "convention": "sum"},
         "select": {"roles": ["weight"]}}
      ],
      "weight_decay": [{"rate": 0.01, "select": {"roles": ["weight"]}}]
    }

A spec with activity penalties (:mod:`regcore.activity`) also has ``"activity": [{"term": {...},
"layers": "dense_0", "reduction": "batch_mean"}]`` (written only when there are some;
``reduction`` may be omitted, ``batch_mean``).

``select`` may be omitted (the default selection, :data:`regcore.DEFAULT_SELECT`). Every other
key is checked: unknown keys, kinds, conventions and versions are rejected with a
:class:`regcore.SpecError` naming the field. Floats round-trip exactly (Python writes the shortest
repr that reads back to the same double).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from regcore._validate import show
from regcore.activity import Activity
from regcore.decay import DecoupledWeightDecay
from regcore.errors import SpecError
from regcore.selection import DEFAULT_SELECT, Select
from regcore.spec import Rule, Spec
from regcore.terms import TERMS, Term

SCHEMA_VERSION = 1


def to_dict(spec: Spec) -> dict[str, Any]:
    """A JSON-compatible dict for ``spec`` (every selection written out); anything but a
    :class:`Spec` is a :class:`SpecError`."""
    if not isinstance(spec, Spec):
        raise SpecError(f"spec: expected a regcore.Spec, got {type(spec).__name__} {spec!r}")
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "penalties": [
            {"term": term_to_dict(r.term), "select": _select_to_dict(r.select)}
            for r in spec.penalties
        ],
        "weight_decay": [
            {"rate": d.rate, "select": _select_to_dict(d.select)} for d in spec.weight_decay
        ],
    }
    if spec.activity:
        out["activity"] = [{"term": term_to_dict(a.term), "layers": a.layers,
                            "reduction": a.reduction} for a in spec.activity]
    return out


def from_dict(data: object) -> Spec:
    """The :class:`Spec` a dict describes; :class:`SpecError` naming the field otherwise."""
    fields = _mapping("spec", data, required=("schema_version",),
                      optional=("penalties", "weight_decay", "activity"))
    version = fields["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise SpecError(f"schema_version: expected an integer, got {show(version)}")
    if version > SCHEMA_VERSION:
        raise SpecError(
            f"schema_version: {show(version)} is newer than this regcore reads "
            f"({SCHEMA_VERSION}); upgrade regcore"
        )
    if version < 1:
        raise SpecError(f"schema_version: {show(version)} is not a valid version")
    rules = [
        _rule_from_dict(f"penalties[{i}]", item)
        for i, item in enumerate(_list("penalties", fields.get("penalties", [])))
    ]
    decay = [
        _decay_from_dict(f"weight_decay[{i}]", item)
        for i, item in enumerate(_list("weight_decay", fields.get("weight_decay", [])))
    ]
    activity = [
        _activity_from_dict(f"activity[{i}]", item)
        for i, item in enumerate(_list("activity", fields.get("activity", [])))
    ]
    return Spec(penalties=tuple(rules), weight_decay=tuple(decay), activity=tuple(activity))


def to_json(spec: Spec, **kwargs: Any) -> str:
    """:func:`to_dict` as JSON text; ``kwargs`` go to :func:`json.dumps` (``indent=2``...)."""
    return json.dumps(to_dict(spec), **kwargs)


MAX_SPEC_BYTES = 1 << 20
"""The largest spec text :func:`from_json` reads (1 MiB; a real spec is a few hundred bytes)."""
MAX_DEPTH = 32
"""The deepest nesting of JSON arrays/objects :func:`from_json` reads (a valid spec has 5)."""


def from_json(text: str | bytes) -> Spec:
    """Parse JSON text (JSON only: no pickle, YAML or eval) into a :class:`Spec`.

    Refused with a :class:`SpecError` before any spec field is looked at: anything but
    ``str``/``bytes``, text over :data:`MAX_SPEC_BYTES`, text that is not JSON, nesting deeper
    than :data:`MAX_DEPTH`, and an object with a duplicate key (JSON parsers disagree on which
    one wins, so a spec is never read either way).
    """
    if not isinstance(text, (str, bytes, bytearray)):
        raise SpecError(f"spec: expected JSON text (str or bytes), got {type(text).__name__}")
    size = len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) else len(text)
    if size > MAX_SPEC_BYTES:
        raise SpecError(f"spec: {size} bytes is over the {MAX_SPEC_BYTES}-byte limit")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise SpecError(f"spec: nested deeper than {MAX_DEPTH} levels") from None
    except SpecError:
        raise
    except (ValueError, TypeError) as exc:
        raise SpecError(f"spec: not valid JSON: {exc}") from None
    if _depth(data) > MAX_DEPTH:
        raise SpecError(f"spec: nested deeper than {MAX_DEPTH} levels")
    return from_dict(data)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise SpecError(f"spec: duplicate key {key!r} in one JSON object")
        out[key] = value
    return out


def _depth(data: object) -> int:
    """Nesting depth of parsed JSON, iteratively (no recursion limit to hit)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1)
                         for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def term_to_dict(term: Term) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": term.kind}
    for f in dataclasses.fields(term):
        value = getattr(term, f.name)
        if value is not None:
            out[f.name] = value
    return out


def term_from_dict(where: str, data: object) -> Term:
    kind = _mapping(where, data, required=("kind",), optional=None)["kind"]
    if not isinstance(kind, str) or kind not in TERMS:
        raise SpecError(f"{where}.kind: unknown term {show(kind)}; known: {', '.join(TERMS)}")
    cls = TERMS[kind]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = tuple(
        name for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    given = _mapping(where, data, required=("kind", *required), optional=tuple(fields))
    kwargs = {k: v for k, v in given.items() if k != "kind"}
    try:
        return cls(**kwargs)
    except SpecError as exc:
        raise _rerooted(exc, kind, where) from None


def _rule_from_dict(where: str, data: object) -> Rule:
    rule = _mapping(where, data, required=("term",), optional=("select",))
    return Rule(term_from_dict(f"{where}.term", rule["term"]),
                _select_from_dict(f"{where}.select", rule.get("select")))


def _activity_from_dict(where: str, data: object) -> Activity:
    item = _mapping(where, data, required=("term", "layers"), optional=("reduction",))
    term = term_from_dict(f"{where}.term", item["term"])
    try:
        return Activity(term, item["layers"], item.get("reduction", "batch_mean"))
    except SpecError as exc:
        raise _rerooted(exc, "activity", where) from None


def _decay_from_dict(where: str, data: object) -> DecoupledWeightDecay:
    decay = _mapping(where, data, required=("rate",), optional=("select",))
    select = _select_from_dict(f"{where}.select", decay.get("select"))
    try:
        return DecoupledWeightDecay(decay["rate"], select)
    except SpecError as exc:
        raise _rerooted(exc, "weight_decay", where) from None


def _select_to_dict(select: Select) -> dict[str, Any]:
    """Every criterion given, and ``include_frozen`` only when true (its default is false)."""
    return {
        f.name: list(v) if isinstance(v, tuple) else v
        for f in dataclasses.fields(select)
        if (v := getattr(select, f.name)) is not None and v is not False
    }


def _select_from_dict(where: str, data: object) -> Select:
    if data is None:
        return DEFAULT_SELECT
    criteria = _mapping(where, data, required=(),
                        optional=tuple(f.name for f in dataclasses.fields(Select)))
    try:
        return Select(**criteria)
    except SpecError as exc:
        raise _rerooted(exc, "select", where) from None


def _rerooted(exc: SpecError, prefix: str, where: str) -> SpecError:
    """``l2.coef: ...`` raised by a constructor becomes ``penalties[0].term.coef: ...``."""
    message = str(exc)
    if message.startswith(prefix + ".") or message.startswith(prefix + ":"):
        return SpecError(where + message[len(prefix):])
    return SpecError(f"{where}: {message}")


def _mapping(where: str, data: object, *, required: tuple[str, ...],
             optional: tuple[str, ...] | None) -> Mapping[str, Any]:
    """``data`` itself, once it is a mapping with string keys, every ``required`` key and (unless
    ``optional`` is None) no key outside ``required`` and ``optional``."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{where}: expected an object, got {type(data).__name__}")
    for key in data:
        if not isinstance(key, str):
            raise SpecError(f"{where}: keys must be strings, got {show(key)}")
    for key in required:
        if key not in data:
            raise SpecError(f"{where}.{key}: missing")
    if optional is not None:
        unknown = [k for k in data if k not in required and k not in optional]
        if unknown:
            allowed = ", ".join((*required, *optional))
            raise SpecError(f"{where}.{unknown[0]}: unknown key; allowed: {allowed}")
    return data


def _list(where: str, value: object) -> list:
    if not isinstance(value, list):
        raise SpecError(f"{where}: expected a list, got {type(value).__name__}")
    return value
