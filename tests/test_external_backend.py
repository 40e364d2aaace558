"""The JAX backend is an outside package: core does not know it exists, and it uses only
regcore's public API (the two properties a third-party author relies on)."""

from __future__ import annotations

import ast
from pathlib import Path

import regcore

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "external" / "regcore-jax" / "src" / "regcore_jax"


def test_core_never_mentions_the_jax_package():
    core = [*ROOT.joinpath("regcore").rglob("*.py"), *ROOT.joinpath("adapters").rglob("*.py"),
            *ROOT.joinpath("conformance").rglob("*.py"), ROOT / "pyproject.toml"]
    assert core
    for path in core:
        text = path.read_text()
        assert "regcore_jax" not in text and "regcore-jax" not in text, path


def test_jax_package_imports_only_public_regcore_names():
    files = sorted(PACKAGE.rglob("*.py"))
    assert files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                    "regcore") and not node.module.startswith("regcore_jax"):
                assert node.module == "regcore", f"{path}: from {node.module} import ..."
                for alias in node.names:
                    assert alias.name in regcore.__all__, f"{path}: {alias.name} is not public"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("regcore_adapters"), path
                    assert alias.name == "regcore" or not alias.name.startswith(
                        "regcore."), path
