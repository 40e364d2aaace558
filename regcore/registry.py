"""Backends are found by entry point, group ``regcore.backends``; core names none of them.

A package registers ``name = "module:BackendClass"`` under that group in its ``pyproject.toml``.
Listing reads package metadata only; a backend's module (and framework) is imported only by
:func:`load_backend`.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from regcore.backend import Backend

GROUP = "regcore.backends"


class BackendNotFoundError(LookupError):
    """No backend of that name is installed; the message lists the ones that are."""


def available_backends() -> list[str]:
    """Names of the installed backends, sorted, without importing any of them."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def load_backend(name: str) -> Backend:
    """An instance of the backend registered as ``name``."""
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        known = ", ".join(available_backends()) or "none"
        raise BackendNotFoundError(f"unknown backend {name!r}; installed: {known}")
    cls = matches[0].load()
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendNotFoundError(
            f"entry point {name!r} = {matches[0].value} is not a regcore.Backend subclass"
        )
    return cls()
