"""The docs point at tests that exist: every ``test_...`` the bad-input table cites is defined,
and docs/mutations.md lists every deliberately broken backend the suite is tested on."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bad_input_table_cites_existing_tests():
    cited = set(re.findall(r"::(test_\w+)", (ROOT / "docs" / "bad-input.md").read_text()))
    assert len(cited) >= 15
    defined = {m for path in [*ROOT.joinpath("tests").rglob("*.py"),
                              *ROOT.joinpath("conformance").glob("*.py")]
               for m in re.findall(r"^def (test_\w+)", path.read_text(), re.M)}
    assert cited <= defined, sorted(cited - defined)


def _mutant_cases() -> list[tuple[str, str, str]]:
    """``MUTANT_CASES`` from tests/test_plugin.py, read as a literal (no import of the module)."""
    tree = ast.parse((ROOT / "tests" / "test_plugin.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["MUTANT_CASES"]:
            return ast.literal_eval(node.value)
    raise AssertionError("tests/test_plugin.py defines no MUTANT_CASES")


def test_every_mutant_is_documented_and_exercised():
    """Every class in tests/broken_backends.py (torch-based ones too, built in a function) has a
    row in docs/mutations.md and a case the suite must fail in test_plugin.py; every case's
    selection and failing check are in its row; the page names no class that does not exist."""
    classes = {node.name for node in ast.walk(ast.parse(
        (ROOT / "tests" / "broken_backends.py").read_text())) if isinstance(node, ast.ClassDef)}
    assert len(classes) >= 13
    rows = {m.group(1): m.group(0) for m in re.finditer(
        r"^\| `(\w+)` \|.*$", (ROOT / "docs" / "mutations.md").read_text(), re.M)}
    assert set(rows) == classes, (sorted(classes - set(rows)), sorted(set(rows) - classes))
    cases = _mutant_cases()
    exercised = {backend.removeprefix("tests.broken_backends:") for backend, _, _ in cases}
    assert exercised == classes, (sorted(classes - exercised), sorted(exercised - classes))
    for backend, selection, check in cases:
        row = rows[backend.removeprefix("tests.broken_backends:")]
        assert f"`{check}` (`{selection}`)" in row, (backend, selection, check)
