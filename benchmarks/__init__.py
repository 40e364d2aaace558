"""Benchmarks (not tests) for the cost of regularization on every backend.

``python -m benchmarks`` (or ``nox -s bench``) times, for each installed backend, each device it
has and each model shape, one training step (forward + backward + SGD update) under every idiom —
no penalty, the common hand-written ones, the framework's own ``weight_decay`` and each regcore
path — and reports each as a ratio to the unregularized step measured in the same run. It also
times the penalty value on its own against a floor, the bytes of all parameters over the device
read bandwidth measured in that run, and ``import regcore``.

Design, kept small on purpose:

* every backend runs in its own subprocess (:mod:`benchmarks.worker`), so thread pools and
  allocators of one framework never sit beside another's, and a missing framework is a note in
  the report, never an error;
* idioms of one group (backend, device, mode, shape) are interleaved round-robin in every
  repetition (:mod:`benchmarks.timing`), so drift and a neighbour's load hit all of them alike;
  a sample times ``inner`` consecutive steps, chosen so one sample lasts about ``--target-ms``;
* no timing thresholds anywhere: targets are read off the report, not asserted.

Modules: :mod:`~benchmarks.config` (options, shapes, coefficients), :mod:`~benchmarks.timing`,
:mod:`~benchmarks.bandwidth`, :mod:`~benchmarks.importtime`, :mod:`~benchmarks.report`, and one
module per framework (``numpy_bench``, ``torch_bench``, ``tf_bench``, ``jax_bench``), each imported
only in its own worker.
"""
