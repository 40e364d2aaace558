"""The project's test files have distinct names: pytest imports a test file outside a package by
its base name, so two ``test_reading.py`` in different folders cannot be collected in one process
(``import file mismatch``) — which is how a developer runs ``pytest tests external/*/tests``
with every framework installed. The conformance suite's modules are a package
(``regcore_conformance``) and may share names with these."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_test_file_names_are_unique():
    files = [*ROOT.joinpath("tests").rglob("test_*.py"),
             *ROOT.joinpath("external").glob("*/tests/test_*.py")]
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in files:
        by_name[path.name].append(str(path.relative_to(ROOT)))
    assert len(files) > 60
    assert {n: p for n, p in by_name.items() if len(p) > 1} == {}
