"""The run's results as JSON (everything measured) and a markdown table (what a reader needs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

JSON_NAME = "bench.json"
TABLE_NAME = "table.md"


def _ms(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _ratio(row: dict[str, Any]) -> str:
    return f"{row['ratio']:.3f} ({row['ratio_lo']:.3f}–{row['ratio_hi']:.3f})"


def _groups(rows: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    out: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault((row["backend"], row["device"], row["mode"], row["shape"]), []).append(row)
    return out


def _table(header: list[str], lines: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cells) + " |" for cells in lines)]


COMMON = ("loss_sum_sq", "keras_regularizer")  # the idiom users write by hand
NATIVE = ("native_weight_decay", "folded_weight_decay")  # the framework's own decay
TARGET_RATIO, TARGET_FLOOR = 1.02, 1.2


def _best(rows: list[dict[str, Any]], keep) -> dict[str, Any] | None:
    """The row of least median ratio among ``rows`` whose idiom ``keep`` accepts."""
    chosen = [r for r in rows if keep(r["idiom"]) and "ratio" in r]
    return min(chosen, key=lambda r: r["ratio"]) if chosen else None


def _verdict(row: dict[str, Any]) -> str:
    if row["ratio_hi"] <= TARGET_RATIO:
        return "met"
    if row["ratio_lo"] > TARGET_RATIO:
        return "above"
    return "not told apart"


def summary(steps: list[dict[str, Any]], values: list[dict[str, Any]]) -> list[str]:
    """Per backend, device and shape, over every mode: the fastest regcore path against the
    framework's own weight decay and the common idiom, and the verdict on the ≤ 1.02 target
    (met: the 95% interval lies at or below it; above: it lies above; else not told apart); and
    the fastest regcore penalty value as a multiple of one read."""
    by: dict[tuple, list[dict[str, Any]]] = {}
    for r in steps:
        by.setdefault((r["backend"], r["device"], r["shape"]), []).append(r)
    lines = []
    for (backend, device, shape), rows in by.items():
        cells = []
        for keep in (lambda i: i in COMMON, lambda i: i in NATIVE,
                     lambda i: i.startswith("regcore_")):
            row = _best(rows, keep)
            cells.append(f"{_ratio(row)} {row['label']}, {row['mode']}" if row else "–")
        best = _best(rows, lambda i: i.startswith("regcore_"))
        value = [v for v in values if (v["backend"], v["device"], v["shape"]) == (
            backend, device, shape) and v["idiom"].startswith("regcore_") and "x_floor" in v]
        fastest = min(value, key=lambda v: v["x_floor"]) if value else None
        lines.append([backend, device, shape, *cells, _verdict(best) if best else "–",
                      f"{fastest['x_floor']:.2f} ({_ms(fastest['median_ms'])} ms)"
                      if fastest else "–"])
    return _table(["backend", "device", "shape", "common idiom", "framework weight decay",
                   "regcore, fastest path", f"≤ {TARGET_RATIO}", "regcore value × one read"],
                  lines)


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    out = ["# regcore benchmarks", "",
           f"{meta['date']} · {meta['machine']} · Python {meta['python']} · "
           f"repeats {meta['options']['repeats']} (interleaved), sample ≈ "
           f"{meta['options']['target_ms']:g} ms, CPU threads {meta['options']['threads']}, "
           f"penalized: {meta['options']['select']} parameters"
           + (" · **quick run: numbers mean nothing**" if meta["options"]["quick"] else ""), ""]
    for backend, versions in result["versions"].items():
        out.append(f"- {backend}: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    imp = result.get("import")
    if imp:
        out += ["", "## import regcore", "",
                f"{_ms(imp['wall_minus_bare_ms'])} ms wall clock over a bare interpreter "
                f"(median of {imp['runs']}, min {_ms(imp['wall_minus_bare_min_ms'])}, max "
                f"{_ms(imp['wall_minus_bare_max_ms'])}); `-X importtime` cumulative "
                f"{_ms(imp['importtime_ms'])} ms (min {_ms(imp['importtime_min_ms'])}, max "
                f"{_ms(imp['importtime_max_ms'])}); {imp['modules_added']} modules loaded."]
    if result["bandwidth"]:
        out += ["", "## Read bandwidth (the floor for a penalty value)", ""]
        out += _table(["backend", "device", "buffer MiB", "GB/s median", "GB/s IQR", "GB/s best"],
                      [[b["backend"], b["device"], f"{b['bytes'] / 2**20:.0f}",
                        f"{b['gbps']:.1f}", f"{b['gbps_q1']:.1f}–{b['gbps_q3']:.1f}",
                        f"{b['gbps_max']:.1f}"] for b in result["bandwidth"]])
    steps, values = result["steps"], result["values"]
    if steps:
        out += ["", "## Against the targets", "",
                f"Fastest of each kind over every mode (ratio to the unregularized step of "
                f"the same group, 95% interval); target: regcore's fastest path ≤ "
                f"{TARGET_RATIO}, its penalty value ≤ {TARGET_FLOOR}× one read.", ""]
        out += summary(steps, values)
    if steps:
        out += ["", "## Training step: regularized / unregularized", "",
                "ratio = median step time / median no-penalty step time of the same group "
                "(interleaved); (lo–hi) = its 95% paired-bootstrap interval. A ratio whose "
                "interval holds 1.02 has not been shown to be above or below 1.02.", ""]
        for backend in dict.fromkeys(r["backend"] for r in steps):
            groups = {k: v for k, v in _groups(steps).items() if k[0] == backend}
            idioms = list(dict.fromkeys(r["idiom"] for rows in groups.values() for r in rows
                                        if r["idiom"] != "none"))
            labels = {r["idiom"]: r["label"] for rows in groups.values() for r in rows}
            lines = []
            for (_, device, mode, shape), rows in groups.items():
                by = {r["idiom"]: r for r in rows}
                base = by.get("none")
                lines.append([device, mode, f"{shape} b{rows[0]['batch']}",
                              _ms(base["median_ms"]) if base else "–",
                              *(_ratio(by[i]) if i in by else "–" for i in idioms)])
            out += [f"### {backend}", ""]
            out += _table(["device", "mode", "shape", "no penalty ms",
                           *(labels[i] for i in idioms)], lines)
            out.append("")
        out += ["### All step rows", ""]
        out += _table(
            ["backend", "device", "mode", "shape", "idiom", "median ms", "IQR ms", "min–max ms",
             "ratio", "ratio 95% CI", "per-repetition ratio IQR", "samples×inner"],
            [[r["backend"], r["device"], r["mode"], f"{r['shape']} b{r['batch']}", r["label"],
              _ms(r["median_ms"]), f"{_ms(r['q1_ms'])}–{_ms(r['q3_ms'])}",
              f"{_ms(r['min_ms'])}–{_ms(r['max_ms'])}", f"{r['ratio']:.3f}",
              f"{r['ratio_lo']:.3f}–{r['ratio_hi']:.3f}",
              f"{r['ratio_q1']:.3f}–{r['ratio_q3']:.3f}", f"{r['n']}×{r['inner']}"]
             for r in steps])
    if values:
        out += ["", "## Penalty value alone", "",
                "floor = bytes of the penalized parameters / the read bandwidth above "
                "(same backend and device, same run). The bandwidth is that of a buffer larger "
                "than the caches: parameters that fit in a CPU's last-level cache can be read "
                "faster (× floor below 1).", ""]
        out += _table(
            ["backend", "device", "mode", "shape", "tensors", "MiB", "idiom", "median ms",
             "IQR ms", "floor ms", "× floor"],
            [[r["backend"], r["device"], r["mode"], r["shape"], str(r["tensors"]),
              f"{r['param_bytes'] / 2**20:.1f}", r["label"], _ms(r["median_ms"]),
              f"{_ms(r['q1_ms'])}–{_ms(r['q3_ms'])}",
              _ms(r["floor_ms"]) if "floor_ms" in r else "–",
              f"{r['x_floor']:.2f}" if "x_floor" in r else "–"] for r in values])
    notes = result["notes"] + [
        f"{r['backend']} {kind} `{r['idiom']}`: {r['note']}"
        for kind, rows in (("step", steps), ("value", values)) for r in rows if r.get("note")]
    if notes:
        out += ["", "## Notes", "", *(f"- {n}" for n in dict.fromkeys(notes))]
    return "\n".join(out) + "\n"


def write(result: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, table_path = out_dir / JSON_NAME, out_dir / TABLE_NAME
    json_path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    table_path.write_text(markdown(result), encoding="utf-8")
    return json_path, table_path
