"""``regcore export``: native code applying a spec, from the exporter a backend registers
(entry point group ``regcore.exporters``); the snippet imports no regcore."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from regcore.registry import ExporterNotFoundError, load_exporter
from regcore_apps.cli.common import EXIT_OK, CliError, load_spec


def add_parser(sub: Any) -> None:
    p = sub.add_parser("export", help="print native code applying a spec (no regcore import)")
    p.add_argument("spec", type=Path, help="spec JSON file")
    p.add_argument("--backend", required=True, help="numpy, torch, tf, jax, ...")


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    try:
        export = load_exporter(args.backend)
    except ExporterNotFoundError as exc:
        raise CliError(str(exc)) from None
    print(export(spec), end="")
    return EXIT_OK
