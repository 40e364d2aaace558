"""The keras backend beyond what the conformance suite checks: ``keras:<backend>`` reaches the
running Keras and refuses another, float64 is declared only where it holds, and a float64
``model.fit`` is refused with the measured reason exactly where Keras demotes float64.

The ``keras-jax`` and ``keras-torch`` nox sessions run this file under their ``KERAS_BACKEND``
(with no TensorFlow installed); elsewhere it runs under whatever Keras backend is configured.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("keras")

import keras  # noqa: E402
from keras import ops  # noqa: E402

import regcore  # noqa: E402
from regcore import L2, ModelSpec, Optimizer, Rule, Spec, UnsupportedError  # noqa: E402
from regcore_adapters.keras import grad  # noqa: E402
from regcore_adapters.keras.backend import KerasBackend, float64_demotion  # noqa: E402

RUNNING = keras.backend.backend()


@pytest.fixture(scope="module")
def backend() -> KerasBackend:
    if RUNNING not in grad.GRADIENTS:
        pytest.skip(f"Keras runs on {RUNNING}, which regcore does not differentiate on")
    return regcore.load_backend("keras")


def test_the_bare_name_is_the_running_keras_backend(backend):
    assert backend.name == f"keras:{RUNNING}"
    assert type(backend) is type(regcore.load_backend(f"keras:{RUNNING}"))
    assert backend.versions()["keras_backend"] == RUNNING
    assert isinstance(backend.asarray([1.0], dtype="float32", device="cpu"), backend.array_types)


def test_another_keras_backend_is_refused_in_a_running_process(backend):
    other = "torch" if RUNNING != "torch" else "jax"
    with pytest.raises(UnsupportedError, match=f"KERAS_BACKEND={other}"):
        KerasBackend.variant(other)
    with pytest.raises(regcore.BackendNotFoundError, match=f"KERAS_BACKEND={other}"):
        regcore.load_backend(f"keras:{other}")


@pytest.mark.parametrize("name", ["numpy", "openvino", "no_such_backend"])
def test_a_keras_backend_without_autodiff_here_is_refused_by_name(name):
    """Refused before ``KERAS_BACKEND`` is touched: Keras reads it once, so a bad name left in
    the environment would break every later load in the process."""
    before = os.environ.get("KERAS_BACKEND")
    with pytest.raises(regcore.BackendNotFoundError, match="tensorflow, jax, torch only"):
        regcore.load_backend(f"keras:{name}")
    assert os.environ.get("KERAS_BACKEND") == before


def test_a_running_keras_backend_without_autodiff_is_refused(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "numpy")
    with pytest.raises(UnsupportedError, match="'numpy'"):
        grad.value_and_grads(lambda v: v[0], [np.zeros(())])


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_without_64_bit_mode_declares_float32_only():
    """Keras on JAX without x64 keeps a float64 variable's numbers in float32 and says float64;
    the backend must not claim float64 there."""
    code = "import regcore; print(regcore.load_backend('keras').dtypes)"
    for x64, expected in (("0", "('float32',)"), ("1", "('float64', 'float32')")):
        env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_ENABLE_X64": x64}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip().splitlines()[-1] == expected


def test_float64_demotion_is_measured_not_assumed():
    """Where Keras's result_type demotes float64, ops.mean of float64 really is float32-accurate
    (and the message says by how much); where it does not, there is nothing to report."""
    x = np.linspace(0.1, 1.3, 12) ** 2
    error = abs(float(ops.convert_to_numpy(ops.mean(ops.convert_to_tensor(x)))) / x.mean() - 1)
    demotion = float64_demotion()
    if keras.backend.result_type("float64", "float64") == "float64":
        assert demotion is None
        assert error < 1e-15
    else:
        assert error > 1e-12
        assert "keras-team/keras#23223" in demotion and f"{error:.1e}"[:3] in demotion


def test_float64_fit_is_refused_exactly_where_keras_demotes_float64(backend):
    if "float64" not in backend.dtypes:
        pytest.skip("no float64 on this Keras backend here (JAX without 64-bit mode)")
    model = ModelSpec((2, 1), None, "mse")
    params = {"dense_0.kernel": backend.asarray([[0.5], [-0.25]], dtype="float64", device="cpu"),
              "dense_0.bias": backend.asarray([0.125], dtype="float64", device="cpu")}
    x = backend.asarray([[1.0, 2.0], [3.0, -1.0]], dtype="float64", device="cpu")
    y = backend.asarray([[1.0], [0.0]], dtype="float64", device="cpu")
    spec = Spec([Rule(L2(0.1, convention="sum"))])
    run = lambda: backend.native_train("keras_fit", model, spec, params, x, y,  # noqa: E731
                                       optimizer=Optimizer("sgd", 0.1), steps=1)
    if float64_demotion() is None:
        assert backend.to_numpy(run()["dense_0.bias"]).dtype == np.float64
    else:
        with pytest.raises(UnsupportedError, match="float32-accurate"):
            run()
    # the penalty translations stay float64: regcore's kernels avoid the demoting ops
    value, grads = backend.native_penalty("keras_losses", model, spec, params)
    assert backend.to_numpy(value).dtype == np.float64
    assert backend.to_numpy(value) == pytest.approx(0.1 * (0.25 + 0.0625), rel=1e-15)  # weights


def test_the_keras_backends_guide_example():
    from tests.test_docs import doc_blocks, run_python

    (block,) = doc_blocks("docs/keras-backends.md", "test_the_keras_backends_guide_example")
    namespace, printed = run_python(block)
    assert printed == ["True True"]
    assert (namespace["demotion"] is None) == (RUNNING == "tensorflow")
