"""Merge per-backend conformance reports into one cross-backend matrix.

    python -m regcore_conformance.matrix REPORT_DIR [--out DIR]

Reads every ``conformance-*.json`` in ``REPORT_DIR`` (written by :mod:`regcore_conformance.report`)
and writes ``matrix.md`` and ``matrix.html`` (one self-contained file: the same table and a
heatmap of the worst error/tolerance ratio) to ``DIR`` (default ``REPORT_DIR``). One row per
(backend, device, dtype, scenario); checks run in a backend's report on another backend's behalf
(the reference's own oracle checks) get their own rows, ``numpy (reference)``. A device (or a
dtype on a device) where every test was skipped, an unavailable ``cuda`` say, is one line with
its skip reasons instead of a row per dtype and scenario. A backend may have
several reports (``conformance-torch.json`` and ``conformance-torch-distributed.json``, whose
devices are ``cpu×2``...) as long as no row is in two of them (a stale copy would be). A row's
``checks`` count comparisons and crashed tests; skips and expected failures are counted apart; its
worst ratio is ``max error/tolerance`` over its checks (``inf`` for a crash or a zero tolerance).

The summary line counts the backends reported against the ones expected (``--expect
numpy,torch,tf,jax``; default: the registered backends) and names those with no report. Each
report's skipped tests are listed grouped by reason, with a count and a few example test ids.

Exit status: 0 when every report has no failed check and no error record, 1 when any backend
disagrees (one line per failing row), 2 for bad input (one line on stderr). A missing expected
backend is a line on stdout, not a failure: the backend sessions decide whether it may be absent.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from regcore_conformance import matrix_path
from regcore_conformance.report import READABLE_VERSIONS

PATTERN = "conformance-*.json"
OUTCOMES = ("pass", "fail", "error", "skip", "xfail")
RECORD_STRINGS = ("backend", "device", "dtype", "scenario", "check", "outcome")
EXAMPLES = 3  # example test ids per skip reason
NO_REASON = "(no reason given)"


class BadInput(ValueError):
    """A report directory or report the matrix cannot be built from; the message says why."""


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

    @property
    def worst(self) -> float | None:
        """Largest error/tolerance over the checks; None when nothing ran."""
        return max(self.ratios) if self.ratios else None

    @property
    def status(self) -> str:
        return "FAIL" if self.failed else "pass" if self.checks else "skip"

    def add(self, record: dict) -> None:
        outcome = record["outcome"]
        if outcome == "skip":
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
        """``cuda: not run, 96 tests skipped: device 'cuda' not available here``."""
        reasons = self.reasons
        shown = "; ".join(c if len(reasons) == 1 else f"{c} ({n})" for c, n in reasons[:3])
        more = f"; {len(reasons) - 3} more reasons" if len(reasons) > 3 else ""
        return f"{self.where}: not run, {plural(self.skipped, 'test')} skipped: {shown}{more}"


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


def load_dir(directory: Path) -> list[BackendReport]:
    if not directory.exists():
        raise BadInput(f"{directory}: no such directory")
    if not directory.is_dir():
        raise BadInput(f"{directory}: not a directory")
    paths = sorted(directory.glob(PATTERN))
    if not paths:
        raise BadInput(f"{directory}: no {PATTERN} reports found")
    reports = [load_report(p) for p in paths]
    seen: dict[tuple[str, str, str, str], Path] = {}
    for r in reports:
        for rec in r.records:
            key = (r.backend, rec["device"], rec["dtype"], rec["scenario"])
            if seen.setdefault(key, r.path) != r.path:
                raise BadInput(f"{r.path}: a second report for backend {r.backend!r} with rows "
                               f"of {seen[key].name} ({' '.join(key[1:])}): a stale copy?")
    return sorted(reports, key=lambda r: (r.backend, r.run))


def load_report(path: Path) -> BackendReport:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: malformed JSON: {exc.msg} at line {exc.lineno} "
                       f"column {exc.colno}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a JSON object, got {type(data).__name__}")
    version = data.get("report_version")
    if version not in READABLE_VERSIONS:
        raise BadInput(f"{path}: report_version {version!r}, expected one of "
                       f"{', '.join(map(str, READABLE_VERSIONS))}")
    backend, records = data.get("backend"), data.get("records")
    if not isinstance(backend, str) or not backend:
        raise BadInput(f"{path}: 'backend' must be a non-empty string")
    if not isinstance(records, list):
        raise BadInput(f"{path}: 'records' must be a list")
    for i, rec in enumerate(records):
        _check_record(path, i, rec)
    env = data.get("environment", {})
    expect = data.get("expectations", {})
    summary = data.get("summary", {})
    if not isinstance(env, dict) or not isinstance(expect, dict) or not isinstance(summary, dict):
        raise BadInput(f"{path}: 'environment', 'expectations' and 'summary' must be objects")
    failed = summary.get("failed", 0)
    return BackendReport(path, backend, str(data.get("created", "")),
                         {str(k): str(v) for k, v in env.items()}, expect,
                         failed if isinstance(failed, int) else 0, records)


def _check_record(path: Path, i: int, rec: object) -> None:
    where = f"{path}: records[{i}]"
    if not isinstance(rec, dict):
        raise BadInput(f"{where}: expected an object")
    for key in RECORD_STRINGS:
        if not isinstance(rec.get(key), str):
            raise BadInput(f"{where}.{key}: expected a string, got {rec.get(key)!r}")
    if rec["outcome"] not in OUTCOMES:
        raise BadInput(f"{where}.outcome: {rec['outcome']!r} is not one of {list(OUTCOMES)}")
    ratio = rec.get("ratio", False)
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, (int, float))):
        raise BadInput(f"{where}.ratio: expected a number or null, got {ratio!r}")


def rows_of(reports: list[BackendReport]) -> list[Row]:
    rows: dict[tuple[str, str, str, str], Row] = {}
    for rep in reports:
        for rec in rep.records:
            label = rep.backend if rec["backend"] == rep.backend else \
                f"{rep.backend} ({rec['backend']})"
            key = (rep.run, label, rec["device"], rec["dtype"], rec["scenario"])
            rows.setdefault(key, Row(*key)).add(rec)
    return [rows[k] for k in sorted(rows)]


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


def failing_lines(reports: list[BackendReport], rows: list[Row]) -> list[str]:
    lines = [f"FAIL {r.backend} {r.device} {r.dtype} {r.scenario}: {r.failed} of {r.checks} "
             f"checks failed ({r.errors} errors), worst err/tol {fmt_ratio(r.worst)}"
             for r in rows if r.failed]
    for rep in reports:
        if rep.summary_failed and not any(r.failed for r in rows
                                          if r.report == rep.run):
            lines.append(f"FAIL {rep.run}: its summary counts {rep.summary_failed} failed "
                         "checks, its records none")
    return lines


def _md(text: object) -> str:
    """Text from a report, safe inside a markdown table cell."""
    s = " ".join(str(text).split())
    for ch in "\\`*|":
        s = s.replace(ch, "\\" + ch)
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_markdown(reports: list[BackendReport], rows: list[Row],
                    paths: dict | None = None, expected: list[str] | None = None) -> str:
    head, failing, missing = expected_summary(reports, rows, expected or [])
    ran, not_run = split_not_run(rows)
    out = ["# regcore conformance matrix", "",
           f"{plural(len(reports), 'report')}: " + ", ".join(_md(r.run) for r in reports) + ". "
           + _md(head)
           + ("" if not missing else "; **no report from: " + ", ".join(map(_md, missing))
              + "**")
           + (". All agree with the reference." if not failing
              else ". **Disagreeing: " + ", ".join(_md(b) for b in failing) + "**"), ""]
    for rep in reports:
        versions, counts = backend_line(rep, rows)
        out.append(f"- **{_md(rep.run)}** ({_md(rep.path.name)}, {_md(rep.created)}): "
                   f"{_md(versions)}. {counts}")
        out += [f"  - {_md(n.line())}" for n in not_run if n.report == rep.run]
    out += [f"- **{_md(b)}**: no report" for b in missing]
    out += ["", "| backend | device | dtype | scenario | checks | failed | skipped | xfailed "
            "| status | worst err/tol |", "|---|---|---|---|--:|--:|--:|--:|:-:|--:|"]
    for r in table_order(ran, not_run):
        if isinstance(r, NotRun):
            cells = [_md(r.backend), _md(r.device), _md(r.dtype or "(all)"), "(all)", "0", "0",
                     str(r.skipped), "0", "not run", "-"]
        else:
            cells = [_md(r.backend), _md(r.device), _md(r.dtype), _md(r.scenario),
                     str(r.checks), str(r.failed), str(r.skipped), str(r.xfailed),
                     "**FAIL**" if r.failed else r.status, fmt_ratio(r.worst)]
        out.append("| " + " | ".join(cells) + " |")
    skipped = [(rep, skip_groups(rep)) for rep in reports]
    if any(groups for _, groups in skipped):
        out += ["", "## Skipped tests, by reason", ""]
        for rep, groups in skipped:
            if groups:
                out += [f"### {_md(rep.run)}: {sum(g.count for g in groups)} skipped", ""]
                out += [f"- {g.count} × {_md(g.cause)}"
                        + (f" ({len(g.variants)} variants)" if len(g.variants) > 1 else "")
                        + f" — e.g. {_md(g.examples())}" for g in groups]
                out.append("")
    extra = notes(reports)
    if extra:
        out += ["", "## Tolerance overrides and expected failures", ""]
        out += [f"- {_md(b)}: {_md(text)}" for b, text in extra]
    out += matrix_path.markdown(paths or {}, _md)
    return "\n".join(out) + "\n"


def table_order(ran: list[Row], not_run: list[NotRun]) -> list[Row | NotRun]:
    """The table's rows: a not-run line where its first row would have been."""
    def key(x: Row | NotRun) -> tuple[str, ...]:
        if isinstance(x, NotRun):
            return (x.report, x.backend, x.device, x.dtype or "", "")
        return (x.report, x.backend, x.device, x.dtype, x.scenario)
    return sorted([*ran, *not_run], key=key)


