"""The cross-backend matrix (``python -m regcore_conformance.matrix``): merged table, exit status,
bad input, and the self-contained HTML page."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from regcore_conformance import matrix, matrix_html
from regcore_conformance.report import DEVICE_UNAVAILABLE, REPORT_VERSION, Record, Report

ENV = {"regcore": "0.1.0", "numpy": "2.4.6"}


def rec(backend: str, scenario: str, outcome: str = "pass", *, error: float = 0.0,
        tolerance: float = 1e-6, device: str = "cpu", dtype: str = "float64",
        check: str = "loss", detail: str = "") -> Record:
    return Record(backend=backend, device=device, dtype=dtype, scenario=scenario, case="l2_sum",
                  check=check, error=error, max_abs_error=error, scale=1.0, tolerance=tolerance,
                  tolerance_formula="2 gamma(n)", outcome=outcome,
                  test=f"regcore_conformance.test_x::test_y[{device}-{dtype}-{scenario}]",
                  detail=detail)


def write(directory: Path, backend: str, records: list[Record], env: dict | None = None,
          expectations: dict | None = None, run: str | None = None) -> Path:
    report = Report(backend)
    for r in records:
        report.add(r)
    report.expectations = expectations or {}
    path = directory / f"conformance-{run or backend}.json"
    report.write(path, env or ENV)
    return path


def alpha(directory: Path) -> None:
    """Passes everything it runs; s2 skipped entirely; no s3 at all."""
    write(directory, "alpha", [
        rec("alpha", "s1", error=1e-9), rec("alpha", "s1", error=0.0),
        rec("alpha", "s1", error=2.5e-7), rec("alpha", "s1", "skip", detail="no adam"),
        rec("alpha", "s1", error=4e-8, dtype="float32"),
        rec("alpha", "s1", error=1.23456e-7, dtype="float32"),
        rec("alpha", "s2", "skip", detail="not yet"), rec("alpha", "s2", "skip", detail="x"),
        rec("reference", "s1", error=3e-9, check="reference_finite_differences"),
    ], env={**ENV, "alphalib": "1.2.3"})


def beta(directory: Path, failing: bool) -> None:
    records = [rec("beta", "s1", error=5e-7), rec("beta", "s3", error=1e-8)]
    if failing:
        records += [rec("beta", "s3", "fail", error=3e-6, check="grad:w"),
                    rec("beta", "s3", "error", error=float("inf"), tolerance=0.0,
                        check="call_error", detail="RuntimeError: boom")]
    write(directory, "beta", records)


def md_rows(text: str) -> dict[tuple[str, ...], list[str]]:
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| backend"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows[tuple(cells[:4])] = cells[4:]
    return rows


def run_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "regcore_conformance.matrix", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def test_table_rows_and_numbers(tmp_path, capsys):
    alpha(tmp_path)
    beta(tmp_path, failing=False)
    assert matrix.main([str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {tmp_path / 'out' / 'matrix.md'}" in printed
    assert f"wrote {tmp_path / 'out' / 'matrix.html'}" in printed
    text = (tmp_path / "out" / "matrix.md").read_text()
    rows = md_rows(text)
    # checks, failed, skipped, xfailed, status, worst err/tol (3 significant digits)
    assert rows == {
        ("alpha", "cpu", "float32", "s1"): ["2", "0", "0", "0", "pass", "0.123"],
        ("alpha", "cpu", "float64", "s1"): ["3", "0", "1", "0", "pass", "0.25"],
        ("alpha", "cpu", "float64", "s2"): ["0", "0", "2", "0", "skip", "-"],
        ("alpha (reference)", "cpu", "float64", "s1"): ["1", "0", "0", "0", "pass", "0.003"],
        ("beta", "cpu", "float64", "s1"): ["1", "0", "0", "0", "pass", "0.5"],
        ("beta", "cpu", "float64", "s3"): ["1", "0", "0", "0", "pass", "0.01"],
    }
    header = [line for line in text.splitlines() if line.startswith("- **alpha**")]
    assert len(header) == 1
    assert "alphalib 1.2.3" in header[0] and "regcore 0.1.0" in header[0]
    assert "6 checks, 6 passed, 0 failed (0 errors), 3 skipped" in header[0]
    assert "All agree with the reference." in text
    assert "Tolerance overrides" not in text  # nothing to list


def test_exit_status_through_subprocess(tmp_path):
    alpha(tmp_path)
    beta(tmp_path, failing=False)
    ok = run_cli(tmp_path, cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "FAIL" not in ok.stdout and (tmp_path / "matrix.html").exists()  # default out dir

    beta(tmp_path, failing=True)
    bad = run_cli(tmp_path, "--out", tmp_path / "o", cwd=tmp_path)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    fails = [line for line in bad.stdout.splitlines() if line.startswith("FAIL")]
    assert fails == ["FAIL beta cpu float64 s3: 2 of 3 checks failed (1 errors), "
                     "worst err/tol inf"]
    assert "Traceback" not in bad.stderr
    rows = md_rows((tmp_path / "o" / "matrix.md").read_text())
    assert rows[("beta", "cpu", "float64", "s3")] == ["3", "2", "0", "0", "**FAIL**", "inf"]
    assert "Disagreeing: beta" in (tmp_path / "o" / "matrix.md").read_text()


def test_a_failed_check_with_finite_ratio_fails_too(tmp_path):
    write(tmp_path, "gamma", [rec("gamma", "s1", "fail", error=2.5e-6)])
    proc = run_cli(tmp_path, cwd=tmp_path)
    assert proc.returncode == 1
    assert "FAIL gamma cpu float64 s1: 1 of 1 checks failed (0 errors), worst err/tol 2.5" \
        in proc.stdout


def _report(**changes) -> str:
    good = {**asdict(rec("x", "s1")), "ratio": 0.0}
    data = {"report_version": REPORT_VERSION, "backend": "x", "environment": {},
            "summary": {}, "records": [good]}
    data.update(changes)
    return json.dumps(data)


BAD_RECORD = {**asdict(rec("x", "s1")), "ratio": 0.0, "outcome": "maybe"}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (None, "no such directory"),
        ({}, "no conformance-*.json reports found"),
        ({"conformance-x.json": "{not json"}, "malformed JSON: Expecting property name"),
        ({"conformance-x.json": _report(report_version=99)},
         "report_version 99, expected one of 1, 2"),
        ({"conformance-x.json": "[1, 2]"}, "expected a JSON object, got list"),
        ({"conformance-x.json": _report(records=[{"outcome": "pass"}])},
         "records[0].backend: expected a string"),
        ({"conformance-x.json": _report(records=[BAD_RECORD])}, "'maybe' is not one of"),
        ({"conformance-x.json": _report(records=[{**BAD_RECORD, "outcome": "pass",
                                                   "ratio": "big"}])},
         "records[0].ratio: expected a number or null"),
        ({"conformance-x.json": _report(), "conformance-y.json": _report()},
         "a second report for backend 'x' with rows of conformance-x.json (cpu float64 s1)"),
    ],
    ids=["missing-dir", "no-reports", "malformed-json", "wrong-version", "not-an-object",
         "record-field", "bad-outcome", "bad-ratio", "duplicate-backend"],
)
def test_bad_input_is_one_line_exit_2(tmp_path, files, message):
    target = tmp_path / "in"
    if files is not None:
        target.mkdir()
        for name, text in files.items():
            (target / name).write_text(text)
    proc = run_cli(target, "--out", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert str(target) in lines[0]  # names the directory or the file
    assert proc.stdout == "" and not (tmp_path / "out").exists()


@pytest.mark.parametrize("version", [1, REPORT_VERSION])
def test_the_matrix_reads_reports_of_the_previous_version_too(tmp_path, version):
    """Version 2 renamed the native tally (``native_paths`` -> ``native_translations``), which
    the matrix does not read: a version 1 report from an older install still merges."""
    path = tmp_path / "conformance-x.json"
    path.write_text(_report(report_version=version))
    assert matrix.load_report(path).backend == "x"


def test_a_backend_with_a_second_report_of_other_rows(tmp_path):
    """A data-parallel run writes its own report for the same backend: its rows (devices
    ``cpu×2``...) join the backend's, each report keeps its own totals line, a failure in it
    fails the matrix."""
    write(tmp_path, "alpha", [rec("alpha", "s1", error=1e-9)])
    write(tmp_path, "alpha", [rec("alpha", "s1", error=2e-7, device="cpu×2"),
                              rec("alpha", "s1", "fail", error=3e-6, device="cpu×4")],
          run="alpha-distributed")
    proc = run_cli(tmp_path, cwd=tmp_path)
    assert proc.returncode == 1
    assert "FAIL alpha cpu×4 float64 s1: 1 of 1 checks failed" in proc.stdout
    text = (tmp_path / "matrix.md").read_text()
    rows = md_rows(text)
    assert {k[:2] for k in rows} == {("alpha", "cpu"), ("alpha", "cpu×2"), ("alpha", "cpu×4")}
    assert "2 reports: alpha, alpha-distributed" in text
    assert "- **alpha** (conformance-alpha.json" in text and "1 checks, 1 passed" in text
    assert "- **alpha-distributed** (conformance-alpha-distributed.json" in text
    assert "2 checks, 1 passed, 1 failed" in text


def test_bad_arguments_are_one_line_exit_2(tmp_path):
    proc = run_cli("--frobnicate", cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_real_numpy_report_matches_the_suite_summary(tmp_path):
    path = tmp_path / "reports" / "conformance-numpy.json"
    suite = subprocess.run(
        [sys.executable, "-m", "regcore_conformance", "--backend", "numpy", "--report",
         str(path), "-q", "-k", "test_penalty and l2_half"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-3000:]
    # the suite's own end-of-run table: backend device dtype scenario checks failed skipped worst
    summary = {}
    for line in suite.stdout.splitlines():
        cells = line.split()
        if len(cells) == 8 and cells[0] in ("numpy", "reference") and cells[4].isdigit():
            label = "numpy" if cells[0] == "numpy" else "numpy (reference)"
            summary[(label, *cells[1:4])] = [cells[4], cells[5], cells[6], cells[7]]
    assert summary, suite.stdout[-3000:]
    proc = run_cli(path.parent, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = md_rows((path.parent / "matrix.md").read_text())
    assert {k: [v[0], v[1], v[2], v[5]] for k, v in rows.items()} == summary
    env = json.loads(path.read_text())["environment"]
    assert f"numpy {env['numpy']}" in (path.parent / "matrix.md").read_text()


def test_html_is_self_contained_and_escaped(tmp_path):
    evil = "<script>alert('x')</script>"
    write(tmp_path, "alpha", [rec("alpha", evil, error=1e-9), rec("alpha", "s1", error=0.0)],
          env={**ENV, "lib": "1.0 & <b>bold</b>"})
    write(tmp_path, "beta", [rec("beta", "s1", "fail", error=2e-6)])
    assert matrix.main([str(tmp_path)]) == 1
    page = (tmp_path / "matrix.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "</svg>" in page
    assert "<script" not in page.lower() and "&lt;script&gt;" in page
    assert "<b>bold</b>" not in page and "1.0 &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    for external in ("http:", "https:", "src=", "<link", "@import", "url(", "//"):
        assert external not in page, external
    md = (tmp_path / "matrix.md").read_text()
    assert "<script>" not in md and "&lt;script&gt;" in md


def heat_cells(page: str) -> dict[tuple[str, str], str]:
    """(row label, scenario) -> fill of each heatmap cell, read back from the SVG."""
    labels = re.findall(r'text-anchor="end">([^<]*)</text>', page)
    scenarios = re.findall(r'transform="rotate\(-40 [^"]*\)">([^<]*)</text>', page)
    cells = re.findall(r'class="cell" data-row="(\d+)" data-col="(\d+)"[^>]*fill="(#\w+)"', page)
    return {(labels[int(i)], scenarios[int(j)]): fill for i, j, fill in cells}


def test_heatmap_colours_cover_skips_missing_and_infinite_ratios(tmp_path):
    alpha(tmp_path)
    beta(tmp_path, failing=True)
    assert matrix.main([str(tmp_path)]) == 1
    page = (tmp_path / "matrix.html").read_text()
    fills = heat_cells(page)
    assert fills[("beta cpu float64", "s3")] == matrix_html.RED  # ratio null -> inf
    assert fills[("alpha cpu float64", "s2")] == matrix_html.GREY  # skipped only
    assert fills[("alpha cpu float64", "s3")] == matrix_html.MISSING  # not in alpha's report
    assert fills[("beta cpu float64", "s1")] == matrix_html.ratio_colour(0.5)
    assert len(fills) == 4 * 3  # every row × every scenario of any report
    assert re.search(r"<title>beta cpu float64 / s3: 3 checks, 2 failed \(1 errors\), 0 skipped,"
                     r" 0 expected failures, worst err/tol inf</title>", page)


def test_colour_scale_is_logarithmic_and_green_up_to_the_limit():
    assert matrix_html.ratio_colour(0.0) == matrix_html.GREEN
    assert matrix_html.ratio_colour(1e-9) == matrix_html.GREEN
    assert matrix_html.ratio_colour(1e-6) == matrix_html.GREEN
    assert matrix_html.ratio_colour(1e-3) == matrix_html.MID
    assert matrix_html.ratio_colour(1.0) == matrix_html.PALE
    reds = [int(matrix_html.ratio_colour(10.0 ** e)[1:3], 16) for e in range(-6, 1)]
    assert reds == sorted(reds) and len(set(reds)) == len(reds)  # one step per decade


def test_overrides_and_expected_failures_are_listed(tmp_path):
    expect = {"source": "expect.toml", "unmatched": ["[[xfail]] test '*gone*'"],
              "overrides": [{"test": "*float32*", "check": "grad:*", "factor": 4.0,
                             "reason": "fused kernels reassociate sums", "checks": 7}]}
    write(tmp_path, "alpha", [
        rec("alpha", "s1", error=1e-7),
        rec("alpha", "s1", "xfail", error=5e-6, check="grad:w", detail="upstream bug #123"),
    ], expectations=expect)
    assert matrix.main([str(tmp_path)]) == 0  # an expected failure is not a disagreement
    md = (tmp_path / "matrix.md").read_text()
    notes = md.split("## Tolerance overrides and expected failures", 1)[1]
    assert "tolerance ×4.0 on test \\*float32\\* check grad:\\* (7 checks): fused kernels" in notes
    assert "expected failure:" in notes and "[grad:w]: upstream bug #123" in notes
    assert "stale expectation, matched nothing: [[xfail]] test '\\*gone\\*'" in notes
    assert md_rows(md)[("alpha", "cpu", "float64", "s1")] == ["1", "0", "0", "1", "pass", "0.1"]
    page = (tmp_path / "matrix.html").read_text()
    assert "fused kernels reassociate sums" in page and "upstream bug #123" in page


def test_a_summary_that_counts_failures_fails_even_without_failing_records(tmp_path):
    path = write(tmp_path, "delta", [rec("delta", "s1", error=1e-9)])
    data = json.loads(path.read_text())
    data["summary"]["failed"] = 2
    path.write_text(json.dumps(data))
    proc = run_cli(tmp_path, cwd=tmp_path)
    assert proc.returncode == 1
    assert "FAIL delta: its summary counts 2 failed checks, its records none" in proc.stdout


def _path_run(directory: Path, problem: str, *, disagree: bool) -> None:
    """A path.json as `regcore path` writes it: the sample result, run on two backends."""
    sample = json.loads((Path(__file__).parent / "data" / "path-linear-l1.json").read_text())
    first = {**sample, "agreement": {"against": "numpy", "error": 0.0, "tolerance": 1e-9,
                                     "same_choice": True}}
    second = {**sample, "backend": "torch",
              "agreement": {"against": "numpy", "error": 2e-9 if disagree else 1e-10,
                            "tolerance": 1e-9, "same_choice": True}}
    (directory / "path" / problem).mkdir(parents=True)
    (directory / "path" / problem / "path.json").write_text(json.dumps(
        {"results": [first, second]}))


@pytest.mark.parametrize("disagree", [False, True])
def test_path_runs_get_a_section_and_a_disagreement_fails(tmp_path, capsys, disagree):
    alpha(tmp_path)
    _path_run(tmp_path, "synthetic", disagree=disagree)
    assert matrix.main([str(tmp_path)]) == (1 if disagree else 0)
    text = (tmp_path / "matrix.md").read_text()
    assert "## Choosing λ" in text
    rows = [line for line in text.splitlines() if line.startswith("| synthetic |")]
    assert len(rows) == 2
    assert "[coefficients](path/synthetic/torch-coefficients.png)" in rows[1]
    assert rows[1].split("|")[7].strip() == ("2 **FAIL**" if disagree else "0.1")
    assert ("path synthetic: torch disagrees" in capsys.readouterr().out) == disagree


def test_a_broken_path_json_is_one_line_exit_2(tmp_path):
    alpha(tmp_path)
    (tmp_path / "path" / "iris").mkdir(parents=True)
    (tmp_path / "path" / "iris" / "path.json").write_text("{not json")
    proc = run_cli(tmp_path, cwd=tmp_path)
    assert proc.returncode == 2 and "not a regcore path result" in proc.stderr
    assert "Traceback" not in proc.stderr


def _greenish(fill: str) -> bool:
    r, g, b = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
    return g > r + 20 and g > b + 20


def test_only_a_failure_looks_like_a_warning(tmp_path):
    """r = 0.5 passes and is drawn as a pass (green); r = 1.5 fails and is the warning red."""
    write(tmp_path, "alpha", [rec("alpha", "half", error=5e-7),
                              rec("alpha", "over", "fail", error=1.5e-6)])
    assert matrix.main([str(tmp_path)]) == 1
    fills = heat_cells((tmp_path / "matrix.html").read_text())
    assert fills[("alpha cpu float64", "over")] == matrix_html.RED
    half = fills[("alpha cpu float64", "half")]
    assert half != matrix_html.RED and _greenish(half), half
    # every passing ratio, up to the limit itself, is a green; the fail colour is a red
    for ratio in (0.0, 1e-9, 1e-6, 1e-4, 1e-3, 0.01, 0.1, 0.5, 0.9, 1.0):
        assert _greenish(matrix_html.ratio_colour(ratio)), ratio
    r, g, b = (int(matrix_html.RED[i:i + 2], 16) for i in (1, 3, 5))
    assert r > g + 80 and r > b + 80
    page = (tmp_path / "matrix.html").read_text()
    assert "pass: worst error / tolerance ≤ 1" in page and "fail: &gt; 1, failed or crashed" in page


def test_skip_reasons_are_listed_grouped_by_reason(tmp_path):
    def skip(case: str, reason: str, dtype: str = "float64", device: str = "cpu") -> Record:
        r = rec("alpha", "native", "skip", check="skipped", dtype=dtype, device=device,
                detail=reason)
        r.test = f"regcore_conformance.test_native::test_native_training[{device}-{dtype}-{case}]"
        return r

    test = "regcore_conformance.test_native::test_native_training[{}]".format
    write(tmp_path, "alpha", [
        rec("alpha", "native", error=1e-8),
        # the case's name in front of the backend's own words: one cause, not four
        *(skip(case, f"alpha folded_sgd cannot run {case}: alpha: folded_sgd is plain SGD")
          for case in ("l2_sum", "l1_sum", "l2_half", "group_lasso")),
        # a cause naming the test's own parameter (the device): one group, two variants
        *(skip(case, f"alpha: device {device!r} not available here", device=device)
          for device, case in (("cuda", "l2_sum"), ("cuda", "l1_sum"), ("mps", "l2_sum"))),
        skip("l2_sum", "alpha: float32 is not supported on cpu", "float32"),
        skip("l1_sum", ""),
    ])
    write(tmp_path, "beta", [rec("beta", "native", error=1e-8)])
    assert matrix.main([str(tmp_path)]) == 0
    md = (tmp_path / "matrix.md").read_text()
    section = md.split("## Skipped tests, by reason", 1)[1]
    assert "### alpha: 9 skipped" in section and "### beta" not in section
    lines = [line for line in section.splitlines() if line.startswith("- ")]
    assert lines == [
        f"- 4 × folded_sgd is plain SGD — e.g. {test('cpu-float64-l2_sum')}, "
        f"{test('cpu-float64-l1_sum')}, {test('cpu-float64-l2_half')} and 1 more",
        f"- 3 × device '…' not available here (2 variants) — e.g. {test('cuda-float64-l2_sum')}, "
        f"{test('mps-float64-l2_sum')}, {test('cuda-float64-l1_sum')}",
        f"- 1 × (no reason given) — e.g. {test('cpu-float64-l1_sum')}",
        f"- 1 × float32 is not supported on cpu — e.g. {test('cpu-float32-l2_sum')}",
    ]
    page = (tmp_path / "matrix.html").read_text()
    details = re.findall(r"<details.*?</details>", page, re.S)
    assert len(details) == 1
    assert "<summary><b>alpha</b>: 9 skipped tests, 4 reasons" in details[0]
    assert '<td class="n">4</td><td>folded_sgd is plain SGD</td>' in details[0]
    assert '<td class="n">3</td><td>device &#x27;…&#x27; not available here' in details[0]
    assert "float32 is not supported on cpu" in details[0]


def test_absent_expected_backends_are_named(tmp_path, capsys, monkeypatch):
    alpha(tmp_path)
    beta(tmp_path, failing=False)
    assert matrix.main([str(tmp_path), "--expect", "alpha,tf,beta,jax"]) == 0  # not a failure
    assert "no report from expected backends: tf, jax" in capsys.readouterr().out
    md = (tmp_path / "matrix.md").read_text()
    assert ("2 reports: alpha, beta. 2 of 4 expected backends reported; **no report from: tf, "
            "jax**. All agree with the reference.") in md
    assert "- **tf**: no report" in md and "- **jax**: no report" in md
    page = (tmp_path / "matrix.html").read_text()
    assert ('2 of 4 expected backends reported; <span class="missing">no report from: tf, jax'
            '</span>. All agree with the reference.') in page
    assert '<li class="missing">jax: no report</li>' in page

    assert matrix.main([str(tmp_path), "--expect", "alpha,beta"]) == 0
    assert "no report from" not in capsys.readouterr().out
    assert "2 of 2 expected backends reported. All agree" in (tmp_path / "matrix.md").read_text()
    assert matrix.main([str(tmp_path), "--expect", "alpha"]) == 0
    assert "1 of 1 expected backends reported, and beta (not expected). All agree" in \
        (tmp_path / "matrix.md").read_text()

    monkeypatch.setattr("regcore.available_backends", lambda: ["alpha", "beta", "gamma"])
    assert matrix.main([str(tmp_path)]) == 0  # default: the registered backends
    assert "no report from expected backends: gamma" in capsys.readouterr().out


def test_a_device_decided_unavailable_at_collection_is_one_line(tmp_path):
    """The suite records a device it cannot use as one skip record (no test is collected on it):
    the matrix says it did not run, and why, without counting tests."""
    write(tmp_path, "alpha", [
        rec("alpha", "s1", error=1e-8),
        *(Record(backend="alpha", device=device, dtype="-", scenario="-", case="-",
                 check=DEVICE_UNAVAILABLE, error=0.0, max_abs_error=0.0, scale=0.0,
                 tolerance=0.0, tolerance_formula="-", outcome="skip",
                 test="regcore_conformance::collection",
                 detail=f"alpha: device {device!r} not available here")
          for device in ("cuda", "mps")),
    ])
    assert matrix.main([str(tmp_path)]) == 0
    md = (tmp_path / "matrix.md").read_text()
    assert "  - cuda: not run: device 'cuda' not available here" in md
    assert "  - mps: not run: device 'mps' not available here" in md
    assert [k for k in md_rows(md) if k[1] == "cuda"] == [("alpha", "cuda", "(all)", "(all)")]
    page = (tmp_path / "matrix.html").read_text()
    assert "cuda: not run: device &#x27;cuda&#x27; not available here" in page


def test_each_report_of_a_backend_may_record_the_same_unavailable_device(tmp_path):
    """A backend's conformance run and its data-parallel run both record the GPU they could not
    use: not a stale copy (CI's report session once failed on exactly this pair)."""
    def unavailable(run: str) -> Record:
        return Record(backend="alpha", device="gpu", dtype="-", scenario="-", case="-",
                      check=DEVICE_UNAVAILABLE, error=0.0, max_abs_error=0.0, scale=0.0,
                      tolerance=0.0, tolerance_formula="-", outcome="skip",
                      test="regcore_conformance::collection", detail=f"{run}: no gpu here")
    write(tmp_path, "alpha", [rec("alpha", "s1", error=1e-8), unavailable("alpha")])
    write(tmp_path, "alpha", [rec("alpha", "s1", error=1e-8, device="cpu×2"),
                              unavailable("alpha-distributed")], run="alpha-distributed")
    assert matrix.main([str(tmp_path)]) == 0
    md = (tmp_path / "matrix.md").read_text()
    assert md.count("  - gpu: not run: ") == 2


def test_a_device_where_nothing_ran_is_one_line_with_its_reason(tmp_path):
    unavailable = "alpha: device 'cuda' not available here"
    write(tmp_path, "alpha", [
        rec("alpha", "s1", error=1e-8), rec("alpha", "s2", error=1e-8),
        *(rec("alpha", s, "skip", device=device, dtype=dtype, check="skipped",
              detail=f"alpha: device {device!r} not available here")
          for device in ("cuda", "mps") for dtype in ("float64", "float32", "float16")
          for s in ("s1", "s2")),
        rec("alpha", "s1", "skip", dtype="bfloat16", detail="alpha: bfloat16 not declared"),
    ])
    assert matrix.main([str(tmp_path)]) == 0
    md = (tmp_path / "matrix.md").read_text()
    rows = md_rows(md)
    assert [k for k in rows if k[1] == "cuda"] == [("alpha", "cuda", "(all)", "(all)")]
    assert rows[("alpha", "cuda", "(all)", "(all)")] == ["0", "0", "6", "0", "not run", "-"]
    assert rows[("alpha", "cpu", "bfloat16", "(all)")] == ["0", "0", "1", "0", "not run", "-"]
    assert len(rows) == 2 + 3  # cpu float64 s1, s2; cpu bfloat16, cuda, mps
    assert "  - cuda: not run, 6 tests skipped: device 'cuda' not available here" in md
    assert unavailable not in md.split("## Skipped", 1)[0]  # the cause, without the prefix
    page = (tmp_path / "matrix.html").read_text()
    labels = re.findall(r'text-anchor="end">([^<]*)</text>', page)
    assert labels == ["alpha cpu bfloat16", "alpha cpu float64", "alpha cuda", "alpha mps"]
    bars = re.findall(r'<title>([^<]*)</title><rect class="not-run" data-row="(\d)"', page)
    assert bars == [("cpu bfloat16: not run, 1 test skipped: bfloat16 not declared", "0"),
                    ("cuda: not run, 6 tests skipped: device &#x27;cuda&#x27; not available "
                     "here", "2"),
                    ("mps: not run, 6 tests skipped: device &#x27;mps&#x27; not available here",
                     "3")]
    assert set(re.findall(r'class="cell" data-row="(\d)"', page)) == {"1"}


def _port_check(directory: Path, name: str, a_rate: float, b_rate: float) -> None:
    """``regcore diff --out`` as the CLI writes it, for two specs on one dense model."""
    from regcore import DecoupledWeightDecay, ParamInfo, Select, Spec
    from regcore.diff import compare, map_by_order
    from regcore.reading import Reading
    from regcore_apps.cli.diff import as_json
    from regcore_apps.cli.setups import Setup

    params = [ParamInfo("dense.kernel", (4, 3), "weight"), ParamInfo("dense.bias", (3,), "bias")]
    a, b = (Setup(f"torch:m:{n}", params, Reading(
        Spec(weight_decay=(DecoupledWeightDecay(r, Select(roles=("weight",))),)),
        ("a <note>",) if n == "a" else ())) for n, r in (("a", a_rate), ("b", b_rate)))
    rows = compare(a.plan(), b.plan(), map_by_order(params, params))
    (directory / "diff").mkdir(exist_ok=True)
    (directory / "diff" / f"{name}.json").write_text(json.dumps(as_json(a, b, rows)))


def test_port_checks_get_a_section_shown_not_judged(tmp_path, capsys):
    alpha(tmp_path)
    _port_check(tmp_path, "same-port", 0.1, 0.1)
    _port_check(tmp_path, "bad-port", 0.1, 0.2)
    assert matrix.main([str(tmp_path)]) == 0  # a differing port is not a backend failure
    text = (tmp_path / "matrix.md").read_text()
    assert "## Port checks (`regcore diff`)" in text
    assert "**bad-port: torch:m:a against torch:m:b: differs in 1 of 1 rows**" in text
    assert "| dense.kernel | dense.kernel | decay | rate=0.1 | rate=0.2 | factor 0.5 |" in text
    assert "**same-port: torch:m:a against torch:m:b: same**" in text
    assert "- note (A): a &lt;note&gt;" in text  # escaped, as every report string is
    page = (tmp_path / "matrix.html").read_text()
    assert page.count('<p class="status bad">bad-port') == 1
    assert '<tr class="fail"><td>dense.kernel</td>' in page and "a &lt;note&gt;" in page


GOOD_ROW = {"a": "w", "b": "w", "kind": "l2", "a_numbers": {"coef": 0.1},
            "b_numbers": None, "verdict": "only in A"}


@pytest.mark.parametrize("text", [
    '{"a": "x", "rows": []}', "[1, 2]", "{not json",
    json.dumps({"a": "x", "b": "y", "same": False, "rows": [GOOD_ROW], "notes": ["n"]}),
    json.dumps({"a": "x", "b": "y", "same": False, "rows": [{**GOOD_ROW, "a_numbers": "0.1"}]}),
    json.dumps({"a": "x", "b": "y", "same": False, "rows": [{**GOOD_ROW, "verdict": None}]}),
])
def test_a_broken_port_check_is_one_line_exit_2(tmp_path, text):
    alpha(tmp_path)
    (tmp_path / "diff").mkdir()
    (tmp_path / "diff" / "port.json").write_text(text)
    assert matrix.main([str(tmp_path)]) == 2  # in process: fast, and the same code path
    (tmp_path / "diff" / "port.json").write_text(json.dumps(
        {"a": "x", "b": "y", "same": False, "rows": [GOOD_ROW], "notes": {"a": ["n"]}}))
    assert matrix.main([str(tmp_path)]) == 0  # the same file, well formed


def test_a_broken_port_check_through_the_command_line(tmp_path):
    alpha(tmp_path)
    (tmp_path / "diff").mkdir()
    (tmp_path / "diff" / "port.json").write_text('{"a": "x", "rows": []}')
    proc = run_cli(tmp_path, cwd=tmp_path)
    assert proc.returncode == 2 and "not a regcore diff --json output" in proc.stderr
    assert "Traceback" not in proc.stderr
