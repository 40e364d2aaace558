"""``matrix.html``: the conformance matrix as one self-contained page (no external CSS, JS, fonts
or images): per-backend versions and totals, a heatmap of the worst error/tolerance ratio per
(backend, device, dtype) row and scenario column as inline SVG, the skipped tests by reason, the
full table, the tolerance overrides and expected failures, and the port checks
(:mod:`regcore_conformance.matrix_diff`). Every string taken from a report
is escaped. A device (or dtype) where nothing ran is one grey heatmap row naming the reason.

Heatmap colours: only a failure looks like a warning. A passing worst ratio (at most 1) is a
shade of green on a log scale, ``GREEN`` at ``10**LOG_MIN`` and below (exact agreement, ratio 0,
included) through ``MID`` at 1e-3 to ``PALE`` at 1; above 1, a crash or any failed check is
``RED``; a cell whose tests were all skipped is ``GREY``; a scenario absent from a backend's
report is ``MISSING``.
"""

from __future__ import annotations

import math
from html import escape

from regcore_conformance import matrix_diff
from regcore_conformance.matrix_rows import (
    BackendReport,
    NotRun,
    Row,
    backend_line,
    expected_summary,
    fmt_ratio,
    notes,
    plural,
    skip_groups,
    split_not_run,
    table_order,
)

GREEN, MID, PALE = "#1a7f3c", "#5cb85c", "#cfe9c6"  # passes: far inside, 1e-3, at the limit
RED, GREY, MISSING = "#d73027", "#bdbdbd", "#ffffff"
LOG_MIN = -6
CELL_W, CELL_H, GAP = 78, 26, 2
LEGEND_STEPS, LEGEND_STEP_W = 60, 4
CHAR_W, BAR_MAX_W = 6.2, 900  # about 6.2 px a character at font-size 11
SWATCHES = ((RED, "fail: > 1, failed or crashed"), (GREY, "skipped only"),
            (MISSING, "not in report"))
LEGEND_W = LEGEND_STEPS * LEGEND_STEP_W + 30 + sum(30 + 7 * len(t) for _, t in SWATCHES)

STYLE = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px;
       color: #222; background: #fff; }
