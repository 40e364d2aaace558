"""Compare what two setups apply, parameter by parameter: is my port the same?

:func:`compare` takes two resolved plans (:meth:`regcore.Spec.resolve` on each side's
parameters; a torch or Keras setup becomes a spec by the adapters' ``read_setup``) and a mapping
from the first side's parameter names to the second's (:func:`map_by_order` builds one by order
and shape). Each row is one parameter and one kind of regularization — a penalty term's kind, or
``decay`` (decoupled weight decay) — with both sides' canonical numbers (``sum`` form:
``coef·Σw²`` for L2) and a verdict:

* ``same``;
* ``factor r`` — the same term, coefficients ``r`` times the other side's; ``factor 2: L2 vs
  weight_decay`` where a coupled L2 is 2 (or ½) times the other (Keras ``L2(λ)`` is
  ``λ·Σw²``; torch ``weight_decay=λ`` is the gradient of ``λ/2·Σw²``: keras #4712);
* ``coupled vs decoupled`` — an L2 penalty on one side where the other decays the weights
  outside the loss (the same maths only under SGD without momentum);
* ``only in A`` / ``only in B`` — one side regularizes the parameter this way, the other not;
* ``differs`` — the same kind with other settings (axis, epsilon, mixed ratios).

A parameter of one side the mapping does not pair is a row ``unmapped``.

Activity penalties (terms on layer outputs, :mod:`regcore.activity`) follow, one row per term,
paired in the order each side lists them (layer names differ between frameworks): kind
``activity:l2`` etc., the two layers' names, the numbers and the same verdicts, and
``batch_mean vs sum`` where one side divides by the batch size (Keras's
``activity_regularizer``) and the other does not (a torch hook summing over the batch).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from regcore.conventions import PARAM_NAMES
from regcore.errors import SpecError
from regcore.selection import ParamInfo
from regcore.spec import Plan
from regcore.terms import Term

SAME = "same"


@dataclass(frozen=True)
class Row:
    """One parameter (``a`` on the first side, ``b`` on the second; ``None`` where unpaired) and
    one kind of regularization: each side's numbers in canonical form (``None``: absent)."""

    a: str | None
    b: str | None
    kind: str
    a_numbers: dict[str, float] | None
    b_numbers: dict[str, float] | None
    verdict: str


def _effects(plan: Plan, name: str) -> dict[str, tuple[dict[str, float], tuple]]:
    """Per kind on ``name``: the canonical coefficients and the term's other settings."""
    out: dict[str, tuple[dict[str, float], tuple]] = {}
    for term in plan.terms_for(name):
        out[term.kind] = (term.scaled(), _settings(term))
    if name in plan.decay:
        out["decay"] = ({"rate": plan.decay[name]}, ())
    return out


def _settings(term: Term) -> tuple:
    """The term's fields that are not its coefficients or their scaling convention."""
    skip = {*term.coefficients, "convention", *PARAM_NAMES}
    return tuple((f.name, getattr(term, f.name)) for f in dataclasses.fields(term)
                 if f.name not in skip)


def _ratio(a: dict[str, float], b: dict[str, float]) -> float | None:
    """``r`` with ``a[k] = r·b[k]`` for every coefficient, or ``None``."""
    if a.keys() != b.keys():
        return None
    ratios = {a[k] / b[k] if b[k] else (1.0 if a[k] == b[k] else math.inf) for k in a}
    first = next(iter(ratios))
    return first if all(math.isclose(r, first, rel_tol=1e-12) for r in ratios) else None


def _verdict(kind: str, a: tuple | None, b: tuple | None) -> str:
    if a is None:
        return "only in B"
    if b is None:
        return "only in A"
    if a[1] != b[1]:
        return "differs"
    r = _ratio(a[0], b[0])
    if r is None or not math.isfinite(r):
        return "differs"
    if math.isclose(r, 1.0, rel_tol=1e-12):
        return SAME
    named = kind == "l2" and any(math.isclose(r, x, rel_tol=1e-12) for x in (2.0, 0.5))
    return f"factor {r:g}" + (": L2 vs weight_decay" if named else "")


