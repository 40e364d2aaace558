"""Backends are found by entry point, group ``regcore.backends``; core names none of them.

A package registers ``name = "module:BackendClass"`` under that group in its ``pyproject.toml``.
Listing reads package metadata only; a backend's module (and framework) is imported only by
:func:`load_backend`.
"""

from __future__ import annotations

import importlib
import inspect

from regcore.backend import Backend

GROUP = "regcore.backends"


class BackendNotFoundError(LookupError):
    """No backend of that name is installed; the message lists the ones that are."""


def available_backends() -> list[str]:
    """Names of the installed backends, sorted, without importing any of them."""
    return sorted({ep.name for ep in _entry_points()})


def load_backend(name: str) -> Backend:
    """An instance of the backend registered as ``name``, or of ``package.module:Class`` for a
    backend not (yet) registered (an author's work in progress, a test double).

    Raises :class:`BackendNotFoundError` when no backend has that name (listing the installed
    ones), when its module cannot be imported (a framework that is not installed: the message
    gives the import error and the extra to install, ``pip install "regcore[<name>]"``), and when
    the entry point is not a :class:`regcore.Backend` subclass or leaves abstract methods
    unimplemented.
    """
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise BackendNotFoundError(f"cannot import backend {name!r}: {exc}") from None
        return _instance(cls, repr(name))
    matches = [ep for ep in _entry_points() if ep.name == name]
    if not matches:
        known = ", ".join(available_backends()) or "none"
        raise BackendNotFoundError(f"unknown backend {name!r}; installed: {known}")
    try:
        cls = matches[0].load()
    except ImportError as exc:
        raise BackendNotFoundError(
            f"backend {name!r} ({matches[0].value}) cannot be imported: {exc}; install what it "
            f'needs with: pip install "regcore[{name}]"'
        ) from exc
    except AttributeError as exc:
        raise BackendNotFoundError(
            f"backend {name!r}: entry point {matches[0].value} names nothing: {exc}"
        ) from exc
    return _instance(cls, f"entry point {name!r} = {matches[0].value}")


def _instance(cls: object, label: str) -> Backend:
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendNotFoundError(f"{label} is not a regcore.Backend subclass")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise BackendNotFoundError(
            f"{label} is an abstract regcore.Backend: it does not implement {missing}"
        )
    return cls()


def _entry_points():
    """The ``regcore.backends`` entry points. importlib.metadata is imported here, not at module
    level: it costs about half of ``import regcore`` (email, zipfile, pathlib...) and only
    backend lookups need it."""
    from importlib.metadata import entry_points

    return entry_points(group=GROUP)
