"""The backend protocol: a small required core (:class:`regcore.Backend`) and optional
capabilities (:mod:`regcore.capabilities`), each checked once in the base for every backend.

The per-backend tests run over every installed backend: an unknown device or translation is a
:class:`regcore.SpecError` naming what the backend declares, never a silent fallback or no-op.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import regcore
from regcore import (
    Backend,
    DataParallel,
    Harness,
    ModelSpec,
    NativeTranslations,
    Optimizer,
    Spec,
    UnknownDeviceError,
    UnknownTranslationError,
    UnsupportedError,
    load_backend,
)
from regcore.capabilities import CAPABILITIES
from tests.author_backends import MinimalBackend
from tests.installed import backend_params

ROOT = Path(__file__).resolve().parent.parent
MODEL = ModelSpec((2, 1), None, "mse")


def test_the_required_core_is_the_array_bridge_and_the_penalty():
    assert Backend.__abstractmethods__ == {"asarray", "to_numpy", "penalty"}
    backend = MinimalBackend()
    assert backend.versions() == {}
    assert MinimalBackend.capabilities() == {
        "devices": ["cpu"], "dtypes": ["float64", "float32"], "low_precision_dtypes": [],
        "capabilities": []}


@pytest.mark.parametrize("capability", CAPABILITIES, ids=lambda c: c.__name__)
def test_a_capability_inherited_must_be_implemented_whole(capability):
    class Partial(MinimalBackend, capability):
        name = "partial"

    with pytest.raises(TypeError, match="abstract"):
        Partial()


def test_a_capability_not_inherited_is_a_missing_attribute_and_unsupported():
    backend = MinimalBackend()
    assert not isinstance(backend, Harness) and not hasattr(backend, "train")
    with pytest.raises(UnsupportedError, match=r"^minimal: does not offer the Harness capability "
                                               r"\(regcore\.capabilities\.Harness\)"):
        backend.train(MODEL, Spec().resolve(MODEL.params()), {}, None, None,
                      optimizer=Optimizer("sgd", 0.1), steps=1)


@pytest.mark.parametrize(("old", "new"), [("native_paths", "native_translations"),
                                          ("native_penalty_paths", "native_penalty_translations"),
                                          ("distributed_paths", "distributed_translations")])
def test_old_attribute_names_name_the_new_ones(old, new):
    with pytest.raises(TypeError, match=rf"Old\.{old}: renamed to {new}"):
        type("Old", (MinimalBackend,), {old: ("x",)})
    with pytest.raises(AttributeError, match=rf"{old}: renamed to {new}"):
        getattr(MinimalBackend(), old)


def test_a_translation_method_with_the_old_parameter_name_is_refused():
    with pytest.raises(TypeError, match=r"native_plan\(path, \.\.\.\): the parameter is renamed "
                                        "to translation"):
        class Old(MinimalBackend, NativeTranslations):  # noqa: F841
            name = "old"

            def native_plan(self, path, model, spec):
                return spec.resolve(model.params())


def test_check_params_is_renamed_check_arrays():
    with pytest.raises(AttributeError, match="renamed to regcore.check_arrays"):
        regcore.check_params  # noqa: B018
    with pytest.raises(AttributeError, match="renamed to regcore.backend.check_arrays"):
        regcore.backend.check_params  # noqa: B018


def test_the_harness_descriptions_moved_to_regcore_harness():
    assert regcore.ModelSpec is regcore.harness.ModelSpec  # the README's regcore.ModelSpec stays
    for name in ("ModelSpec", "Optimizer", "OPTIMIZERS"):
        with pytest.raises(AttributeError, match=rf"moved to regcore\.harness\.{name}$"):
            getattr(regcore.backend, name)


@pytest.mark.parametrize("name", backend_params())
def test_an_unknown_device_is_a_spec_error_naming_the_declared_ones(name):
    backend = load_backend(name)
    declared = ", ".join(map(repr, backend.devices))
    label = re.escape(backend.name)
    message = rf"^{label}: unknown device 'tpu9'; the backend declares {declared}$"
    with pytest.raises(UnknownDeviceError, match=message):
        backend.asarray(np.zeros(2), dtype="float32", device="tpu9")
    with pytest.raises(UnknownDeviceError, match=message):
        backend.device_available("tpu9")


def _translation_calls(backend):
    params = {p.name: backend.asarray(np.zeros(p.shape), dtype="float32", device="cpu")
              for p in MODEL.params()}
    x = backend.asarray(np.zeros((4, 2)), dtype="float32", device="cpu")
    sgd = Optimizer("sgd", 0.1)
    if isinstance(backend, NativeTranslations):
        yield "native_translations", lambda t: backend.native_train(
            t, MODEL, Spec(), params, x, x[:, :1], optimizer=sgd, steps=1)
        yield "native_penalty_translations", lambda t: backend.native_penalty(
            t, MODEL, Spec(), params)
        yield "native_translations + native_penalty_translations", lambda t: backend.native_plan(
            t, MODEL, Spec())
    if isinstance(backend, DataParallel):
        size = backend.distributed_world_sizes[0]
        yield "distributed_translations", lambda t: backend.distributed_train(
            t, MODEL, Spec(), params, x, x[:, :1], optimizer=sgd, steps=1, world_size=size)
        yield "distributed_translations", lambda t: backend.distributed_loss_and_grads(
            t, MODEL, Spec(), params, x, x[:, :1], world_size=size)


@pytest.mark.parametrize("name", backend_params())
def test_an_unknown_translation_is_a_spec_error_naming_the_declared_ones(name):
    backend = load_backend(name)
    calls = list(_translation_calls(backend))
    if not calls:
        pytest.skip(f"{name}: offers neither NativeTranslations nor DataParallel")
    for declared, call in calls:
        with pytest.raises(UnknownTranslationError,
                           match=rf"^{name}: unknown translation 'typo'; "
                                 rf"{re.escape(declared)} declares? '"):
            call("typo")


@pytest.mark.parametrize("name", backend_params())
def test_capabilities_are_the_capability_classes_inherited(name):
    backend = load_backend(name)
    listed = type(backend).capabilities()
    assert set(listed["capabilities"]) == {c.__name__ for c in CAPABILITIES
                                           if isinstance(backend, c)}
    for capability in CAPABILITIES:
        for attribute in capability.declared:
            assert (attribute in listed) == isinstance(backend, capability)


@pytest.mark.parametrize("framework", ["numpy", "torch", "tf"])
def test_adapters_import_one_way(framework):
    """As in the NumPy adapter: ``backend.py`` imports the modules that do the work, and no module
    of the adapter imports ``backend.py`` (``path.py`` aside: it is moving to ``apps/``)."""
    package = ROOT / "adapters" / framework
    for path in sorted(package.glob("*.py")):
        if path.name in ("backend.py", "__init__.py", "path.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            modules = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                       [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for module in modules:
                assert module != f"regcore_adapters.{framework}.backend", path
            if isinstance(node, ast.ImportFrom) and node.module == f"regcore_adapters.{framework}":
                assert "backend" not in [a.name for a in node.names], path


def test_the_guides_minimal_backend_runs():
    """docs/adding-a-backend.md's L2-only backend runs, prints what it says, declares the core
    only, and agrees with the NumPy backend."""
    from regcore_adapters.numpy import NumpyBackend
    from tests.test_docs import doc_blocks, run_python

    (block,) = doc_blocks("docs/adding-a-backend.md", "test_the_guides_minimal_backend_runs")
    namespace, _ = run_python(block)
    tiny = namespace["TinyBackend"]()
    assert tiny.capabilities()["capabilities"] == []
    plan, params = namespace["plan"], {"w": np.array([0.5, -3.0])}
    value, grads = tiny.penalty(plan, params)
    want, want_grads = NumpyBackend().penalty(plan, params)
    np.testing.assert_allclose(value, want)
    np.testing.assert_allclose(grads["w"], want_grads["w"])
