"""``python -m benchmarks [--backends numpy,torch,tf,jax] [--devices cpu,cuda] [--shapes 4x1024]
[--repeats 30] [--quick] [--out reports/bench]``: run the benchmarks, write ``bench.json`` and
``table.md`` under ``--out`` and print the table.

Each backend runs in a worker process of its own (:mod:`benchmarks.worker`); a backend whose
framework is not installed is skipped with a note.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import importtime, report
from benchmarks.config import BACKENDS, Options, Shape

REQUIRES = {  # modules a backend's benchmark needs, found without importing them
    "numpy": ("numpy", "regcore_adapters"),
    "torch": ("torch", "regcore_adapters"),
    "tf": ("tensorflow", "keras", "regcore_adapters"),
    "jax": ("jax", "regcore_jax"),
}


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse(argv: list[str] | None) -> tuple[Options, Path, int]:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", type=_list, default=list(BACKENDS),
                   help="comma-separated, default: %(default)s (the installed ones run)")
    p.add_argument("--devices", type=_list, default=[],
                   help="comma-separated (cpu, cuda/gpu); default: every device a backend has")
    p.add_argument("--shapes", type=_list, default=[],
                   help="LAYERSxWIDTH, comma-separated; default 4x1024,64x256 on the CPU, and "
                        "also 200x128,24x4096 on GPUs")
    p.add_argument("--batch", type=int, default=0, help="default 256 on the CPU, 1024 on GPUs")
    p.add_argument("--repeats", type=int, default=None, help="interleaved repetitions (30)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up calls per idiom (3)")
    p.add_argument("--target-ms", type=float, default=None,
                   help="duration of one sample, which times that many calls in a row (100)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (torch, TF, BLAS)")
    p.add_argument("--select", choices=("all", "weights"), default="all",
                   help="penalize every parameter (torch's default) or the kernels only")
    p.add_argument("--tf-modes", type=_list, default=["function", "xla"],
                   help="TF train steps: function (tf.function), xla (jit_compile=True)")
    p.add_argument("--bandwidth-mib", type=int, default=0,
                   help="buffer for the read bandwidth (default 256 MiB CPU, 1 GiB GPU)")
    p.add_argument("--import-runs", type=int, default=None,
                   help="fresh interpreters for the import time (15)")
    p.add_argument("--quick", action="store_true",
                   help="a tiny configuration that checks the harness; its numbers mean nothing")
    p.add_argument("--out", type=Path, default=Path("reports/bench"),
                   help="folder for bench.json and table.md (default: %(default)s)")
    args = p.parse_args(argv)
    unknown = [b for b in args.backends if b not in BACKENDS]
    if unknown:
        p.error(f"--backends: unknown {unknown}; choose from {', '.join(BACKENDS)}")
    for shape in args.shapes:
        try:
            Shape.parse(shape)
        except ValueError as exc:
            p.error(str(exc))
    quick = args.quick
    options = Options(
        backends=args.backends, devices=args.devices, shapes=args.shapes, batch=args.batch,
        repeats=args.repeats or (3 if quick else 30),
        warmup=args.warmup if args.warmup is not None else (1 if quick else 3),
        target_ms=args.target_ms or (1.0 if quick else 100.0), threads=args.threads,
        select=args.select, tf_modes=args.tf_modes, bandwidth_mib=args.bandwidth_mib,
        quick=quick)
    return options, args.out, args.import_runs or (3 if quick else 15)


def missing(backend: str) -> list[str]:
    return [m for m in REQUIRES[backend] if importlib.util.find_spec(m) is None]


def _worker_env(options: Options) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, str(options.threads))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    return env


def start_backend(backend: str, options: Options, tmp: Path) -> tuple[subprocess.Popen, Path]:
    options_file, out_file = tmp / f"{backend}-options.json", tmp / f"{backend}-out.json"
    options_file.write_text(json.dumps(options.to_dict()))
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.worker", backend,
                             str(options_file), str(out_file)], cwd=root,
                            env=_worker_env(options))
    return proc, out_file


def finish_backend(backend: str, proc: subprocess.Popen, out_file: Path) -> dict[str, Any] | str:
    """The worker's result, or why there is none."""
    code = proc.wait()
    if code != 0 or not out_file.exists():
        return f"{backend}: the worker failed (exit code {code}); see its stderr above"
    return json.loads(out_file.read_text())


def run_backends(backends: list[str], options: Options, tmp: Path) -> dict[str, Any]:
    """Each backend's result (or why there is none), one worker after another; a ``--quick`` run,
    whose numbers mean nothing, starts them all at once."""
    if options.quick:
        started = {b: start_backend(b, options, tmp) for b in backends}
        return {b: finish_backend(b, *started[b]) for b in backends}
    results = {}
    for backend in backends:
        print(f"== {backend}", file=sys.stderr, flush=True)
        results[backend] = finish_backend(backend, *start_backend(backend, options, tmp))
    return results


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    options, out_dir, import_runs = parse(argv)
    result: dict[str, Any] = {
        "meta": {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{_cpu_name()}, {os.cpu_count()} CPUs, {platform.system()}",
            "python": platform.python_version(), "options": options.to_dict(),
        },
        "versions": {}, "import": None, "bandwidth": [], "steps": [], "values": [],
        "notes": [],
    }
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"import regcore: {import_runs} fresh interpreters", file=sys.stderr, flush=True)
    result["import"] = importtime.measure(import_runs)
    present = []
    for backend in options.backends:
        absent = missing(backend)
        if absent:
            result["notes"].append(f"{backend}: skipped, not installed ({', '.join(absent)})")
        else:
            present.append(backend)
    with tempfile.TemporaryDirectory() as tmp:
        for backend, got in run_backends(present, options, Path(tmp)).items():
            if isinstance(got, str):
                result["notes"].append(got)
                continue
            result["versions"][backend] = got["versions"]
            for key in ("bandwidth", "steps", "values", "notes"):
                result[key].extend(got[key])
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result["meta"]["load_average_1min"] = [load_before, load_after]
    if load_before is not None and load_before > 0.5:
        result["notes"].append(
            f"the machine was not idle when the run began (1-min load average {load_before:.2f}"
            f" of {os.cpu_count()} CPUs): ratios are side by side and survive some of that, "
            "absolute times less so; re-run on a quiet machine")
    _, table = report.write(result, out_dir)
    print(table.read_text(encoding="utf-8"))
    print(f"written: {out_dir / report.JSON_NAME}, {table}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
