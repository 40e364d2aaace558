"""``regcore`` on the command line (also ``python -m regcore``).

    regcore backends [--json]                      installed backends, no framework imported
    regcore convert KIND COEF... --from CONV [--to CONV ...] [--batch-size M] [--n-samples N]
                    [--data-loss mse|half_mse] [--json]
    regcore check SPEC.json [--backends a,b] [--devices cpu,cuda] [--dtypes ...] [--json]
    regcore export SPEC.json --backend NAME        a native snippet, no regcore import
    regcore path SPEC.json --data iris|synthetic|FILE [--backends a,b] [--folds 5] [--grid ...]
                 [--rule min|1se] [--out DIR]  k-fold choice of the coefficient, plots

Exit codes (the same for every command):

* ``0`` — done; for ``check``, every backend agrees with the reference;
* ``1`` — ``check`` ran and some backend disagrees with the reference; ``path`` ran and the
  backends chose differently (or their losses differ beyond tolerance);
* ``2`` — bad input or environment: missing file, malformed JSON, invalid spec, unknown term,
  convention, backend or device, a device not available here, a missing optional dependency.
  One line on stderr, ``regcore: error: ...``, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from regcore.conventions import CONVENTIONS
from regcore.errors import SpecError
from regcore.registry import BackendNotFoundError, available_backends
from regcore.terms import TERMS, Term, convert

EXIT_OK, EXIT_DISAGREE, EXIT_BAD_INPUT = 0, 1, 2

#: How people name a convention, for ``--from``/``--to``.
ALIASES = {
    "keras": "sum", "torch": "torch_weight_decay", "torch_sgd": "torch_weight_decay",
    "ridge": "sklearn_ridge", "lasso": "sklearn_lasso", "elasticnet": "sklearn_elasticnet",
}
_WHO = {
    "sum": "Keras L1/L2/L1L2", "half": "½λ‖w‖², glmnet", "torch_weight_decay":
    "torch SGD/Adam weight_decay", "batch_mean": "λ/(2m)Σθ² (per batch)",
    "sklearn_ridge": "sklearn Ridge(alpha)", "sklearn_lasso": "sklearn Lasso(alpha)",
    "sklearn_elasticnet": "sklearn ElasticNet (l1, l2 parts)",
}


class CliError(Exception):
    """Bad input or environment: one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        raise CliError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="regcore", description="regcore: one regularization spec, every "
                     "framework. Exit codes: 0 ok, 1 backends disagree, 2 bad input.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("backends", help="list installed backends (imports no framework)")
    p.add_argument("--json", action="store_true", help="JSON output")

    p = sub.add_parser("convert", help="a coefficient in every scaling convention")
    p.add_argument("kind", help=f"term: {', '.join(k for k in TERMS)}")
    p.add_argument("coefs", nargs="+", metavar="COEF", help="the term's coefficient(s)")
    p.add_argument("--from", dest="source", required=True, metavar="CONV",
                   help=f"convention of COEF: {', '.join(CONVENTIONS)} (or "
                        f"{', '.join(f'{a}={c}' for a, c in ALIASES.items())})")
    p.add_argument("--to", action="append", metavar="CONV",
                   help="target(s); default: every convention the term has")
    p.add_argument("--batch-size", type=int, help="m, for batch_mean")
    p.add_argument("--n-samples", type=int, help="n, for sklearn_ridge")
    p.add_argument("--data-loss", choices=("mse", "half_mse"), help="for the sklearn forms")
    p.add_argument("--json", action="store_true", help="JSON output")

    p = sub.add_parser("check", help="run a spec through the scenarios on every backend")
    p.add_argument("spec", type=Path, help="spec JSON file")
    p.add_argument("--backends", help="comma-separated names (or package.module:Class); "
                                      "default: every installed backend")
    p.add_argument("--devices", help="comma-separated; default: every available device")
    p.add_argument("--dtypes", default="float64,float32", help="default: float64,float32")
    p.add_argument("--json", action="store_true", help="JSON output")

    p = sub.add_parser("export", help="print native code applying a spec (no regcore import)")
    p.add_argument("spec", type=Path, help="spec JSON file")
    p.add_argument("--backend", required=True, help="numpy, torch, tf, jax, ...")

    from regcore.cli_path import add_parser

    add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except (CliError, SpecError, BackendNotFoundError) as exc:
        print(f"regcore: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("regcore: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# -- backends ------------------------------------------------------------------------------------


def _backends(args: argparse.Namespace) -> int:
    names = available_backends()
    if args.json:
        print(json.dumps({"backends": names}))
    else:
        print("\n".join(names) if names else "no backends installed")
    return EXIT_OK


# -- convert -------------------------------------------------------------------------------------


def _convention(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in CONVENTIONS:
        raise CliError(f"unknown convention {name!r}; known: {', '.join(CONVENTIONS)} "
                       f"(aliases: {', '.join(ALIASES)})")
    return name


def _numbers(convention: str, args: argparse.Namespace) -> dict[str, Any]:
    given = {"batch_size": args.batch_size, "n_samples": args.n_samples,
             "data_loss": args.data_loss}
    return {k: given[k] for k in CONVENTIONS[convention].needs if given[k] is not None}


def _parse_coef(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CliError(f"coefficient {text!r} is not a number") from None


def _convert(args: argparse.Namespace) -> int:
    if args.kind not in TERMS:
        raise CliError(f"unknown term {args.kind!r}; known: {', '.join(TERMS)}")
    cls = TERMS[args.kind]
    if len(args.coefs) != len(cls.coefficients):
        raise CliError(f"{args.kind} takes {len(cls.coefficients)} coefficient(s) "
                       f"({', '.join(cls.coefficients)}), got {len(args.coefs)}")
    source = _convention(args.source)
    coefs = dict(zip(cls.coefficients, map(_parse_coef, args.coefs), strict=True))
    term: Term = cls(**coefs, convention=source, **_numbers(source, args))
    targets = [_convention(t) for t in args.to] if args.to else list(cls.conventions)
    rows = []
    for target in targets:
        row: dict[str, Any] = {"convention": target, "who": _WHO.get(target, "")}
        missing = [n for n in CONVENTIONS[target].needs
                   if n not in _numbers(target, args)]
        try:
            if missing:
                flags = ", ".join("--" + n.replace("_", "-") for n in missing)
                raise SpecError(f"{target} needs {', '.join(missing)} (pass {flags})")
            converted = convert(term, target, **_numbers(target, args))
            row["coefficients"] = {n: getattr(converted, n) for n in cls.coefficients}
        except SpecError as exc:
            row["refused"] = _one_line(exc)
        rows.append(row)
    if args.json:
        print(json.dumps({"from": {"term": args.kind, "convention": source, **coefs},
                          "to": rows}))
        return EXIT_OK
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{args.kind} {', '.join(args.coefs)} in the {source!r} convention")
    for column in ("convention", "who writes it", *cls.coefficients):
        table.add_column(column)
    for row in rows:
        if "refused" in row:
            table.add_row(row["convention"], row["who"],
                          f"[red]no exact form:[/red] {escape(row['refused'])}")
        else:
            table.add_row(row["convention"], row["who"],
                          *(repr(v) for v in row["coefficients"].values()))
    Console().print(table)
    return EXIT_OK


# -- check and export ------------------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    from regcore.cli_check import run_check

    return run_check(args, load_spec(args.spec))


def _export(args: argparse.Namespace) -> int:
    from importlib.metadata import entry_points

    spec = load_spec(args.spec)
    found = {ep.name: ep for ep in entry_points(group="regcore.exporters")}
    if args.backend not in found:
        raise CliError(f"no exporter for backend {args.backend!r}; installed exporters: "
                       f"{', '.join(sorted(found)) or 'none'}")
    print(found[args.backend].load()(spec), end="")
    return EXIT_OK


def _path(args: argparse.Namespace) -> int:
    from regcore.cli_path import run_path

    return run_path(args, load_spec(args.spec))


def load_spec(path: Path):
    """A spec from a JSON file; :class:`CliError` / :class:`SpecError` naming the problem."""
    from regcore.serialize import from_json

    try:
        text = path.read_bytes()
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None
    try:
        return from_json(text)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


_COMMANDS = {"backends": _backends, "convert": _convert, "check": _check, "export": _export,
             "path": _path}
