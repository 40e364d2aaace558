"""Every backend method that takes parameter arrays checks their names and shapes against the
plan (or the model) first: a :class:`regcore.SpecError` naming the parameter, the expected and
the given shape, with a layout hint for a transposed kernel, never a silently different penalty
(a torch ``(out, in)`` kernel for a plan in ``(in, out)`` changed the orthogonal and group-lasso
values with no error). One parametrized test over the installed backends; each case raises
before anything is computed, so the module costs well under a second per backend.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from regcore import (
    GroupLasso,
    ModelSpec,
    Optimizer,
    Orthogonal,
    ParamInfo,
    Rule,
    Select,
    Spec,
    SpecError,
    UnsupportedError,
    check_shapes,
    load_backend,
)
from tests.installed import backend_params

MODEL = ModelSpec((4, 3, 2), "tanh", "mse")
SPEC = Spec(penalties=(Rule(Orthogonal(0.1, convention="sum"), Select(roles=("weight",))),
                       Rule(GroupLasso(0.1, axis=1, convention="sum"), Select(roles=("weight",)))))
PLAN = SPEC.resolve(MODEL.params())
# A snippet that fails if it runs: the check must come before it.
UNRUN = "raise AssertionError('ran the snippet before checking the parameters')"

# (case, change to the canonical {name: shape}, expected message)
CASES = {
    "transposed_kernel": (lambda s: s | {"dense_0.kernel": (3, 4)},
                          r"param 'dense_0\.kernel' has shape \(3, 4\), the plan expects "
                          r"\(4, 3\) \(its transpose: .*weight\.T"),
    "wrong_shape": (lambda s: s | {"dense_1.kernel": (3, 5)},
                    r"param 'dense_1\.kernel' has shape \(3, 5\), the plan expects \(3, 2\)$"),
    "missing": (lambda s: {k: v for k, v in s.items() if k != "dense_0.kernel"},
                r"no param 'dense_0\.kernel' \(the plan's parameters: dense_0\.kernel, "),
    "unknown": (lambda s: s | {"dense_2.kernel": (2, 2)},
                r"param 'dense_2\.kernel' not in the plan"),
}

CALLS = {
    "penalty": lambda b, p, x, y: b.penalty(PLAN, p),
    "loss_and_grads": lambda b, p, x, y: b.loss_and_grads(MODEL, PLAN, p, x, y),
    "train": lambda b, p, x, y: b.train(MODEL, PLAN, p, x, y,
                                        optimizer=Optimizer("sgd", 0.1), steps=1),
    "proximal_train": lambda b, p, x, y: b.proximal_train(MODEL, PLAN, p, x, y, lr=0.1, steps=1),
    "native_train": lambda b, p, x, y: b.native_train(
        _first(b.native_translations), MODEL, SPEC, p, x, y, optimizer=Optimizer("sgd", 0.1),
        steps=1),
    "native_penalty": lambda b, p, x, y: b.native_penalty(
        _first(b.native_penalty_translations), MODEL, SPEC, p),
    "distributed_train": lambda b, p, x, y: b.distributed_train(
        _first(b.distributed_translations), MODEL, SPEC, p, x, y, optimizer=Optimizer("sgd", 0.1),
        steps=1, world_size=_first(b.distributed_world_sizes)),
    "distributed_loss_and_grads": lambda b, p, x, y: b.distributed_loss_and_grads(
        _first(b.distributed_translations), MODEL, SPEC, p, x, y,
        world_size=_first(b.distributed_world_sizes)),
    "exported_penalty": lambda b, p, x, y: b.exported_penalty(UNRUN, MODEL, p),
    "exported_decay": lambda b, p, x, y: b.exported_decay(UNRUN, MODEL, p, 0.1),
}


def _first(options: tuple):
    if not options:
        raise UnsupportedError("not declared")
    return options[0]


def _arrays(make, shapes: dict[str, tuple[int, ...]]) -> dict:
    rng = np.random.default_rng(0)
    return {name: make(rng.normal(size=shape)) for name, shape in shapes.items()}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method", CALLS)
@pytest.mark.parametrize("name", backend_params())
def test_parameters_not_of_the_plans_shapes_are_a_spec_error(name, method, case):
    backend = load_backend(name)
    make = lambda a: backend.asarray(a, dtype="float32", device="cpu")  # noqa: E731
    change, message = CASES[case]
    params = _arrays(make, change({p.name: p.shape for p in MODEL.params()}))
    x, y = make(np.ones((5, 4))), make(np.ones((5, 2)))
    try:
        with pytest.raises(SpecError, match=rf"^{re.escape(backend.name)}: .*{message}") as info:
            CALLS[method](backend, params, x, y)
    except UnsupportedError as exc:
        pytest.skip(f"{name}: {method}: {exc}")
    assert isinstance(info.value, ValueError)
    if case == "wrong_shape":
        assert "transpose" not in str(info.value)


@pytest.mark.parametrize("name", backend_params())
def test_penalty_needs_only_the_parameters_the_plan_uses(name):
    """The penalty of a plan that leaves the biases alone can be taken on the kernels alone (the
    gradient keyed by the names given); a method that runs the model needs every parameter."""
    backend = load_backend(name)
    make = lambda a: backend.asarray(a, dtype="float32", device="cpu")  # noqa: E731
    kernels = _arrays(make, {p.name: p.shape for p in MODEL.params() if p.role == "weight"})
    _, grads = backend.penalty(PLAN, kernels)
    assert set(grads) == set(kernels)
    x, y = make(np.ones((5, 4))), make(np.ones((5, 2)))
    label = re.escape(backend.name)
    with pytest.raises(SpecError, match=rf"^{label}: no param 'dense_0\.bias', 'dense_1\.bias'"):
        backend.loss_and_grads(MODEL, PLAN, kernels, x, y)


def test_a_reordered_shape_gets_a_layout_hint():
    """A conv kernel in torch's (out, in, kh, kw) layout for a plan in Keras's (kh, kw, in, out);
    a square kernel's transpose cannot be told from it (nothing to check)."""
    infos = [ParamInfo("conv.kernel", (3, 3, 2, 8), "weight")]
    with pytest.raises(SpecError, match=r"^x: param 'conv\.kernel' has shape \(8, 2, 3, 3\), "
                                        r"the plan expects \(3, 3, 2, 8\) \(the same sizes in "
                                        r"another order: .*permute its axes\)$"):
        check_shapes("x", infos, {"conv.kernel": np.zeros((8, 2, 3, 3))})
    with pytest.raises(SpecError, match=r"has shape \(3, 3, 2\), the plan expects "
                                        r"\(3, 3, 2, 8\)$"):
        check_shapes("x", infos, {"conv.kernel": np.zeros((3, 3, 2))})
    check_shapes("x", [ParamInfo("w", (3, 3), "weight")], {"w": np.zeros((3, 3))})


