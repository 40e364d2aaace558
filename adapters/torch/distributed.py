"""Data-parallel training through the native translations: ``DistributedDataParallel`` with the
gloo backend on the CPU, ``world_size`` processes on loopback.

Each replica holds the whole model, takes a contiguous shard of the global batch and runs
:func:`~regcore_adapters.torch.native_training.train_net` with the model wrapped in DDP, whose
backward averages the replicas' gradients. What makes a step equal to the single-process step on
the global batch:

* the data loss is a mean over the replica's shard, and DDP averages over replicas, so replica
  ``r`` weights its loss by ``W·n_r/N`` (1 when the shards are equal);
* every replica adds the whole penalty (``PenaltyLoss``) to its loss, or its whole gradient
  (``GradientPenalty``) after the averaged backward, or applies it in the optimizer
  (``build_optimizer``): averaged over ``W`` identical copies, or applied after the average, it
  counts once. Summing replica losses, or adding ``penalty/W`` to gradients that are then
  averaged, would not.

The replica processes are a pool started once per world size (``spawn``; a free port chosen by
the OS) and reused by every call, so the suite pays the start-up once; each call is bounded in
time (:data:`CALL_TIMEOUT_S`), and a replica that fails or hangs tears the pool down and raises
:class:`RuntimeError`. Pools are shut down at exit.
"""

from __future__ import annotations

import atexit
import datetime
import queue
import socket
import traceback
from collections.abc import Mapping
from typing import Any

import numpy as np

from regcore import ModelSpec, Optimizer, Spec, SpecError, UnsupportedError

CALL_TIMEOUT_S = 120.0
"""The longest one distributed training call may take before its pool is torn down."""
START_TIMEOUT_S = 120.0
"""The longest the replicas may take to start and join the process group."""

PATHS = ("loss_term", "param_groups", "grad_side")
WORLD_SIZES = (2, 4)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shard(n: int, world_size: int, rank: int) -> tuple[slice, float]:
    """Replica ``rank``'s contiguous slice of ``n`` samples (sizes differ by one at most) and the
    weight ``W·n_r/n`` that makes the DDP average of the replicas' mean losses the global mean."""
    sizes = [n // world_size + (1 if r < n % world_size else 0) for r in range(world_size)]
    start = sum(sizes[:rank])
    return slice(start, start + sizes[rank]), world_size * sizes[rank] / n


def _replica(rank: int, world_size: int, port: int, jobs, results) -> None:
    """One replica: join the gloo group, then run the jobs it is sent until ``None``."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from regcore_adapters.torch.models import DenseNet
    from regcore_adapters.torch.native_training import train_net

    torch.set_num_threads(1)
    try:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world_size,
                                timeout=datetime.timedelta(seconds=START_TIMEOUT_S))
        results.put((rank, "ready", None))
    except Exception:
        results.put((rank, "error", traceback.format_exc()))
        return
    while True:
        job = jobs.get()
        if job is None:
            break
        try:
            path, model, spec, params, x, y, optimizer, steps = job
            dtype = getattr(torch, str(next(iter(params.values())).dtype))
            net = DenseNet(model).load_canonical(
                {k: torch.from_numpy(v).to(dtype) for k, v in params.items()})
            where, weight = shard(len(x), world_size, rank)
            ddp = DistributedDataParallel(net)
            train_net(path, model, spec, net, torch.from_numpy(x[where]),
                      torch.from_numpy(y[where]), optimizer=optimizer, steps=steps,
                      forward=ddp, data_weight=weight)
            results.put((rank, "ok", {k: v.detach().numpy() for k, v in
                                      net.canonical().items()}))
        except (SpecError, UnsupportedError) as exc:
            results.put((rank, "refused", exc))
        except Exception:
            results.put((rank, "error", traceback.format_exc()))
    dist.destroy_process_group()


class _Pool:
    """``world_size`` replica processes in one gloo group, fed one job at a time."""

    def __init__(self, world_size: int) -> None:
        import torch.multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.world_size = world_size
        self.results = ctx.Queue()
        self.jobs = [ctx.Queue() for _ in range(world_size)]
        port = _free_port()
        self.procs = [ctx.Process(target=_replica, daemon=True,
                                  args=(r, world_size, port, self.jobs[r], self.results))
                      for r in range(world_size)]
        for p in self.procs:
            p.start()
        try:
            self._collect(START_TIMEOUT_S)
        except BaseException:
            self.close(force=True)
            raise

    def _collect(self, timeout: float) -> dict[int, Any]:
        got: dict[int, Any] = {}
        refused: BaseException | None = None
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)
        while len(got) < self.world_size:
            left = (deadline - datetime.datetime.now()).total_seconds()
            try:
                rank, status, payload = self.results.get(timeout=max(left, 0.01))
            except queue.Empty:
                dead = [r for r, p in enumerate(self.procs) if not p.is_alive()]
                raise RuntimeError(
                    f"torch DDP (world size {self.world_size}): no answer from replicas "
                    f"{sorted(set(range(self.world_size)) - set(got))} within {timeout:g} s"
                    + (f"; replicas {dead} have exited" if dead else "")) from None
            if status == "error":
                raise RuntimeError(f"torch DDP replica {rank} of {self.world_size} failed:\n"
                                   f"{payload}")
            if status == "refused":
                refused = payload
            got[rank] = payload
        if refused is not None:
            raise refused
        return got

    def run(self, job: tuple) -> dict[int, Any]:
        for q in self.jobs:
            q.put(job)
        try:
            return self._collect(CALL_TIMEOUT_S)
        except (SpecError, UnsupportedError):
            raise
        except BaseException:
            self.close(force=True)
            raise

    def close(self, force: bool = False) -> None:
        if not force:
            for q in self.jobs:
                q.put(None)
            for p in self.procs:
                p.join(timeout=10)
        for p in self.procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=10)


_POOLS: dict[int, _Pool] = {}


def _pool(world_size: int) -> _Pool:
    pool = _POOLS.get(world_size)
    if pool is None or not all(p.is_alive() for p in pool.procs):
        pool = _POOLS[world_size] = _Pool(world_size)
    return pool


@atexit.register
def shutdown() -> None:
    """Stop every replica pool (also run at interpreter exit)."""
    while _POOLS:
        _POOLS.popitem()[1].close()


def train(path: str, model: ModelSpec, spec: Spec, params: Mapping[str, np.ndarray],
          x: np.ndarray, y: np.ndarray, *, optimizer: Optimizer, steps: int,
          world_size: int) -> dict[str, np.ndarray]:
    """The parameters after ``steps`` data-parallel steps of ``path`` over ``world_size``
    replicas (NumPy in and out; the dtype is the parameters'), after checking that every replica
    ends with the same parameters bit for bit."""
    if path not in PATHS:
        raise ValueError(f"path: expected one of {', '.join(PATHS)}, got {path!r}")
    if world_size not in WORLD_SIZES:
        raise ValueError(f"world_size: expected one of {WORLD_SIZES}, got {world_size!r}")
    if len(x) < world_size:
        raise ValueError(f"x: {len(x)} samples cannot be split over {world_size} replicas")
    pool = _pool(world_size)
    got = pool.run((path, model, spec, dict(params), np.ascontiguousarray(x),
                    np.ascontiguousarray(y), optimizer, steps))
    first = got[0]
    for rank, final in got.items():
        for name, value in final.items():
            if not np.array_equal(value, first[name]):
                raise RuntimeError(f"torch DDP: replica {rank}'s {name} differs from replica "
                                   f"0's after {steps} steps: the replicas fell out of sync")
    return first
