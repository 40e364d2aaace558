"""JAX: an MLP as a pure function of a ``{name: array}`` dict, one ``jax.jit`` step per idiom
(``value_and_grad`` of the MSE loss, then the SGD update, parameters donated), float32.

Idioms: ``none``; ``loss_sum_sq`` — ``λ·Σ jnp.sum(p**2)`` in the loss; ``folded_weight_decay``
— ``p·(1 − lr·2λ) − lr·g`` in the update (optax's ``add_decayed_weights`` under SGD);
``regcore_penalty_value`` — ``regcore_jax``'s ``penalty_value(plan.penalties, params)`` in the
loss. XLA fuses all of them into the step, so what is left is the extra arithmetic.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.config import LAM, LR, Options, Shape, regcore_spec, selected
from benchmarks.timing import Case

NAME = "jax"


def setup(options: Options) -> None:
    del options  # XLA's CPU threads: the parent's environment (see __main__)


def versions() -> dict[str, str]:
    import jaxlib

    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "devices": ", ".join(str(d) for d in jax.devices())}


def _find(device: str):
    try:
        return jax.devices(device)[0]
    except RuntimeError:
        return None


def devices(options: Options) -> tuple[list[str], list[str]]:
    have = [d for d in ("cpu", "gpu") if _find(d) is not None]
    wanted = [("gpu" if d == "cuda" else d) for d in options.devices] or have
    return ([d for d in wanted if d in have],
            [f"jax: no device {d!r} here (have {', '.join(have)})"
             for d in wanted if d not in have])


def modes(options: Options) -> list[str]:
    return ["jit"]


def release(device: str) -> None:
    jax.clear_caches()


def bandwidth_case(device: str, nbytes: int) -> Case:
    buf = jax.device_put(jnp.ones(nbytes // 4, dtype=jnp.float32), _find(device))
    read = jax.jit(jnp.sum)
    state = {}

    def run():
        state["out"] = read(buf)

    return Case("read", "jnp.sum over a buffer", run,
                lambda: jax.block_until_ready(state.get("out")))


def init(shape: Shape, device: str, seed: int) -> dict[str, jax.Array]:
    from benchmarks.numpy_bench import init as np_init

    return {k: jax.device_put(v, _find(device)) for k, v in np_init(shape, seed).items()}


def forward(params, layers: int, x):
    for i in range(layers):
        x = x @ params[f"dense_{i}.kernel"] + params[f"dense_{i}.bias"]
        if i < layers - 1:
            x = jax.nn.relu(x)
    return x


def _plan(params, select: str):
    import regcore

    infos = [regcore.ParamInfo(n, tuple(p.shape), "weight" if n.endswith(".kernel") else "bias")
             for n, p in params.items()]
    return regcore_spec(select).resolve(infos)


def step_cases(device: str, mode: str, shape: Shape, batch: int, options: Options) -> list[Case]:
    from regcore_jax.backend import penalty_value

    layers = shape.layers
    rng = np.random.default_rng(options.seed + 1)
    where = _find(device)
    x = jax.device_put(rng.standard_normal((batch, shape.width), dtype=np.float32), where)
    y = jax.device_put(rng.standard_normal((batch, shape.width), dtype=np.float32), where)
    every = [f"dense_{i}.{k}" for i in range(layers) for k in ("kernel", "bias")]
    names = selected(every, options.select)
    base = init(shape, device, options.seed)
    penalties = _plan(base, options.select).penalties
    decay = 1 - LR * 2 * LAM

    def mse(params, x, y):
        return jnp.mean(jnp.square(forward(params, layers, x) - y))

    losses = {
        "none": mse,
        "loss_sum_sq": lambda p, x, y: mse(p, x, y) + LAM * sum(jnp.sum(p[n] ** 2)
                                                                for n in names),
        "folded_weight_decay": mse,
        "regcore_penalty_value": lambda p, x, y: mse(p, x, y) + penalty_value(penalties, p),
    }

    def make(key):
        grad = jax.value_and_grad(losses[key])
        factors = {n: (decay if key == "folded_weight_decay" and n in names else 1.0)
                   for n in every}

        @functools.partial(jax.jit, donate_argnums=0)
        def step(params, x, y):
            loss, grads = grad(params, x, y)
            return {n: p * factors[n] - LR * grads[n] if factors[n] != 1.0
                    else p - LR * grads[n] for n, p in params.items()}, loss

        state = {"params": {k: jnp.array(v, copy=True) for k, v in base.items()}}

        def run():
            state["params"], state["loss"] = step(state["params"], x, y)

        return run, lambda: jax.block_until_ready(state["params"])

    labels = {"none": "no penalty", "loss_sum_sq": "Σp² in loss",
              "folded_weight_decay": "weight decay folded into the update",
              "regcore_penalty_value": "regcore_jax penalty_value in loss"}
    return [Case(k, labels[k], *make(k)) for k in losses]


def value_cases(device: str, mode: str, shape: Shape,
                options: Options) -> tuple[list[Case], int]:
    from regcore_jax.backend import penalty_value

    params = init(shape, device, options.seed)
    names = selected(list(params), options.select)
    penalties = _plan(params, options.select).penalties
    naive = jax.jit(lambda p: LAM * sum(jnp.sum(p[n] ** 2) for n in names))
    regcore_value = jax.jit(functools.partial(penalty_value, penalties))

    def case(key, label, fn):
        state = {}

        def run():
            state["out"] = fn(params)

        return Case(key, label, run, lambda: jax.block_until_ready(state.get("out")),
                    value=lambda: float(fn(params)))

    cases = [case("naive", "jit Σ jnp.sum(p**2)", naive),
             case("regcore_penalty_value", "regcore_jax penalty_value (jit)", regcore_value)]
    return cases, sum(int(params[n].nbytes) for n in names)
