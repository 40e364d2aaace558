"""``import regcore`` time, two ways, each a median over fresh interpreters:

* wall clock of ``python -c "import regcore"`` minus that of ``python -c "pass"``;
* the cumulative time ``python -X importtime`` reports for the top-level ``regcore`` module.

Both run from a temporary directory, so they import the installed regcore, as users do, and not
a source tree that happens to be the working directory.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any


def _wall(code: str, cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _self_reported_us(cwd: str) -> int:
    """Cumulative microseconds of the top-level ``regcore`` import (``-X importtime``)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import regcore"], cwd=cwd,
                         check=True, capture_output=True, text=True).stderr
    for line in out.splitlines():
        match = re.match(r"import time:\s*\d+\s*\|\s*(\d+)\s*\|\s*regcore\s*$", line)
        if match:
            return int(match[1])
    raise RuntimeError("python -X importtime printed no line for regcore")


def measure(runs: int) -> dict[str, Any]:
    runs = max(1, runs)
    with tempfile.TemporaryDirectory() as cwd:
        _wall("import regcore", cwd)  # warm the file cache and bytecode
        bare, full, reported = [], [], []
        for _ in range(runs):  # interleaved, like everything else
            bare.append(_wall("pass", cwd))
            full.append(_wall("import regcore", cwd))
            reported.append(_self_reported_us(cwd))
        mods = subprocess.run(
            [sys.executable, "-c", "import sys; n = len(sys.modules); import regcore; "
             "print(len(sys.modules) - n)"], cwd=cwd, check=True, capture_output=True,
            text=True).stdout.strip()
    diffs = [f - b for f, b in zip(full, bare, strict=True)]
    return {
        "runs": runs,
        "wall_minus_bare_ms": statistics.median(diffs) * 1e3,
        "wall_minus_bare_min_ms": min(diffs) * 1e3,
        "wall_minus_bare_max_ms": max(diffs) * 1e3,
        "bare_interpreter_ms": statistics.median(bare) * 1e3,
        "importtime_ms": statistics.median(reported) / 1e3,
        "importtime_min_ms": min(reported) / 1e3,
        "importtime_max_ms": max(reported) / 1e3,
        "modules_added": int(mods),
    }
