"""The conformance matrix's rows and the text they share between ``matrix.md``
(:mod:`regcore_conformance.matrix`) and ``matrix.html`` (:mod:`regcore_conformance.matrix_html`):
what one report holds, its rows, the totals and notes. Neither renderer is imported here."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from regcore_conformance.report import DEVICE_UNAVAILABLE

PATTERN = "conformance-*.json"
OUTCOMES = ("pass", "fail", "error", "skip", "xfail")
RECORD_STRINGS = ("backend", "device", "dtype", "scenario", "check", "outcome")
EXAMPLES = 3  # example test ids per skip reason
NO_REASON = "(no reason given)"


@dataclass
class BackendReport:
    """One ``conformance-<backend>.json``, validated."""

    path: Path
    backend: str
    created: str
    environment: dict[str, str]
    expectations: dict
    summary_failed: int
    records: list[dict]

    @property
    def run(self) -> str:
        """The report's name: its file name without ``conformance-`` and ``.json``."""
        return self.path.stem.removeprefix("conformance-")


@dataclass
class Row:
    """The checks of one (backend, device, dtype, scenario)."""

    report: str  # the run (file) of the report the checks come from
    backend: str  # the row label: the report's backend, or "numpy (reference)"
    device: str
    dtype: str
    scenario: str
    checks: int = 0
    failed: int = 0  # failed checks and error records
    errors: int = 0
    skipped: int = 0
    xfailed: int = 0
    ratios: list[float] = field(default_factory=list)
    skip_reasons: Counter = field(default_factory=Counter)  # cause (see skip_cause) -> count
    unavailable: int = 0  # device-level skip records (the device ran no test at all)

    @property
    def worst(self) -> float | None:
        """Largest error/tolerance over the checks; None when nothing ran."""
        return max(self.ratios) if self.ratios else None

    @property
    def status(self) -> str:
        return "FAIL" if self.failed else "pass" if self.checks else "skip"

    def add(self, record: dict) -> None:
        outcome = record["outcome"]
        if outcome == "skip" and record["check"] == DEVICE_UNAVAILABLE:
            self.unavailable += 1
            self.skip_reasons[skip_cause(str(record.get("detail") or ""), record["backend"])] += 1
        elif outcome == "skip":
            self.skipped += 1
            self.skip_reasons[skip_cause(str(record.get("detail") or ""), record["backend"])] += 1
        elif outcome == "xfail":
            self.xfailed += 1
        else:
            self.checks += 1
            self.failed += outcome != "pass"
            self.errors += outcome == "error"
            ratio = record["ratio"]
            self.ratios.append(math.inf if ratio is None else float(ratio))


@dataclass
class NotRun:
    """A device (``dtype`` None) or a dtype on a device of one report where every test was
    skipped: one line, with its skip reasons, in place of its rows."""

    report: str
    backend: str
    device: str
    dtype: str | None
    rows: list[Row]

    @property
    def skipped(self) -> int:
        return sum(r.skipped for r in self.rows)

    @property
    def reasons(self) -> list[tuple[str, int]]:
        """(cause, count), most frequent first."""
        total = sum((r.skip_reasons for r in self.rows), Counter())
        return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))

    @property
    def where(self) -> str:
        device = "device-independent tests" if self.device == "-" else self.device
        return device if self.dtype is None else f"{device} {self.dtype}"

    def line(self) -> str:
        """``cuda: not run: device 'cuda' not available here`` (a device the suite ran nothing
        on), ``cpu bfloat16: not run, 96 tests skipped: bfloat16 not declared``."""
        reasons = self.reasons
        shown = "; ".join(c if len(reasons) == 1 else f"{c} ({n})" for c, n in reasons[:3])
        more = f"; {len(reasons) - 3} more reasons" if len(reasons) > 3 else ""
        tests = f", {plural(self.skipped, 'test')} skipped" if self.skipped else ""
        return f"{self.where}: not run{tests}: {shown}{more}"


@dataclass
class SkipGroup:
    """The skipped tests of one report whose causes (:func:`skip_cause`) are the same once the
    test's own parameters are masked (:func:`skip_template`)."""

    template: str
    count: int = 0
    variants: dict[str, list[str]] = field(default_factory=dict)  # cause -> its test ids

    @property
    def cause(self) -> str:
        """The cause itself when every test gave the same one, else the masked template."""
        return next(iter(self.variants)) if len(self.variants) == 1 else self.template

    @property
    def tests(self) -> list[str]:
        """Up to EXAMPLES test ids: one per variant first, then the rest in report order."""
        firsts = [ids[0] for ids in self.variants.values() if ids]
        rest = [t for ids in self.variants.values() for t in ids[1:]]
        return (firsts + rest)[:EXAMPLES]

    def examples(self) -> str:
        shown = self.tests
        more = f" and {self.count - len(shown)} more" if self.count > len(shown) else ""
        return ", ".join(shown) + more


def skip_cause(reason: str, backend: str) -> str:
    """What a skip reason says about the backend: the text after its last ``<backend>: ``
    (the suite's skips name the backend; a case's name before it, ``torch folded_sgd cannot run
    l2_sum: torch: ...``, would split one cause into a group per case)."""
    reason = " ".join(reason.split())
    marker = f"{backend}: "
    at = max((i for i in range(len(reason)) if reason.startswith(marker, i)
              and (i == 0 or reason[i - 2:i] == ": ")), default=-1)
    return (reason[at + len(marker):] if at >= 0 else reason) or NO_REASON


