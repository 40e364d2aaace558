"""The coverage set: each report holds the combinations its run checked, and a run that checks
fewer than the committed baseline (tests/coverage/<run>.json) fails loudly, naming them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_plugin import run_suite

from regcore_conformance import coverage

ROOT = Path(__file__).resolve().parent.parent
RUNS = ("numpy", "torch", "tf", "jax", "torch-distributed", "tf-distributed", "array_api")
COMBOS = {
    "cpu|float64|linreg_mse|l2_sum|test_trajectory|sgd_20_steps|-",
    "cpu|float32|linreg_mse|l2_sum|test_trajectory|sgd_20_steps|-",
    "cpu|float64|iris_mlp|l2_sum|test_trajectory|sgd_10_steps|-",
    "cpu|float64|iris_mlp|l2_sum|test_native_training|native_loss_term_sgd|loss_term",
}


def _report(tmp_path: Path, combos: set[str]) -> Path:
    path = tmp_path / "conformance-alpha.json"
    path.write_text(json.dumps({"backend": "alpha", "coverage": {
        "count": len(combos), "combinations": sorted(combos)}}))
    return path


def test_the_compact_baseline_holds_the_same_set():
    baseline = coverage.compact(COMBOS)
    assert coverage.expand(baseline) == COMBOS and baseline["count"] == len(COMBOS)
    assert len(baseline["lists"]) < len(baseline["groups"])  # shared member lists


def test_a_run_that_checks_fewer_combinations_fails_naming_them(tmp_path, capsys):
    base = tmp_path / "base.json"
    assert coverage.main([str(_report(tmp_path, COMBOS)), "--baseline", str(base),
                          "--update"]) == 0
    dropped = "cpu|float32|linreg_mse|l2_sum|test_trajectory|sgd_20_steps|-"
    assert coverage.main([str(_report(tmp_path, COMBOS - {dropped})),
                          "--baseline", str(base)]) == 1
    err = capsys.readouterr().err
    assert "FAIL: alpha checked 1 fewer combinations" in err and dropped in err


def test_a_run_that_checks_more_passes_and_says_so(tmp_path, capsys):
    base = tmp_path / "base.json"
    coverage.main([str(_report(tmp_path, COMBOS)), "--baseline", str(base), "--update"])
    extra = "cuda|float64|linreg_mse|l2_sum|test_trajectory|sgd_20_steps|-"
    assert coverage.main([str(_report(tmp_path, COMBOS | {extra})),
                          "--baseline", str(base)]) == 0
    assert "1 new" in capsys.readouterr().out


@pytest.mark.parametrize("run", RUNS)
def test_every_default_run_has_a_committed_baseline(run):
    baseline = json.loads((ROOT / "tests" / "coverage" / f"{run}.json").read_text())
    assert len(coverage.expand(baseline)) == baseline["count"] > 1000


def test_the_report_holds_the_combinations_its_run_checked(tmp_path):
    proc, report = run_suite(tmp_path, "numpy", "-k",
                             "test_native_training and in_place and sgd and iris_mlp-l2_sum "
                             "or test_penalty and l2_half")
    assert proc.returncode == 0, proc.stdout[-2000:]
    combos = set(report["coverage"]["combinations"])
    assert report["coverage"]["count"] == len(combos)
    assert combos == {coverage.combination(r, "in_place" if "test_native" in r["test"] else "-")
                      for r in report["records"] if r["outcome"] in coverage.CHECKED}
    assert "cpu|float64|iris_mlp|l2_sum|test_native_training|native_in_place_sgd:dense_0.kernel|" \
           "in_place" in combos


def test_a_run_split_over_pytest_xdist_workers_reports_what_a_serial_run_does(tmp_path):
    """The nox sessions run the suite with ``-n auto``: the controller merges its workers'
    records, coverage and native tallies into one report equal to a serial run's (the order of
    records aside; durations differ)."""
    pytest.importorskip("xdist")
    selection = "linreg_multi and (test_trajectory or test_native or test_penalty)"
    serial_dir, split_dir = tmp_path / "serial", tmp_path / "split"
    serial_dir.mkdir(), split_dir.mkdir()
    proc, serial = run_suite(serial_dir, "numpy", "-k", selection, "-p", "no:xdist")
    assert proc.returncode == 0, proc.stdout[-2000:]
    proc, split = run_suite(split_dir, "numpy", "-k", selection, "-n", "2")
    assert proc.returncode == 0, proc.stdout[-2000:]

    def records(report: dict) -> list[str]:
        return sorted(json.dumps({k: v for k, v in r.items() if k != "duration_s"},
                                 sort_keys=True) for r in report["records"])

    assert len(serial["records"]) > 100
    assert records(split) == records(serial)
    assert split["coverage"] == serial["coverage"] and split["summary"] == serial["summary"]
    assert split["native_translations"] == serial["native_translations"]
    assert split["timing"].keys() == serial["timing"].keys()
