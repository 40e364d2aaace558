"""What a backend author gets from the suite: expectations files (skips, expected failures,
tolerance overrides, all reported), and skips — not crashes — for what a backend does not offer."""

from __future__ import annotations

import pytest
from test_plugin import run_suite

from regcore_conformance import expectations


def _expect(tmp_path, text: str) -> str:
    path = tmp_path / "expect.toml"
    path.write_text(text)
    return str(path)


def test_known_skips_are_skipped_with_the_reason_and_backend(tmp_path):
    expect = _expect(tmp_path, '[[skip]]\ntest = "*test_penalty*l2_half*"\nreason = "later"\n')
    proc, report = run_suite(tmp_path, "numpy", "-k", "test_penalty and l2", "--regcore-expect",
                             expect)
    assert proc.returncode == 0, proc.stdout[-2000:]
    skipped = [r for r in report["records"] if r["outcome"] == "skip"]
    assert skipped and all("l2_half" in r["case"] for r in skipped)
    assert all(r["detail"].startswith("numpy: expected skip (") and r["detail"].endswith("later")
               for r in skipped)
    assert report["summary"]["passed"] > 0


def test_expected_failures_do_not_fail_the_run_and_are_reported_as_such(tmp_path):
    expect = _expect(tmp_path, '[[xfail]]\ntest = "*test_penalty*l2_half*"\nreason = "bug 7"\n')
    proc, report = run_suite(tmp_path, "tests.broken_backends:DoubleL2", "-k",
                             "test_penalty and l2_half", "--regcore-expect", expect)
    assert proc.returncode == 0, proc.stdout[-2000:]
    outcomes = {r["outcome"] for r in report["records"]}
    assert "xfail" in outcomes and "fail" not in outcomes
    assert report["summary"]["failed"] == 0 and report["summary"]["xfailed"] > 0
    assert "expected failures" in proc.stdout


def test_an_expected_failure_that_passes_fails_the_run(tmp_path):
    expect = _expect(tmp_path, '[[xfail]]\ntest = "*test_penalty*l2_half*"\nreason = "fixed?"\n')
    proc, _ = run_suite(tmp_path, "numpy", "-k", "test_penalty and l2_half",
                        "--regcore-expect", expect)
    assert proc.returncode == 1
    assert "XPASS(strict)" in proc.stdout


def test_entries_that_match_nothing_are_warned_about(tmp_path):
    expect = _expect(tmp_path, '[[skip]]\ntest = "*test_penalty*l2_hlaf*"\nreason = "typo"\n'
                               '[[tolerance]]\ncheck = "no_such_check"\nfactor = 2\n'
                               'reason = "stale"\n')
    proc, report = run_suite(tmp_path, "numpy", "-k", "test_penalty and l2_half",
                             "--regcore-expect", expect)
    assert proc.returncode == 0
    assert "UnmatchedExpectationWarning" in proc.stdout
    assert "[[skip]] test '*test_penalty*l2_hlaf*' matched nothing" in proc.stdout
    assert "[[tolerance]] test '*' check 'no_such_check' matched nothing" in proc.stdout
    assert len(report["expectations"]["unmatched"]) == 2


def test_tolerance_overrides_apply_and_every_one_is_in_the_report(tmp_path):
    selection = ("-k", "test_penalty and float64 and l2_sum_vector")
    proc, report = run_suite(tmp_path, "tests.author_backends:SlightlyOff", *selection)
    assert proc.returncode == 1  # 1e-10 is far outside float64's derived tolerance
    expect = _expect(tmp_path, '[[tolerance]]\ntest = "*float64*"\ncheck = "penalty"\n'
                               'factor = 1e6\nreason = "fused reduction"\n')
    proc, report = run_suite(tmp_path, "tests.author_backends:SlightlyOff", *selection,
                             "--regcore-expect", expect)
    assert proc.returncode == 0, proc.stdout[-2000:]
    penalty = [r for r in report["records"] if r["check"] == "penalty"]
    assert penalty and all(r["override"] == "fused reduction" for r in penalty)
    assert all(r["tolerance_formula"].startswith("1e+06*[2*gamma(") for r in penalty)
    grads = [r for r in report["records"] if r["check"] == "grad:w"]
    assert grads and all(r["override"] == "" for r in grads)  # only the matching check
    (override,) = report["expectations"]["overrides"]
    assert override["checks"] == len(penalty) and override["factor"] == 1e6
    assert report["summary"]["overridden"] == len(penalty)


