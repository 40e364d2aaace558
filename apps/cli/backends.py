"""``regcore backends``: the registered backends, whether each is importable here, and what its
framework's version is, from package metadata alone (no framework is imported); and
:func:`load_backends`, which backends ``check`` and ``path`` run on."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from regcore import Backend
from regcore.registry import GROUP, BackendNotFoundError, available_backends, load_backend
from regcore_apps.cli.common import EXIT_OK, CliError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("backends", help="registered backends, whether each is importable, and "
                                        "its framework's version (imports no framework)")
    p.add_argument("--json", action="store_true", help="JSON output")


def run(args: argparse.Namespace) -> int:
    rows = backend_status()
    if args.json:
        print(json.dumps({"backends": [r["name"] for r in rows],
                          "importable": [r["name"] for r in rows if r["importable"]],
                          "details": {r["name"]: r for r in rows}}))
        return EXIT_OK
    if not rows:
        print("no backends registered; pip install 'regcore[numpy]' at least")
        return EXIT_OK
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="regcore backends: registered, and importable here")
    for column in ("backend", "registered by", "needs", "importable"):
        table.add_column(column)
    for r in rows:
        needs = ", ".join(f"{n['name']} {n['version'] or '[red]missing[/red]'}"
                          + (f" (as {n['as']})" if n.get("as") else "") for n in r["needs"])
        table.add_row(r["name"], escape(r["registered_by"]), needs or "-",
                      "[green]yes[/green]" if r["importable"]
                      else f"[red]no[/red]: {escape(r['install'])}")
    Console().print(table)
    return EXIT_OK


def backend_status() -> list[dict[str, Any]]:
    """Every registered backend (entry point group ``regcore.backends``) with what it needs and
    whether that is importable here, from package metadata and ``find_spec`` alone: no backend
    module and no framework is imported.

    What a backend needs: the requirements of the extra named after it in the distribution that
    registers it (``regcore[torch]``), or else that distribution's own requirements (an outside
    backend package). A requirement is met by its distribution or, failing that, by
    an importable module of that name (``tensorflow`` from ``tensorflow-cpu``).
    """
    from importlib.metadata import entry_points

    first: dict[str, Any] = {}
    for ep in entry_points(group=GROUP):
        first.setdefault(ep.name, ep)  # load_backend takes the first of a duplicated name
    return [_backend_row(first[name]) for name in sorted(first)]


def _backend_row(ep: Any) -> dict[str, Any]:
    from importlib.util import find_spec

    dist = ep.dist
    extras = {_norm(e) for e in (dist.metadata.get_all("Provides-Extra") or [])} if dist else set()
    extra = _norm(ep.name) if _norm(ep.name) in extras else None
    needs = [{"name": name, **_installed(name)} for name in _requirements(dist, extra)]
    module = ep.value.partition(":")[0].strip()
    try:  # the top-level package only: finding a submodule would import its parents
        found = find_spec(module.partition(".")[0]) is not None
    except (ImportError, ValueError):
        found = False
    missing = [n["name"] for n in needs if not n["version"]]
    reason = install = ""
    if missing or not found:
        reason = f"{', '.join(missing)} not installed" if missing else f"{module} not found"
        install = (f'pip install "{dist.name}[{extra}]"' if dist and extra
                   else f"pip install {' '.join(missing or [dist.name if dist else module])}")
    return {"name": ep.name, "entry_point": ep.value,
            "registered_by": f"{dist.name} {dist.version}" if dist else "?",
            "needs": needs, "importable": not reason, "reason": reason, "install": install}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(dist: Any, extra: str | None) -> list[str]:
    """Distribution names ``dist`` requires for ``extra`` (``None``: unconditionally), less
    regcore itself."""
    names: list[str] = []
    for req in (dist.requires or []) if dist else []:
        spec, _, marker = req.partition(";")
        markers = {_norm(e) for e in re.findall(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)}
        if markers != ({extra} if extra else set()):
            continue
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
        if match and _norm(match[1]) not in {"regcore", _norm(dist.name)} \
                and match[1] not in names:
            names.append(match[1])
    return names


def _installed(name: str) -> dict[str, str | None]:
    """``{"version": ...}`` of an installed distribution, else of the distribution providing an
    importable module of that name (``{"as": "tensorflow_cpu"}``), else ``{"version": None}``."""
    from importlib.metadata import PackageNotFoundError, packages_distributions, version
    from importlib.util import find_spec

    try:
        return {"version": version(name)}
    except PackageNotFoundError:
        pass
    module = _norm(name).replace("-", "_")
    try:
        if find_spec(module) is not None:
            providers = packages_distributions().get(module, [])
            if providers:
                return {"version": version(providers[0]), "as": providers[0]}
    except (ImportError, ValueError, PackageNotFoundError):
        pass
    return {"version": None}


def load_backends(requested: list[str] | None) -> tuple[list[Backend], dict[str, str]]:
    """The backends asked for (any failure is an error), else every registered one that is
    importable here; and, by name, why each other registered one is not loaded (what to
    install)."""
    missing = {} if requested else {r["name"]: f"{r['reason']} ({r['install']})"
                                     for r in backend_status() if not r["importable"]}
    names = requested or available_backends()
    if not names:
        raise CliError("no backends installed; pip install 'regcore[numpy]' at least")
    loaded, unavailable = [], {}
    for name in names:
        if name in missing:
            unavailable[name] = missing[name]
            continue
        try:
            loaded.append(load_backend(name))
        except BackendNotFoundError as exc:
            if requested:
                raise
            unavailable[name] = f"cannot load: {exc}"
    return loaded, unavailable
