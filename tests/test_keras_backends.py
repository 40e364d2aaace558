"""``regcore_adapters.keras`` on every Keras 3 backend: under ``KERAS_BACKEND`` tensorflow, jax
and torch (each in a process of its own), a spec applied with ``apply_spec`` gives the reference's
penalty, and one ``model.fit`` SGD step moves the weights by the reference's (sub)gradient —
group lasso and orthogonal through regcore's ``SpecRegularizer``, L1 on a bias with exact zeros
(JAX's ``abs`` has gradient 1 at 0; the reference's subgradient is 0). Under jax and torch no
TensorFlow module is imported. Before the keras package, ``SpecRegularizer`` was TensorFlow ops:
on torch its penalty was in the loss but no gradient reached the weights.

Runs where the frameworks are installed (``nox -s hypothesis`` has all three).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from regcore import L1, GroupLasso, Orthogonal, ParamInfo, Rule, Select, Spec
from regcore_conformance.tolerance import Tolerance, penalty_chain

SPEC = Spec([Rule(GroupLasso(0.1, axis=1, convention="sum"), Select(roles=["weight"])),
             Rule(Orthogonal(0.05, mode="columns", convention="sum"), Select(roles=["weight"])),
             Rule(L1(0.0625, convention="sum"), Select(roles=["bias"]))])
KERNEL = np.array([[0.3, -0.2, 0.0, 0.5], [0.1, 0.4, 0.0, -0.3], [-0.6, 0.2, 0.0, 0.1]])
BIAS = np.array([0.0, 0.5, -0.25, 0.0])
LR = 0.1

SCRIPT = r"""
import json, sys
import numpy as np
import keras
from keras import ops
from regcore import from_json
from regcore_adapters.keras.native import apply_spec

keras.config.set_floatx("float64")  # the optimizer's learning rate in float64
spec, kernel, bias, lr = from_json(sys.argv[1]), *map(np.array, json.loads(sys.argv[2]))
model = keras.Sequential([keras.Input((3,), dtype="float64"),
                          keras.layers.Dense(4, dtype="float64", name="dense")])
model.layers[0].kernel.assign(kernel)
model.layers[0].bias.assign(bias)
apply_spec(spec, model)
value = sum(float(ops.convert_to_numpy(v)) for v in model.losses)
model.compile(optimizer=keras.optimizers.SGD(float(lr)), loss=lambda y, p: ops.sum(p) * 0.0)
model.fit(np.ones((2, 3)), np.zeros((2, 4)), batch_size=2, epochs=1, shuffle=False, verbose=0)
print(json.dumps({
    "value": value, "kernel": ops.convert_to_numpy(model.layers[0].kernel).tolist(),
    "bias": ops.convert_to_numpy(model.layers[0].bias).tolist(),
    "regularizers": [type(model.layers[0].kernel_regularizer).__name__,
                     type(model.layers[0].bias_regularizer).__name__],
    "tensorflow": sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow")[:3]}))
"""

FRAMEWORK = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def _reference() -> tuple[float, np.ndarray, np.ndarray]:
    """The NumPy backend's penalty at float64, and the weights after one SGD step on it."""
    from regcore_adapters.numpy import NumpyBackend

    plan = SPEC.resolve([ParamInfo("dense.kernel", (3, 4), "weight"),
                         ParamInfo("dense.bias", (4,), "bias")])
    value, grads = NumpyBackend().penalty(plan, {"dense.kernel": KERNEL, "dense.bias": BIAS})
    return (float(value), KERNEL - LR * grads["dense.kernel"], BIAS - LR * grads["dense.bias"])


@pytest.mark.parametrize("backend", list(FRAMEWORK))
def test_apply_spec_trains_the_spec_on_every_keras_backend(backend: str) -> None:
    for package in ("keras", FRAMEWORK[backend]):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed here (nox -s hypothesis installs it)")
    from regcore import to_json

    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_ENABLE_X64": "1"}
    args = json.dumps([KERNEL.tolist(), BIAS.tolist(), LR])
    proc = subprocess.run([sys.executable, "-c", SCRIPT, to_json(SPEC), args], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    value, kernel, bias = _reference()
    tol = Tolerance("float64", penalty_chain(KERNEL.shape), steps=1).value
    assert abs(got["value"] - value) <= tol * abs(value)
    scale = max(np.max(np.abs(kernel)), np.max(np.abs(bias)))
    assert np.max(np.abs(np.array(got["kernel"]) - kernel)) <= tol * scale
    assert np.max(np.abs(np.array(got["bias"]) - bias)) <= tol * scale
    assert got["bias"][0] == got["bias"][3] == 0.0  # subgradient 0 at the exact zeros
    # Keras's own L1 where its gradient at 0 is the reference's, regcore's on jax
    assert got["regularizers"] == ["SpecRegularizer",
                                   "SpecRegularizer" if backend == "jax" else "L1"]
    if backend != "tensorflow":
        assert got["tensorflow"] == []
