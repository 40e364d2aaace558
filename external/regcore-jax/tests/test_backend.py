"""Registration, imports, devices, determinism and matmul precision of the JAX backend."""

from __future__ import annotations

import ast
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import MLP, mlp_case
from regcore_jax import JaxBackend
from regcore_jax.backend import loss_fn, penalty_coefs, train_fn, x64

import regcore
from regcore import Optimizer, UnknownDeviceError

SRC = Path(__file__).resolve().parents[1] / "src" / "regcore_jax"
BACKEND = regcore.load_backend("jax")


def test_registered_by_entry_point():
    assert "jax" in regcore.available_backends()
    assert type(BACKEND) is JaxBackend


@pytest.mark.parametrize("path", sorted(SRC.glob("*.py")), ids=lambda p: p.name)
def test_imports_only_regcore_top_level(path):
    """An outside backend: ``from regcore import ...`` only, no submodules, no built-in
    adapters, no conformance suite."""
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        for name in names:
            top = name.split(".")[0]
            assert top not in ("regcore_adapters", "regcore_conformance"), name
            assert top != "regcore" or name == "regcore", name


@pytest.mark.parametrize("device", JaxBackend.devices)
def test_devices_follow_jax(device):
    # a GPU, where JAX has one, is its default platform; the CPU is always there
    has = device == "cpu" or bool({d.platform for d in jax.devices()} & {"gpu", "cuda", "rocm"})
    assert BACKEND.device_available(device) == has
    if has:
        array = BACKEND.asarray(np.ones(2), dtype="float32", device=device)
        assert {d.platform for d in array.devices()} <= {device, "cuda", "rocm"}
    else:
        with pytest.raises(ValueError, match=device):
            BACKEND.asarray(np.ones(2), dtype="float32", device=device)


def test_unknown_device_is_refused():
    """A device the backend does not declare is regcore's documented error (a ValueError)."""
    with pytest.raises(UnknownDeviceError, match="unknown device 'tpu'"):
        BACKEND.device_available("tpu")
    with pytest.raises(UnknownDeviceError, match="unknown device 'tpu'"):
        BACKEND.asarray(np.ones(2), dtype="float32", device="tpu")
    assert issubclass(UnknownDeviceError, ValueError)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_repeated_calls_are_bitwise_equal(dtype, optimizer):
    plan, params, x, y = mlp_case(BACKEND, dtype)

    def run():
        loss, grads = BACKEND.loss_and_grads(MLP, plan, params, x, y)
        final = BACKEND.train(MLP, plan, params, x, y, optimizer=Optimizer(optimizer, 0.05),
                              steps=5)
        return [np.asarray(a) for a in (loss, *grads.values(), *final.values())]

    for a, b in zip(run(), run(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("compiled", ["loss", "train"])
def test_every_matmul_runs_at_highest_precision(compiled):
    """No TF32/bf16 passes on GPUs: each dot_general, forward and backward, says HIGHEST."""
    plan, params, x, y = mlp_case(BACKEND, "float32")
    coefs = penalty_coefs(plan.penalties, params)
    fn, args = ((loss_fn(MLP, plan.penalties), (params, x, y, coefs)) if compiled == "loss" else
                (train_fn(MLP, plan.penalties, Optimizer("adam", 0.1), ()),
                 (params, x, y, 2, coefs)))
    with x64():
        text = str(jax.make_jaxpr(fn)(*args))
    dots = text.count("dot_general[")
    assert dots >= 6  # forward, backward, the orthogonal Gram matrices
    assert text.count("precision=(Precision.HIGHEST, Precision.HIGHEST)") == dots


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_plans_that_differ_only_in_coefficients_share_one_compilation(dtype):
    """Coefficients are inputs of the compiled functions: L2 at two strengths and conventions
    runs through one compiled loss function and one compiled training run, and each plan still
    gets its own penalty (the suite checks every plan against the reference; here the loss is
    linear in the coefficient)."""
    _, params, x, y = mlp_case(BACKEND, dtype)
    weights = regcore.Select(roles=("weight",))
    plans = [regcore.Spec(penalties=(regcore.Rule(regcore.L2(c, convention=conv), weights),))
             .resolve(MLP.params()) for c, conv in ((0.01, "sum"), (0.04, "half"), (0.0, "sum"))]
    assert loss_fn(MLP, plans[0].penalties) is loss_fn(MLP, plans[1].penalties)
    sgd = Optimizer("sgd", 0.05)
    assert train_fn(MLP, plans[0].penalties, sgd, ()) is train_fn(MLP, plans[1].penalties, sgd, ())
    losses = [float(BACKEND.loss_and_grads(MLP, p, params, x, y)[0]) for p in plans]
    penalty = float(BACKEND.penalty(plans[0], params)[0])
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert penalty > 0
    assert losses[0] - losses[2] == pytest.approx(penalty, rel=tol)  # 0.01·Σw²
    assert losses[1] - losses[2] == pytest.approx(2 * penalty, rel=tol)  # ½·0.04·Σw²
