"""Data-parallel training through the native translations: ``DistributedDataParallel`` with the
gloo backend on the CPU, ``world_size`` processes on loopback.

Each replica holds the whole model, takes a contiguous shard of the global batch and runs
:func:`~regcore_adapters.torch.native_training.run_steps` with the model wrapped in DDP, whose
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

:func:`train_many` trains several specs in one call, each on its own copy of the model, the
copies side by side in one wrapped module (:class:`~regcore_adapters.torch.models.NetStack`):
one gradient reduction per step for all of them instead of one per spec. The copies share no
parameter, so each one's gradient is its own loss's, exactly; what one step costs is mostly the
collectives' latency (on 2 cores, a 10-step DDP run of one spec took ~30 ms with 2 replicas and
~100 ms with 4, against ~10 ms in one process), so the suite trains all of a scenario's specs
per call.

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

from regcore import ModelSpec, Optimizer, Spec, SpecError, UnsupportedError, capabilities
from regcore.activity import DATA_PARALLEL as DATA_PARALLEL_ACTIVITY
from regcore.activity import refuse as refuse_activity
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


def _replica_nets(rank: int, world_size: int, spread: str, model, params, x, y, count: int):
    """``count`` copies of the model from ``params``, side by side in one module wrapped as
    ``spread`` says (DDP, or sharded by FSDP), the wrapped module (its ``forward`` returns each
    copy's output), and the replica's shard of the batch and its weight."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    from regcore_adapters.torch.models import DenseNet, NetStack

    dtype = getattr(torch, str(next(iter(params.values())).dtype))
    canonical = {k: torch.from_numpy(v).to(dtype) for k, v in params.items()}
    nets = [DenseNet(model).load_canonical(canonical) for _ in range(count)]
    stack = NetStack(nets)
    where, weight = shard(len(x), world_size, rank)
    if spread == "fsdp":
        from torch.distributed.fsdp import fully_shard

        fully_shard(stack)  # parameters become dim-0 shards (DTensors); forward all-gathers
        forward = stack
    else:
        forward = DistributedDataParallel(stack)
    return nets, forward, torch.from_numpy(x[where]), torch.from_numpy(y[where]), weight


def _whole(t):
    """A DTensor shard gathered whole; any other tensor as it is."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def _train_many(rank: int, world_size: int, translation: str, model, specs, params, x, y,
                optimizer, steps) -> dict[str, Any]:
    """Every spec of ``specs`` trained on its own copy of the model, all copies in one wrapped
    module so that each step reduces their gradients together; per spec its canonical parameters,
    or the :class:`regcore.SpecError` its translation refused it with."""
    from regcore_adapters.torch.models import DenseNet
    from regcore_adapters.torch.native_training import NetStep, run_steps

    spread, native = TRANSLATIONS[translation]
    out: dict[str, Any] = {}
    names = list(specs)
    while names:  # a refusal shows once the copies are wrapped: wrap again without it
        nets, forward, xs, ys, weight = _replica_nets(rank, world_size, spread, model, params, x, y,
                                                      len(names))
        parts, refused = [], {}
        for name, net in zip(names, nets, strict=True):
            try:
                parts.append(NetStep.build(native, optimizer, specs[name], net))
            except (SpecError, UnsupportedError) as exc:
                refused[name] = exc
        out.update(refused)
        if not refused:
            run_steps(parts, model, xs, ys, lr=optimizer.lr, steps=steps, forward=forward,
                      data_weight=weight)
            for name, net in zip(names, nets, strict=True):
                whole = DenseNet(model).to(next(iter(net.state_dict().values())).dtype)
                whole.load_state_dict({k: _whole(v) for k, v in net.state_dict().items()})
                out[name] = {k: v.detach().numpy() for k, v in whole.canonical().items()}
            break
        names = [n for n in names if n not in refused]
    return out


def _train_replica(rank: int, world_size: int, job: tuple) -> Any:
    import torch
    import torch.distributed as dist

    from regcore_adapters.torch.models import data_loss
    from regcore_adapters.torch.native import GradientPenalty, PenaltyLoss
    from regcore_adapters.torch.native_training import TRANSLATIONS as NATIVE

    kind, translation, model, spec, params, x, y, optimizer, steps = job
    if kind == "train":
        return _train_many(rank, world_size, translation, model, spec, params, x, y, optimizer,
                           steps)
    # kind == "grads": one forward and backward; the global loss and what the optimizer sees
    spread, native = TRANSLATIONS[translation]
    where = NATIVE[native].penalty
    if where == "optimizer":
        raise UnsupportedError(f"torch: {translation} applies the penalty in the optimizer, not in "
                               "the loss or the gradient; its parameters after K steps are checked")
    (net,), forward, xs, ys, weight = _replica_nets(rank, world_size, spread, model, params, x, y,
                                                    1)
    dtype = next(iter(net.state_dict().values())).dtype
    loss = data_loss(model.loss, forward(xs)[0], ys) * weight
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


def train_many(translation: str, model: ModelSpec, specs: Mapping[str, Spec],
               params: Mapping[str, np.ndarray], x: np.ndarray, y: np.ndarray, *,
               optimizer: Optimizer, steps: int,
               world_size: int) -> dict[str, dict[str, np.ndarray] | Exception]:
    """Per spec of ``specs``, the parameters after ``steps`` data-parallel steps of
    ``translation`` over ``world_size`` replicas (NumPy in and out; the dtype is the
    parameters'), or the :class:`regcore.SpecError` the translation refused the spec with. The
    specs train side by side, each on its own copy of the model, all copies in one wrapped
    module: one gradient reduction per step for all of them. Checks that every replica ends with
    the same parameters bit for bit."""
    _check(translation, world_size, x)
    refused: dict[str, Exception] = {}
    for name, spec in specs.items():
        try:
            refuse_activity(spec.activity, "data-parallel training", DATA_PARALLEL_ACTIVITY)
        except SpecError as exc:
            refused[name] = exc
    got = _pool(world_size).run(("train", translation, model,
                                 {k: v for k, v in specs.items() if k not in refused},
                                 dict(params), np.ascontiguousarray(x), np.ascontiguousarray(y),
                                 optimizer, steps), CALL_TIMEOUT_S)
    first = {**got[0], **refused}
    for rank, finals in got.items():
        for spec_name, final in finals.items():
            if isinstance(final, Exception):
                continue
            for name, value in final.items():
                if not np.array_equal(value, first[spec_name][name]):
                    raise RuntimeError(
                        f"torch DDP: replica {rank}'s {name} ({spec_name}) differs from replica "
                        f"0's after {steps} steps: the replicas fell out of sync")
    return first


def train(translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, np.ndarray],
          x: np.ndarray, y: np.ndarray, *, optimizer: Optimizer, steps: int,
          world_size: int) -> dict[str, np.ndarray]:
    """:func:`train_many` for one spec: its parameters, or its refusal raised."""
    final = train_many(translation, model, {"spec": spec}, params, x, y, optimizer=optimizer,
                       steps=steps, world_size=world_size)["spec"]
    if isinstance(final, Exception):
        raise final
    return final


def loss_and_grads(translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, np.ndarray],
                   x: np.ndarray, y: np.ndarray, *,
                   world_size: int) -> tuple[float, dict[str, np.ndarray]]:
    """One data-parallel forward and backward through ``translation``: the global loss (data
    loss over the whole batch plus the penalty) and the gradient every replica holds for the
    optimizer (canonical; gathered whole under FSDP), after checking that the replicas agree."""
    _check(translation, world_size, x)
    refuse_activity(spec.activity, "data-parallel training", DATA_PARALLEL_ACTIVITY)
    got = _pool(world_size).run(("grads", translation, model, spec, dict(params),
                                 np.ascontiguousarray(x), np.ascontiguousarray(y), None, 0),
                                CALL_TIMEOUT_S)
    loss, grads = got[0]
    for rank, (other_loss, other) in got.items():
        if other_loss != loss or any(not np.array_equal(other[k], grads[k]) for k in grads):
            raise RuntimeError(f"torch DDP: replica {rank}'s loss or gradients differ from "
                               "replica 0's: the replicas fell out of sync")
    return loss, grads
