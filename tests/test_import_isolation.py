"""`import regcore` imports no framework, and neither does listing the backends."""

from __future__ import annotations

import json
import subprocess
import sys

FRAMEWORKS = ("torch", "tensorflow", "jax", "keras", "numpy")


def _loaded_after(code: str) -> list[str]:
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps([m for m in {FRAMEWORKS!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_regcore_imports_no_framework():
    assert _loaded_after("import regcore") == []


def test_listing_backends_imports_no_framework():
    assert _loaded_after("import regcore; assert 'numpy' in regcore.available_backends()") == []


def test_loading_the_numpy_backend_imports_numpy_only():
    assert _loaded_after("import regcore; regcore.load_backend('numpy')") == ["numpy"]
