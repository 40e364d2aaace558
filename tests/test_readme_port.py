"""The README's "Is my port the same?" example and ``regcore diff`` on the same pair: a Keras
model and its torch port read back and compared, in the ``path`` nox session (torch and
tensorflow in one environment); skipped where either is missing."""

from __future__ import annotations

import json
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


EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"  # portsetups.py


def test_regcore_diff_on_a_keras_setup_and_its_torch_port(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    from regcore import L2, Rule, Select, Spec, to_json
    from regcore_apps.cli import main

    fixed = Spec([Rule(L2(0.02, convention="torch_weight_decay"), Select(roles=("weight",)))])
    (tmp_path / "fixed.json").write_text(to_json(fixed))
    monkeypatch.chdir(EXAMPLES)
    out_file = tmp_path / "diff" / "port.json"
    assert main(["diff", "keras:portsetups:original", "torch:portsetups:port",
                 "--out", str(out_file)]) == 1
    out = capsys.readouterr().out
    assert out.count("factor 2: L2 vs weight_decay") == 2 and out.count("only in B") == 2
    written = json.loads(out_file.read_text())
    assert not written["same"] and len(written["rows"]) == 4
    assert main(["diff", "keras:portsetups:original", "torch:portsetups:port",
                 "--spec-b", str(tmp_path / "fixed.json")]) == 0  # weight_decay 0.02, weights
    assert main(["audit", "keras:portsetups:original"]) == 0
    assert "hidden.kernel" in capsys.readouterr().out
