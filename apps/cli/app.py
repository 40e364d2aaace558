"""``regcore`` on the command line (also ``python -m regcore``): the parser and the dispatch to
the verbs, one module each.

    regcore --version
    regcore backends [--json]                      registered backends, whether each is importable
    regcore convert KIND COEF... --from CONV [--to CONV ...] [--batch-size M] [--n-samples N]
                    [--data-loss mse|half_mse] [--json]
    regcore check SPEC.json [--backends a,b] [--devices cpu,cuda] [--dtypes ...] [--json]
    regcore export SPEC.json --backend NAME        a native snippet, no regcore import
    regcore path SPEC.json --data iris|synthetic|FILE [--backends a,b] [--folds 5] [--grid ...]
                 [--rule min|1se] [--out DIR]  k-fold choice of the coefficient, plots
    regcore audit FRAMEWORK:MODULE:FUNCTION [--json]   what a torch or Keras setup regularizes
    regcore diff A B [--map order|names] [--rename RE=NEW] [--spec-a F] [--spec-b F] [--json]

Exit codes (the same for every command):

* ``0`` — done; for ``check``, every backend agrees with the reference;
* ``1`` — ``check`` ran and some backend disagrees with the reference; ``path`` ran and the
  backends chose differently (or their losses differ beyond tolerance); ``diff`` found a
  parameter regularized differently;
* ``2`` — bad input or environment: missing file, malformed JSON, invalid spec, unknown term,
  convention, backend or device, a device not available here, a missing optional dependency
  that the command cannot do without, a conversion asked for with ``--to`` that is refused (the
  term has no form there, a number it needs is missing or invalid).
  One line on stderr, ``regcore: error: ...``, never a traceback.

A ``check`` scenario that needs an optional dependency (Iris needs scikit-learn) is skipped with
its reason; exit 1 is only ever a real disagreement.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

import regcore
from regcore.errors import SpecError
from regcore.registry import BackendNotFoundError
from regcore_apps.cli import audit, backends, check, convert, diff, export, path
from regcore_apps.cli.common import EXIT_BAD_INPUT, CliError, one_line

#: The verbs, in the order ``regcore --help`` lists them: each module's ``add_parser(sub)``
#: declares its arguments and ``run(args)`` returns the exit code.
VERBS = {"backends": backends, "convert": convert, "check": check, "export": export,
         "path": path, "audit": audit, "diff": diff}


class Parser(argparse.ArgumentParser):
    """argparse, with its own errors as a :class:`CliError` (one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise CliError(message)


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="regcore", description="regcore: one regularization spec, every "
                 "framework. Exit codes: 0 ok, 1 backends disagree, 2 bad input.")
    top.add_argument("--version", action="version", version=f"regcore {regcore.__version__}")
    sub = top.add_subparsers(dest="command", required=True, parser_class=Parser)
    for verb in VERBS.values():
        verb.add_parser(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        return VERBS[args.command].run(args)
    except (CliError, SpecError, BackendNotFoundError) as exc:
        print(f"regcore: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("regcore: interrupted", file=sys.stderr)
        return 130
