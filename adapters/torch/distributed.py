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

``fsdp_loss_term`` and ``fsdp_grad_side`` shard the model with FSDP2's ``fully_shard`` instead
(every parameter split along its first dimension; forward and backward all-gather it, gradients
are reduce-scattered as averages). Elementwise terms (L2, L1, elastic net) are sums over
elements, which DTensor computes exactly on shards. Group lasso and orthogonal terms need whole
rows or columns: ``PenaltyLoss``/``GradientPenalty`` refuse them on sharded parameters with a
:class:`regcore.SpecError` (measured at torch 2.13: group lasso's value came out wrong on shards,
orthogonal raised inside DTensor), and the suite records the refusal as a skip with the reason.

The replica processes are a pool (:class:`regcore_adapters.workers.Workers`) started once per
world size (``spawn``; a free port chosen by the OS) and reused by every call, so the suite pays
the start-up once; each call is bounded in time (:data:`CALL_TIMEOUT_S`), and a replica that
fails or hangs tears the pool down and raises :class:`RuntimeError`. Pools are shut down at
exit.
"""

from __future__ import annotations

import datetime
import functools
import socket
import traceback
from collections.abc import Mapping
from typing import Any

import numpy as np

from regcore import ModelSpec, Optimizer, Spec, UnsupportedError, capabilities
from regcore_adapters.workers import Workers, serve

CALL_TIMEOUT_S = 120.0
"""The longest one distributed training call may take before its pool is torn down."""
START_TIMEOUT_S = 120.0
"""The longest the replicas may take to start and join the process group."""

TRANSLATIONS = {
    "loss_term": ("ddp", "loss_term"), "param_groups": ("ddp", "param_groups"),
    "grad_side": ("ddp", "grad_side"),
    "fsdp_loss_term": ("fsdp", "loss_term"), "fsdp_grad_side": ("fsdp", "grad_side"),
}
"""Per data-parallel translation: how the model is spread (``ddp``: whole on every replica;
``fsdp``: sharded) and the native translation each replica trains through
(:data:`~regcore_adapters.torch.native_training.TRANSLATIONS`)."""
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
    """One replica: join the gloo group, then train every job it is sent."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    try:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world_size,
                                timeout=datetime.timedelta(seconds=START_TIMEOUT_S))
    except Exception:
        results.put((rank, "error", traceback.format_exc()))
        return
    results.put((rank, "ready", None))
    serve(rank, jobs, results, functools.partial(_train_replica, rank, world_size))
    dist.destroy_process_group()


def _replica_net(rank: int, world_size: int, translation: str, model, params, x, y):
    """The replica's model (wrapped as ``translation`` says), the native translation it trains
    through, the module to run batches through, and the replica's shard of the batch and its
    weight."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    from regcore_adapters.torch.models import DenseNet

    dtype = getattr(torch, str(next(iter(params.values())).dtype))
    net = DenseNet(model).load_canonical(
        {k: torch.from_numpy(v).to(dtype) for k, v in params.items()})
    where, weight = shard(len(x), world_size, rank)
    spread, native = TRANSLATIONS[translation]
    if spread == "fsdp":
        from torch.distributed.fsdp import fully_shard

        fully_shard(net)  # parameters become dim-0 shards (DTensors); forward all-gathers
        forward = net
    else:
        forward = DistributedDataParallel(net)
    return (net, native, forward, torch.from_numpy(x[where]), torch.from_numpy(y[where]), weight)


def _whole(t):
    """A DTensor shard gathered whole; any other tensor as it is."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def _train_replica(rank: int, world_size: int, job: tuple) -> Any:
    import torch
    import torch.distributed as dist

    from regcore_adapters.torch.models import DenseNet, data_loss
    from regcore_adapters.torch.native import GradientPenalty, PenaltyLoss
    from regcore_adapters.torch.native_training import TRANSLATIONS as NATIVE
    from regcore_adapters.torch.native_training import train_net

    kind, translation, model, spec, params, x, y, optimizer, steps = job
    net, native, forward, xs, ys, weight = _replica_net(rank, world_size, translation, model,
                                                        params, x, y)
    dtype = next(iter(net.state_dict().values())).dtype
    if kind == "train":
        train_net(native, model, spec, net, xs, ys, optimizer=optimizer, steps=steps,
                  forward=forward, data_weight=weight)
        whole = DenseNet(model).to(dtype)
        whole.load_state_dict({k: _whole(v) for k, v in net.state_dict().items()})
        return {k: v.detach().numpy() for k, v in whole.canonical().items()}
    # kind == "grads": one forward and backward; the global loss and what the optimizer sees
    where = NATIVE[native].penalty
    if where == "optimizer":
        raise UnsupportedError(f"torch: {translation} applies the penalty in the optimizer, not in "
                               "the loss or the gradient; its parameters after K steps are checked")
    loss = data_loss(model.loss, forward(xs), ys) * weight
    penalty = PenaltyLoss(spec, net)() if where == "loss" else None
    if penalty is not None:
        loss = loss + penalty
    loss.backward()
    total = loss.detach().clone()
    dist.all_reduce(total)  # Σ_r (w_r·data_r [+ P]) / W = the global mean [+ P]
    total = total / world_size
    if where == "gradient":
        total = total + GradientPenalty(spec, net)(value=True)
    grads = {}
    for i in range(model.layers):
        layer = getattr(net, f"dense_{i}")
        for name, p in (("kernel", layer.weight), ("bias", layer.bias)):
            g = torch.zeros(p.shape, dtype=dtype) if p.grad is None else _whole(p.grad)
            grads[f"dense_{i}.{name}"] = (g.T if name == "kernel" else g).contiguous().numpy()
    return float(total), grads


