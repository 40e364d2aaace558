"""Check records, the JSON report and the terminal summary."""

from __future__ import annotations

import json
import math
import platform
import time
from collections import defaultdict
from dataclasses import asdict, astuple, dataclass
from pathlib import Path

REPORT_VERSION = 2
"""2: the native tally's key is ``native_translations`` (``native_paths`` in 1), and
``capabilities`` lists the backend's capability classes (``implements`` in 1)."""
READABLE_VERSIONS = (1, 2)
"""Versions the matrix reads (the fields it reads are the same in both)."""
DEVICE_UNAVAILABLE = "device_unavailable"
"""The check name of the one ``skip`` record a declared device that is not usable here gets (the
suite collects no test on it)."""


@dataclass
class Record:
    """One check: what was compared, how far apart, against which tolerance."""

    backend: str
    device: str
    dtype: str
    scenario: str
    case: str
    check: str
    error: float  # normwise: max|a - r| / scale
    max_abs_error: float
    scale: float
    tolerance: float
    tolerance_formula: str
    # "pass" | "fail" | "error" (the test crashed) | "skip" (with the reason) | "xfail" (a
    # failure the backend's expectations file declares, with its reason)
    outcome: str
    test: str
    detail: str = ""  # the failure message or skip reason
    override: str = ""  # the reason of the tolerance override this check ran under, if any

    @property
    def ratio(self) -> float:
        if self.outcome == "error":
            return math.inf
        if self.error == 0:
            return 0.0
        return self.error / self.tolerance if self.tolerance > 0 else math.inf