def expected_backends(spec: str | None) -> list[str]:
    """``--expect a,b,c`` in its order; none given: the registered backends."""
    if spec is None:
        from regcore import available_backends

        return available_backends()
    return list(dict.fromkeys(b.strip() for b in spec.split(",") if b.strip()))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage block
        raise BadInput(f"usage: {message}")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m regcore_conformance.matrix",
                     description="Merge conformance-*.json reports into matrix.md and "
                                 "matrix.html.")
    parser.add_argument("report_dir", type=Path, help="directory of conformance-*.json reports")
    parser.add_argument("--out", type=Path, help="output directory (default: REPORT_DIR)")
    parser.add_argument("--expect", metavar="A,B,...",
                        help="backends that should have a report, named when absent (default: "
                             "the registered backends; '' for none)")
    try:
        args = parser.parse_args(argv)
        reports = load_dir(args.report_dir)
        rows = rows_of(reports)
        expected = expected_backends(args.expect)
        try:
            paths = matrix_path.load(args.report_dir)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        from regcore_conformance.matrix_html import render_html

        out = args.out or args.report_dir
        written = []
        try:
            out.mkdir(parents=True, exist_ok=True)
            for name, text in (("matrix.md", render_markdown(reports, rows, paths, expected)),
                               ("matrix.html", render_html(reports, rows, expected))):
                (out / name).write_text(text, encoding="utf-8")
                written.append(out / name)
        except OSError as exc:
            raise BadInput(f"{out}: cannot write: {exc.strerror or exc}") from None
    except BadInput as exc:
        print(f"regcore_conformance.matrix: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    missing = expected_summary(reports, rows, expected)[2]
    if missing:
        print(f"no report from expected backends: {', '.join(missing)}")
    failing = failing_lines(reports, rows) + matrix_path.failing(paths)
    for line in failing:
        print(line)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
