"""``regcore export``: native code applying a spec, from the exporter a backend registers
(entry point group ``regcore.exporters``); the snippet imports no regcore."""

from __future__ import annotations

import argparse
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from regcore_apps.cli.common import EXIT_OK, CliError, load_spec


def add_parser(sub: Any) -> None:
    p = sub.add_parser("export", help="print native code applying a spec (no regcore import)")
    p.add_argument("spec", type=Path, help="spec JSON file")
    p.add_argument("--backend", required=True, help="numpy, torch, tf, jax, ...")


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    found = {ep.name: ep for ep in entry_points(group="regcore.exporters")}
    if args.backend not in found:
        raise CliError(f"no exporter for backend {args.backend!r}; installed exporters: "
                       f"{', '.join(sorted(found)) or 'none'}")
    print(found[args.backend].load()(spec), end="")
    return EXIT_OK
