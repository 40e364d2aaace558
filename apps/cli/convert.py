"""``regcore convert``: a coefficient in every scaling convention its term has (pure arithmetic, no
framework), or in the ones asked for with ``--to``, each refused with exit 2 if it has no exact
form there."""

from __future__ import annotations

import argparse
import json
from typing import Any

from regcore.conventions import CONVENTIONS, exact, rounded
from regcore.errors import SpecError
from regcore.terms import TERMS, ElasticNet, Term, convert
from regcore_apps.cli.common import EXIT_OK, CliError, one_line

#: How people name a convention, for ``--from``/``--to``.
ALIASES = {
    "keras": "sum", "torch": "torch_weight_decay", "torch_sgd": "torch_weight_decay",
    "ridge": "sklearn_ridge", "lasso": "sklearn_lasso", "elasticnet": "sklearn_elasticnet",
}
#: What a user types for scikit-learn's elastic net, in place of the term's ``l1``/``l2`` parts.
SKLEARN_ELASTICNET = ("alpha", "l1_ratio")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("convert", help="a coefficient in every scaling convention")
    p.add_argument("kind", help=f"term: {', '.join(k for k in TERMS)}")
    p.add_argument("coefs", nargs="+", metavar="COEF",
                   help="the term's coefficient(s); elastic_net from sklearn_elasticnet: ALPHA "
                        "L1_RATIO")
    p.add_argument("--from", dest="source", required=True, metavar="CONV",
                   help=f"convention of COEF: {', '.join(CONVENTIONS)} (or "
                        f"{', '.join(f'{a}={c}' for a, c in ALIASES.items())})")
    p.add_argument("--to", action="append", metavar="CONV",
                   help="target(s), each refused with exit 2 if it has no exact form; "
                        "default: every convention the term has")
    p.add_argument("--batch-size", type=_positive_int, help="m, for batch_mean")
    p.add_argument("--n-samples", type=_positive_int, help="n, for sklearn_ridge")
    p.add_argument("--data-loss", choices=("mse", "half_mse"), help="for the sklearn forms")
    p.add_argument("--json", action="store_true", help="JSON output")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _convention(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in CONVENTIONS:
        raise CliError(f"unknown convention {name!r}; known: {', '.join(CONVENTIONS)} "
                       f"(aliases: {', '.join(ALIASES)})")
    return name


def _coefficient_names(cls: type[Term], convention: str) -> tuple[str, ...]:
    """What a user types: scikit-learn's ``alpha, l1_ratio`` for its elastic net, else the
    term's own coefficients."""
    if cls is ElasticNet and convention == "sklearn_elasticnet":
        return SKLEARN_ELASTICNET
    return cls.coefficients


def _numbers(convention: str, args: argparse.Namespace) -> dict[str, Any]:
    given = {"batch_size": args.batch_size, "n_samples": args.n_samples,
             "data_loss": args.data_loss}
    return {k: given[k] for k in CONVENTIONS[convention].needs if given[k] is not None}


def _parse_coef(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CliError(f"coefficient {text!r} is not a number") from None


def _source_term(cls: type[Term], coefs: dict[str, float], source: str,
                 args: argparse.Namespace) -> Term:
    if cls is ElasticNet and source == "sklearn_elasticnet":
        return ElasticNet.from_sklearn(coefs["alpha"], coefs["l1_ratio"],
                                       data_loss=args.data_loss)
    return cls(**coefs, convention=source, **_numbers(source, args))


def _target_coefficients(term: Term, target: str) -> dict[str, float | None]:
    if isinstance(term, ElasticNet) and target == "sklearn_elasticnet":
        l1, l2 = exact(term.l1), exact(term.l2)  # l1 = alpha·ρ, l2 = alpha·(1-ρ)
        alpha = rounded("elastic_net.alpha", l1 + l2)
        return {"alpha": alpha, "l1_ratio": float(l1 / (l1 + l2)) if l1 + l2 else None}
    return {n: getattr(term, n) for n in term.coefficients}


def _convert_one(cls: type[Term], term: Term, target: str, args: argparse.Namespace
                 ) -> dict[str, float | None]:
    """The coefficients in ``target``, or :class:`SpecError` why not: first whether the term has
    a form there at all, then the numbers that form needs."""
    if target in cls.conventions:
        missing = [n for n in CONVENTIONS[target].needs if n not in _numbers(target, args)]
        if missing:
            flags = ", ".join("--" + n.replace("_", "-") for n in missing)
            raise SpecError(f"{target} needs {', '.join(missing)} (pass {flags})")
    return _target_coefficients(convert(term, target, **_numbers(target, args)), target)


def run(args: argparse.Namespace) -> int:
    if args.kind not in TERMS:
        raise CliError(f"unknown term {args.kind!r}; known: {', '.join(TERMS)}")
    cls = TERMS[args.kind]
    source = _convention(args.source)
    names = _coefficient_names(cls, source)
    if len(args.coefs) != len(names):
        where = "" if names == cls.coefficients else f" from {source}"
        raise CliError(f"{args.kind}{where} takes {len(names)} coefficient(s) "
                       f"({', '.join(names)}), got {len(args.coefs)}")
    coefs = dict(zip(names, map(_parse_coef, args.coefs), strict=True))
    term = _source_term(cls, coefs, source, args)
    targets = [_convention(t) for t in args.to] if args.to else list(cls.conventions)
    rows = []
    for target in targets:
        row: dict[str, Any] = {"convention": target, "who": CONVENTIONS[target].written_by}
        try:
            row["coefficients"] = _convert_one(cls, term, target, args)
        except SpecError as exc:
            row["refused"] = one_line(exc)
        rows.append(row)
    refused = [r["refused"] for r in rows if "refused" in r]
    if args.to and refused:  # a conversion asked for by name: refused is an error
        raise CliError("; ".join(refused))
    if args.json:
        print(json.dumps({"from": {"term": args.kind, "convention": source, **coefs},
                          "to": rows}))
        return EXIT_OK
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{args.kind} {', '.join(args.coefs)} in the {source!r} convention")
    table.add_column("convention")
    table.add_column("who writes it")
    table.add_column(cls.coefficients[0] if len(cls.coefficients) == 1 else "coefficients")
    for row in rows:
        if "refused" in row:
            value = f"[yellow]not converted:[/yellow] {escape(row['refused'])}"
        elif len(row["coefficients"]) == 1:
            value = repr(*row["coefficients"].values())
        else:
            value = ", ".join(f"{n}={v!r}" for n, v in row["coefficients"].items())
        table.add_row(row["convention"], row["who"], value)
    Console().print(table)
    return EXIT_OK


