"""The ``regcore`` command line, run as users run it: in a subprocess, reading exit codes.
``convert`` (pure arithmetic, no framework) runs ``main`` in-process to keep the suite fast; the
console-script test pins that the installed command is the same ``main``."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import regcore
from regcore import L2, Rule, Select, Spec

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "regcore", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def in_process(*args: str) -> subprocess.CompletedProcess:
    """``regcore ARGS`` in this process: its exit code, stdout and stderr."""
    from regcore_apps.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())


def convert(*args: str) -> subprocess.CompletedProcess:
    return in_process("convert", *args)


def one_line_error(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("regcore: error: ") and message in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout == ""


def test_backends_lists_installed_backends_without_importing_a_framework():
    code = ("import sys, io, contextlib; from regcore_apps.cli import main; out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out): rc = main(['backends', '--json'])\n"
            "assert rc == 0, rc; print(out.getvalue().strip())\n"
            "print(sorted({'numpy', 'torch', 'tensorflow', 'jax', 'keras'} & set(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    listing, loaded = proc.stdout.strip().splitlines()
    assert json.loads(listing)["backends"] == regcore.available_backends()
    assert loaded == "[]"


def test_convert_keras_l2_to_torch_and_sklearn():
    proc = convert("l2", "0.01", "--from", "keras", "--to", "torch", "--to", "ridge",
                   "--n-samples", "100", "--data-loss", "mse", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["convention"]: r for r in json.loads(proc.stdout)["to"]}
    assert rows["torch_weight_decay"]["coefficients"] == {"coef": 0.02}
    assert rows["sklearn_ridge"]["coefficients"] == {"coef": 1.0}


def test_convert_table_shows_every_form_of_the_term():
    proc = convert("l2", "0.01", "--from", "sum")
    assert proc.returncode == 0
    for text in ("torch_weight_decay", "0.02", "batch_mean", "needs batch_size",
                 "--batch-size"):
        assert text in proc.stdout


@pytest.mark.parametrize(("args", "coefficients"), [
    (("0.006", "0.007", "--from", "keras", "--to", "elasticnet"),
     {"alpha": 0.01, "l1_ratio": 0.3}),
    (("0.01", "0.3", "--from", "elasticnet", "--to", "keras"), {"l1": 0.006, "l2": 0.007}),
    (("0.01", "0.3", "--from", "elasticnet", "--to", "elasticnet"),
     {"alpha": 0.01, "l1_ratio": 0.3}),
])
def test_convert_elastic_net_speaks_sklearns_alpha_and_l1_ratio(args, coefficients):
    proc = convert("elastic_net", *args, "--data-loss", "mse", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["to"][0]["coefficients"] == coefficients
    table = convert("elastic_net", *args, "--data-loss", "mse").stdout
    assert ", ".join(f"{n}={v!r}" for n, v in coefficients.items()) in table


@pytest.mark.parametrize(("args", "message"), [
    (("l3", "0.1", "--from", "sum"), "unknown term 'l3'"),
    (("l2", "0.1", "--from", "keras2"), "unknown convention 'keras2'"),
    (("l2", "-1", "--from", "sum"), "l2.coef: must be >= 0"),
    (("l2", "nan", "--from", "sum"), "l2.coef"),
    (("l2", "abc", "--from", "sum"), "coefficient 'abc' is not a number"),
    (("elastic_net", "0.1", "--from", "sum"), "elastic_net takes 2 coefficient(s) (l1, l2)"),
    (("elastic_net", "0.1", "--from", "elasticnet", "--data-loss", "mse"),
     "elastic_net from sklearn_elasticnet takes 2 coefficient(s) (alpha, l1_ratio)"),
    (("elastic_net", "0.1", "1.5", "--from", "elasticnet", "--data-loss", "mse"),
     "elastic_net.l1_ratio: must be in [0, 1]"),
    (("l2", "0.1"), "the following arguments are required: --from"),
    (("l2", "0.1", "--from", "batch_mean"), "needs batch_size"),
    # a conversion asked for by name and refused is an error, not a row in exit-0 output
    (("l1", "0.01", "--from", "sum", "--to", "torch", "--json"),
     "l1 has no 'torch_weight_decay' form"),
    (("l2", "0.01", "--from", "sum", "--to", "sum", "--to", "lasso"),
     "l2 has no 'sklearn_lasso' form"),
    (("l2", "0.01", "--from", "sum", "--to", "ridge"), "sklearn_ridge needs n_samples"),
    # no form at all is said first, before the numbers that form would need
    (("l1", "0.01", "--from", "sum", "--to", "batch_mean"), "l1 has no 'batch_mean' form"),
    (("l2", "0.01", "--from", "sum", "--batch-size", "0"),
     "argument --batch-size: expected a positive integer, got '0'"),
    (("l2", "0.01", "--from", "sum", "--n-samples", "-3"),
     "argument --n-samples: expected a positive integer, got '-3'"),
])
def test_convert_bad_input_is_one_line(args, message):
    one_line_error(convert(*args), message)


def test_unknown_command_is_one_line():
    one_line_error(cli("frobnicate"), "invalid choice: 'frobnicate'")


def _spec_file(tmp_path: Path, spec: Spec | str) -> str:
    path = tmp_path / "spec.json"
    path.write_text(spec if isinstance(spec, str) else regcore.to_json(spec))
    return str(path)


SPEC = Spec(penalties=(Rule(L2(0.02, convention="torch_weight_decay")),))


def test_check_agrees_on_the_reference_backend(tmp_path):
    proc = cli("check", _spec_file(tmp_path, SPEC), "--backends", "numpy", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["agree"] and [r["status"] for r in result["rows"]] == ["agrees", "agrees"]
    assert len(result["rows"][0]["scenarios"]) == 9
    assert result["rows"][0]["scenarios"][-2:] == ["cnn_images", "attention_tokens"]


def test_check_table_names_backend_and_worst_error(tmp_path):
    proc = cli("check", _spec_file(tmp_path, SPEC), "--backends", "numpy", "--dtypes",
               "float32")
    assert proc.returncode == 0, proc.stderr
    assert "numpy" in proc.stdout and "agrees" in proc.stdout and "worst err/tol" in proc.stdout


def test_check_reports_a_disagreeing_backend_with_exit_1(tmp_path):
    proc = cli("check", _spec_file(tmp_path, SPEC), "--backends",
               "numpy,tests.broken_backends:DoubleL2", "--dtypes", "float64", "--json")
    assert proc.returncode == 1, proc.stderr
    rows = {r["backend"]: r for r in json.loads(proc.stdout)["rows"]}
    assert rows["numpy"]["status"] == "agrees"
    assert rows["double_l2"]["status"] == "disagrees"
    assert any("loss" in f for f in rows["double_l2"]["failures"])


def test_check_says_which_scenarios_a_spec_does_not_apply_to(tmp_path):
    spec = Spec(penalties=(Rule(L2(0.01, convention="sum"), Select(name=r"dense_2\..*")),))
    proc = cli("check", _spec_file(tmp_path, spec), "--backends", "numpy", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert "linreg_half_mse" in result["scenarios_not_applicable"]
    assert result["rows"][0]["scenarios"] == ["mlp_regression", "mlp_relu_half_mse",
                                              "iris_mlp"]


def test_check_lists_a_reason_once_for_all_the_scenarios_it_applies_to(tmp_path):
    spec = Spec(penalties=(Rule(L2(0.01, convention="sum"), Select(name=r"dense_2\..*")),))
    proc = in_process("check", _spec_file(tmp_path, spec), "--backends", "numpy", "--dtypes",
                      "float64")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())  # undo the table's line wrapping
    # one line for the four linear models (the same parameters), one each for the CNN and the
    # attention model, whose parameters the reason lists
    assert text.count("selects no parameter") == 3
    assert ("not applicable: linreg_half_mse, linreg_mse, linreg_mse_glorot, linreg_multi: "
            "penalties[0]: Select(name='dense_2\\\\..*') selects no parameter") in text


def test_check_uses_the_suites_comparison_and_so_catches_a_wrong_dtype(tmp_path):
    """``regcore check`` compares as the conformance suite does (``Checker.compare``): a backend
    that computes float32 cases in float64 disagrees, named by the dtype it returned."""
    proc = in_process("check", _spec_file(tmp_path, SPEC), "--backends",
                      "tests.broken_backends:Float64Always", "--json")
    assert proc.returncode == 1, proc.stderr
    rows = {r["dtype"]: r for r in json.loads(proc.stdout)["rows"]}
    assert rows["float64"]["status"] == "agrees"
    assert rows["float32"]["status"] == "disagrees"
    assert "loss: dtype float64, expected float32" in " ".join(rows["float32"]["failures"])


def test_check_by_default_skips_a_registered_backend_that_is_not_installed(monkeypatch,
                                                                             tmp_path):
    from regcore_apps.cli import backends

    ghost = {"name": "ghost", "importable": False, "reason": "ghostfw not installed",
             "install": 'pip install "regcore[ghost]"'}
    monkeypatch.setattr(backends, "backend_status", lambda: [ghost])
    monkeypatch.setattr(backends, "available_backends", lambda: ["ghost", "numpy"])
    loaded, unavailable = backends.load_backends(None)
    assert [b.name for b in loaded] == ["numpy"]
    assert unavailable == {"ghost": 'ghostfw not installed (pip install "regcore[ghost]")'}
    proc = in_process("check", _spec_file(tmp_path, SPEC), "--dtypes", "float64", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["rows"]
    assert [(r["backend"], r["status"], r["note"]) for r in rows] == [
        ("ghost", "skipped", 'ghostfw not installed (pip install "regcore[ghost]")'),
        ("numpy", "agrees", "")]


@pytest.mark.parametrize(("make", "extra", "message"), [
    (lambda p: str(p / "missing.json"), (), "missing.json: No such file or directory"),
    (lambda p: _spec_file(p, "{not json"), (), "spec: not valid JSON"),
    (lambda p: _spec_file(p, '{"schema_version": 1, "penalties": [{"term": {"kind": "l2", '
                             '"coef": -1, "convention": "sum"}}]}'), (), "coef: must be >= 0"),
    (lambda p: _spec_file(p, SPEC), ("--backends", "nope"), "unknown backend 'nope'"),
    (lambda p: _spec_file(p, SPEC), ("--backends", "numpy", "--devices", "cuda"),
     "unknown device 'cuda'"),
    (lambda p: _spec_file(p, SPEC), ("--backends", "tests.author_backends:FlakyGpuBackend",
                                     "--devices", "gpu"), "device(s) gpu not available"),
    (lambda p: _spec_file(p, SPEC), ("--dtypes", "float16"), "unknown dtype 'float16'"),
    (lambda p: _spec_file(p, Spec(penalties=(Rule(L2(0.1, convention="sum"),
                                                  Select(roles=("other",))),))), (),
     "the spec applies to none of the scenarios"),
])
def test_check_bad_input_is_one_line(tmp_path, make, extra, message):
    one_line_error(cli("check", make(tmp_path), *extra), message)


def test_export_unknown_backend_is_one_line(tmp_path):
    one_line_error(cli("export", _spec_file(tmp_path, SPEC), "--backend", "cobol"),
                   "no exporter for backend 'cobol'")


def test_installed_console_script_is_the_same_tool():
    script = Path(sys.executable).parent / "regcore"
    if not script.exists():
        pytest.skip(f"regcore is not installed as a console script next to {sys.executable}")
    proc = subprocess.run([str(script), "convert", "l2", "0.5", "--from", "half", "--to", "sum",
                           "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["to"][0]["coefficients"] == {"coef": 0.25}


def test_export_prints_a_snippet_that_runs_without_regcore(tmp_path):
    proc = cli("export", _spec_file(tmp_path, SPEC), "--backend", "numpy")
    assert proc.returncode == 0, proc.stderr
    assert "import regcore" not in proc.stdout
    assert "def regularization(params, roles)" in proc.stdout
    import numpy as np

    namespace: dict = {}
    exec(compile(proc.stdout, "exported", "exec"), namespace)
    w = np.arange(6.0).reshape(2, 3)
    value, grads = namespace["regularization"]({"k": w, "b": np.ones(3)},
                                               {"k": "weight", "b": "bias"})
    assert value == 0.01 * np.sum(w * w) and np.array_equal(grads["b"], np.zeros(3))
