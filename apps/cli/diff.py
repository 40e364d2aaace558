"""``regcore diff A B``: is my port the same? Two setups (``FRAMEWORK:MODULE:FUNCTION`` each, see
:mod:`regcore_apps.cli.setups`) compared parameter by parameter (:func:`regcore.diff.compare`);
``--spec-a``/``--spec-b`` put a spec file in place of what a side's setup applies (two specs on
one model: the same setup twice). Exit 0 when everything is the same, 1 when something differs,
2 for bad input."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

from regcore.diff import HEADER, SAME, Row, cells, compare, map_by_order, same, table
from regcore.errors import SpecError
from regcore_apps.cli.common import EXIT_DISAGREE, EXIT_OK, CliError
from regcore_apps.cli.setups import Setup, load_setup


def add_parser(sub: Any) -> None:
    p = sub.add_parser("diff", help="compare what two setups regularize, parameter by parameter")
    p.add_argument("a", help="FRAMEWORK:MODULE:FUNCTION (the original)")
    p.add_argument("b", help="FRAMEWORK:MODULE:FUNCTION (the port)")
    p.add_argument("--spec-a", type=Path, help="a spec file instead of what A's setup applies")
    p.add_argument("--spec-b", type=Path, help="a spec file instead of what B's setup applies")
    p.add_argument("--map", choices=("order", "names"), default="order",
                   help="pair parameters by order and shape (default) or by name")
    p.add_argument("--rename", action="append", default=[], metavar="REGEX=REPLACEMENT",
                   help="with --map names: rewrite A's names before matching (repeatable)")
    p.add_argument("--json", action="store_true", help="the rows as JSON")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="also write the JSON to FILE (reports/diff/NAME.json: a section of the "
                        "conformance matrix)")


def _mapping(a: Setup, b: Setup, how: str, renames: list[str]) -> dict[str, str]:
    if how == "order":
        if renames:
            raise CliError("--rename works with --map names")
        return map_by_order(a.params, b.params)
    names_b = {p.name for p in b.params}
    mapping = {}
    for p in a.params:
        name = p.name
        for rule in renames:
            pattern, sep, replacement = rule.partition("=")
            if not sep:
                raise CliError(f"--rename {rule!r}: expected REGEX=REPLACEMENT")
            try:
                name = re.sub(pattern, replacement, name)
            except re.error as exc:
                raise CliError(f"--rename {rule!r}: {exc}") from None
        if name in names_b:
            mapping[p.name] = name
    return mapping


def rich_table(rows: list[Row]) -> Any:
    """The rows as a ``rich`` table: verdicts green when ``same``, yellow ``unmapped``, red
    otherwise (``rich`` must be installed)."""
    from rich.table import Table
    from rich.text import Text

    out = Table(header_style="bold", show_edge=False)
    for head in HEADER:
        out.add_column(head)
    for row in rows:
        colour = "green" if row.verdict == SAME else \
            "yellow" if row.verdict == "unmapped" else "red"
        *text, verdict = cells(row)
        out.add_row(*map(Text, text), Text(verdict, style=f"bold {colour}"))
    return out


def print_table(rows: list[Row]) -> None:
    """On a terminal with ``rich`` installed (Keras brings it), the :func:`rich_table`; else
    (a pipe, a CI log, no ``rich``) :func:`regcore.diff.table`'s plain text."""
    if sys.stdout.isatty():
        try:
            from rich.console import Console
        except ImportError:
            pass
        else:
            Console().print(rich_table(rows))
            return
    print(table(rows))


def as_json(a: Setup, b: Setup, rows: list[Row]) -> dict[str, Any]:
    """What ``--json`` prints and ``--out`` writes (and the matrix's "Port checks" read)."""
    return {"a": a.source, "b": b.source, "same": same(rows),
            "rows": [dataclasses.asdict(r) for r in rows],
            "notes": {"a": list(a.reading.notes), "b": list(b.reading.notes)}}


def run(args: argparse.Namespace) -> int:
    a, b = load_setup(args.a), load_setup(args.b)
    try:
        rows = compare(a.plan(args.spec_a), b.plan(args.spec_b),
                       _mapping(a, b, args.map, args.rename))
    except SpecError as exc:
        raise CliError(str(exc)) from None
    result = as_json(a, b, rows)
    if args.out is not None:
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{args.out}: cannot write: {exc.strerror or exc}") from None
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(rows)
        for side, setup in (("A", a), ("B", b)):
            for note in setup.reading.notes:
                print(f"note ({side}): {note}")
        print("same" if same(rows) else
              f"differs: {sum(r.verdict != 'same' for r in rows)} of {len(rows)} rows")
    return EXIT_OK if same(rows) else EXIT_DISAGREE
