"""``python -m regcore``: the ``regcore`` command (:mod:`regcore_apps.cli`).

Found through its console-script entry point, not imported: the spec package imports nothing
above it (the command line is an application on top of it)."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points


def main() -> int:
    scripts = entry_points(group="console_scripts", name="regcore")
    if not scripts:
        print("python -m regcore: error: the regcore command is not installed (no 'regcore' "
              "console script); pip install regcore", file=sys.stderr)
        return 2
    command = next(iter(scripts)).load()
    return int(command() or 0)


if __name__ == "__main__":
    raise SystemExit(main())