h1 { font-size: 22px; margin: 0 0 6px; } h2 { font-size: 17px; margin: 22px 0 8px; }
.status { font-weight: 600; } .status.ok { color: #1b6e3a; } .status.bad { color: #a4161a; }
.missing { font-weight: 600; color: #8a4b00; }
details { margin: 4px 0; } summary { cursor: pointer; } details table { margin: 4px 0 8px 20px; }
ul.backends { margin: 4px 0; padding-left: 20px; } .muted { color: #666; }
svg text { font-family: system-ui, sans-serif; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #d4d4d4; padding: 2px 8px; }
th { background: #f2f2f2; text-align: left; } td.n { text-align: right; }
tr.fail td { background: #fbe3e1; } tr.skip td { color: #777; }
td.mark { text-align: center; font-weight: 600; }
tr.fail td.mark { color: #a4161a; } tr.pass td.mark { color: #1b6e3a; }
"""


def _mix(a: str, b: str, t: float) -> str:
    ca = [int(a[i:i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb, strict=True))


def ratio_colour(ratio: float) -> str:
    """Colour of a passing worst ratio (<= 1): log10 scale, GREEN at 10**LOG_MIN, MID at 1e-3,
    PALE at 1 — all green, so a pass close to the limit still reads as a pass."""
    t = 0.0 if ratio <= 0 else min(1.0, max(0.0, (math.log10(ratio) - LOG_MIN) / -LOG_MIN))
    return _mix(GREEN, MID, t * 2) if t <= 0.5 else _mix(MID, PALE, t * 2 - 1)


def cell_colour(row: Row | None) -> str:
    if row is None:
        return MISSING
    if not row.checks:
        return GREY
    worst = row.worst
    return RED if row.failed or worst is None or worst > 1 else ratio_colour(worst)


def _ink(fill: str) -> str:
    r, g, b = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
    return "#ffffff" if 0.299 * r + 0.587 * g + 0.114 * b < 150 else "#222222"


def _cell_title(label: str, scenario: str, row: Row | None) -> str:
    if row is None:
        return f"{label} / {scenario}: not in this backend's report"
    skips = "".join(f"\nskipped {n}: {cause}" for cause, n in row.skip_reasons.most_common(3))
    return (f"{label} / {scenario}: {row.checks} checks, {row.failed} failed "
            f"({row.errors} errors), {row.skipped} skipped, {row.xfailed} expected failures, "
            f"worst err/tol {fmt_ratio(row.worst)}{skips}")


def heatmap_svg(rows: list[Row]) -> str:
    """Rows (backend, device, dtype) × scenario columns, a device or dtype where nothing ran as
    one grey bar naming why, then the legend."""
    if not rows:
        return '<p class="muted">No records.</p>'
    ran, not_run = split_not_run(rows)
    keys: list[tuple[str, ...]] = sorted({(r.report, r.backend, r.device, r.dtype) for r in ran}
                                         | {(n.report, n.backend, n.device, n.dtype or "")
                                            for n in not_run})
    idle = {(n.report, n.backend, n.device, n.dtype or ""): n for n in not_run}
    scenarios = sorted({r.scenario for r in rows})
    by_key = {(r.report, r.backend, r.device, r.dtype, r.scenario): r for r in ran}
    labels = [f"{b} {dev} {dt}" if dt else f"{b} {dev}" for _, b, dev, dt in keys]
    left = 12 + 7 * max(len(s) for s in labels)
    top = 16 + int(5.2 * max(len(s) for s in scenarios))
    grid_w = len(scenarios) * (CELL_W + GAP) - GAP
    # a not-run bar spans the grid, longer if its line needs it (up to BAR_MAX_W)
    bar_w = max([grid_w] + [min(BAR_MAX_W, _text_w(n.line()) + 16) for n in not_run])
    width = max(left + max(grid_w + top, bar_w), left + LEGEND_W)
    grid_bottom = top + len(keys) * (CELL_H + GAP)
    height = grid_bottom + 70
    out = [f'<svg class="heatmap" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" '
           'aria-label="worst error/tolerance per backend row and scenario">']
    for j, scenario in enumerate(scenarios):
        x, y = left + j * (CELL_W + GAP) + CELL_W // 2, top - 6
        out.append(f'<text x="{x}" y="{y}" font-size="12" transform="rotate(-40 {x} {y})">'
                   f'{escape(scenario)}</text>')
    for i, (key, label) in enumerate(zip(keys, labels, strict=True)):
        y = top + i * (CELL_H + GAP)
        out.append(f'<text x="{left - 8}" y="{y + CELL_H // 2 + 4}" font-size="12" '
                   f'text-anchor="end">{escape(label)}</text>')
        if key in idle:
            out.append(_not_run_bar(idle[key], i, left, y, bar_w))
            continue
        for j, scenario in enumerate(scenarios):
            row = by_key.get((*key, scenario))
            fill, x = cell_colour(row), left + j * (CELL_W + GAP)
            text = "–" if row is None else fmt_ratio(row.worst) if row.checks else "skip"
            stroke = ' stroke="#bbbbbb" stroke-dasharray="3 2"' if row is None else ""
            out.append(
                f'<g><title>{escape(_cell_title(label, scenario, row))}</title>'
                f'<rect class="cell" data-row="{i}" data-col="{j}" x="{x}" y="{y}" '
                f'width="{CELL_W}" height="{CELL_H}" fill="{fill}"{stroke}/>'
                f'<text x="{x + CELL_W // 2}" y="{y + CELL_H // 2 + 4}" font-size="11" '
                f'text-anchor="middle" fill="{_ink(fill)}">{escape(text)}</text></g>')
    out.append(_legend(left, grid_bottom + 22))
    out.append("</svg>")
    return "\n".join(out)


def _text_w(text: str) -> int:
    return round(len(text) * CHAR_W)


def _not_run_bar(n: NotRun, i: int, x: int, y: int, width: int) -> str:
    """One grey bar across every scenario column: where nothing ran, and why."""
    line, fits = n.line(), max(8, int((width - 16) / CHAR_W))
    text = line if len(line) <= fits else line[:fits - 1] + "…"
    return (f'<g><title>{escape(line)}</title>'
            f'<rect class="not-run" data-row="{i}" x="{x}" y="{y}" width="{width}" '
            f'height="{CELL_H}" fill="{GREY}"/>'
            f'<text x="{x + 8}" y="{y + CELL_H // 2 + 4}" font-size="11" '
            f'fill="{_ink(GREY)}">{escape(text)}</text></g>')


def _legend(x: int, y: int) -> str:
    steps, w = LEGEND_STEPS, LEGEND_STEP_W
    out = [f'<text x="{x}" y="{y - 6}" font-size="12">pass: worst error / tolerance ≤ 1 '
           '(darker: further inside)</text>']
    for k in range(steps):
        ratio = 10 ** (LOG_MIN * (1 - k / (steps - 1)))
        out.append(f'<rect class="legend" x="{x + k * w}" y="{y}" width="{w}" height="12" '
                   f'fill="{ratio_colour(ratio)}"/>')
    for exp in range(LOG_MIN, 1, 2):
        tx = x + round((exp - LOG_MIN) / -LOG_MIN * (steps - 1) * w)
        out.append(f'<text x="{tx}" y="{y + 26}" font-size="11" text-anchor="middle">'
                   f'{"1" if exp == 0 else f"1e{exp}"}</text>')
    sx = x + steps * w + 30
    for fill, text in SWATCHES:
        out.append(f'<rect class="legend" x="{sx}" y="{y}" width="12" height="12" '
                   f'fill="{fill}" stroke="#999999"/>'
                   f'<text x="{sx + 17}" y="{y + 11}" font-size="12">{escape(text)}</text>')
        sx += 30 + 7 * len(text)
    return "\n".join(out)


def _table(rows: list[Row]) -> str:
    head = ("backend", "device", "dtype", "scenario", "checks", "failed", "skipped", "xfailed",
            "status", "worst err/tol")
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead>",
           "<tbody>"]
    ran, not_run = split_not_run(rows)
    for r in table_order(ran, not_run):
        if isinstance(r, NotRun):
            out.append(
                f'<tr class="skip not-run" title="{escape(r.line())}">'
                + "".join(f"<td>{escape(v)}</td>" for v in
                          (r.backend, r.device, r.dtype or "(all)", "(all)"))
                + "".join(f'<td class="n">{n}</td>' for n in (0, 0, r.skipped, 0))
                + '<td class="mark">not run</td><td class="n">-</td></tr>')
            continue
        cls = "fail" if r.failed else r.status
        out.append(
            f'<tr class="{cls}">' + "".join(f"<td>{escape(v)}</td>" for v in
                                            (r.backend, r.device, r.dtype, r.scenario))
            + "".join(f'<td class="n">{n}</td>' for n in
                      (r.checks, r.failed, r.skipped, r.xfailed))
            + f'<td class="mark">{r.status}</td><td class="n">{fmt_ratio(r.worst)}</td></tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def _skips(reports: list[BackendReport]) -> list[str]:
    """Per report, a collapsible list of its skipped tests by cause: count, examples."""
    out = []
    for rep in reports:
        groups = skip_groups(rep)
        if not groups:
            continue
        top = groups[0]
        out += [f'<details class="skips"><summary><b>{escape(rep.run)}</b>: '
                f"{plural(sum(g.count for g in groups), 'skipped test')}, {len(groups)} "
                f"reason{'s' if len(groups) > 1 else ''} <span class=\"muted\">(most: "
                f"{escape(top.cause)}, {top.count})</span></summary>",
                "<table><thead><tr><th>skipped</th><th>reason</th><th>for example</th></tr>"
                "</thead><tbody>"]
        for g in groups:
            variants = (f' <span class="muted">({len(g.variants)} variants)</span>'
                        if len(g.variants) > 1 else "")
            out.append(f'<tr><td class="n">{g.count}</td><td>{escape(g.cause)}{variants}</td>'
                       f"<td>{'<br>'.join(escape(t) for t in g.tests)}"
                       + (f" and {g.count - len(g.tests)} more" if g.count > len(g.tests) else "")
                       + "</td></tr>")
        out.append("</tbody></table></details>")
    return out


def render_html(reports: list[BackendReport], rows: list[Row],
                expected: list[str] | None = None, diffs: dict | None = None) -> str:
    head, failing, missing = expected_summary(reports, rows, expected or [])
    runs = f"{plural(len(reports), 'report')}: " + ", ".join(r.run for r in reports) + ". "
    status = (f'<p class="status ok">{escape(runs + head)}'
              + ("" if not missing else '; <span class="missing">no report from: '
                 + ", ".join(escape(b) for b in missing) + "</span>")
              + (". All agree with the reference.</p>" if not failing else
                 ". Disagreeing: " + ", ".join(escape(b) for b in failing) + ".</p>"))
    if failing:
        status = status.replace('"status ok"', '"status bad"', 1)
    items = []
    _, not_run = split_not_run(rows)
    for rep in reports:
        versions, counts = backend_line(rep, rows)
        idle = "".join(f"<li>{escape(n.line())}</li>" for n in not_run if n.report == rep.run)
        items.append(f"<li><b>{escape(rep.run)}</b> <span class=\"muted\">"
                     f"({escape(rep.path.name)}, {escape(rep.created)})</span>: "
                     f"{escape(versions)}. {escape(counts)}"
                     + (f"<ul>{idle}</ul>" if idle else "") + "</li>")
    items += [f'<li class="missing">{escape(b)}: no report</li>' for b in missing]
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             "<title>regcore conformance matrix</title>", f"<style>{STYLE}</style>", "</head>",
             "<body>", "<h1>regcore conformance matrix</h1>", status,
             '<ul class="backends">', *items, "</ul>",
             "<h2>Worst error / tolerance</h2>",
             '<p class="muted">Per backend, device and dtype (rows) and scenario (columns): the '
             "largest normwise error divided by its derived tolerance. At most 1 is a pass, in "
             "green (darker: further inside the tolerance); red is a failed check or a crash; "
             "grey, skipped.</p>",
             heatmap_svg(rows)]
    skips = _skips(reports)
    if skips:
        parts += ["<h2>Skipped tests, by reason</h2>", *skips]
    parts += ["<h2>Checks</h2>", _table(rows)]
    extra = notes(reports)
    if extra:
        parts += ["<h2>Tolerance overrides and expected failures</h2>", "<ul>"]
        parts += [f"<li><b>{escape(b)}</b>: {escape(text)}</li>" for b, text in extra]
        parts.append("</ul>")
    parts += matrix_diff.html(diffs or {})
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"
