"""The conformance plugin, run the way a backend author runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The suite's subprocesses may cache pytest's rewritten modules as bytecode even where the
# machine says not to (PYTHONDONTWRITEBYTECODE): each of these ~40 runs would otherwise rewrite
# and compile the whole suite again (half a second each on a 2-core machine).
SUITE_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_suite(tmp_path: Path, backend: str, *extra: str) -> tuple[subprocess.CompletedProcess,
                                                                  dict | None]:
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "regcore_conformance", "-p",
         "no:cacheprovider", "-p", "no:hypothesispytest", "-q", "--regcore-backend", backend,
         "--regcore-report", str(report), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=SUITE_ENV,
    )
    data = json.loads(report.read_text()) if report.exists() else None
    return proc, data


# (mutant, -k selection, a check that must fail): each a deliberately broken backend from
# tests/broken_backends.py, a small selection that exercises its bug, and the characteristic check
# that catches it. docs/mutations.md documents every row; tests/test_docs.py keeps the two in step.
MUTANT_CASES = [
    ("tests.broken_backends:DoubleL2", "test_penalty and l2_half", "penalty"),
    ("tests.broken_backends:DoubleL2", "test_loss_and_gradients and l2_sum", "loss"),
    ("tests.broken_backends:SignOneAtZero", "test_subgradient_at_zero and l1_sum",
     "subgradient_at_zero"),
    ("tests.broken_backends:SignOneAtZero", "test_loss_and_gradients and linreg_half_mse-l1_sum",
     "grad:dense_0.kernel"),
    ("tests.broken_backends:DecayTwice", "test_trajectory and sgd and decoupled_decay",
     "sgd_10_steps:dense_0.kernel"),
    ("tests.broken_backends:AdamWForCoupledL2", "test_trajectory and adam and l2_sum",
     "adam_10_steps:dense_0.kernel"),
    ("tests.broken_backends:DecoupledAsCoupled",
     "test_trajectory and adam and linreg_half_mse-decoupled_decay",
     "adam_20_steps:dense_0.kernel"),
    ("tests.broken_backends:BiasPenalized", "test_loss_and_gradients and linreg_mse_glorot-l2_sum",
     "grad:dense_0.bias"),
    ("tests.broken_backends:BatchMeanTwice", "test_penalty and l2_batch_mean", "penalty"),
    ("tests.broken_backends:BatchMeanTwice", "test_ridge_oracles and linreg_half_mse",
     "closed_form_ridge"),
    ("tests.broken_backends:LastLayerUnpenalized",
     "test_loss_and_gradients and mlp_regression-l2_sum", "grad:dense_2.kernel"),
    ("tests.broken_backends:TorchWeightDecayAsSum", "test_penalty and l2_torch_weight_decay",
     "penalty"),
    ("tests.broken_backends:CrashesInTrain", "test_trajectory and l2_sum", "call_error"),
    ("tests.broken_backends:Float64Always", "test_penalty and float32 and l2_half", "penalty"),
    ("tests.broken_backends:UpdatesInPlace", "test_trajectory and sgd and l2_sum",
     "inputs_unchanged"),
    ("tests.broken_backends:HalfMseOverEntries",
     "test_loss_and_gradients and mlp_relu_half_mse-none", "loss"),
    ("tests.broken_backends:BatchSizeFromData",
     "test_loss_and_gradients and mlp_regression-l2_batch_mean", "loss"),
    ("tests.broken_backends:BatchSizeFromData",
     "test_loss_and_gradients and linreg_multi-l2_sklearn_ridge", "loss"),
    ("tests.broken_backends:AdamDefaults", "test_trajectory and adam and linreg_multi-none",
     "adam_20_steps:dense_0.kernel"),
    ("tests.broken_backends:PenalizedGradsOnly", "test_scenario_penalty and mlp_regression-l2_sum",
     "returns:penalty"),
    ("tests.broken_backends:TorchRolesFromNdim",
     "test_native_training and loss_term and sgd and linreg_mse_glorot-l2_and_bias_decay",
     "native_loss_term:plan"),
    ("tests.broken_backends:ActivityBatchTwice",
     "test_loss_and_gradients and cnn_images-activity_l2", "loss"),
    ("tests.broken_backends:TorchConvLayoutReshaped",
     "test_native_training and loss_term and sgd and cnn_images-none",
     "native_loss_term_sgd:conv_0.kernel"),
    ("tests.broken_backends:TorchRolesFromNdim",
     "test_native_penalty and grad_side and mlp_regression-l2_sum", "native_grad_side:plan"),
]


REAL_BACKENDS = {"numpy": "regcore_adapters.numpy:NumpyBackend", "torch": "torch"}


def _built_on(mutant: str) -> str:
    """The real backend a mutant subclasses: ``torch`` for tests.broken_backends.TORCH_MUTANTS."""
    return "torch" if mutant.rpartition(":")[2].startswith("Torch") else "numpy"


def _needs(base: str) -> None:
    if base == "torch":
        pytest.importorskip("torch")


@pytest.mark.parametrize(("backend", "selection", "failing_check"), MUTANT_CASES)
def test_suite_fails_a_broken_backend(tmp_path, backend, selection, failing_check):
    _needs(_built_on(backend))
    proc, report = run_suite(tmp_path, backend, "-k", selection)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    failed = {r["check"] for r in report["records"] if r["outcome"] in ("fail", "error")}
    assert failing_check in failed, failed
    assert report["summary"]["failed"] > 0


@pytest.mark.parametrize("base", sorted(REAL_BACKENDS))
def test_same_selections_pass_on_the_real_backend(tmp_path, base):
    """The mutants' selections, all in one run, are green on the real backend the mutants are
    built on: their failures are the bugs', not the selections'. (That each selection selects
    something is proven by the mutant's own failing run.)"""
    _needs(base)
    selections = sorted({s for mutant, s, _ in MUTANT_CASES if _built_on(mutant) == base})
    proc, report = run_suite(tmp_path, REAL_BACKENDS[base], "-k",
                             " or ".join(f"({s})" for s in selections))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert report["summary"]["failed"] == 0 and report["summary"]["checks"] > 0


def test_report_records_every_field(tmp_path):
    proc, report = run_suite(tmp_path, "numpy", "-k", "test_penalty and orthogonal")
    assert proc.returncode == 0, proc.stdout[-3000:]
    record = report["records"][0]
    for key in ("backend", "device", "dtype", "scenario", "case", "check", "error",
                "max_abs_error", "tolerance", "tolerance_formula", "outcome", "ratio"):
        assert key in record
    assert record["backend"] == "numpy" and record["outcome"] == "pass"
    assert "regcore conformance: numpy" in proc.stdout


@pytest.mark.parametrize(
    ("backend", "message"),
    [("no_such_backend", "unknown backend 'no_such_backend'; installed: "),
     ("no_such_module:Thing", "cannot import backend 'no_such_module:Thing'")],
)
def test_unknown_backend_is_a_one_line_usage_error(tmp_path, backend, message):
    proc, report = run_suite(tmp_path, backend)
    assert proc.returncode == 4
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert report is None


def test_missing_backend_is_a_usage_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "regcore_conformance", "-p",
         "no:cacheprovider", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in __import__("os").environ.items() if k != "REGCORE_BACKEND"},
    )
    assert proc.returncode != 0
    assert "needs a backend: pass --regcore-backend NAME" in proc.stdout + proc.stderr


def test_module_runner_runs_the_suite(tmp_path):
    report = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "regcore_conformance", "--backend", "numpy", "--report",
         str(report), "-q", "-k", "test_penalty and l2_half"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert json.loads(report.read_text())["summary"]["passed"] > 0
