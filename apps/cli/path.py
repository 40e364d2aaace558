"""``regcore path``: choose λ by k-fold cross-validation on every backend, with plots.

Runs :func:`regcore_apps.path.run` on each backend, writes ``path.json`` (every number) and the
plots (:mod:`regcore_apps.path.plot`) to ``--out``, and prints one row per backend: the chosen
value under both rules and how far its mean validation losses are from the first backend's, against
the suite's derived tolerance for a trajectory of that many steps
(:mod:`regcore_conformance.tolerance`). Exit 0 when every backend that ran makes the same choice
within tolerance, 1 when they disagree, 2 for bad input (nothing ran).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from regcore.errors import UnsupportedError
from regcore.spec import Spec
from regcore_apps.cli.backends import load_backends
from regcore_apps.cli.common import (
    EXIT_DISAGREE,
    EXIT_OK,
    CliError,
    ProgressBar,
    device_usable,
    load_spec,
    split_commas,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("path", help="choose a coefficient by k-fold cross-validation, with plots")
    p.add_argument("spec", type=Path, help="spec JSON file: its first coefficient is the axis, "
                                           "every other coefficient scales with it")
    p.add_argument("--data", required=True,
                   help="iris | synthetic | a conformance scenario | FILE.npz (x, y) | FILE.csv")
    p.add_argument("--backends", help="comma-separated; default: every installed backend")
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0, help="fold shuffling and file models' init")
    p.add_argument("--grid", metavar="LOW:HIGH:N",
                   help="N log-spaced values; default: 1e-3 to 1e2 times the spec's value, 21")
    p.add_argument("--values", help="comma-separated grid values (instead of --grid)")
    p.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"),
                   help="sgd: proximal steps (exact zeros for L1); adam: subgradient")
    p.add_argument("--lr", type=float, help="step size; default: 1/L for linear models, "
                                            "the preset's for networks")
    p.add_argument("--steps", type=int, help="steps per grid value (default 300; 100 for "
                                             "networks)")
    p.add_argument("--rule", default="min", choices=("min", "1se"),
                   help="the choice reported first (both are computed)")
    p.add_argument("--hidden", help="hidden sizes for a data file's network, e.g. 16,16")
    p.add_argument("--activation", choices=("relu", "tanh"))
    p.add_argument("--loss", choices=("mse", "half_mse", "softmax_xent"))
    p.add_argument("--out", type=Path, default=Path("regcore-path"),
                   help="folder for path.json and the plots (default: regcore-path)")
    p.add_argument("--formats", default="png,svg", help="plot formats (default png,svg)")
    p.add_argument("--no-plots", action="store_true", help="skip the plots")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _grid(args: argparse.Namespace, spec: Spec) -> tuple[float, ...]:
    from regcore_apps.path import grid

    if args.grid and args.values:
        raise CliError("give --grid or --values, not both")
    if args.values:
        try:
            values = [float(v) for v in args.values.split(",") if v.strip()]
        except ValueError:
            raise CliError(f"--values: not a list of numbers: {args.values!r}") from None
        return grid.checked(values)
    if args.grid:
        parts = args.grid.split(":")
        try:
            low, high, num = float(parts[0]), float(parts[1]), int(parts[2])
            if len(parts) != 3:
                raise ValueError
        except (ValueError, IndexError):
            raise CliError(f"--grid: expected LOW:HIGH:N, got {args.grid!r}") from None
        return grid.log_grid(low, high, num)
    return grid.default_grid(spec)


def run(args: argparse.Namespace) -> int:
    return run_path(args, load_spec(args.spec))


def run_path(args: argparse.Namespace, spec: Spec) -> int:
    try:
        import numpy as np

        from regcore_apps.path.data import problem
        from regcore_apps.path.engine import Settings, run
        from regcore_apps.path.folds import kfold
        from regcore_conformance.tolerance import Tolerance, network_chain
    except ImportError as exc:
        raise CliError(f"regcore path needs NumPy ({exc}); pip install 'regcore[numpy]'") \
            from None
    hidden = tuple(int(h) for h in split_commas(args.hidden) or ()) if args.hidden else ()
    prob = problem(args.data, hidden=hidden, activation=args.activation, loss=args.loss,
                   seed=args.seed)
    if spec.activity:
        raise CliError("regcore path: the spec has activity penalties (terms on layer outputs), "
                       "which the λ path does not sweep; remove spec.activity")
    spec.resolve(prob.model.params())  # a spec that fits no parameter: bad input, up front
    values = _grid(args, spec)
    lr = args.lr
    if lr is None and not prob.linear:
        from regcore_conformance.scenarios import SCENARIOS

        preset = SCENARIOS.get("iris_mlp" if args.data == "iris" else args.data)
        if preset is None:
            raise CliError("a network on a data file needs --lr")
        lr = preset.lr
    steps = args.steps if args.steps is not None else (300 if prob.linear else 100)
    settings = Settings(folds=args.folds, seed=args.seed, optimizer=args.optimizer, lr=lr,
                        steps=steps, dtype=args.dtype, device=args.device)
    kfold(prob.x.shape[0], args.folds, args.seed)  # bad folds: refused before any work
    backends, _ = load_backends(split_commas(args.backends))
    formats = split_commas(args.formats) or []
    if not args.no_plots:
        for fmt in formats:
            if fmt not in ("png", "svg", "pdf"):
                raise CliError(f"--formats: unknown format {fmt!r}; png, svg or pdf")
        _plot_module()
    runnable, rows = [], []
    for b in backends:
        if args.device not in b.devices or not device_usable(b, args.device):
            rows.append({"backend": b.name, "status": "skipped",
                         "note": f"device {args.device!r} not available"})
        elif not b.supports(args.device, args.dtype):
            rows.append({"backend": b.name, "status": "skipped",
                         "note": f"{args.dtype} not supported on {args.device}"})
        else:
            runnable.append(b)
    results = []
    fits = (args.folds + 1) * len(values)
    with ProgressBar(fits * len(runnable), args.json, "fitting") as advance:
        for b in runnable:
            try:
                results.append(run(b, prob, spec, values, settings,
                                   _counter(advance, b.name, args.folds, len(values))))
            except UnsupportedError as exc:
                rows.append({"backend": b.name, "status": "skipped", "note": str(exc)})
    if not results:
        raise CliError("no backend could run the path: "
                       + "; ".join(f"{r['backend']}: {r['note']}" for r in rows))
    tol = Tolerance(args.dtype, network_chain(prob.model.sizes, prob.x.shape[0]),
                    steps=steps * len(values)).value
    first = np.asarray(results[0]["mean_val"])
    scale = float(np.max(np.abs(first)))
    for r in results:
        error = float(np.max(np.abs(np.asarray(r["mean_val"]) - first))) / scale
        same = all(r["choice"][k]["index"] == results[0]["choice"][k]["index"]
                   for k in ("min", "1se"))
        r["agreement"] = {"against": results[0]["backend"], "error": error, "tolerance": tol,
                          "same_choice": same}
        rows.append({"backend": r["backend"], "status": "agrees" if same and error <= tol
                     else "disagrees", "result": r})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "path.json").write_text(json.dumps({"results": results}, indent=1))
    written = [args.out / "path.json"]
    if not args.no_plots:
        for r in results:
            written += _plot_module().save(r, args.out, formats=tuple(formats),
                                           prefix=f"{r['backend']}-")
    disagree = any(r["status"] == "disagrees" for r in rows)
    _print(args, rows, written, disagree)
    return EXIT_DISAGREE if disagree else EXIT_OK


def _counter(advance: Any, name: str, folds: int, per_fold: int) -> Any:
    """``progress()`` for one backend's run: advances the bar, naming the fold being fitted."""
    done = 0

    def progress() -> None:
        nonlocal done
        done += 1
        fold = (done - 1) // per_fold + 1
        advance(1, f"{name}: fold {fold}/{folds}" if fold <= folds else f"{name}: all data")

    return progress


