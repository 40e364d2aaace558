"""NumPy by hand: an MLP's forward, backward and SGD update written in NumPy (float32).

Idioms (all but ``regcore_folded_sgd`` end in the same ``p -= lr·g``):

* ``none`` — no penalty;
* ``loss_sum_sq`` — ``LAM·Σ np.sum(p*p)`` added to the loss and ``2·LAM·p`` to each gradient;
* ``folded_weight_decay`` — ``p *= 1 − lr·2·LAM`` before the update, in place, no value;
* ``regcore_backend_penalty`` — ``NumpyBackend().penalty(plan, params)``, value and gradients,
  added to the hand-written step (the conformance backend's API: new arrays per call);
* ``regcore_in_place`` — ``InPlacePenalty(plan).add_grad_(params, grads)``: the gradient added
  in place through a reused scratch buffer;
* ``regcore_folded_sgd`` — ``InPlacePenalty(plan).sgd_step_(params, grads, lr)``: the penalty
  folded into the update's factor, ``g *= lr; p -= g`` (no temporary, unlike the baseline's);
* ``regcore_stepper_decay`` — ``regcore_adapters.numpy.optim.Stepper`` with the plan of
  ``DecoupledWeightDecay(2·LAM)`` (the same maths under plain SGD) doing the whole update.
"""

from __future__ import annotations

import os

import numpy as np

from benchmarks.config import LAM, LR, Options, Shape, regcore_spec, selected
from benchmarks.timing import Case

NAME = "numpy"


def setup(options: Options) -> None:
    del options  # BLAS threads come from the environment the parent sets (OMP_NUM_THREADS...)


def versions() -> dict[str, str]:
    return {"numpy": np.__version__,
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}


def devices(options: Options) -> tuple[list[str], list[str]]:
    wanted = options.devices or ["cpu"]
    return ([d for d in wanted if d == "cpu"],
            [f"numpy: no device {d!r} (NumPy runs on the CPU only)" for d in wanted if d != "cpu"])


def modes(options: Options) -> list[str]:
    return ["by hand"]


def release(device: str) -> None:
    return None


