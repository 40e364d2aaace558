"""The benchmark harness runs end to end (``python -m benchmarks --quick``) on whatever backends are
installed and writes a JSON report and a markdown table of the right shape. No timing is asserted:
timing targets live in the benchmarks' report, never in tests."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc, json.loads((out / "bench.json").read_text(encoding="utf-8")), \
        (out / "table.md").read_text(encoding="utf-8")


def _groups(rows):
    groups = {}
    for row in rows:
        groups.setdefault((row["backend"], row["device"], row["mode"], row["shape"]),
                          []).append(row)
    return groups


def test_numpy_at_least_ran_and_nothing_failed(quick_run):
    _, result, _ = quick_run
    ran = {row["backend"] for row in result["steps"]}
    assert "numpy" in ran
    assert not [n for n in result["notes"] if "failed" in n or "Error" in n], result["notes"]
    assert {b["backend"] for b in result["bandwidth"]} == ran
    for backend in {"numpy", "torch", "tf", "jax"} - ran:  # not installed: a note, not an error
        assert any(n.startswith(f"{backend}: skipped") for n in result["notes"])


def test_one_row_per_idiom_with_positive_finite_ratios(quick_run):
    _, result, _ = quick_run
    for key, rows in _groups(result["steps"]).items():
        idioms = [r["idiom"] for r in rows]
        assert len(idioms) == len(set(idioms)) >= 3, key
        assert idioms[0] == "none" and rows[0]["ratio"] == 1.0, key
        assert any(i.startswith("regcore_") for i in idioms), key
        for r in rows:
            for field in ("ratio", "ratio_lo", "ratio_hi", "ratio_q1", "ratio_q3", "median_ms",
                          "q1_ms", "q3_ms"):
                assert math.isfinite(r[field]) and r[field] > 0, (key, r["idiom"], field)
            assert r["min_ms"] <= r["q1_ms"] <= r["median_ms"] <= r["q3_ms"] <= r["max_ms"]
            assert r["ratio_lo"] <= r["ratio_hi"]


def test_penalty_values_agree_and_have_a_floor(quick_run):
    _, result, _ = quick_run
    groups = _groups(result["values"])
    assert {k[0] for k in groups} == {r["backend"] for r in result["steps"]}
    for key, rows in groups.items():
        assert len({r["idiom"] for r in rows}) == len(rows) >= 2, key
        values = [r["value"] for r in rows]
        assert all(math.isclose(v, values[0], rel_tol=1e-3) for v in values), (key, values)
        for r in rows:
            assert math.isfinite(r["floor_ms"]) and r["floor_ms"] > 0
            assert math.isfinite(r["x_floor"]) and r["x_floor"] > 0


def test_import_time_is_measured(quick_run):
    _, result, _ = quick_run
    imp = result["import"]
    assert imp["runs"] >= 1 and imp["importtime_ms"] > 0
    assert math.isfinite(imp["wall_minus_bare_ms"])


def test_markdown_has_every_row_and_is_printed(quick_run):
    proc, result, table = quick_run
    assert table in proc.stdout
    assert "## import regcore" in table and "## Penalty value alone" in table
    section = table.split("### All step rows\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(section) == len(result["steps"]) + 2  # + the header and its rule
    for row in result["steps"]:
        assert f"| {row['label']} |" in table


def test_summary_has_a_row_per_backend_device_and_shape(quick_run):
    from benchmarks.report import summary

    _, result, table = quick_run
    lines = summary(result["steps"], result["values"])
    wanted = {(r["backend"], r["device"], r["shape"]) for r in result["steps"]}
    assert len(lines) == len(wanted) + 2
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert tuple(cells[:3]) in wanted
        assert "regcore" in cells[5] and cells[6] in ("met", "above", "not told apart")
    assert "\n".join(lines) in table


def test_bad_arguments_are_refused():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--shapes", "4by1024"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "LAYERSxWIDTH" in proc.stderr
