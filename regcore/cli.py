"""``regcore`` on the command line (also ``python -m regcore``).

    regcore --version
    regcore backends [--json]                      registered backends, whether each is importable
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
  convention, backend or device, a device not available here, a missing optional dependency
  that the command cannot do without, a conversion asked for with ``--to`` that is refused (the
  term has no form there, a number it needs is missing or invalid).
  One line on stderr, ``regcore: error: ...``, never a traceback.

A ``check`` scenario that needs an optional dependency (Iris needs scikit-learn) is skipped with
its reason; exit 1 is only ever a real disagreement.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import regcore
from regcore.conventions import CONVENTIONS, exact, rounded
from regcore.errors import SpecError
from regcore.registry import GROUP, BackendNotFoundError
from regcore.terms import TERMS, ElasticNet, Term, convert

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
    "sklearn_elasticnet": "sklearn ElasticNet(alpha, l1_ratio)",
}
#: What a user types for scikit-learn's elastic net, in place of the term's ``l1``/``l2`` parts.
SKLEARN_ELASTICNET = ("alpha", "l1_ratio")


class CliError(Exception):
    """Bad input or environment: one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        raise CliError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="regcore", description="regcore: one regularization spec, every "
                     "framework. Exit codes: 0 ok, 1 backends disagree, 2 bad input.")
    parser.add_argument("--version", action="version", version=f"regcore {regcore.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("backends", help="registered backends, whether each is importable, and "
                                        "its framework's version (imports no framework)")
    p.add_argument("--json", action="store_true", help="JSON output")

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
    rows = backend_status()
    if args.json:
        print(json.dumps({"backends": [r["name"] for r in rows],
                          "importable": [r["name"] for r in rows if r["importable"]],
                          "details": {r["name"]: r for r in rows}}))
        return EXIT_OK
    if not rows:
        print("no backends registered; pip install 'regcore[numpy]' at least")
        return EXIT_OK
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="regcore backends: registered, and importable here")
    for column in ("backend", "registered by", "needs", "importable"):
        table.add_column(column)
    for r in rows:
        needs = ", ".join(f"{n['name']} {n['version'] or '[red]missing[/red]'}"
                          + (f" (as {n['as']})" if n.get("as") else "") for n in r["needs"])
        table.add_row(r["name"], escape(r["registered_by"]), needs or "-",
                      "[green]yes[/green]" if r["importable"]
                      else f"[red]no[/red]: {escape(r['install'])}")
    Console().print(table)
    return EXIT_OK


def backend_status() -> list[dict[str, Any]]:
    """Every registered backend (entry point group ``regcore.backends``) with what it needs and
    whether that is importable here, from package metadata and ``find_spec`` alone: no backend
    module and no framework is imported.

    What a backend needs: the requirements of the extra named after it in the distribution that
    registers it (``regcore[torch]``), or else that distribution's own requirements (an outside
    backend package). A requirement is met by its distribution or, failing that, by
    an importable module of that name (``tensorflow`` from ``tensorflow-cpu``).
    """
    from importlib.metadata import entry_points

    first: dict[str, Any] = {}
    for ep in entry_points(group=GROUP):
        first.setdefault(ep.name, ep)  # load_backend takes the first of a duplicated name
    return [_backend_row(first[name]) for name in sorted(first)]


def _backend_row(ep: Any) -> dict[str, Any]:
    from importlib.util import find_spec

    dist = ep.dist
    extras = {_norm(e) for e in (dist.metadata.get_all("Provides-Extra") or [])} if dist else set()
    extra = _norm(ep.name) if _norm(ep.name) in extras else None
    needs = [{"name": name, **_installed(name)} for name in _requirements(dist, extra)]
    module = ep.value.partition(":")[0].strip()
    try:  # the top-level package only: finding a submodule would import its parents
        found = find_spec(module.partition(".")[0]) is not None
    except (ImportError, ValueError):
        found = False
    missing = [n["name"] for n in needs if not n["version"]]
    reason = install = ""
    if missing or not found:
        reason = f"{', '.join(missing)} not installed" if missing else f"{module} not found"
        install = (f'pip install "{dist.name}[{extra}]"' if dist and extra
                   else f"pip install {' '.join(missing or [dist.name if dist else module])}")
    return {"name": ep.name, "entry_point": ep.value,
            "registered_by": f"{dist.name} {dist.version}" if dist else "?",
            "needs": needs, "importable": not reason, "reason": reason, "install": install}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(dist: Any, extra: str | None) -> list[str]:
    """Distribution names ``dist`` requires for ``extra`` (``None``: unconditionally), less
    regcore itself."""
    names: list[str] = []
    for req in (dist.requires or []) if dist else []:
        spec, _, marker = req.partition(";")
        markers = {_norm(e) for e in re.findall(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)}
        if markers != ({extra} if extra else set()):
            continue
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
        if match and _norm(match[1]) not in {"regcore", _norm(dist.name)} \
                and match[1] not in names:
            names.append(match[1])
    return names


def _installed(name: str) -> dict[str, str | None]:
    """``{"version": ...}`` of an installed distribution, else of the distribution providing an
    importable module of that name (``{"as": "tensorflow_cpu"}``), else ``{"version": None}``."""
    from importlib.metadata import PackageNotFoundError, packages_distributions, version
    from importlib.util import find_spec

    try:
        return {"version": version(name)}
    except PackageNotFoundError:
        pass
    module = _norm(name).replace("-", "_")
    try:
        if find_spec(module) is not None:
            providers = packages_distributions().get(module, [])
            if providers:
                return {"version": version(providers[0]), "as": providers[0]}
    except (ImportError, ValueError, PackageNotFoundError):
        pass
    return {"version": None}


# -- convert -------------------------------------------------------------------------------------


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


def _convert(args: argparse.Namespace) -> int:
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
        row: dict[str, Any] = {"convention": target, "who": _WHO.get(target, "")}
        try:
            row["coefficients"] = _convert_one(cls, term, target, args)
        except SpecError as exc:
            row["refused"] = _one_line(exc)
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
