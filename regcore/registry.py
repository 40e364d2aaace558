"""Backends are found by entry point, group ``regcore.backends``; core names none of them.

A package registers ``name = "module:BackendClass"`` under that group in its ``pyproject.toml``.
Listing reads package metadata only; a backend's module (and framework) is imported only by
:func:`load_backend`.

Exporters likewise, group ``regcore.exporters`` (:data:`regcore.export_support.GROUP`):
``name = "module:export"``, named as the backend whose framework the snippets are written for;
:func:`load_exporter` is the one lookup the CLI, the conformance suite and the tests use.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING

from regcore.backend import Backend
from regcore.errors import UnsupportedError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoints

    from regcore.spec import Spec

GROUP = "regcore.backends"


class BackendNotFoundError(LookupError):
    """No backend of that name is installed; the message lists the ones that are."""


class ExporterNotFoundError(LookupError):
    """No exporter of that name is installed, or it cannot be loaded; the message lists the
    installed ones."""


def available_backends() -> list[str]:
    """Names of the installed backends, sorted, without importing any of them."""
    return sorted({ep.name for ep in _entry_points()})


def load_backend(name: str) -> Backend:
    """An instance of the backend registered as ``name``; of ``name:option`` where the
    registered class has a ``variant(option)`` class method returning the backend class for that
    option (``array_api:array_api_strict``); or of ``package.module:Class`` for a backend not
    (yet) registered (an author's work in progress, a test double).

    Raises :class:`BackendNotFoundError` when no backend has that name (listing the installed
    ones), when its module cannot be imported (a framework that is not installed: the message
    gives the import error and the extra to install, ``pip install "regcore[<name>]"``), and when
    the entry point is not a :class:`regcore.Backend` subclass or leaves abstract methods
    unimplemented.
    """
    base, colon, option = name.partition(":")
    if colon and base in available_backends():
        return _variant(base, option)
    if colon:
        module_name, attr = base, option
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise BackendNotFoundError(f"cannot import backend {name!r}: {exc}") from None
        return _instance(cls, repr(name))
    cls, value = _load_entry_point(name)
    if hasattr(cls, "variant"):  # the bare name: the class's default variant
        return _variant(name, "")
    return _instance(cls, f"entry point {name!r} = {value}")


def _load_entry_point(name: str) -> tuple[object, str]:
    """What the backend entry point ``name`` names, and its value (``module:Class``)."""
    matches = [ep for ep in _entry_points() if ep.name == name]
    if not matches:
        known = ", ".join(available_backends()) or "none"
        raise BackendNotFoundError(f"unknown backend {name!r}; installed: {known}")
    try:
        return matches[0].load(), matches[0].value
    except ImportError as exc:
        raise BackendNotFoundError(
            f"backend {name!r} ({matches[0].value}) cannot be imported: {exc}; install what it "
            f'needs with: pip install "regcore[{name}]"'
        ) from exc
    except AttributeError as exc:
        raise BackendNotFoundError(
            f"backend {name!r}: entry point {matches[0].value} names nothing: {exc}"
        ) from exc


def _variant(base: str, option: str) -> Backend:
    """``base:option``: the backend registered as ``base`` on ``option``, through its class's
    ``variant(option)`` (``array_api:array_api_strict``; ``variant(None)``, its default, for the
    bare name)."""
    cls, _ = _load_entry_point(base)
    variant = getattr(cls, "variant", None)
    if variant is None:
        raise BackendNotFoundError(f"backend {base!r} takes no option (':{option}'): it has no "
                                   "variant() class method")
    try:
        chosen = variant(option or None)
    except UnsupportedError as exc:
        raise BackendNotFoundError(str(exc)) from None
    return _instance(chosen, f"{base}:{option}" if option else base)


def _instance(cls: object, label: str) -> Backend:
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendNotFoundError(f"{label} is not a regcore.Backend subclass")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise BackendNotFoundError(
            f"{label} is an abstract regcore.Backend: it does not implement {missing}"
        )
    return cls()


def _entry_points() -> EntryPoints:
    """The ``regcore.backends`` entry points. importlib.metadata is imported here, not at module
    level: it costs about half of ``import regcore`` (email, zipfile, pathlib...) and only
    backend lookups need it."""
    from importlib.metadata import entry_points

    return entry_points(group=GROUP)


def available_exporters() -> list[str]:
    """Names of the installed exporters (entry point group ``regcore.exporters``), sorted,
    without importing any of them."""
    return sorted({ep.name for ep in _exporter_entry_points()})


def load_exporter(name: str) -> Callable[[Spec], str]:
    """The exporter registered as ``name`` (the first, if a name is registered twice, as
    :func:`load_backend` does): ``export(spec) -> str``, the spec as a standalone snippet for that
    backend's framework. Loading an exporter imports no framework.

    Raises :class:`ExporterNotFoundError` when no exporter has that name (listing the installed
    ones), when its module cannot be imported or names nothing, and when it is not callable.
    """
    matches = [ep for ep in _exporter_entry_points() if ep.name == name]
    if not matches:
        known = ", ".join(available_exporters()) or "none"
        raise ExporterNotFoundError(
            f"no exporter for backend {name!r}; installed exporters: {known}")
    try:
        export = matches[0].load()
    except (ImportError, AttributeError) as exc:
        raise ExporterNotFoundError(
            f"exporter {name!r} ({matches[0].value}) cannot be loaded: {exc}") from exc
    if not callable(export):
        raise ExporterNotFoundError(
            f"exporter {name!r}: entry point {matches[0].value} is a "
            f"{type(export).__name__}, not an export(spec) -> str function")
    return export


def _exporter_entry_points() -> EntryPoints:
    """The ``regcore.exporters`` entry points (importlib.metadata imported here, as above)."""
    from importlib.metadata import entry_points

    from regcore.export_support import GROUP as EXPORTERS

    return entry_points(group=EXPORTERS)
