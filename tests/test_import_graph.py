"""The import graph points one way: spec <- adapters <- suite <- applications, with no cycles.

Read statically from the source (every ``import`` anywhere in a module, inside functions too), so
an import hidden in a function body cannot bend the direction: ``import regcore`` staying clean at
run time is not enough.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
LAYER_ROW = re.compile(r"^\| [^|]+ \| `([^`]+)/` \| `(\w+)` \| (.+) \|$", re.M)


def _layers() -> tuple[dict[str, str], dict[str, set[str]]]:
    """docs/architecture.md's layer table: package -> source folder, and what it may import
    (besides itself, the standard library and third parties)."""
    packages, allowed = {}, {}
    for folder, package, may in LAYER_ROW.findall(ARCHITECTURE.read_text(encoding="utf-8")):
        if package == "regcore_jax":
            folder += "/src/regcore_jax"
        packages[package] = folder
        allowed[package] = set(re.findall(r"`(\w+)`", may))
    return packages, allowed


PACKAGES, ALLOWED = _layers()


def _modules() -> dict[str, Path]:
    mods = {}
    for package, folder in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = [package, *path.relative_to(ROOT / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The module of ours that ``name`` (a module or a name in one) resolves to."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> set[str]:
    path = MODULES[module]
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(filter(None, (_owner(a.name) for a in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(here[: len(here) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else node.module or ""
            for alias in node.names:
                owner = _owner(f"{base}.{alias.name}") or _owner(base)
                if owner:
                    found.add(owner)
    found.discard(module)
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _package(module: str) -> str:
    return module.split(".", 1)[0]


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_a_package_imports_only_the_layers_below_it(package):
    wrong = sorted(f"{module} imports {target}" for module, targets in GRAPH.items()
                   if _package(module) == package for target in targets
                   if _package(target) not in ALLOWED[package] | {package})
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_no_module_imports_itself_through_others():
    assert _cycles(GRAPH) == []


def test_the_graph_was_read():
    """The test above cannot pass vacuously: every package has modules, and edges exist."""
    assert set(PACKAGES) == {"regcore", "regcore_adapters", "regcore_jax", "regcore_conformance",
                             "regcore_apps"}
    assert ALLOWED["regcore"] == set() and ALLOWED["regcore_conformance"] == {
        "regcore", "regcore_adapters"}
    assert {_package(m) for m in MODULES} == set(PACKAGES)
    assert any("regcore.spec" in targets for targets in GRAPH.values())
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]


def test_every_file_the_architecture_page_names_exists():
    named = set(re.findall(r"`((?:regcore|adapters|conformance|apps|tests|external)/[\w/.-]+)`",
                           ARCHITECTURE.read_text(encoding="utf-8")))
    assert len(named) > 10
    assert sorted(p for p in named if "<" not in p and not (ROOT / p).exists()) == []


def test_a_backend_class_is_imported_by_no_module_of_its_adapter():
    """An adapter goes one way: its backend.py imports the modules that do the work, and only the
    package's __init__ (the entry point) imports backend.py."""
    wrong = sorted(f"{module} imports {target}" for module, targets in GRAPH.items()
                   for target in targets if target.endswith(".backend")
                   and _package(target) != "regcore" and module != target.rpartition(".")[0])
    assert not wrong, "\n".join(wrong)


def _third_party(path: Path) -> set[str]:
    """The top-level names of every absolute import in ``path`` (inside functions too)."""
    return {name for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for name in _third_party_names(node)}


def _third_party_names(node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name.split(".")[0] for a in node.names}
    return {node.module.split(".")[0]} if node.module and not node.level else set()


def test_the_keras_adapter_imports_keras_not_a_keras_backend():
    """``regcore_adapters.keras`` runs under any ``KERAS_BACKEND``: none of its modules imports
    tensorflow, jax or torch, or the adapters built on them (tests/test_keras_backends.py and
    the keras-* nox sessions run it under each), except ``grad``, the per-backend autodiff,
    which imports each framework only inside the functions named for it."""
    keras_modules = {m: p for m, p in MODULES.items()
                     if m.startswith("regcore_adapters.keras")}
    assert len(keras_modules) >= 8
    frameworks = {"tensorflow", "jax", "torch"}
    wrong = sorted(f"{m} imports {name}" for m, p in keras_modules.items()
                   if m != "regcore_adapters.keras.grad"
                   for name in _third_party(p) & frameworks)
    grad = ast.parse(MODULES["regcore_adapters.keras.grad"].read_text(encoding="utf-8"))
    inside = {(f.name, name) for f in ast.walk(grad) if isinstance(f, ast.FunctionDef)
              for node in ast.walk(f) if isinstance(node, ast.Import)
              for name in (a.name.split(".")[0] for a in node.names)}
    assert {name for _, name in inside} >= frameworks
    wrong += sorted(f"grad.{f} imports {name}" for f, name in inside
                    if name in frameworks and not f.startswith(f"_{name}"))
    wrong += sorted(f"grad imports {name} at module level" for node in grad.body
                    if isinstance(node, (ast.Import, ast.ImportFrom))
                    for name in _third_party_names(node) & frameworks)
    wrong += sorted(f"{m} imports {t}" for m in keras_modules for t in GRAPH[m]
                    if t.startswith(("regcore_adapters.tf", "regcore_adapters.torch")))
    assert not wrong, "\n".join(wrong)
