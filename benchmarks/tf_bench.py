"""TensorFlow / Keras 3: a ``keras.Sequential`` of ``Dense`` layers (ReLU but the last), MSE,
``keras.optimizers.SGD``, float32, one compiled train step per idiom::

    @tf.function(jit_compile=xla)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = mean((model(x) - y)²) [+ add_n(model.losses)] [+ penalty()]
        optimizer.apply_gradients(zip(tape.gradient(loss, vars), vars))

run as ``tf.function`` and with XLA (``jit_compile=True``). Each idiom builds its own model (a
regularizer lives on the layers). Idioms:

* ``none``; ``keras_regularizer`` — ``Dense(kernel_regularizer=L2(λ))`` (and ``bias_regularizer``
  when every parameter is penalized), the loss adds ``model.losses``;
* ``native_weight_decay`` — ``SGD(weight_decay=2λ)``: Keras's decay is decoupled, which under
  plain SGD is the same maths as the penalty;
* ``regcore_apply_spec`` — ``apply_spec(spec, model)``, the loss adds ``model.losses``;
* ``regcore_penalty_fn`` — ``keras_native.penalty(spec, model)`` added in the tape;
* ``regcore_build_optimizer`` — ``build_optimizer(decay spec, model, SGD)``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from benchmarks.config import LAM, LR, Options, Shape, regcore_spec
from benchmarks.timing import Case

NAME = "tf"
MODES = {"function": "tf.function", "xla": "tf.function XLA"}


def setup(options: Options) -> None:
    tf.config.threading.set_intra_op_parallelism_threads(options.threads)


def versions() -> dict[str, str]:
    return {"tensorflow": tf.__version__, "keras": keras.__version__,
            "intra_op_threads": str(tf.config.threading.get_intra_op_parallelism_threads())}


def devices(options: Options) -> tuple[list[str], list[str]]:
    have = ["cpu"] + (["gpu"] if tf.config.list_physical_devices("GPU") else [])
    wanted = [("gpu" if d == "cuda" else d) for d in options.devices] or have
    return ([d for d in wanted if d in have],
            [f"tf: no device {d!r} here (have {', '.join(have)}; tensorflow-cpu has no GPU)"
             for d in wanted if d not in have])


def modes(options: Options) -> list[str]:
    chosen = [m for m in options.tf_modes if m in MODES] or ["function"]
    return chosen[:1] if options.quick else chosen


def release(device: str) -> None:
    keras.backend.clear_session()


def _device(device: str) -> tf.device:
    return tf.device("/GPU:0" if device == "gpu" else "/CPU:0")


def bandwidth_case(device: str, nbytes: int) -> Case:
    with _device(device):
        buf = tf.ones((nbytes // 4,), dtype=tf.float32)
    read = tf.function(lambda: tf.reduce_sum(buf))
    return Case("read", "tf.reduce_sum over a buffer", lambda: read())


def model(shape: Shape, seed: int, regularizer=None, bias_regularizer=None) -> keras.Model:
    keras.utils.set_random_seed(seed)
    net = keras.Sequential([keras.Input((shape.width,))] + [
        keras.layers.Dense(shape.width, activation="relu" if i < shape.layers - 1 else None,
                           kernel_initializer="he_normal", kernel_regularizer=regularizer,
                           bias_regularizer=bias_regularizer, name=f"dense_{i}")
        for i in range(shape.layers)])
    return net


def _step(net: keras.Model, opt: keras.optimizers.Optimizer, *, losses: bool, extra=None,
          xla: bool):
    variables = net.trainable_variables
    opt.build(variables)

    @tf.function(jit_compile=xla)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(net(x, training=True) - y))
            if losses:
                loss = loss + tf.add_n(net.losses)
            if extra is not None:
                loss = loss + extra()
        grads = tape.gradient(loss, variables)
        opt.apply_gradients(zip(grads, variables, strict=True))
        return loss

    return step


def step_cases(device: str, mode: str, shape: Shape, batch: int, options: Options) -> list[Case]:
    from regcore_adapters.tf.keras_native import apply_spec, build_optimizer, penalty

    xla = mode == "xla"
    seed, everything = options.seed, options.select == "all"
    with _device(device):
        g = tf.random.Generator.from_seed(seed + 1)
        x = g.normal((batch, shape.width))
        y = g.normal((batch, shape.width))

        def sgd(**kw):
            return keras.optimizers.SGD(learning_rate=LR, **kw)

        steps = {}
        steps["none"] = _step(model(shape, seed), sgd(), losses=False, xla=xla)
        reg = keras.regularizers.L2(LAM)
        steps["keras_regularizer"] = _step(
            model(shape, seed, reg, reg if everything else None), sgd(), losses=True, xla=xla)
        net = model(shape, seed)
        opt = sgd(weight_decay=2 * LAM)
        if not everything:
            opt.exclude_from_weight_decay(var_names=["bias"])
        steps["native_weight_decay"] = _step(net, opt, losses=False, xla=xla)
        net = model(shape, seed)
        apply_spec(regcore_spec(options.select), net)
        steps["regcore_apply_spec"] = _step(net, sgd(), losses=True, xla=xla)
        net = model(shape, seed)
        fn = penalty(regcore_spec(options.select), net)
        steps["regcore_penalty_fn"] = _step(net, sgd(), losses=False, extra=fn, xla=xla)
        net = model(shape, seed)
        steps["regcore_build_optimizer"] = _step(
            net, build_optimizer(regcore_spec(options.select, decay=True), net,
                                 keras.optimizers.SGD, learning_rate=LR), losses=False, xla=xla)
    labels = {
        "none": "no penalty",
        "keras_regularizer": "Keras L2 regularizer (model.losses)",
        "native_weight_decay": "SGD(weight_decay=2λ)",
        "regcore_apply_spec": "regcore apply_spec (model.losses)",
        "regcore_penalty_fn": "regcore keras_native.penalty in tape",
        "regcore_build_optimizer": "regcore build_optimizer(SGD), decoupled",
    }
    return [Case(k, labels[k], lambda fn=fn: fn(x, y)) for k, fn in steps.items()]


def value_cases(device: str, mode: str, shape: Shape,
                options: Options) -> tuple[list[Case], int]:
    from regcore_adapters.tf.keras_native import apply_spec, penalty

    xla, everything = mode == "xla", options.select == "all"
    with _device(device):
        reg = keras.regularizers.L2(LAM)
        keras_net = model(shape, options.seed, reg, reg if everything else None)
        net = model(shape, options.seed)
        chosen = [v for v in net.trainable_variables if everything or "kernel" in v.path]
        fn = penalty(regcore_spec(options.select), net)
        spec_net = model(shape, options.seed)
        apply_spec(regcore_spec(options.select), spec_net)

    def compiled(f):
        return tf.function(f, jit_compile=xla)

    naive = compiled(lambda: LAM * tf.add_n([tf.reduce_sum(tf.square(v)) for v in chosen]))
    keras_losses = compiled(lambda: tf.add_n(keras_net.losses))
    regcore_fn = compiled(fn)
    spec_losses = compiled(lambda: tf.add_n(spec_net.losses))

    def value(f):
        return lambda: float(f())

    cases = [
        Case("naive", "Σ reduce_sum(square(v))", naive, value=value(naive)),
        Case("keras_model_losses", "Keras L2: add_n(model.losses)", keras_losses,
             value=value(keras_losses)),
        Case("regcore_penalty_fn", "regcore keras_native.penalty", regcore_fn,
             value=value(regcore_fn)),
        Case("regcore_apply_spec", "regcore apply_spec: add_n(model.losses)", spec_losses,
             value=value(spec_losses)),
    ]
    return cases, sum(int(v.numpy().nbytes) for v in chosen)