def _plain(value: object) -> object:
    """A NumPy scalar as the Python number it holds (pytest-xdist sends Python types only)."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


class Report:
    """Collects records during a run; writes them as JSON and summarizes them."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.records: list[Record] = []
        self.started = time.time()
        self.capabilities: dict[str, object] = {}
        self.expectations: dict[str, object] = {}
        #: ``{"native_train:loss_term": {"ran": n, "skipped: UnsupportedError": n, ...}}``
        self.native: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        #: the combinations checked (:mod:`regcore_conformance.coverage`)
        self.coverage: set[str] = set()
        #: ``{test function[translation]: {"tests": n, "setup_s": s, "call_s": s, ...}}``
        self.timing: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def add(self, record: Record) -> None:
        self.records.append(record)

    def note_native(self, test: str, translation: str, outcome: str) -> None:
        """Tally one native case of ``test`` through ``translation``: ``ran``, ``failed`` (refused
        where the plan was not the reference's) or ``skipped: <exception>``, so a translation's
        count of cases run cannot drop without the report saying how many were skipped and
        why."""
        self.native[f"{test}:{translation}"][outcome] += 1

    def to_transfer(self) -> dict:
        """What this run collected, as plain lists and dicts: a pytest-xdist worker sends it to
        the controller, which :meth:`merge` s every worker's into one report."""
        return {"records": [tuple(map(_plain, astuple(r))) for r in self.records],
                "native": {k: dict(v) for k, v in self.native.items()},
                "coverage": sorted(self.coverage),
                "timing": {k: dict(v) for k, v in self.timing.items()}}

    def merge(self, data: dict) -> None:
        """Add a worker's :meth:`to_transfer` to this report."""
        self.records += [Record(*r) for r in data["records"]]
        for key, tally in data["native"].items():
            for outcome, n in tally.items():
                self.native[key][outcome] += n
        self.coverage.update(data["coverage"])
        for key, row in data["timing"].items():
            for column, value in row.items():
                self.timing[key][column] += value

    def note_time(self, key: str, when: str, seconds: float) -> None:
        """Add one test phase's wall time (``setup``, ``call``, ``teardown``) to ``key``'s row
        of the timing table."""
        row = self.timing[key]
        row[f"{when}_s"] += seconds
        row["tests"] += when == "call"

    def timing_lines(self, top: int = 12) -> list[str]:
        """The test functions that took longest, with their share of the run."""
        total = sum(sum(v for k, v in row.items() if k != "tests")
                    for row in self.timing.values()) or 1.0
        rows = sorted(((sum(v for k, v in row.items() if k != "tests"), int(row["tests"]), key)
                       for key, row in self.timing.items()), reverse=True)
        lines = [f"{'time (s)':>9} {'share':>6} {'tests':>6}  test"]
        lines += [f"{t:9.1f} {t / total:6.1%} {n:6d}  {key}" for t, n, key in rows[:top]]
        return lines

    def counts(self) -> dict[str, int]:
        """``checks`` counts comparisons and crashed tests; skips and expected failures are
        counted apart, and ``overridden`` counts checks run under a tolerance override."""
        outcomes = [r.outcome for r in self.records]
        skipped, xfailed = outcomes.count("skip"), outcomes.count("xfail")
        passed = outcomes.count("pass")
        checks = len(outcomes) - skipped - xfailed
        return {"checks": checks, "passed": passed, "failed": checks - passed,
                "skipped": skipped, "xfailed": xfailed,
                "overridden": sum(bool(r.override) for r in self.records)}

    def write(self, path: Path, environment: dict[str, str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "report_version": REPORT_VERSION,
            "backend": self.backend,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "duration_s": round(time.time() - self.started, 3),
            "environment": {"python": platform.python_version(), **environment},
            "summary": self.counts(),
            "capabilities": self.capabilities,
            "expectations": self.expectations,
            "native_translations": {k: dict(v) for k, v in sorted(self.native.items())},
            "coverage": {"count": len(self.coverage), "combinations": sorted(self.coverage)},
            "timing": {k: {kk: round(vv, 4) for kk, vv in sorted(v.items())}
                       for k, v in sorted(self.timing.items())},
            "records": [
                {**asdict(r), "ratio": r.ratio if math.isfinite(r.ratio) else None}
                for r in self.records
            ],
        }
        path.write_text(json.dumps(data, indent=1) + "\n")

    def summary_lines(self) -> list[str]:
        """One line per (device, dtype, scenario): checks, failures and worst error/tolerance."""
        groups: dict[tuple[str, str, str, str], list[Record]] = defaultdict(list)
        unavailable = [r for r in self.records if r.check == DEVICE_UNAVAILABLE]
        for r in self.records:
            if r.check != DEVICE_UNAVAILABLE:
                groups[(r.backend, r.device, r.dtype, r.scenario)].append(r)
        header = (f"{'backend':<9} {'device':<6} {'dtype':<7} {'scenario':<16} {'checks':>6} "
                  f"{'failed':>6} {'skipped':>7} {'worst err/tol':>13}")
        lines = [header, "-" * len(header)]
        for (backend, device, dtype, scenario), recs in sorted(groups.items()):
            run = [r for r in recs if r.outcome not in ("skip", "xfail")]
            failed = sum(r.outcome != "pass" for r in run)
            worst = f"{max(r.ratio for r in run):.3g}" if run else "-"
            lines.append(
                f"{backend:<9} {device:<6} {dtype:<7} {scenario:<16} {len(run):>6} "
                f"{failed:>6} {len(recs) - len(run):>7} {worst:>13}"
            )
        c = self.counts()
        lines.append(f"total: {c['checks']} checks, {c['passed']} passed, {c['failed']} failed, "
                     f"{c['skipped'] - len(unavailable)} skipped tests; {len(self.coverage)} "
                     "distinct combinations checked")
        lines += [f"device {r.device}: not run ({r.detail})" for r in unavailable]
        for key, tally in sorted(self.native.items()):
            refused = ", ".join(f"{n} {k}" for k, n in sorted(tally.items()) if k != "ran")
            lines.append(f"{key}: {tally.get('ran', 0)} cases ran"
                         + (f"; {refused}" if refused else ""))
        if c["xfailed"] or c["overridden"]:
            lines.append(f"expectations: {c['xfailed']} expected failures, {c['overridden']} "
                         "checks under tolerance overrides (reasons in the JSON report)")
        return lines
