"""docs/adding-a-backend.md's commands, run as written (in the ``jax`` nox session, where the
JAX package and its framework are installed).

Two changes keep the run bounded and the session's own outputs intact: suite runs get
``-k "test_penalty and l2_half"`` appended (the session has just run the whole suite on the same
install), and the guide's ``reports`` folder is a temporary one.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("regcore_jax")

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "adding-a-backend.md"


def guide_commands() -> list[str]:
    blocks = re.findall(r"\*tested:\*\s*\n\s*\n```sh\n(.*?)```", GUIDE.read_text(), re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_the_guide_has_guide_commands_for_each_step():
    commands = guide_commands()
    assert any(c.startswith("pip install ./external/regcore-jax") for c in commands)
    assert "regcore backends" in commands
    assert sum(c.startswith("python -m regcore_conformance --backend jax") for c in commands) == 2
    assert any(c.startswith("python -m regcore_conformance.matrix") for c in commands)


def test_the_guide_commands_work(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    reports = tmp_path / "reports"
    outputs = []
    for command in guide_commands():
        argv = [str(reports) if a == "reports" else
                str(reports / a.removeprefix("reports/")) if a.startswith("reports/") else a
                for a in shlex.split(command)]
        if argv[:3] == ["python", "-m", "regcore_conformance"]:
            argv += ["-k", "test_penalty and l2_half"]
            if "--report" not in argv:
                argv += ["--report", str(tmp_path / "expect-run.json")]  # not in reports/
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        outputs.append(proc.stdout)
    assert "jax" in outputs[1].split()  # regcore backends
    assert "0 failed" in outputs[2]
    assert (reports / "matrix.html").exists() and (reports / "matrix.md").exists()
