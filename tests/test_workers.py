"""``regcore_adapters.workers``: the process pools behind data-parallel conformance runs answer,
refuse with the spec's own error, and fail loudly within a bounded time when a worker raises,
hangs or dies — never a hang of the test run, never a process left behind."""

from __future__ import annotations

import os
import time

import pytest

from regcore import SpecError
from regcore_adapters.workers import Workers, serve


def _work(job):
    kind, value = job
    if kind == "refuse":
        raise SpecError(f"refused {value}")
    if kind == "raise":
        raise ZeroDivisionError(value)
    if kind == "hang":
        time.sleep(value)
    if kind == "exit":
        os._exit(3)
    return value * 2


def _target(index, offset, jobs, results):
    results.put((index, "ready", None))
    serve(index, jobs, results, lambda job: _work(job) + offset if job[0] == "ok" else _work(job))


def _dead_on_arrival(index, jobs, results):
    os._exit(1)


@pytest.fixture
def pool():
    workers = Workers("test pool", 2, _target, (1,), start_timeout=60)  # offset 1
    yield workers
    workers.close()


def test_every_worker_answers(pool):
    assert pool.run(("ok", 20), timeout=30) == {0: 41, 1: 41}
    assert pool.run(("ok", 1), timeout=30) == {0: 3, 1: 3}  # reused


def test_a_refusal_is_the_spec_error_and_the_pool_lives_on(pool):
    with pytest.raises(SpecError, match="refused 7"):
        pool.run(("refuse", 7), timeout=30)
    assert pool.alive and pool.run(("ok", 1), timeout=30) == {0: 3, 1: 3}


def test_a_failure_names_the_worker_with_its_traceback_and_closes_the_pool(pool):
    failed = r"(?s)test pool: worker \d of 2 failed:.*ZeroDivisionError: boom"
    with pytest.raises(RuntimeError, match=failed):
        pool.run(("raise", "boom"), timeout=30)
    assert not any(p.is_alive() for p in pool.procs)


def test_a_hang_is_a_runtime_error_within_the_timeout(pool):
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"no answer from worker\(s\) \[0, 1\] within 1 s"):
        pool.run(("hang", 600), timeout=1)
    assert time.monotonic() - start < 30
    assert not any(p.is_alive() for p in pool.procs)


def test_a_worker_that_dies_is_named(pool):
    with pytest.raises(RuntimeError, match=r"have exited"):
        pool.run(("exit", 0), timeout=3)


def test_a_worker_that_cannot_start_is_an_error_at_once():
    with pytest.raises(RuntimeError, match="no answer .* exited"):
        Workers("doa", 1, _dead_on_arrival, start_timeout=5)
