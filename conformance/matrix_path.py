"""The matrix's "Choosing λ" section: the ``regcore path`` runs ``nox -s path`` left in
``reports/path/<problem>/path.json``, one row per problem and backend, with the plots linked.

A path run whose backends chose different values, or whose losses differ beyond its derived
tolerance, is a failing line, as a disagreeing conformance row is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load(report_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """``{problem folder: results}`` for every ``path/*/path.json`` under ``report_dir``
    (none: an empty dict; the section is left out)."""
    out = {}
    for path in sorted(report_dir.glob("path/*/path.json")):
        try:
            out[path.parent.name] = json.loads(path.read_text(encoding="utf-8"))["results"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a regcore path result ({exc})") from None
    return out


def _agrees(result: dict[str, Any]) -> bool:
    a = result.get("agreement")
    return a is None or (a["same_choice"] and a["error"] <= a["tolerance"])


def failing(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [f"path {name}: {r['backend']} disagrees with {r['agreement']['against']} "
            f"(error {r['agreement']['error']:.3g}, tolerance {r['agreement']['tolerance']:.3g}, "
            f"same choice: {r['agreement']['same_choice']})"
            for name, results in runs.items() for r in results if not _agrees(r)]


def markdown(runs: dict[str, list[dict[str, Any]]], md) -> list[str]:
    """The section's lines; ``md`` escapes a cell."""
    if not runs:
        return []
    out = ["", "## Choosing λ (`regcore path`)", "",
           "| problem | axis | backend | dtype | λ (min) | λ (1se) | err/tol vs first | plots |",
           "|---|---|---|---|--:|--:|--:|---|"]
    for name, results in runs.items():
        for r in results:
            a = r.get("agreement") or {"error": 0.0, "tolerance": 1.0}
            ratio = a["error"] / a["tolerance"] if a["tolerance"] else float("inf")
            plots = ", ".join(f"[{kind}](path/{name}/{r['backend']}-{kind}.png)"
                              for kind in ("loss", "coefficients")
                              if kind == "loss" or "coefficients" in r)
            out.append("| " + " | ".join([
                md(name), md(r["axis"]["label"]), md(r["backend"]), md(r["dtype"]),
                f"{r['choice']['min']['value']:.4g}", f"{r['choice']['1se']['value']:.4g}",
                f"{ratio:.3g}" + ("" if _agrees(r) else " **FAIL**"), plots]) + " |")
    return out
