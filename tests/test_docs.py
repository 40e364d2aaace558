"""The docs point at tests that exist: every ``test_...`` the bad-input table cites is defined."""

from __future__ import annotations

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
