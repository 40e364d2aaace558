"""``regcore path`` as users run it: in a subprocess, reading exit codes, files and JSON."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from regcore import L1, L2, Activity, Orthogonal, Rule, Select, Spec
from tests.test_cli import _spec_file, cli, one_line_error

L1_SPEC = Spec(penalties=(Rule(L1(0.05, convention="sum")),))
FAST = ("--grid", "0.01:1:5", "--steps", "40", "--folds", "3")


def test_path_on_the_synthetic_problem_writes_the_numbers(tmp_path):
    out = tmp_path / "out"
    proc = cli("path", _spec_file(tmp_path, L1_SPEC), "--data", "synthetic", "--backends",
               "numpy", "--no-plots", "--out", str(out), "--json", *FAST)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["agree"] and summary["files"] == [str(out / "path.json")]
    (result,) = json.loads((out / "path.json").read_text())["results"]
    assert result["grid"] == pytest.approx([1, 10**-0.5, 0.1, 10**-1.5, 0.01], rel=1e-15)
    assert np.asarray(result["val_loss"]).shape == (3, 5)
    assert result["folds"] == {"k": 3, "seed": 0, "validation_sizes": [67, 67, 66]}
    assert summary["rows"][0]["choice"] == result["choice"]
    zeros = result["coefficients"]["zeros"]
    assert zeros[0] > 0 and zeros[-1] == 0  # exact zeros at the strong end only


def test_path_table_says_what_was_chosen(tmp_path):
    proc = cli("path", _spec_file(tmp_path, L1_SPEC), "--data", "synthetic", "--backends",
               "numpy", "--no-plots", "--out", str(tmp_path), "--rule", "1se", *FAST)
    assert proc.returncode == 0, proc.stderr
    for text in ("l1 coef (sum convention)", "λ (1se)", "agrees", "exactly 0"):
        assert text in proc.stdout


def test_path_reports_a_backend_that_chooses_differently_with_exit_1(tmp_path):
    spec = Spec(penalties=(Rule(L2(0.05, convention="sum")),))
    proc = cli("path", _spec_file(tmp_path, spec), "--data", "synthetic", "--backends",
               "numpy,tests.broken_backends:DoubleL2", "--no-plots", "--out", str(tmp_path),
               "--json", *FAST)
    assert proc.returncode == 1, proc.stderr
    rows = {r["backend"]: r for r in json.loads(proc.stdout)["rows"]}
    assert rows["numpy"]["status"] == "agrees"
    assert rows["double_l2"]["status"] == "disagrees"
    assert rows["double_l2"]["agreement"]["error"] > rows["double_l2"]["agreement"]["tolerance"]


def test_path_reads_a_csv_with_a_header_and_an_npz(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 2))
    y = x @ [1.0, -2.0] + 0.1 * rng.standard_normal(30)
    csv = tmp_path / "data.csv"
    csv.write_text("a,b,target\n" + "\n".join(f"{a},{b},{t}" for (a, b), t in zip(x, y,
                                                                                 strict=True)))
    np.savez(tmp_path / "data.npz", x=x, y=y)
    results = []
    for data in (csv, tmp_path / "data.npz"):
        out = tmp_path / data.suffix[1:]
        proc = cli("path", _spec_file(tmp_path, L1_SPEC), "--data", str(data), "--backends",
                   "numpy", "--no-plots", "--out", str(out), *FAST)
        assert proc.returncode == 0, proc.stderr
        results.append(json.loads((out / "path.json").read_text())["results"][0])
    assert results[0]["mean_val"] == results[1]["mean_val"]  # the same numbers either way
    assert results[0]["model"] == {"sizes": [2, 1], "activation": None, "loss": "mse"}


def _write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


@pytest.mark.parametrize(("extra", "message"), [
    (("--data", "nowhere"), "not a preset"),
    (("--data", "missing.csv"), "missing.csv: no such file"),
    (("--data", "synthetic", "--grid", "1:2"), "--grid: expected LOW:HIGH:N"),
    (("--data", "synthetic", "--grid", "2:1:3"), "need 0 < low <= high"),
    (("--data", "synthetic", "--grid", "0.1:1:3", "--values", "1"), "not both"),
    (("--data", "synthetic", "--values", "1,x"), "--values: not a list of numbers"),
    (("--data", "synthetic", "--values", "1,-1"), "positive finite"),
    (("--data", "synthetic", "--folds", "1"), "need 2 <= folds"),
    (("--data", "synthetic", "--steps", "1"), "path steps"),
    (("--data", "synthetic", "--lr", "-1"), "path lr"),
    (("--data", "synthetic", "--backends", "nope"), "unknown backend 'nope'"),
    (("--data", "synthetic", "--formats", "gif"), "unknown format 'gif'"),
    (("--data", "synthetic", "--hidden", "4"), "are for data files"),
    (("--data", "iris", "--loss", "mse"), "the preset fixes its model"),
])
def test_path_bad_input_is_one_line(tmp_path, extra, message):
    one_line_error(cli("path", _spec_file(tmp_path, L1_SPEC), "--backends", "numpy",
                       "--out", str(tmp_path), *FAST[2:], *extra), message)


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: _write(p, "bad.csv", "1,2\n3,oops\n"), "cannot read numbers"),
    (lambda p: _write(p, "nan.csv", "1,2\n3,nan\n"), "NaN or infinite"),
    (lambda p: _write(p, "one.csv", "1\n2\n"), "at least one feature column"),
    (lambda p: (np.savez(p / "noy.npz", x=np.ones((3, 2))), str(p / "noy.npz"))[1],
     "needs arrays named x and y"),
    (lambda p: (np.savez(p / "short.npz", x=np.ones((3, 2)), y=np.ones(2)),
                str(p / "short.npz"))[1], "one row per sample"),
])
def test_path_bad_data_files_are_one_line(tmp_path, make, message):
    one_line_error(cli("path", _spec_file(tmp_path, L1_SPEC), "--data", make(tmp_path),
                       "--backends", "numpy", "--no-plots", "--out", str(tmp_path), *FAST),
                   message)


@pytest.mark.parametrize(("spec", "message"), [
    (Spec(), "nothing to vary"),
    (Spec(penalties=(Rule(L2(0.1, convention="sum"), Select(roles=("embedding",))),)),
     "selects no parameter"),
])
def test_path_refuses_a_spec_it_cannot_vary(tmp_path, spec, message):
    one_line_error(cli("path", _spec_file(tmp_path, spec), "--data", "synthetic",
                       "--backends", "numpy", "--no-plots", "--out", str(tmp_path), *FAST),
                   message)


def test_a_network_on_a_data_file_needs_a_step_size(tmp_path):
    data = _write(tmp_path, "x.csv", "1,2\n3,4\n5,6\n")
    one_line_error(cli("path", _spec_file(tmp_path, L1_SPEC), "--data", data, "--hidden", "4",
                       "--activation", "tanh", "--backends", "numpy", "--no-plots", "--out",
                       str(tmp_path), *FAST), "needs --lr")


def test_a_preset_network_runs_with_its_own_step_size(tmp_path):
    first_kernel = Select(roles=("weight",), name=r"dense_0\..*")
    spec = Spec(penalties=(Rule(Orthogonal(0.1, convention="sum"), first_kernel),))
    proc = cli("path", _spec_file(tmp_path, spec), "--data", "mlp_regression", "--backends",
               "numpy", "--no-plots", "--out", str(tmp_path), "--json", "--grid", "0.01:1:2",
               "--steps", "3", "--folds", "2")
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads((tmp_path / "path.json").read_text())["results"]
    assert result["lr"][0] == [0.05, 0.05] and "coefficients" not in result


def test_path_shows_a_progress_bar_on_a_terminal(tmp_path):
    """On a terminal (a pseudo-terminal here) stderr carries a progress bar naming the backend
    and the fold; the table still goes to stdout."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "regcore", "path", _spec_file(tmp_path, L1_SPEC), "--data",
         "synthetic", "--backends", "numpy", "--no-plots", "--out", str(tmp_path), "--grid",
         "0.01:1:5", "--steps", "400", "--folds", "3"],
        stdout=subprocess.PIPE, stderr=slave, cwd=Path(__file__).resolve().parent.parent)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        seen += chunk
    out = proc.communicate(timeout=300)[0].decode()
    os.close(master)
    assert proc.returncode == 0
    assert b"numpy: fold 1/3" in seen and b"%" in seen, seen[-500:]
    assert "agrees" in out


def test_path_refuses_a_spec_with_activity_penalties(tmp_path):
    spec = Spec(penalties=L1_SPEC.penalties,
                activity=(Activity(L2(0.01, convention="sum"), "dense_0"),))
    one_line_error(cli("path", _spec_file(tmp_path, spec), "--data", "synthetic", "--backends",
                       "numpy", "--out", str(tmp_path), *FAST[2:]),
                   "activity penalties (terms on layer outputs)")
