"""Device read bandwidth, measured in the same run as the penalties it is a floor for.

A penalty value has to read every parameter once, so no implementation can beat
``bytes of all parameters / read bandwidth``. The bandwidth is that of one reduction (a sum)
over a buffer much larger than the caches, in the framework under test, on its device, with its
threads: what that framework can actually stream, not a datasheet number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks.timing import Case, interleaved, stats


def measure(reduce: Callable[[], Any], sync: Callable[[], Any], nbytes: int, *,
            repeats: int, target_s: float) -> dict[str, float]:
    """Time ``reduce()`` (a sum over an ``nbytes`` buffer); bytes per second from the median,
    and the spread as the bandwidths at the quartile times."""
    result = interleaved([Case("read", "read", reduce, sync)], repeats=max(3, repeats),
                         warmup=2, target_s=target_s)
    s = stats(result["samples"]["read"])
    return {"bytes": nbytes, "median_ms": s["median"] * 1e3,
            "gbps": nbytes / s["median"] / 1e9,
            "gbps_q1": nbytes / s["q3"] / 1e9, "gbps_q3": nbytes / s["q1"] / 1e9,
            "gbps_max": nbytes / s["min"] / 1e9}


def floor_ms(param_bytes: int, bandwidth: dict[str, float]) -> float:
    """Milliseconds to read ``param_bytes`` once at the measured (median) bandwidth."""
    return param_bytes / (bandwidth["gbps"] * 1e9) * 1e3
