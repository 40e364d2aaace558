"""Check records, the JSON report and the terminal summary."""

from __future__ import annotations

import json
import math
import platform
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
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

    def add(self, record: Record) -> None:
        self.records.append(record)

    def note_native(self, test: str, translation: str, outcome: str) -> None:
        """Tally one native case of ``test`` through ``translation``: ``ran``, ``failed`` (refused
        where the plan was not the reference's) or ``skipped: <exception>``, so a translation's
        count of cases run cannot drop without the report saying how many were skipped and
        why."""
        self.native[f"{test}:{translation}"][outcome] += 1

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
                     f"{c['skipped'] - len(unavailable)} skipped tests")
        lines += [f"device {r.device}: not run ({r.detail})" for r in unavailable]
        for key, tally in sorted(self.native.items()):
            refused = ", ".join(f"{n} {k}" for k, n in sorted(tally.items()) if k != "ran")
            lines.append(f"{key}: {tally.get('ran', 0)} cases ran"
                         + (f"; {refused}" if refused else ""))
        if c["xfailed"] or c["overridden"]:
            lines.append(f"expectations: {c['xfailed']} expected failures, {c['overridden']} "
                         "checks under tolerance overrides (reasons in the JSON report)")
        return lines
