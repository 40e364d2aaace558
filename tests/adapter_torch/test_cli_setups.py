"""``regcore audit`` and ``regcore diff`` on torch setups written as a user would: a module with
a function returning ``(model, optimizer)``."""

from __future__ import annotations

import json
import textwrap

import pytest

pytest.importorskip("torch")

from regcore_apps.cli import main  # noqa: E402

SETUPS = '''
import torch


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8),
                               torch.nn.Linear(8, 2))


def everything():  # torch's default: every parameter decayed, coupled
    model = _model()
    return model, torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.02)


def weights_only():
    model = _model()
    decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() == 2]
    rest = [p for n, p in model.named_parameters() if not (n.endswith("weight") and p.dim() == 2)]
    return model, torch.optim.SGD([{"params": decay, "weight_decay": 0.02},
                                   {"params": rest, "weight_decay": 0.0}], lr=0.1)


def adamw():
    model = _model()
    return model, torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.02)


def frozen():
    model = _model()
    model[0].weight.requires_grad_(False)
    return model, torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.02)


def activity(reduction="sum"):  # a hook's L2 on the LayerNorm's output, by PenaltyLoss
    import regcore
    from regcore_adapters.torch.native import PenaltyLoss

    model = _model()
    spec = regcore.Spec(activity=(
        regcore.Activity(regcore.L2(0.01, convention="sum"), "1", reduction),))
    return model, torch.optim.SGD(model.parameters(), lr=0.1), PenaltyLoss(spec, model)


def activity_batch_mean():
    return activity("batch_mean")


def broken():
    raise RuntimeError("no data here")
'''


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    (tmp_path / "usersetups.py").write_text(textwrap.dedent(SETUPS))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_audit_prints_what_each_parameter_gets(user_dir, capsys):
    assert main(["audit", "torch:usersetups:frozen"]) == 0
    out = capsys.readouterr().out
    assert "0.weight" in out and "(frozen)" in out
    assert "2.bias" in out and "l2 coef=0.01" in out  # weight_decay 0.02 = gradient of 0.01·Σp²
    assert "note: param group 0: weight_decay=0.02 on frozen 0.weight" in out
    assert main(["audit", "torch:usersetups:adamw", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert {r["param"]: r["decay"] for r in got["params"]}["1.weight"] == 0.02
    assert got["spec"]["weight_decay"] and not got["notes"]


def test_diff_exit_codes_and_verdicts(user_dir, capsys):
    assert main(["diff", "torch:usersetups:everything", "torch:usersetups:everything"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("same")
    assert main(["diff", "torch:usersetups:everything", "torch:usersetups:weights_only",
                 "--json"]) == 1
    rows = json.loads(capsys.readouterr().out)["rows"]
    verdicts = {(r["a"], r["kind"]): r["verdict"] for r in rows}
    assert verdicts[("0.weight", "l2")] == "same"
    assert verdicts[("0.bias", "l2")] == "only in A"  # biases decayed on one side only
    assert verdicts[("1.weight", "l2")] == "only in A"  # the norm's scale too
    assert main(["diff", "torch:usersetups:everything", "torch:usersetups:adamw"]) == 1
    assert "coupled vs decoupled" in capsys.readouterr().out


def test_diff_by_names_with_a_rename(user_dir, capsys):
    assert main(["diff", "torch:usersetups:everything", "torch:usersetups:everything",
                 "--map", "names", "--rename", r"^2\.=9.", "--json"]) == 1
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {r["verdict"] for r in rows if r["a"] and r["a"].startswith("2.")} == {"unmapped"}


@pytest.mark.parametrize(("argv", "message"), [
    (["audit", "torch:usersetups:broken"], "RuntimeError: no data here"),
    (["audit", "torch:nosuchmodule:f"], "No module named 'nosuchmodule'"),
    (["audit", "jax:usersetups:adamw"], "expected FRAMEWORK:MODULE:FUNCTION"),
    (["diff", "torch:usersetups:adamw", "torch:usersetups:adamw", "--rename", "a=b"],
     "--rename works with --map names"),
])
def test_bad_setups_are_one_line_and_exit_2(user_dir, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("regcore: error:") and message in err and err.count("\n") == 1


def test_audit_and_diff_show_activity_terms(user_dir, capsys):
    assert main(["audit", "torch:usersetups:activity"]) == 0
    assert "output of 1" in capsys.readouterr().out
    assert main(["audit", "torch:usersetups:activity", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["activity"] == [
        {"layer": "1", "kind": "l2", "numbers": {"coef": 0.01}, "reduction": "sum"}]
    assert main(["diff", "torch:usersetups:activity", "torch:usersetups:activity_batch_mean"]) == 1
    assert "sum vs batch_mean" in capsys.readouterr().out