def test_a_backend_without_capabilities_gets_skips_naming_them(tmp_path):
    proc, report = run_suite(tmp_path, "tests.author_backends:MinimalBackend", "-k",
                             "iris_mlp-l2_sum or test_penalty and l2_half")
    assert proc.returncode == 0, proc.stdout[-2000:]
    reasons = {r["detail"] for r in report["records"] if r["outcome"] == "skip"}
    for capability in ("Harness", "NativeTranslations", "SnippetRunner"):
        assert (f"minimal: does not offer the {capability} capability "
                f"(regcore.capabilities.{capability})") in reasons, reasons
    assert report["summary"]["passed"] > 0 and report["summary"]["failed"] == 0
    assert report["capabilities"]["capabilities"] == []


def test_a_device_check_that_raises_is_one_skip_record_not_a_collection_error(tmp_path):
    proc, report = run_suite(tmp_path, "tests.author_backends:FlakyGpuBackend", "-k",
                             "test_penalty and l2_half")
    assert proc.returncode == 0, proc.stdout[-2000:]
    gpu = [r for r in report["records"] if r["device"] == "gpu"]
    assert [(r["outcome"], r["check"], r["detail"]) for r in gpu] == [(
        "skip", "device_unavailable", "flaky_gpu: device 'gpu': device_available raised "
        "RuntimeError: CUDA driver version is insufficient")]  # decided once, at collection
    assert "-gpu-" not in proc.stdout and report["summary"]["passed"] > 0
    assert report["capabilities"]["devices"] == ["cpu", "gpu"]


@pytest.mark.parametrize(("text", "message"), [
    ("[[skip]]\ntest = 'x'\n", "skip[0]: missing ['reason']"),
    ("[[skip]]\ntest = 'x'\nreason = ''\n", "skip[0].reason: expected a non-empty string"),
    ("[[tolerance]]\ncheck = 'x'\nfactor = -1\nreason = 'r'\n", "factor: expected a finite"),
    ("[[tolerance]]\ncheck = 'x'\nfactor = nan\nreason = 'r'\n", "factor: expected a finite"),
    ("[[xfail]]\ntest = 'x'\nreason = 'r'\nstrict = 'yes'\n", "strict: expected true or false"),
    ("[[skip]]\ntest = 'x'\nreason = 'r'\nchek = 'y'\n", "unknown key(s) ['chek']"),
    ("[[skips]]\ntest = 'x'\n", "unknown section(s) ['skips']"),
    ("skip = 3\n", "skip must be an array of tables"),
    ("[[skip]\n", "not valid TOML"),
    ("[[xfail]]\ntest = '*seed004_iris_mlp-l2_sum*'\nreason = 'r'\n",
     "xfail[0].test: scenario 'seed004_iris_mlp' is now called 'iris_mlp'; "
     "write test = '*iris_mlp-l2_sum*'"),
])
def test_malformed_expectations_are_one_clear_error(tmp_path, text, message):
    with pytest.raises(expectations.ExpectationError, match=None) as info:
        expectations.load(_expect(tmp_path, text))
    assert message in str(info.value)


def test_a_malformed_file_is_a_usage_error_without_traceback(tmp_path):
    proc, report = run_suite(tmp_path, "numpy", "--regcore-expect", str(tmp_path / "nope.toml"))
    assert proc.returncode == 4 and report is None
    assert "--regcore-expect:" in proc.stderr and "cannot read" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_every_renamed_scenario_names_one_that_exists():
    from regcore_conformance.scenarios import RENAMED, SCENARIOS

    assert set(RENAMED.values()) <= set(SCENARIOS) and not set(RENAMED) & set(SCENARIOS)