def skip_template(cause: str, test: str) -> str:
    """``cause`` with each parameter of the test id (``name[cuda-float64-l1_sum]``) that it
    names replaced by ``…``: the skips of one cause over many devices or cases group together."""
    params = test.rpartition("[")[2].removesuffix("]").split("-") if test.endswith("]") else []
    for param in sorted({p for p in params if p}, key=len, reverse=True):
        cause = re.sub(rf"(?<![\w.]){re.escape(param)}(?![\w.])", "…", cause)
    return cause


def skip_groups(rep: BackendReport) -> list[SkipGroup]:
    """The report's skipped tests grouped by :func:`skip_template`, most frequent first."""
    groups: dict[str, SkipGroup] = {}
    for rec in rep.records:
        if rec["outcome"] != "skip":
            continue
        test = str(rec.get("test") or "")
        cause = skip_cause(str(rec.get("detail") or ""), rec["backend"])
        template = skip_template(cause, test)
        g = groups.setdefault(template, SkipGroup(template))
        g.count += 1
        ids = g.variants.setdefault(cause, [])
        if test and len(ids) < EXAMPLES and test not in ids:
            ids.append(test)
    return sorted(groups.values(), key=lambda g: (-g.count, g.cause))


def split_not_run(rows: list[Row]) -> tuple[list[Row], list[NotRun]]:
    """The rows where something ran, and the devices (else dtypes on a device) where nothing
    did: no check and no expected failure, only skips."""
    def idle(rs: list[Row]) -> bool:
        return not any(r.checks or r.xfailed for r in rs)

    by_device: dict[tuple[str, str, str], list[Row]] = {}
    for r in rows:
        by_device.setdefault((r.report, r.backend, r.device), []).append(r)
    kept, not_run = [], []
    for (report, backend, device), rs in by_device.items():
        if idle(rs):
            not_run.append(NotRun(report, backend, device, None, rs))
            continue
        by_dtype: dict[str, list[Row]] = {}
        for r in rs:
            by_dtype.setdefault(r.dtype, []).append(r)
        for dtype, ds in by_dtype.items():
            if idle(ds):
                not_run.append(NotRun(report, backend, device, dtype, ds))
            else:
                kept += ds
    key = lambda x: (x.report, x.backend, x.device, x.dtype or "")  # noqa: E731
    return sorted(kept, key=lambda r: (*key(r), r.scenario)), sorted(not_run, key=key)


def expected_summary(reports: list[BackendReport], rows: list[Row],
                     expected: list[str]) -> tuple[str, list[str], list[str]]:
    """(how many of the expected backends reported, the disagreeing reports, the expected
    backends with no report)."""
    backends = sorted({r.backend for r in reports})
    if not expected:
        head = f"{plural(len(backends), 'backend')} reported"
    else:
        extra = [b for b in backends if b not in expected]
        head = (f"{len(backends) - len(extra)} of {len(expected)} expected backends reported"
                + (f", and {', '.join(extra)} (not expected)" if extra else ""))
    failing = sorted({r.report for r in rows if r.failed}
                     | {rep.run for rep in reports if rep.summary_failed})
    return head, failing, [b for b in expected if b not in backends]


def plural(n: int, noun: str) -> str:
    """``1 report``, ``2 reports``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def fmt_ratio(value: float | None) -> str:
    """3 significant digits; ``inf`` for a crash or zero tolerance, ``-`` when nothing ran."""
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.3g}"


def totals(rows: list[Row]) -> dict[str, int]:
    return {k: sum(getattr(r, k) for r in rows)
            for k in ("checks", "failed", "errors", "skipped", "xfailed")}


def backend_line(rep: BackendReport, rows: list[Row]) -> tuple[str, str]:
    """(versions, totals) of one report, for the per-backend header lines."""
    versions = ", ".join(f"{k} {v}" for k, v in rep.environment.items()) or "no versions"
    t = totals([r for r in rows if r.report == rep.run])
    return versions, (f"{t['checks']} checks, {t['checks'] - t['failed']} passed, "
                      f"{t['failed']} failed ({t['errors']} errors), {t['skipped']} skipped, "
                      f"{t['xfailed']} expected failures")


def notes(reports: list[BackendReport]) -> list[tuple[str, str]]:
    """(backend, text) per tolerance override, expected failure and stale expectation."""
    out = []
    for rep in reports:
        for o in rep.expectations.get("overrides") or []:
            if isinstance(o, dict):
                out.append((rep.run, f"tolerance ×{o.get('factor')} on test "
                            f"{o.get('test')!s} check {o.get('check')!s} ({o.get('checks')} "
                            f"checks): {o.get('reason')!s}"))
        for rec in rep.records:
            if rec["outcome"] == "xfail":
                out.append((rep.run, f"expected failure: {rec.get('test', '')} "
                            f"[{rec['check']}]: {rec.get('detail', '')}"))
        for stale in rep.expectations.get("unmatched") or []:
            out.append((rep.run, f"stale expectation, matched nothing: {stale!s}"))
    return out


def table_order(ran: list[Row], not_run: list[NotRun]) -> list[Row | NotRun]:
    """The table's rows: a not-run line where its first row would have been."""
    def key(x: Row | NotRun) -> tuple[str, ...]:
        if isinstance(x, NotRun):
            return (x.report, x.backend, x.device, x.dtype or "", "")
        return (x.report, x.backend, x.device, x.dtype, x.scenario)
    return sorted([*ran, *not_run], key=key)
