"""The backend registry: entry points in group ``regcore.backends``, every failure a
BackendNotFoundError that says what to do."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import Any

import pytest

import regcore
import regcore.registry
from regcore import Backend, BackendNotFoundError, Harness


class FakeBackend(Backend):
    name = "fake"

    def asarray(self, array: Any, *, dtype: str, device: str) -> Any:
        return array

    def to_numpy(self, x: Any) -> Any:
        return x

    def penalty(self, plan, params):
        raise NotImplementedError

    def loss_and_grads(self, model, plan, params, x, y):
        raise NotImplementedError

    def train(self, model, plan, params, x, y, *, optimizer, steps):
        raise NotImplementedError


@dataclass
class FakeEntryPoint:
    """What ``importlib.metadata.EntryPoint`` offers the registry: name, value, load()."""

    name: str
    value: str
    target: Any = None
    error: BaseException | None = None

    def load(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.target


@pytest.fixture
def installed(monkeypatch):
    """Replace the installed entry points with the given fakes."""

    def install(*eps: FakeEntryPoint) -> None:
        monkeypatch.setattr(regcore.registry, "_entry_points", lambda: list(eps))

    return install


def test_load_a_registered_backend(installed):
    installed(FakeEntryPoint("fake", "fake_pkg:FakeBackend", FakeBackend))
    assert regcore.available_backends() == ["fake"]
    assert isinstance(regcore.load_backend("fake"), FakeBackend)


class Flavoured(FakeBackend):
    """A backend with variants: ``flavoured:<taste>`` is its subclass for that taste."""

    @classmethod
    def variant(cls, taste: str | None = None) -> type[FakeBackend]:
        if taste == "bitter":
            raise regcore.UnsupportedError("flavoured:bitter: no such taste here")
        return type("Tasted", (cls,), {"name": f"flavoured:{taste or 'plain'}"})


def test_name_colon_option_is_the_registered_classs_variant(installed):
    """``base:option`` goes to the class registered as ``base`` when one is (its
    ``variant(option)``; the bare name its ``variant(None)``), before any ``module:Class``
    reading; an UnsupportedError from ``variant`` and an option to a class without variants are
    BackendNotFoundErrors."""
    installed(FakeEntryPoint("flavoured", "pkg:Flavoured", Flavoured),
              FakeEntryPoint("fake", "fake_pkg:FakeBackend", FakeBackend))
    assert regcore.load_backend("flavoured:sweet").name == "flavoured:sweet"
    assert regcore.load_backend("flavoured").name == "flavoured:plain"
    with pytest.raises(BackendNotFoundError, match=r"^flavoured:bitter: no such taste here$"):
        regcore.load_backend("flavoured:bitter")
    with pytest.raises(BackendNotFoundError, match=r"^backend 'fake' takes no option \(':x'\)"):
        regcore.load_backend("fake:x")
    assert type(regcore.load_backend("tests.test_registry:FakeBackend")).__name__ == "FakeBackend"


def test_unknown_name_lists_the_installed_backends(installed):
    installed(FakeEntryPoint("torch", "regcore_adapters.torch:TorchBackend", FakeBackend),
              FakeEntryPoint("numpy", "regcore_adapters.numpy:NumpyBackend", FakeBackend))
    with pytest.raises(BackendNotFoundError,
                       match=r"^unknown backend 'jax'; installed: numpy, torch$"):
        regcore.load_backend("jax")


def test_unknown_name_with_nothing_installed(installed):
    installed()
    assert regcore.available_backends() == []
    with pytest.raises(BackendNotFoundError, match=r"^unknown backend 'numpy'; installed: none$"):
        regcore.load_backend("numpy")


@pytest.mark.parametrize(
    "error",
    [ModuleNotFoundError("No module named 'numpy'", name="numpy"),
     ImportError("cannot import name 'Tensor' from 'torch'")],
    ids=["module not found", "import error"],
)
def test_backend_whose_module_cannot_be_imported(installed, error):
    # e.g. the numpy adapter registered by regcore's own metadata, but numpy not installed
    installed(FakeEntryPoint("numpy", "regcore_adapters.numpy:NumpyBackend", error=error))
    pattern = (r"^backend 'numpy' \(regcore_adapters\.numpy:NumpyBackend\) cannot be imported: "
               rf"{re.escape(str(error))}; install what it needs with: "
               r'pip install "regcore\[numpy\]"$')
    with pytest.raises(BackendNotFoundError, match=pattern) as info:
        regcore.load_backend("numpy")
    assert info.value.__cause__ is error  # the import error stays in the traceback


def test_real_entry_point_to_a_missing_module(installed):
    ep = EntryPoint("torch", "regcore_no_such_module.torch:TorchBackend", regcore.registry.GROUP)
    installed(ep)
    with pytest.raises(BackendNotFoundError,
                       match=r"^backend 'torch' \(regcore_no_such_module\.torch:TorchBackend\) "
                             r"cannot be imported: No module named 'regcore_no_such_module'; "
                             r'install what it needs with: pip install "regcore\[torch\]"$'):
        regcore.load_backend("torch")


@pytest.mark.parametrize(
    "target",
    [object(), FakeBackend(), int, lambda: FakeBackend(), "odd_pkg:thing"],
    ids=["object", "instance", "int", "factory", "str"],
)
def test_entry_point_that_is_not_a_backend_subclass(installed, target):
    installed(FakeEntryPoint("odd", "odd_pkg:thing", target))
    with pytest.raises(BackendNotFoundError,
                       match=r"^entry point 'odd' = odd_pkg:thing is not a regcore\.Backend "
                             r"subclass$"):
        regcore.load_backend("odd")


class Unfinished(Backend, Harness):
    """An adapter not written yet: the core done, the Harness capability it inherits not."""

    name = "unfinished"

    def asarray(self, array: Any, *, dtype: str, device: str) -> Any:
        return array

    def to_numpy(self, x: Any) -> Any:
        return x

    def penalty(self, plan, params):
        raise NotImplementedError


@pytest.mark.parametrize(
    ("target", "missing"),
    [(Unfinished, "loss_and_grads, train"),
     (Backend, "asarray, penalty, to_numpy")],
    ids=["unfinished", "the base class"],
)
def test_entry_point_that_is_an_abstract_backend(installed, target, missing):
    # instantiating it would be Python's TypeError for an abstract class
    installed(FakeEntryPoint("half", "half_pkg:Unfinished", target))
    with pytest.raises(BackendNotFoundError,
                       match=rf"^entry point 'half' = half_pkg:Unfinished is an abstract "
                             rf"regcore\.Backend: it does not implement {missing}$"):
        regcore.load_backend("half")


def test_backend_not_found_is_a_lookup_error():
    assert issubclass(BackendNotFoundError, LookupError)


def test_the_lookup_reads_the_backends_entry_point_group(monkeypatch):
    """``_entry_points`` (which the fakes above replace) asks importlib.metadata for the
    ``regcore.backends`` group, so the fakes stand in for exactly what a lookup reads."""
    import importlib.metadata

    seen = []
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda *, group: seen.append(group) or [])
    assert regcore.available_backends() == []
    assert seen == ["regcore.backends"]


# -- exporters: entry point group regcore.exporters, one lookup ----------------------------------


def _export_nothing(spec: object) -> str:
    return "# nothing\n"


@pytest.fixture
def exporters(monkeypatch):
    """Replace the installed exporter entry points with the given fakes."""

    def install(*eps: FakeEntryPoint) -> None:
        monkeypatch.setattr(regcore.registry, "_exporter_entry_points", lambda: list(eps))

    return install


def test_load_a_registered_exporter(exporters):
    exporters(FakeEntryPoint("fake", "fake_pkg.export:export", _export_nothing),
              FakeEntryPoint("fake", "other_pkg.export:export", None))
    assert regcore.registry.available_exporters() == ["fake"]
    assert regcore.registry.load_exporter("fake") is _export_nothing  # the first of a name


def test_unknown_exporter_lists_the_installed_ones(exporters):
    exporters(FakeEntryPoint("torch", "regcore_adapters.torch.export:export", _export_nothing),
              FakeEntryPoint("numpy", "regcore_adapters.numpy.export:export", _export_nothing))
    with pytest.raises(regcore.registry.ExporterNotFoundError,
                       match=r"^no exporter for backend 'cobol'; installed exporters: "
                             r"numpy, torch$"):
        regcore.registry.load_exporter("cobol")
    exporters()
    with pytest.raises(regcore.registry.ExporterNotFoundError, match=r"exporters: none$"):
        regcore.registry.load_exporter("numpy")


@pytest.mark.parametrize("target, error, message", [
    (None, ModuleNotFoundError("No module named 'fake_pkg'"),
     r"^exporter 'fake' \(fake_pkg.export:export\) cannot be loaded: No module named 'fake_pkg'"),
    (None, AttributeError("module 'fake_pkg.export' has no attribute 'export'"),
     r"^exporter 'fake' \(fake_pkg.export:export\) cannot be loaded: module"),
    ("not a function", None,
     r"^exporter 'fake': entry point fake_pkg.export:export is a str, not an export\(spec\)"),
])
def test_an_exporter_that_cannot_load_says_why(exporters, target, error, message):
    exporters(FakeEntryPoint("fake", "fake_pkg.export:export", target, error))
    with pytest.raises(regcore.registry.ExporterNotFoundError, match=message):
        regcore.registry.load_exporter("fake")


def test_exporter_not_found_is_a_lookup_error():
    assert issubclass(regcore.registry.ExporterNotFoundError, LookupError)


def test_the_exporter_lookup_reads_the_exporters_entry_point_group(monkeypatch):
    import importlib.metadata

    from regcore.export_support import GROUP

    seen = []
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda *, group: seen.append(group) or [])
    assert regcore.registry.available_exporters() == []
    assert seen == [GROUP] == ["regcore.exporters"]


def test_the_built_in_exporters_are_registered():
    assert {"numpy", "torch", "tf"} <= set(regcore.registry.available_exporters())