_POOLS: dict[int, Workers] = {}


def _pool(world_size: int) -> Workers:
    pool = _POOLS.get(world_size)
    if pool is None or not pool.alive:
        pool = _POOLS[world_size] = Workers(
            f"torch DDP (world size {world_size})", world_size, _replica,
            (world_size, _free_port()), start_timeout=START_TIMEOUT_S)
    return pool


def _check(translation: str, world_size: int, x: np.ndarray) -> None:
    capabilities.lookup("torch", TRANSLATIONS, translation, "distributed_translations")
    if world_size not in WORLD_SIZES:
        raise ValueError(f"world_size: expected one of {WORLD_SIZES}, got {world_size!r}")
    if len(x) < world_size:
        raise ValueError(f"x: {len(x)} samples cannot be split over {world_size} replicas")


def train(translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, np.ndarray],
          x: np.ndarray, y: np.ndarray, *, optimizer: Optimizer, steps: int,
          world_size: int) -> dict[str, np.ndarray]:
    """The parameters after ``steps`` data-parallel steps of ``translation`` over ``world_size``
    replicas (NumPy in and out; the dtype is the parameters'), after checking that every replica
    ends with the same parameters bit for bit."""
    _check(translation, world_size, x)
    pool = _pool(world_size)
    got = pool.run(("train", translation, model, spec, dict(params), np.ascontiguousarray(x),
                    np.ascontiguousarray(y), optimizer, steps), CALL_TIMEOUT_S)
    first = got[0]
    for rank, final in got.items():
        for name, value in final.items():
            if not np.array_equal(value, first[name]):
                raise RuntimeError(f"torch DDP: replica {rank}'s {name} differs from replica "
                                   f"0's after {steps} steps: the replicas fell out of sync")
    return first


def loss_and_grads(translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, np.ndarray],
                   x: np.ndarray, y: np.ndarray, *,
                   world_size: int) -> tuple[float, dict[str, np.ndarray]]:
    """One data-parallel forward and backward through ``translation``: the global loss (data
    loss over the whole batch plus the penalty) and the gradient every replica holds for the
    optimizer (canonical; gathered whole under FSDP), after checking that the replicas agree."""
    _check(translation, world_size, x)
    got = _pool(world_size).run(("grads", translation, model, spec, dict(params),
                                 np.ascontiguousarray(x), np.ascontiguousarray(y), None, 0),
                                CALL_TIMEOUT_S)
    loss, grads = got[0]
    for rank, (other_loss, other) in got.items():
        if other_loss != loss or any(not np.array_equal(other[k], grads[k]) for k in grads):
            raise RuntimeError(f"torch DDP: replica {rank}'s loss or gradients differ from "
                               "replica 0's: the replicas fell out of sync")
    return loss, grads