def _plot_module():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CliError("plots need matplotlib: pip install 'regcore[plot]' (or pass "
                       "--no-plots)") from None
    from regcore_apps.path import plot

    return plot


def _print(args: argparse.Namespace, rows: list[dict], written: list[Path],
           disagree: bool) -> None:
    if args.json:
        print(json.dumps({"agree": not disagree, "files": [str(p) for p in written], "rows": [
            {"backend": r["backend"], "status": r["status"], "note": r.get("note", ""),
             **({"choice": r["result"]["choice"], "agreement": r["result"]["agreement"],
                 "seconds": r["result"]["seconds"]} if "result" in r else {})}
            for r in rows]}))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    done = [r["result"] for r in rows if "result" in r]
    label = done[0]["axis"]["label"]
    other = "1se" if args.rule == "min" else "min"
    table = Table(title=f"regcore path: {escape(label)}, {done[0]['folds']['k']}-fold, "
                        f"{done[0]['problem']}, {args.dtype}")
    for column in ("backend", f"λ ({args.rule})", "val loss", f"λ ({other})",
                   "err/tol", "time", "status"):
        table.add_column(column)
    for r in rows:
        if "result" not in r:
            table.add_row(r["backend"], "-", "-", "-", "-", "-",
                          f"[yellow]skipped[/yellow]: {escape(r['note'])}")
            continue
        res = r["result"]
        pick, alt = res["choice"][args.rule], res["choice"][other]
        agreement = res["agreement"]
        status = "[green]agrees[/green]" if r["status"] == "agrees" else "[red]disagrees[/red]"
        table.add_row(res["backend"], f"{pick['value']:.4g}",
                      f"{res['mean_val'][pick['index']]:.6g}", f"{alt['value']:.4g}",
                      f"{agreement['error'] / agreement['tolerance']:.3g}",
                      f"{res['seconds']:.1f} s", status)
    console.print(table)
    if "coefficients" in done[0]:
        res = done[0]
        i = res["choice"][args.rule]["index"]
        console.print(f"at the choice: {res['coefficients']['zeros'][i]} of "
                      f"{len(res['coefficients']['names'])} coefficients exactly 0",
                      highlight=False)
    plots = len(written) - 1
    console.print(f"wrote {escape(str(written[0]))}"
                  + (f" and {plots} plots in {escape(str(written[0].parent))}" if plots else ""),
                  highlight=False)
    if disagree:
        console.print("[red]backends disagree[/red]: see path.json for every fold's losses")
