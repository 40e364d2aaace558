"""Long-lived worker processes fed one job at a time, for data-parallel conformance runs.

A :class:`Workers` pool starts ``count`` processes (``spawn``: a fresh interpreter each, so a
framework can be configured before it initializes — TensorFlow's logical devices, a
``torch.distributed`` process group) running ``target(index, *args, jobs, results)``. The target
first puts ``(index, "ready", None)`` on ``results`` (or ``"error"`` with a traceback), then
answers every job taken from ``jobs`` with ``"ok"`` and its result, ``"refused"`` and the
exception (a :class:`regcore.SpecError`/:class:`regcore.UnsupportedError`, re-raised here), or
``"error"`` and a traceback, until it gets ``None``.

Every wait is bounded: a worker that fails, exits or does not answer in time tears the whole
pool down (its processes are killed) and raises :class:`RuntimeError` naming what happened, so a
broken backend never hangs a test run. Pools are closed at interpreter exit.
"""

from __future__ import annotations

import atexit
import queue
import time
from collections.abc import Callable
from typing import Any

from regcore import SpecError, UnsupportedError

_OPEN: list[Workers] = []


class Workers:
    """``count`` processes running ``target``; :meth:`run` sends one job to each, collects every
    answer."""

    def __init__(self, label: str, count: int, target: Callable[..., None], args: tuple = (),
                 *, start_timeout: float) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.label, self.count = label, count
        self.results = ctx.Queue()
        self.jobs = [ctx.Queue() for _ in range(count)]
        self.procs = [ctx.Process(target=target, args=(i, *args, self.jobs[i], self.results),
                                  daemon=True) for i in range(count)]
        for p in self.procs:
            p.start()
        _OPEN.append(self)
        try:
            self._collect(start_timeout)
        except BaseException:
            self.close(force=True)
            raise

    @property
    def alive(self) -> bool:
        return all(p.is_alive() for p in self.procs)

    def _collect(self, timeout: float) -> dict[int, Any]:
        got: dict[int, Any] = {}
        refused: BaseException | None = None
        deadline = time.monotonic() + timeout
        while len(got) < self.count:
            left = deadline - time.monotonic()
            try:
                index, status, payload = self.results.get(timeout=min(max(left, 0.01), 0.5))
            except queue.Empty:
                dead = [i for i, p in enumerate(self.procs) if not p.is_alive()]
                if not dead and time.monotonic() < deadline:
                    continue
                missing = sorted(set(range(self.count)) - set(got))
                raise RuntimeError(
                    f"{self.label}: no answer from worker(s) {missing} "
                    + (f"(worker(s) {dead} have exited, codes "
                       f"{[self.procs[i].exitcode for i in dead]})" if dead
                       else f"within {timeout:g} s")) from None
            if status == "error":
                raise RuntimeError(f"{self.label}: worker {index} of {self.count} failed:\n"
                                   f"{payload}")
            if status == "refused":
                refused = payload
            got[index] = payload
        if refused is not None:
            raise refused
        return got

    def run(self, job: Any, timeout: float) -> dict[int, Any]:
        """Send ``job`` to every worker; ``{index: result}`` once all have answered."""
        for q in self.jobs:
            q.put(job)
        try:
            return self._collect(timeout)
        except (SpecError, UnsupportedError):
            raise
        except BaseException:
            self.close(force=True)
            raise

    def close(self, force: bool = False) -> None:
        """Stop the workers: ask them to finish (unless ``force``), then kill what is left."""
        if not force and self.alive:
            for q in self.jobs:
                q.put(None)
            for p in self.procs:
                p.join(timeout=10)
        for p in self.procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=10)
        if self in _OPEN:
            _OPEN.remove(self)


def serve(index: int, jobs, results, work: Callable[[Any], Any]) -> None:
    """A worker's loop after its set-up: answer each job with ``work(job)`` until ``None``."""
    import traceback

    while True:
        job = jobs.get()
        if job is None:
            return
        try:
            results.put((index, "ok", work(job)))
        except (SpecError, UnsupportedError) as exc:
            results.put((index, "refused", exc))
        except Exception:
            results.put((index, "error", traceback.format_exc()))


@atexit.register
def close_all() -> None:
    """Close every open pool (also run at interpreter exit)."""
    while _OPEN:
        _OPEN[-1].close()
