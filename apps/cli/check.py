"""``regcore check``: a user's spec through the conformance scenarios on every installed backend,
device and dtype — loss and every gradient against the NumPy float64 reference, within the suite's
derived tolerances (:mod:`regcore_conformance.tolerance`).

A scenario the spec does not apply to is listed as not applicable, and one whose data needs an
optional dependency that is not installed (Iris: scikit-learn) as skipped, each with its reason
and one line per distinct reason; neither changes the exit code. Every comparison is the suite's
own (:meth:`regcore_conformance.checker.Checker.compare`: dtype, shape, then the error against
the tolerance), so ``regcore check`` and the conformance suite cannot disagree."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regcore import Backend
from regcore.errors import SpecError, UnsupportedError
from regcore.spec import Plan, Spec
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
    p = sub.add_parser("check", help="run a spec through the scenarios on every backend")
    p.add_argument("spec", type=Path, help="spec JSON file")
    p.add_argument("--backends", help="comma-separated names (or package.module:Class); "
                                      "default: every installed backend")
    p.add_argument("--devices", help="comma-separated; default: every available device")
    p.add_argument("--dtypes", default="float64,float32", help="default: float64,float32")
    p.add_argument("--json", action="store_true", help="JSON output")


@dataclass
class Row:
    """One line of the table: a backend on a device in a dtype, over every scenario."""

    backend: str
    device: str
    dtype: str
    checked: list[str] = field(default_factory=list)  # scenarios
    worst: float = 0.0  # worst error / tolerance
    worst_at: str = ""
    failures: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def status(self) -> str:
        if self.note:
            return "skipped"
        return "disagrees" if self.failures else "agrees"


@dataclass(frozen=True)
class Case:
    """A backend on one device in one dtype."""

    backend: Backend
    device: str
    dtype: str


@dataclass(frozen=True)
class ScenarioCheck:
    """A conformance scenario the spec applies to: its plan, and what the NumPy float64 reference
    computes there (``loss``, ``grads`` by parameter name)."""

    name: str
    scenario: Any  # regcore_conformance.scenarios.Scenario
    plan: Plan
    loss: Any
    grads: dict[str, Any]


def _scenarios_or_error() -> dict[str, Any]:
    """The conformance scenarios, after checking that what ``regcore check`` runs with imports
    (the scenarios need NumPy; the suite's checker, pytest); :class:`CliError` with what to
    install."""
    try:
        import numpy  # noqa: F401
    except ImportError as exc:
        raise CliError(f"regcore check needs NumPy ({exc}); pip install 'regcore[numpy]'") \
            from None
    try:
        from regcore_conformance import checker  # noqa: F401
        from regcore_conformance.scenarios import SCENARIOS
    except ImportError as exc:
        raise CliError(f"regcore check needs the conformance suite ({exc}); pip install "
                       "'regcore[conformance]'") from None
    return SCENARIOS


#: Import name -> what to install, for the scenarios' optional dependencies.
_DISTRIBUTIONS = {"sklearn": "scikit-learn"}


def _scenarios(spec: Spec, scenarios: dict[str, Any]
               ) -> tuple[dict[str, Plan], dict[str, str], dict[str, str]]:
    """The scenarios that run (with their plans); why the spec does not apply to others; and
    which need an optional dependency that is not installed."""
    plans, not_applicable, skipped = {}, {}, {}
    for name, s in scenarios.items():
        try:
            plan = spec.resolve(s.model.params(), s.model.layer_names())
        except SpecError as exc:
            not_applicable[name] = str(exc)
            continue
        try:
            s.data()  # Iris needs scikit-learn
        except ImportError as exc:
            missing = _DISTRIBUTIONS.get(exc.name or "", exc.name or str(exc))
            skipped[name] = f"needs {missing}, not installed (pip install {missing})"
            continue
        plans[name] = plan
    if not plans:
        head = "no scenario can run" if skipped else "the spec applies to none of the scenarios"
        raise CliError(f"{head}: " + "; ".join(_grouped({**not_applicable, **skipped})))
    return plans, not_applicable, skipped


def _grouped(reasons: dict[str, str]) -> list[str]:
    """``"a, b: reason"``: each distinct reason once, after the scenarios it applies to."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in reasons.items():
        by_reason.setdefault(reason, []).append(name)
    return [f"{', '.join(names)}: {reason}" for reason, names in by_reason.items()]


def _cases(backends: list[Backend], devices: list[str] | None, dtypes: list[str]
           ) -> list[Case]:
    for device in devices or []:
        if not any(device in b.devices for b in backends):
            raise CliError(f"unknown device {device!r}; the backends declare "
                           f"{', '.join(sorted({d for b in backends for d in b.devices}))}")
    cases = [Case(b, device, dtype) for b in backends for device in devices or b.devices
             if device in b.devices for dtype in dtypes]
    if devices and not any(device_usable(c.backend, c.device) for c in cases):
        raise CliError(f"device(s) {', '.join(devices)} not available on this machine")
    return cases


def run(args: argparse.Namespace) -> int:
    return run_check(args, load_spec(args.spec))


def run_check(args: argparse.Namespace, spec: Spec) -> int:
    scenarios = _scenarios_or_error()
    from regcore_adapters.numpy import NumpyBackend

    dtypes = split_commas(args.dtypes) or []
    for dtype in dtypes:
        if dtype not in ("float64", "float32"):
            raise CliError(f"unknown dtype {dtype!r}; regcore check runs float64 and float32")
    plans, not_applicable, skipped = _scenarios(spec, scenarios)
    backends, unavailable = load_backends(split_commas(args.backends))
    rows = [Row(name, "-", "-", note=note) for name, note in unavailable.items()]
    cases = _cases(backends, split_commas(args.devices), dtypes)
    reference = NumpyBackend()
    checks = []
    for name, plan in plans.items():
        s = scenarios[name]
        loss, grads = reference.loss_and_grads(s.model, plan, s.initial_params(), *s.data())
        checks.append(ScenarioCheck(name, s, plan, loss, grads))

    with ProgressBar(len(cases) * len(checks), args.json) as advance:
        for case in cases:
            row = Row(case.backend.name, case.device, case.dtype)
            rows.append(row)
            if not device_usable(case.backend, case.device):
                row.note = f"device {case.device!r} not available here"
                advance(len(checks))
                continue
            if not case.backend.supports(case.device, case.dtype):
                row.note = f"{case.dtype} not supported on {case.device}"
                advance(len(checks))
                continue
            for target in checks:
                _check_scenario(case, target, row)
                advance(1)
    return _output(args, rows, not_applicable, skipped)


def _check_scenario(case: Case, target: ScenarioCheck, row: Row) -> None:
    """The backend's loss and gradients on ``target`` against the reference's, each compared by
    the conformance suite's :meth:`~regcore_conformance.checker.Checker.compare` (dtype, shape,
    error against the derived tolerance); the outcome added to ``row``."""
    from regcore_conformance.checker import Checker
    from regcore_conformance.inputs import inputs
    from regcore_conformance.report import Report
    from regcore_conformance.tolerance import Tolerance, model_chain

    b, s = case.backend, target.scenario
    params, x, y = inputs(b, s, case.device, case.dtype)  # token ids stay integers
    try:
        loss, grads = b.loss_and_grads(s.model, target.plan, params, x, y)
    except UnsupportedError as exc:
        row.note = str(exc)
        return
    except Exception as exc:  # a crashing backend disagrees; say how
        row.failures.append(f"{target.name}: {type(exc).__name__}: {exc}")
        row.worst = float("inf")
        return
    row.checked.append(target.name)
    records = Report(b.name)
    check = Checker(records, f"regcore check {target.name}", set(), backend=b.name,
                    device=case.device, dtype=case.dtype, scenario=target.name)
    tol = Tolerance(case.dtype, model_chain(s.model, s.batch_size))
    floor = max(float(abs(g).max()) for g in target.grads.values())
    check.compare("loss", b.to_numpy(loss), target.loss, tol)
    for k, want in target.grads.items():
        if k not in grads:
            check.holds(f"grad:{k}", False, "missing from the backend's gradients")
            continue
        check.compare(f"grad:{k}", b.to_numpy(grads[k]), want, tol, scale_floor=floor)
    for record in records.records:
        ratio = (record.error / record.tolerance if record.tolerance > 0
                 else 0.0 if record.error == 0 else math.inf)
        if not math.isfinite(ratio) or ratio > row.worst:
            row.worst, row.worst_at = ratio, f"{target.name} {record.check}"
        if record.outcome != "pass":
            row.failures.append(f"{target.name} {record.detail}")


def _output(args: argparse.Namespace, rows: list[Row], not_applicable: dict[str, str],
            skipped: dict[str, str]) -> int:
    disagree = any(r.failures for r in rows)
    if args.json:
        print(json.dumps({
            "agree": not disagree,
            "rows": [{"backend": r.backend, "device": r.device, "dtype": r.dtype,
                      "status": r.status, "scenarios": r.checked,
                      "worst_ratio": r.worst if r.worst != float("inf") else None,
                      "worst_at": r.worst_at, "failures": r.failures, "note": r.note}
                     for r in rows],
            "scenarios_not_applicable": not_applicable,
            "scenarios_skipped": skipped,
        }))
        return EXIT_DISAGREE if disagree else EXIT_OK
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="regcore check: loss and gradients against the NumPy float64 reference")
    for column in ("backend", "device", "dtype", "scenarios", "worst err/tol", "status"):
        table.add_column(column)
    for r in rows:
        status = {"agrees": "[green]agrees[/green]", "disagrees": "[red]disagrees[/red]",
                  "skipped": f"[yellow]skipped[/yellow]: {escape(r.note)}"}[r.status]
        worst = f"{r.worst:.3g}" + (f" ({r.worst_at})" if r.worst_at and r.worst else "") \
            if r.checked or r.failures else "-"
        table.add_row(r.backend, r.device, r.dtype, str(len(r.checked)), escape(worst), status)
    console = Console()
    console.print(table)
    for line in _grouped(not_applicable):
        console.print(f"not applicable: {escape(line)}", highlight=False)
    for line in _grouped(skipped):
        console.print(f"[yellow]skipped[/yellow]: {escape(line)}", highlight=False)
    for r in rows:
        for failure in r.failures:
            console.print(f"[red]{r.backend} {r.device} {r.dtype}[/red] {escape(failure)}")
    return EXIT_DISAGREE if disagree else EXIT_OK
