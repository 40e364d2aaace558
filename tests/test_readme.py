"""The README's example runs, and CI runs the README's quickstart commands."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_example_runs():
    code = re.search(r"## Example\n\n```python\n(.*?)```", README, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md example", "exec"), namespace)
    assert namespace["regcore"].from_json(namespace["text"]) == namespace["spec"]


def test_ci_runs_the_readme_quickstart_commands():
    block = re.search(r"## Quickstart.*?```sh\n(.*?)```", README, re.S).group(1)
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    tests_command = commands[1]
    assert tests_command.endswith("nox -s tests") and tests_command in ci
    main = ".venv/bin/nox -s numpy torch tf jax distributed path report"
    assert commands[0].endswith(main) and main in ci
