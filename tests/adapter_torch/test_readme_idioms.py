"""Every row of the README's torch idiom table names conformance checks that passed.

Reads the report the ``torch`` nox session's conformance run just wrote (the session runs this
file after the suite); skipped when no torch report exists.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "reports" / "conformance-torch.json"


def _rows() -> list[tuple[str, list[str], list[str]]]:
    text = (ROOT / "README.md").read_text()
    table = re.search(r"\| torch idiom \|.*?\n\n", text, re.S).group(0)
    rows = []
    for line in filter(None, table.splitlines()[2:]):
        idiom, *_, backing = [cell.strip() for cell in line.strip("|").split(" | ")]
        checks = re.findall(r"`(native_[\w{},*]+)`", backing)
        specs = re.findall(r"\(`(\w+)`\)", backing)
        if checks:
            rows.append((idiom, checks, specs))
    return rows


def _pattern(check: str) -> re.Pattern:
    check = re.sub(r"\{([\w,]+)\}", lambda m: "(" + m.group(1).replace(",", "|") + ")", check)
    return re.compile(check.replace("*", r"\w+") + ":")


@pytest.mark.parametrize(("idiom", "checks", "specs"), _rows(), ids=lambda v: str(v)[:40])
def test_idiom_row_is_backed_by_passing_checks(idiom, checks, specs):
    if not REPORT.exists():
        pytest.skip(f"no torch conformance report at {REPORT} (run nox -s torch)")
    records = json.loads(REPORT.read_text())["records"]
    assert specs, f"row {idiom!r} names no spec"
    for check in checks:
        for spec in specs:
            found = [r for r in records
                     if _pattern(check).match(r["check"]) and r["case"] == spec]
            assert found, f"{idiom}: no {check} record for spec {spec}"
            assert all(r["outcome"] == "pass" for r in found), f"{idiom}: {check} {spec} failed"
