"""Interleaved timing: warm-up, one calibrated loop length for a whole group, round-robin
repetitions, and robust statistics (median, quartiles, min/max) with ratios to a baseline."""

from __future__ import annotations

import gc
import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def _noop() -> None:
    return None


@dataclass
class Case:
    """One idiom: ``run()`` does one unit of work (a training step, a penalty value);
    ``sync()`` waits for the device to finish what ``run`` queued (GPUs, JAX's async dispatch)."""

    key: str
    label: str
    run: Callable[[], Any]
    sync: Callable[[], Any] = _noop
    note: str = ""
    value: Callable[[], float] | None = None  # the penalty it computes (value cases), a check
    extra: dict[str, Any] = field(default_factory=dict)


def _sample(case: Case, inner: int) -> float:
    """Seconds per ``run()``, averaged over ``inner`` consecutive calls."""
    case.sync()
    start = time.perf_counter()
    for _ in range(inner):
        case.run()
    case.sync()
    return (time.perf_counter() - start) / inner


def stats(samples: list[float]) -> dict[str, float]:
    """Median, quartiles (inclusive method), min and max of ``samples``."""
    ordered = sorted(samples)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {"median": statistics.median(ordered), "q1": q1, "q3": q3,
            "min": ordered[0], "max": ordered[-1]}


def interleaved(cases: list[Case], *, repeats: int, warmup: int, target_s: float,
                baseline: str | None = None, max_inner: int = 100_000) -> dict[str, Any]:
    """Time every case ``repeats`` times, all cases once per repetition in rotating order.

    Each case first runs ``warmup`` times (compilation, allocator, caches). One loop length
    ``inner`` serves the whole group, chosen so that a sample of the baseline (or first) case
    lasts about ``target_s``; a sample is the mean over ``inner`` calls.
    The garbage collector is off while a sample runs (as ``timeit`` does).

    Returns ``{"inner": n, "samples": {key: [seconds...]}}``, samples in repetition order, so
    ``samples[k][r] / samples[base][r]`` is a paired ratio (same repetition, adjacent in time).
    """
    if not cases:
        return {"inner": 0, "samples": {}}
    for case in cases:
        for _ in range(max(1, warmup)):
            case.run()
        case.sync()
    base = next((c for c in cases if c.key == baseline), cases[0])
    probe = min(_sample(base, 1) for _ in range(3))
    inner = max(1, min(max_inner, math.ceil(target_s / max(probe, 1e-9))))
    samples: dict[str, list[float]] = {c.key: [] for c in cases}
    enabled = gc.isenabled()
    try:
        for r in range(repeats):
            gc.collect()
            gc.disable()
            shift = r % len(cases)
            for case in cases[shift:] + cases[:shift]:
                samples[case.key].append(_sample(case, inner))
            if enabled:
                gc.enable()
    finally:
        if enabled:
            gc.enable()
    return {"inner": inner, "samples": samples}


def ratio_interval(times: list[float], base: list[float], *, resamples: int = 2000,
                   level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """A paired bootstrap confidence interval for ``median(times) / median(base)``: resample
    repetitions (a case's sample and the baseline's of the same repetition together)."""
    rng, n = random.Random(seed), len(times)
    ratios = []
    for _ in range(resamples):
        picks = [rng.randrange(n) for _ in range(n)]
        ratios.append(statistics.median(times[i] for i in picks)
                      / statistics.median(base[i] for i in picks))
    ratios.sort()
    tail = (1 - level) / 2
    return ratios[int(tail * (resamples - 1))], ratios[math.ceil((1 - tail) * (resamples - 1))]


def summarize(result: dict[str, Any], cases: list[Case], baseline: str | None,
              common: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per case: times in milliseconds; ``ratio`` = median / baseline median (exactly
    1.0 for the baseline) with its 95% paired-bootstrap interval (``ratio_lo``, ``ratio_hi``), and
    the quartiles of the per-repetition ratios (``ratio_q1``, ``ratio_q3``) as their spread."""
    samples = result["samples"]
    base = samples.get(baseline) if baseline else None
    base_median = statistics.median(base) if base else None
    rows = []
    for case in cases:
        times = samples[case.key]
        s = stats(times)
        row = {**common, "idiom": case.key, "label": case.label,
               **{f"{k}_ms": v * 1e3 for k, v in s.items()},
               "n": len(times), "inner": result["inner"],
               "samples_ms": [round(t * 1e3, 6) for t in times]}
        if base_median:
            paired = stats([t / b for t, b in zip(times, base, strict=True)])
            lo, hi = ratio_interval(times, base) if case.key != baseline else (1.0, 1.0)
            row.update(ratio=s["median"] / base_median, ratio_lo=lo, ratio_hi=hi,
                       ratio_q1=paired["q1"], ratio_q3=paired["q3"],
                       ratio_paired=paired["median"])
        if case.note:
            row["note"] = case.note
        row.update(case.extra)
        rows.append(row)
    return rows