def bandwidth_case(device: str, nbytes: int) -> Case:
    buf = np.ones(nbytes // 4, dtype=np.float32)
    return Case("read", "np.sum over a buffer", lambda: np.add.reduce(buf))


# -- the model -----------------------------------------------------------------------------------


def init(shape: Shape, seed: int) -> dict[str, np.ndarray]:
    """He-normal kernels ``(fan_in, fan_out)`` (activations keep their scale through deep stacks:
    no denormals on the CPU) and zero biases, float32, named as regcore's models name them."""
    rng = np.random.default_rng(seed)
    params = {}
    for i in range(shape.layers):
        params[f"dense_{i}.kernel"] = (rng.standard_normal((shape.width, shape.width))
                                       * np.sqrt(2 / shape.width)).astype(np.float32)
        params[f"dense_{i}.bias"] = np.zeros(shape.width, dtype=np.float32)
    return params


def data(shape: Shape, batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    return (rng.standard_normal((batch, shape.width)).astype(np.float32),
            rng.standard_normal((batch, shape.width)).astype(np.float32))


def forward_backward(params: dict[str, np.ndarray], layers: int, x: np.ndarray,
                     y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """MSE loss ``mean((f(x) − y)²)`` and its gradient for every parameter."""
    acts = [x]
    for i in range(layers):
        z = acts[-1] @ params[f"dense_{i}.kernel"]
        z += params[f"dense_{i}.bias"]
        if i < layers - 1:
            np.maximum(z, 0, out=z)
        acts.append(z)
    r = acts[-1] - y
    loss = float(np.vdot(r, r)) / r.size
    dz = r
    dz *= np.float32(2 / r.size)
    grads: dict[str, np.ndarray] = {}
    for i in reversed(range(layers)):
        grads[f"dense_{i}.kernel"] = acts[i].T @ dz
        grads[f"dense_{i}.bias"] = dz.sum(axis=0)
        if i:
            dz = dz @ params[f"dense_{i}.kernel"].T
            dz *= acts[i] > 0
    return loss, grads


def sgd(params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: np.float32) -> None:
    for name, p in params.items():
        p -= lr * grads[name]


# -- idioms --------------------------------------------------------------------------------------


def _plan(params: dict[str, np.ndarray], select: str, decay: bool = False):
    import regcore

    infos = [regcore.ParamInfo(n, p.shape, "weight" if n.endswith(".kernel") else "bias")
             for n, p in params.items()]
    return regcore_spec(select, decay).resolve(infos)


def _names(shape: Shape, select: str) -> list[str]:
    return selected([f"dense_{i}.{k}" for i in range(shape.layers) for k in ("kernel", "bias")],
                    select)


def step_cases(device: str, mode: str, shape: Shape, batch: int, options: Options) -> list[Case]:
    import regcore
    from regcore_adapters.numpy import NumpyBackend
    from regcore_adapters.numpy.native import InPlacePenalty
    from regcore_adapters.numpy.optim import Stepper

    x, y = data(shape, batch, options.seed)
    layers, lr = shape.layers, np.float32(LR)
    names = _names(shape, options.select)
    factor = np.float32(1 - LR * 2 * LAM)
    backend = NumpyBackend()
    base = init(shape, options.seed)
    plan = _plan(base, options.select)
    stepper = Stepper(regcore.Optimizer("sgd", LR), _plan(base, options.select, decay=True).decay)
    in_place = InPlacePenalty(plan)

    def none(params):
        _, grads = forward_backward(params, layers, x, y)
        sgd(params, grads, lr)

    def sum_sq(params):
        loss, grads = forward_backward(params, layers, x, y)
        loss += LAM * sum(float(np.sum(params[n] * params[n])) for n in names)
        for n in names:
            grads[n] += (2 * LAM) * params[n]
        sgd(params, grads, lr)

    def folded(params):
        _, grads = forward_backward(params, layers, x, y)
        for n in names:
            params[n] *= factor
        sgd(params, grads, lr)

    def regcore_penalty(params):
        loss, grads = forward_backward(params, layers, x, y)
        value, pgrads = backend.penalty(plan, params)
        loss += float(value)
        for n, g in grads.items():
            g += pgrads[n]
        sgd(params, grads, lr)

    def regcore_in_place(params):
        _, grads = forward_backward(params, layers, x, y)
        in_place.add_grad_(params, grads)
        sgd(params, grads, lr)

    def regcore_folded(params):
        _, grads = forward_backward(params, layers, x, y)
        in_place.sgd_step_(params, grads, LR)

    def regcore_stepper(params):
        _, grads = forward_backward(params, layers, x, y)
        stepper.step(params, grads)

    notes = {
        "regcore_backend_penalty": "the conformance backend's API: a new value and gradient "
        "array per parameter per call",
        "regcore_folded_sgd": "InPlacePenalty.sgd_step_ also updates in place (g <- lr*g, "
        "p -= g) where the baseline's p -= lr*g makes a temporary",
        "regcore_stepper_decay": "regcore_adapters.numpy.optim.Stepper is the backend's "
        "internal SGD/Adam stepper, not a documented API",
    }
    cases = []
    for key, label, step in [
        ("none", "no penalty", none),
        ("loss_sum_sq", "Σp² in loss, 2λp in grad", sum_sq),
        ("folded_weight_decay", "weight decay folded into the update", folded),
        ("regcore_backend_penalty", "regcore NumpyBackend.penalty (value + grads)",
         regcore_penalty),
        ("regcore_in_place", "regcore InPlacePenalty.add_grad_", regcore_in_place),
        ("regcore_folded_sgd", "regcore InPlacePenalty.sgd_step_", regcore_folded),
        ("regcore_stepper_decay", "regcore Stepper, decoupled decay", regcore_stepper),
    ]:
        params = {k: v.copy() for k, v in base.items()}  # each idiom trains its own copy

        def run(step=step, params=params):
            step(params)

        cases.append(Case(key, label, run, note=notes.get(key, "")))
    return cases


def value_cases(device: str, mode: str, shape: Shape,
                options: Options) -> tuple[list[Case], int]:
    from regcore_adapters.numpy import NumpyBackend
    from regcore_adapters.numpy.native import InPlacePenalty

    params = init(shape, options.seed)
    names = _names(shape, options.select)
    chosen = [params[n] for n in names]
    plan, backend = _plan(params, options.select), NumpyBackend()

    def naive():
        return LAM * sum(float(np.sum(p * p)) for p in chosen)

    def dots():
        return LAM * sum(float(np.vdot(p, p)) for p in chosen)

    def regcore_value():
        return float(backend.penalty(plan, params)[0])

    in_place = InPlacePenalty(plan)

    def regcore_in_place():
        return in_place.value(params)

    cases = [
        Case("naive", "Σ np.sum(p*p) per tensor", naive, value=naive),
        Case("vdot", "Σ np.vdot(p, p) per tensor (no temporary)", dots, value=dots),
        Case("regcore_backend_penalty", "regcore NumpyBackend.penalty (value + grads)",
             regcore_value, value=regcore_value, note="computes the gradients too"),
        Case("regcore_in_place", "regcore InPlacePenalty.value", regcore_in_place,
             value=regcore_in_place),
    ]
    return cases, sum(p.nbytes for p in chosen)