def compare(plan_a: Plan, plan_b: Plan, mapping: Mapping[str, str] | None = None) -> list[Row]:
    """The rows of what ``plan_a`` and ``plan_b`` apply, parameter by parameter (``mapping``:
    first-side name → second-side name; default: the same names)."""
    names_a = [p.name for p in plan_a.params]
    names_b = {p.name for p in plan_b.params}
    mapping = dict(mapping) if mapping is not None else {n: n for n in names_a if n in names_b}
    unknown = sorted(set(mapping) - set(names_a)) + sorted(set(mapping.values()) - names_b)
    if unknown:
        raise SpecError(f"mapping: names not in the plans: {', '.join(unknown)}")
    rows: list[Row] = []
    for a in names_a:
        b = mapping.get(a)
        if b is None:
            rows.append(Row(a, None, "-", None, None, "unmapped"))
            continue
        ea, eb = _effects(plan_a, a), _effects(plan_b, b)
        if "l2" in ea and "decay" in eb and "l2" not in eb and "decay" not in ea:
            rows.append(Row(a, b, "l2/decay", ea["l2"][0], eb["decay"][0],
                            "coupled vs decoupled"))
            ea, eb = {k: v for k, v in ea.items() if k != "l2"}, {
                k: v for k, v in eb.items() if k != "decay"}
        if "decay" in ea and "l2" in eb and "l2" not in ea and "decay" not in eb:
            rows.append(Row(a, b, "decay/l2", ea["decay"][0], eb["l2"][0],
                            "coupled vs decoupled"))
            ea, eb = {k: v for k, v in ea.items() if k != "decay"}, {
                k: v for k, v in eb.items() if k != "l2"}
        for kind in dict.fromkeys([*ea, *eb]):
            got_a, got_b = ea.get(kind), eb.get(kind)
            rows.append(Row(a, b, kind, got_a[0] if got_a else None, got_b[0] if got_b else None,
                            _verdict(kind, got_a, got_b)))
    paired = set(mapping.values())
    rows += [Row(None, p.name, "-", None, None, "unmapped") for p in plan_b.params
             if p.name not in paired]
    return rows + _activity_rows(plan_a, plan_b)


def _activity_rows(plan_a: Plan, plan_b: Plan) -> list[Row]:
    """The activity terms of both sides, paired in order."""
    rows = []
    for i in range(max(len(plan_a.activity), len(plan_b.activity))):
        a = plan_a.activity[i] if i < len(plan_a.activity) else None
        b = plan_b.activity[i] if i < len(plan_b.activity) else None
        ea = (a.term.scaled(), (*_settings(a.term), a.reduction)) if a else None
        eb = (b.term.scaled(), (*_settings(b.term), b.reduction)) if b else None
        kinds = dict.fromkeys(x.term.kind for x in (a, b) if x is not None)
        kind = "activity:" + "/".join(kinds)
        verdict = _verdict(kind, ea, eb) if len(kinds) == 1 else "differs"
        if verdict == "differs" and a and b and a.reduction != b.reduction and len(kinds) == 1:
            verdict = f"{a.reduction} vs {b.reduction}"  # Keras divides by the batch; a hook?
        rows.append(Row(a.layer if a else None, b.layer if b else None, kind,
                        ea[0] if ea else None, eb[0] if eb else None, verdict))
    return rows


def map_by_order(a: Sequence[ParamInfo], b: Sequence[ParamInfo]) -> dict[str, str]:
    """Pair the two sides' parameters in order, checking that each pair has the same role and
    canonical shape (a :class:`regcore.SpecError` naming the first that does not)."""
    if len(a) != len(b):
        raise SpecError(f"map_by_order: {len(a)} parameters against {len(b)}")
    for x, y in zip(a, b, strict=True):
        if x.shape != y.shape or x.role != y.role:
            raise SpecError(f"map_by_order: {x.name} {x.role} {x.shape} against {y.name} "
                            f"{y.role} {y.shape}: not the same parameter")
    return {x.name: y.name for x, y in zip(a, b, strict=True)}


def same(rows: Sequence[Row]) -> bool:
    """Whether every row's verdict is ``same`` (a CI check's pass)."""
    return all(r.verdict == SAME for r in rows)


def numbers_text(numbers: dict[str, float] | None) -> str:
    """A side's canonical numbers as ``coef=0.01`` (``-``: absent)."""
    return "-" if numbers is None else " ".join(f"{k}={v:g}" for k, v in numbers.items())


HEADER = ("A", "B", "kind", "A numbers", "B numbers", "verdict")


def cells(row: Row) -> tuple[str, ...]:
    """``row`` as the table's text cells, in :data:`HEADER`'s order."""
    return (row.a or "-", row.b or "-", row.kind, numbers_text(row.a_numbers),
            numbers_text(row.b_numbers), row.verdict)


def table(rows: Sequence[Row]) -> str:
    """The rows as a plain-text table, each column as wide as its longest cell (and at least
    20, 20, 13, 18, 18 characters)."""
    body = [cells(r) for r in rows]
    widths = [max([minimum, *(len(c[i]) for c in body)])
              for i, minimum in enumerate((20, 20, 13, 18, 18))]
    return "\n".join(" ".join(c.ljust(w) for c, w in zip(line[:-1], widths, strict=True))
                     + " " + line[-1] for line in [HEADER, *body])
