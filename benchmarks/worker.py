"""One backend's benchmarks, in a process of their own:
``python -m benchmarks.worker BACKEND OPTIONS.json OUT.json``.

A backend module (``benchmarks.<backend>_bench``) provides::

    setup(options)                          # threads, before any work
    versions() -> {package: version}
    devices(options) -> (devices, notes)    # the devices to run; notes for requested ones missing
    modes(options) -> [mode]                # e.g. eager; tf.function and XLA
    bandwidth_case(device, nbytes) -> Case  # a sum over an nbytes buffer
    step_cases(device, mode, shape, batch, options) -> [Case]    # "none" first
    value_cases(device, mode, shape, options) -> ([Case], bytes of the penalized parameters)
    release(device)                         # drop caches between groups

Everything a group raises becomes a note in the report; the other groups still run.
"""

from __future__ import annotations

import functools
import gc
import importlib
import json
import math
import sys
import time
import traceback
from typing import Any

from benchmarks import bandwidth
from benchmarks.config import Options, bandwidth_bytes, batch_for, shapes_for
from benchmarks.timing import interleaved, summarize

BASELINE = "none"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _error(where: str, exc: BaseException) -> str:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return f"{where}: {last}"


def _values(cases: list, rows: list[dict[str, Any]], notes: list[str], where: str) -> None:
    """Record each value case's penalty and note any that disagrees with the first."""
    reference = None
    for case, row in zip(cases, rows, strict=True):
        if case.value is None:
            continue
        value = float(case.value())
        row["value"] = value
        if reference is None:
            reference = value
        elif not math.isclose(value, reference, rel_tol=1e-3):
            notes.append(f"{where}: {case.key} computes {value!r}, {cases[0].key} {reference!r}")


def run(backend: str, options: Options) -> dict[str, Any]:
    mod = importlib.import_module(f"benchmarks.{backend}_bench")
    mod.setup(options)
    out: dict[str, Any] = {"backend": backend, "versions": mod.versions(), "bandwidth": [],
                           "steps": [], "values": [], "notes": []}
    devices, notes = mod.devices(options)
    out["notes"].extend(notes)
    target_s = options.target_ms / 1e3
    for device in devices:
        try:
            nbytes = bandwidth_bytes(options, device)
            case = mod.bandwidth_case(device, nbytes)
            bw = {"backend": backend, "device": device,
                  **bandwidth.measure(case.run, case.sync, nbytes, repeats=options.repeats,
                                      target_s=target_s)}
            del case
        except Exception as exc:  # reported; the rest still runs
            out["notes"].append(_error(f"{backend} {device} bandwidth", exc))
            bw = None
        else:
            out["bandwidth"].append(bw)
            _log(f"[{backend} {device}] read bandwidth {bw['gbps']:.1f} GB/s")
        gc.collect()
        mod.release(device)
        for mode in mod.modes(options):
            for shape in shapes_for(options, device):
                batch = batch_for(options, device)
                common = {"backend": backend, "device": device, "mode": mode,
                          "shape": shape.label, "batch": batch, "params": shape.params,
                          "tensors": shape.tensors, "select": options.select}
                where = f"{backend} {device} {mode} {shape.label}"
                out["steps"].extend(_group(
                    functools.partial(mod.step_cases, device, mode, shape, batch, options),
                    common, BASELINE, options, target_s, out["notes"], f"{where} b{batch} step"))
                gc.collect()
                mod.release(device)
                vcommon = {k: v for k, v in common.items() if k != "batch"}
                out["values"].extend(_value_group(
                    mod, device, mode, shape, options, vcommon, bw, target_s, out["notes"],
                    f"{where} value"))
                gc.collect()
                mod.release(device)
    return out


def _group(build, common, baseline, options, target_s, notes, where) -> list[dict[str, Any]]:
    try:
        cases = build()
        start = time.perf_counter()
        result = interleaved(cases, repeats=options.repeats, warmup=options.warmup,
                             target_s=target_s, baseline=baseline)
        rows = summarize(result, cases, baseline, common)
    except Exception as exc:
        notes.append(_error(where, exc))
        _log(f"[{where}] failed: {notes[-1]}")
        return []
    _log(f"[{where}] {len(cases)} idioms x {options.repeats} repeats x {result['inner']} "
         f"inner: {time.perf_counter() - start:.1f} s; ratios "
         + ", ".join(f"{r['idiom']} {r['ratio']:.3f}" for r in rows if "ratio" in r))
    return rows


def _value_group(mod, device, mode, shape, options, common, bw, target_s, notes,
                 where) -> list[dict[str, Any]]:
    try:
        cases, param_bytes = mod.value_cases(device, mode, shape, options)
        if not cases:  # this mode computes the value as another mode does
            return []
        result = interleaved(cases, repeats=options.repeats, warmup=options.warmup,
                             target_s=target_s)
        rows = summarize(result, cases, None, {**common, "param_bytes": param_bytes})
        _values(cases, rows, notes, where)
    except Exception as exc:
        notes.append(_error(where, exc))
        _log(f"[{where}] failed: {notes[-1]}")
        return []
    if bw is not None:
        floor = bandwidth.floor_ms(param_bytes, bw)
        for row in rows:
            row.update(floor_ms=floor, x_floor=row["median_ms"] / floor)
    _log(f"[{where}] " + ", ".join(f"{r['idiom']} {r['median_ms']:.3f} ms" for r in rows)
         + (f"; floor {floor:.3f} ms" if bw is not None else ""))
    return rows


def main(argv: list[str]) -> int:
    backend, options_file, out_file = argv
    with open(options_file) as f:
        options = Options.from_dict(json.load(f))
    result = run(backend, options)
    with open(out_file, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
