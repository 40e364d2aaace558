"""The conformance suite passes with the TF backend run eagerly and under XLA, not only as a
plain ``tf.function`` (the mode the ``tf`` session's full run uses).

Runs in the ``tf`` nox session (skipped where TensorFlow is not installed). A subset keeps XLA's
per-configuration compile time in bounds: every term case, Iris-MLP trajectories for coupled
L2, decoupled decay and the orthogonal term under SGD and Adam, and the exported snippet (which a
user puts inside ``tf.function``) on the Iris MLP with the orthogonal and group-lasso terms.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

ROOT = Path(__file__).resolve().parents[2]
SUBSET = ("test_penalty or test_subgradient_at_zero or (test_trajectory and iris_mlp "
          "and (l2_sum or decoupled_decay or orthogonal_rows)) or (test_exported_snippet "
          "and iris_mlp and (orthogonal_rows or group_lasso_rows))")


@pytest.mark.parametrize("backend", ["TFEager", "TFJit"])
def test_suite_subset_passes_in_mode(tmp_path, backend):
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "regcore_conformance", "-p",
         "no:cacheprovider", "-q", "--regcore-backend", f"tests.adapter_tf.modes:{backend}",
         "--regcore-report", str(report), "-k", SUBSET],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(report.read_text())["summary"]
    assert summary["failed"] == 0 and summary["checks"] > 100, summary
