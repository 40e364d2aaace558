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
devices are ``cpu×2``...) as long as no row is in two of them (a stale copy would be; a device
recorded as unavailable may be in each). A row's ``checks`` count comparisons and crashed
tests; skips and expected failures are counted apart; its worst ratio is ``max error/tolerance``
over its checks (``inf`` for a crash or a zero tolerance).

Each ``regcore diff --json`` output in ``REPORT_DIR/diff/`` gets a "Port checks" section
(:mod:`regcore_conformance.matrix_diff`), shown, not judged.

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
import sys
from pathlib import Path

from regcore_conformance import matrix_diff, matrix_path
from regcore_conformance.matrix_rows import (  # noqa: F401  (re-exported: matrix.Row...)
    EXAMPLES,
    NO_REASON,
    BackendReport,
    NotRun,
    Row,
    SkipGroup,
    backend_line,
    expected_summary,
    fmt_ratio,
    notes,
    plural,
    skip_cause,
    skip_groups,
    skip_template,
    split_not_run,
    table_order,
    totals,
)
from regcore_conformance.report import DEVICE_UNAVAILABLE, READABLE_VERSIONS

PATTERN = "conformance-*.json"
OUTCOMES = ("pass", "fail", "error", "skip", "xfail")
RECORD_STRINGS = ("backend", "device", "dtype", "scenario", "check", "outcome")


class BadInput(ValueError):
    """A report directory or report the matrix cannot be built from; the message says why."""


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
            if rec["check"] == DEVICE_UNAVAILABLE:
                continue  # every run of a backend may say the same device is absent
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
                    paths: dict | None = None, expected: list[str] | None = None,
                    diffs: dict | None = None) -> str:
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
    out += matrix_diff.markdown(diffs or {}, _md)
    return "\n".join(out) + "\n"


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
            diffs = matrix_diff.load(args.report_dir)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        from regcore_conformance.matrix_html import render_html

        out = args.out or args.report_dir
        written = []
        try:
            out.mkdir(parents=True, exist_ok=True)
            for name, text in (("matrix.md", render_markdown(reports, rows, paths, expected,
                                                             diffs)),
                               ("matrix.html", render_html(reports, rows, expected, diffs))):
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
