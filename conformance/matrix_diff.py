"""The matrix's "Port checks" section: each ``regcore diff A B --json`` output left in
``reports/diff/<name>.json`` (``nox -s path`` leaves the README's Keras→torch pair there), one
table per pair with its verdict per parameter and kind, in ``matrix.md`` and ``matrix.html``.

A pair that differs is shown as differing, not as a failure of the matrix: the matrix fails when
a backend disagrees with the reference; whether a port must match is the caller's decision, made
with ``regcore diff``'s own exit status.
"""

from __future__ import annotations

import dataclasses
import json
from html import escape
from pathlib import Path
from typing import Any

from regcore.diff import HEADER, Row, cells

ROW_KEYS = tuple(f.name for f in dataclasses.fields(Row))


def _is_numbers(value: Any) -> bool:
    return value is None or isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
        for k, v in value.items())


def _is_row(row: Any) -> bool:
    return (isinstance(row, dict) and set(ROW_KEYS) <= set(row)
            and all(row[k] is None or isinstance(row[k], str) for k in ("a", "b"))
            and isinstance(row["kind"], str) and isinstance(row["verdict"], str)
            and _is_numbers(row["a_numbers"]) and _is_numbers(row["b_numbers"]))


def _is_notes(notes: Any) -> bool:
    return isinstance(notes, dict) and all(
        isinstance(v, list) and all(isinstance(n, str) for n in v) for v in notes.values())


def load(report_dir: Path) -> dict[str, dict[str, Any]]:
    """``{name: diff}`` for every ``diff/*.json`` under ``report_dir`` (none: the section is left
    out). Raises :class:`ValueError` naming a file that is not a ``regcore diff --json`` output
    (every field of the type ``regcore diff`` writes)."""
    out = {}
    for path in sorted(report_dir.glob("diff/*.json")):
        try:
            diff = json.loads(path.read_text(encoding="utf-8"))
            if not (isinstance(diff, dict) and isinstance(diff.get("a"), str)
                    and isinstance(diff.get("b"), str) and isinstance(diff.get("same"), bool)
                    and isinstance(diff.get("rows"), list) and all(map(_is_row, diff["rows"]))
                    and _is_notes(diff.get("notes", {}))):
                raise TypeError("unexpected fields or types")
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{path}: not a regcore diff --json output ({exc})") from None
        out[path.stem] = diff
    return out


def _cells(row: dict[str, Any]) -> tuple[str, ...]:
    """A row's text cells, as ``regcore diff`` prints them (:func:`regcore.diff.cells`)."""
    return cells(Row(**{k: row[k] for k in ROW_KEYS}))


def _headline(name: str, diff: dict[str, Any]) -> str:
    differing = sum(r["verdict"] != "same" for r in diff["rows"])
    verdict = "same" if diff["same"] else f"differs in {differing} of {len(diff['rows'])} rows"
    return f"{name}: {diff['a']} against {diff['b']}: {verdict}"


def markdown(diffs: dict[str, dict[str, Any]], md) -> list[str]:
    """The section's lines; ``md`` escapes a cell."""
    if not diffs:
        return []
    out = ["", "## Port checks (`regcore diff`)"]
    for name, diff in diffs.items():
        out += ["", f"**{md(_headline(name, diff))}**", "", "| " + " | ".join(HEADER) + " |",
                "|---|---|---|---|---|---|"]
        out += ["| " + " | ".join(md(c) for c in _cells(r)) + " |" for r in diff["rows"]]
        notes = [f"- note ({s.upper()}): {md(n)}" for s in ("a", "b")
                 for n in diff.get("notes", {}).get(s, [])]
        out += ["", *notes] if notes else []
    return out


def html(diffs: dict[str, dict[str, Any]]) -> list[str]:
    """The section as HTML: a table per pair, differing rows marked as failures are."""
    if not diffs:
        return []
    out = ["<h2>Port checks (<code>regcore diff</code>)</h2>"]
    for name, diff in diffs.items():
        cls = "ok" if diff["same"] else "bad"
        out += [f'<p class="status {cls}">{escape(_headline(name, diff))}</p>', "<table>",
                "<thead><tr>" + "".join(f"<th>{h}</th>" for h in HEADER) + "</tr></thead>",
                "<tbody>"]
        for r in diff["rows"]:
            row_cls = "pass" if r["verdict"] == "same" else "fail"
            out.append(f'<tr class="{row_cls}">'
                       + "".join(f"<td>{escape(c)}</td>" for c in _cells(r)[:-1])
                       + f'<td class="mark">{escape(r["verdict"])}</td></tr>')
        out.append("</tbody></table>")
        notes = [(s.upper(), n) for s in ("a", "b") for n in diff.get("notes", {}).get(s, [])]
        if notes:
            out += ["<ul>", *(f"<li>note ({s}): {escape(n)}</li>" for s, n in notes), "</ul>"]
    return out
