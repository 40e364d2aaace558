"""Data-parallel training through the Keras translation: ``tf.distribute.MirroredStrategy`` over
``world_size`` logical CPU devices.

TensorFlow fixes its logical devices when it initializes, so the replicas live in a worker
process of their own (:class:`regcore_adapters.workers.Workers`, started once per replica count
and reused; every call bounded in time) that splits its CPU into ``world_size`` logical devices
before anything else. Two translations, both with the Keras-native spec
(:func:`~regcore_adapters.tf.keras_native.apply_spec` regularizers and
:func:`~regcore_adapters.tf.keras_native.build_optimizer` decay), full-batch
``keras.optimizers.SGD``:

* ``keras_loop`` — a custom training loop under ``strategy.run``: each replica's loss is
  ``tf.nn.compute_average_loss(per_example, global_batch_size=N)`` (its share of the global mean)
  plus ``tf.nn.scale_regularization_loss(Σ model.losses)`` (the penalty divided by the replica
  count), and the optimizer sums the replicas' gradients. Adding ``Σ model.losses`` unscaled
  counts the penalty once per replica — the trap this translation is checked against;
* ``keras_fit`` — ``model.compile`` + ``model.fit`` under ``strategy.scope()``; Keras splits the
  batch and scales the regularization losses itself.

The global batch is split into contiguous shards whose sizes differ by one at most, as
:func:`regcore_adapters.torch.distributed.shard` does.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from regcore import ModelSpec, Optimizer, Spec, UnsupportedError, capabilities
from regcore.activity import DATA_PARALLEL as DATA_PARALLEL_ACTIVITY
from regcore.activity import refuse as refuse_activity
from regcore_adapters.workers import Workers, serve

CALL_TIMEOUT_S = 300.0
START_TIMEOUT_S = 120.0
TRANSLATIONS = ("keras_loop", "keras_fit")
"""The data-parallel translations (``TFBackend.distributed_translations``)."""
WORLD_SIZES = (2,)


def _worker(index: int, world_size: int, jobs, results) -> None:
    import os
    import traceback

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(world_size)])
        strategy = tf.distribute.MirroredStrategy(
            [f"/cpu:{i}" for i in range(world_size)])
    except Exception:
        results.put((index, "error", traceback.format_exc()))
        return
    results.put((index, "ready", None))
    serve(index, jobs, results, lambda job: _train(strategy, job))


def _train(strategy, job: tuple) -> dict[str, np.ndarray]:
    import tensorflow as tf

    from regcore_adapters.tf import keras_training as kt
    from regcore_adapters.tf.keras_native import apply_spec

    kind, translation, model, spec, params, x, y, optimizer, steps = job
    if kind == "grads" and translation != "keras_loop":
        raise UnsupportedError("tf: model.fit does not expose one step's gradient; keras_fit's "
                               "parameters after K steps are checked")
    dtype = tf.as_dtype(next(iter(params.values())).dtype)
    world_size = strategy.num_replicas_in_sync
    with kt.floatx(dtype), strategy.scope():
        net = kt.build_model(model, {k: tf.constant(v) for k, v in params.items()})
        apply_spec(spec, net)
        opt = kt.sgd_optimizer(optimizer, spec, net) if kind == "train" else None
        loss_fn = kt.keras_loss(model.loss)
        if translation == "keras_fit":
            net.compile(optimizer=opt, loss=loss_fn)
    x_all, y_all = tf.constant(x), tf.constant(y)
    if translation == "keras_fit":
        data = tf.data.Dataset.from_tensors((x_all, y_all)).repeat(steps)
        net.fit(data, epochs=1, verbose=0, shuffle=False)
    else:
        n = len(x)
        sizes = [n // world_size + (1 if r < n % world_size else 0) for r in range(world_size)]
        starts = np.cumsum([0, *sizes])

        def shard(ctx):
            r = ctx.replica_id_in_sync_group
            return x_all[starts[r]:starts[r + 1]], y_all[starts[r]:starts[r + 1]]

        batches = strategy.experimental_distribute_values_from_function(shard)
        loss_fn.reduction = "none"

        def replica_loss_and_grads(xb, yb):
            with tf.GradientTape() as tape:
                per_example = loss_fn(yb, net(xb, training=True))
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=n)
                if net.losses:
                    loss = loss + tf.nn.scale_regularization_loss(tf.add_n(net.losses))
            return loss, tape.gradient(loss, net.trainable_variables)

        @tf.function(autograph=False)
        def step(batch):
            def replica(xb, yb):
                _, grads = replica_loss_and_grads(xb, yb)
                opt.apply_gradients(zip(grads, net.trainable_variables, strict=True))

            strategy.run(replica, args=batch)

        if kind == "grads":  # the sums over replicas: the global loss and its gradient
            loss, grads = strategy.run(replica_loss_and_grads, args=batches)
            total = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
            summed = [strategy.reduce(tf.distribute.ReduceOp.SUM, g, axis=None) for g in grads]
            by_var = {id(v): np.asarray(g) for v, g in zip(net.trainable_variables, summed,
                                                          strict=True)}
            return float(total), {name: by_var[id(var)] for name, var in
                                  kt.canonical_variables(net, model).items()}
        for _ in range(steps):
            step(batches)
    out = {}
    for name, var in kt.canonical_variables(net, model).items():
        copies = [np.asarray(v) for v in strategy.experimental_local_results(var)]
        if any(not np.array_equal(c, copies[0]) for c in copies[1:]):
            raise RuntimeError(f"tf MirroredStrategy: the replicas' {name} differ after {steps} "
                               "steps: they fell out of sync")
        out[name] = copies[0]
    return out


_POOLS: dict[int, Workers] = {}


def _check(translation: str, world_size: int) -> None:
    capabilities.lookup("tf", dict.fromkeys(TRANSLATIONS), translation,
                        "distributed_translations")
    if world_size not in WORLD_SIZES:
        raise ValueError(f"world_size: expected one of {WORLD_SIZES}, got {world_size!r}")


def train(translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, np.ndarray],
          x: np.ndarray, y: np.ndarray, *, optimizer: Optimizer, steps: int,
          world_size: int) -> dict[str, np.ndarray]:
    """The parameters after ``steps`` steps of ``translation`` under ``MirroredStrategy`` over
    ``world_size`` logical CPUs (NumPy in and out)."""
    _check(translation, world_size)
    refuse_activity(spec.activity, "data-parallel training", DATA_PARALLEL_ACTIVITY)
    return _pool(world_size).run(("train", translation, model, spec, dict(params),
                                  np.ascontiguousarray(x), np.ascontiguousarray(y), optimizer,
                                  steps), CALL_TIMEOUT_S)[0]


def _pool(world_size: int) -> Workers:
    pool = _POOLS.get(world_size)
    if pool is None or not pool.alive:
        pool = _POOLS[world_size] = Workers(
            f"tf MirroredStrategy ({world_size} logical CPUs)", 1, _worker, (world_size,),
            start_timeout=START_TIMEOUT_S)
    return pool


def loss_and_grads(translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, np.ndarray],
                   x: np.ndarray, y: np.ndarray, *,
                   world_size: int) -> tuple[float, dict[str, np.ndarray]]:
    """One ``keras_loop`` step's global loss (``Σ`` over replicas of their scaled losses: the
    mean data loss plus the penalty) and gradient (``Σ`` over replicas, what the optimizer
    applies), canonical; ``keras_fit`` is an :class:`regcore.UnsupportedError`."""
    _check(translation, world_size)
    refuse_activity(spec.activity, "data-parallel training", DATA_PARALLEL_ACTIVITY)
    return _pool(world_size).run(("grads", translation, model, spec, dict(params),
                                  np.ascontiguousarray(x), np.ascontiguousarray(y), None, 0),
                                 CALL_TIMEOUT_S)[0]
