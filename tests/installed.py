"""The registered backends as pytest parameters: one whose framework is not installed here is
skipped with the loader's reason (each backend's nox session installs its framework)."""

from __future__ import annotations

import pytest

import regcore


def backend_params(exclude: tuple[str, ...] = ()) -> list:
    """``pytest.param(name)`` for every registered backend not in ``exclude``."""
    cases = []
    for name in regcore.available_backends():
        if name in exclude:
            continue
        try:
            regcore.load_backend(name)
            marks = ()
        except regcore.BackendNotFoundError as exc:
            marks = pytest.mark.skip(reason=str(exc))
        cases.append(pytest.param(name, marks=marks))
    return cases
