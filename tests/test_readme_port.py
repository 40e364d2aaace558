"""The README's "Is my port the same?" example: a Keras model and its torch port read back and
compared, in the ``path`` nox session (torch and tensorflow in one environment); skipped where
either is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_docs import doc_blocks, run_python


def test_readme_port_example():
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    (block,) = doc_blocks("README.md", "test_readme_port_example")
    namespace, _ = run_python(block)  # checks the three printed verdicts
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert namespace["report"] in readme, "the README's table is not the example's report"