@pytest.mark.parametrize("method", ["value", "add_grad_", "decay_", "sgd_step_"])
def test_numpy_in_place_penalty_checks_params_and_grads(method):
    native = pytest.importorskip("regcore_adapters.numpy.native")
    penalty = native.InPlacePenalty(PLAN)
    shapes = {p.name: p.shape for p in MODEL.params()}
    good = _arrays(np.asarray, shapes)
    transposed = good | {"dense_0.kernel": good["dense_0.kernel"].T.copy()}
    calls = {
        "value": lambda p, g: penalty.value(p),
        "add_grad_": lambda p, g: penalty.add_grad_(p, g),
        "decay_": lambda p, g: penalty.decay_(p, 0.1),
        "sgd_step_": lambda p, g: penalty.sgd_step_(p, g, 0.1),
    }
    before = {k: v.copy() for k, v in transposed.items()}
    with pytest.raises(SpecError, match=r"numpy: param 'dense_0\.kernel' has shape \(3, 4\), "
                                        r"the plan expects \(4, 3\) \(its transpose"):
        calls[method](transposed, {k: np.zeros_like(v) for k, v in good.items()})
    assert all(np.array_equal(before[k], transposed[k]) for k in before)  # nothing touched
    if method in ("add_grad_", "sgd_step_"):
        with pytest.raises(SpecError, match=r"numpy: grad 'dense_0\.kernel' has shape \(3, 4\)"):
            calls[method](good, {k: np.zeros_like(v) for k, v in transposed.items()})
        with pytest.raises(SpecError, match=r"numpy: grads name .* the same parameters"):
            calls[method](good, {k: np.zeros_like(v) for k, v in good.items()
                                 if k != "dense_0.bias"})
