"""README's "Command line" block runs: every ``regcore`` line exits as its comment says, and the
numbers its output comment shows are the ones printed."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import regcore
from tests.test_docs import ROOT, doc_blocks


def test_readme_command_line_block():
    (block,) = doc_blocks("README.md", "test_readme_command_line_block")
    lines = block.code.splitlines()
    commands = [i for i, line in enumerate(lines) if line.startswith("regcore ")]
    assert len(commands) == 5
    for i in commands:
        command, _, comment = lines[i].partition("#")
        proc = subprocess.run([sys.executable, "-m", "regcore", *shlex.split(command)[1:]],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        out = proc.stdout + proc.stderr
        assert proc.returncode == (2 if "exit 2" in comment else 0), (lines[i], proc.stderr)
        shown = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith("#   ") else ""
        for expected in re.findall(r"alpha=[\d.]+, l1_ratio=[\d.]+|'\w+' form", comment + shown):
            assert expected in out, (lines[i], expected, out)
        for number in re.findall(r"\d+\.\d+", shown):  # the output comment's numbers
            assert re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", out), (number, out)
        if "--version" in command:
            assert comment.strip() == f"regcore {regcore.__version__}" == out.strip()
