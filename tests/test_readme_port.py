"""The README's "Is my port the same?" example and ``regcore diff`` on the same pair: a Keras
model and its torch port read back and compared, in the ``path`` nox session (torch and
tensorflow in one environment); skipped where either is missing."""

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


SETUPS = '''
import keras
import torch


def original():
    l2 = keras.regularizers.L2(0.01)
    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(8, name="hidden", kernel_regularizer=l2),
                              keras.layers.Dense(2, name="out", kernel_regularizer=l2)])
    return model, keras.optimizers.SGD(0.1)


def port():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    return model, torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.01)
'''


def test_regcore_diff_on_a_keras_setup_and_its_torch_port(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    from regcore import L2, Rule, Select, Spec, to_json
    from regcore_apps.cli import main

    (tmp_path / "portsetups.py").write_text(SETUPS)
    fixed = Spec([Rule(L2(0.02, convention="torch_weight_decay"), Select(roles=("weight",)))])
    (tmp_path / "fixed.json").write_text(to_json(fixed))
    monkeypatch.chdir(tmp_path)
    assert main(["diff", "keras:portsetups:original", "torch:portsetups:port"]) == 1
    out = capsys.readouterr().out
    assert out.count("factor 2: L2 vs weight_decay") == 2 and out.count("only in B") == 2
    assert main(["diff", "keras:portsetups:original", "torch:portsetups:port",
                 "--spec-b", "fixed.json"]) == 0  # the fix: weight_decay 0.02 on the weights
    assert main(["audit", "keras:portsetups:original"]) == 0
    assert "hidden.kernel" in capsys.readouterr().out
