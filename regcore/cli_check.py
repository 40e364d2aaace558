"""``regcore check``: a user's spec through the conformance scenarios on every installed backend,
device and dtype — loss and every gradient against the NumPy float64 reference, within the suite's
derived tolerances (:mod:`regcore_conformance.tolerance`).

A scenario the spec does not apply to is listed as not applicable, and one whose data needs an
optional dependency that is not installed (Iris: scikit-learn) as skipped, each with its reason
and one line per distinct reason; neither changes the exit code."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Any

from regcore.cli import EXIT_DISAGREE, EXIT_OK, CliError, backend_status
from regcore.errors import SpecError, UnsupportedError
from regcore.registry import BackendNotFoundError, available_backends, load_backend
from regcore.spec import Spec


@dataclass
class Row:
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


def _imports():
    try:
        import numpy as np

        from regcore_conformance.scenarios import SCENARIOS
        from regcore_conformance.tolerance import Tolerance, network_chain
    except ImportError as exc:
        raise CliError(f"regcore check needs NumPy ({exc}); pip install 'regcore[numpy]'") from None
    return np, SCENARIOS, Tolerance, network_chain


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


#: Import name -> what to install, for the scenarios' optional dependencies.
_DISTRIBUTIONS = {"sklearn": "scikit-learn"}


def _scenarios(spec: Spec, scenarios: dict[str, Any]
               ) -> tuple[dict, dict[str, str], dict[str, str]]:
    """The scenarios that run (with their plans); why the spec does not apply to others; and
    which need an optional dependency that is not installed."""
    plans, not_applicable, skipped = {}, {}, {}
    for name, s in scenarios.items():
        try:
            plan = spec.resolve(s.model.params())
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


def _backends(requested: list[str] | None) -> tuple[list, list[Row]]:
    """The backends asked for (any failure is an error), else every registered one that is
    importable here (the others become skipped rows naming what to install)."""
    missing = {} if requested else {r["name"]: f"{r['reason']} ({r['install']})"
                                     for r in backend_status() if not r["importable"]}
    names = requested or available_backends()
    if not names:
        raise CliError("no backends installed; pip install 'regcore[numpy]' at least")
    loaded, unavailable = [], []
    for name in names:
        if name in missing:
            unavailable.append(Row(name, "-", "-", note=missing[name]))
            continue
        try:
            loaded.append(load_backend(name))
        except BackendNotFoundError as exc:
            if requested:
                raise
            unavailable.append(Row(name, "-", "-", note=f"cannot load: {exc}"))
    return loaded, unavailable


def _cases(backends: list, devices: list[str] | None, dtypes: list[str]) -> list[tuple]:
    cases = []
    for device in devices or []:
        if not any(device in b.devices for b in backends):
            raise CliError(f"unknown device {device!r}; the backends declare "
                           f"{', '.join(sorted({d for b in backends for d in b.devices}))}")
    for b in backends:
        for device in devices or b.devices:
            if device not in b.devices:
                continue
            for dtype in dtypes:
                cases.append((b, device, dtype))
    if devices and not any(_available(b, d) for b, d, _ in cases):
        raise CliError(f"device(s) {', '.join(devices)} not available on this machine")
    return cases


def _available(backend, device: str) -> bool:
    try:
        return bool(backend.device_available(device))
    except Exception:  # a broken driver: the device is not usable
        return False


def run_check(args: argparse.Namespace, spec: Spec) -> int:
    np, scenarios, Tolerance, network_chain = _imports()
    from regcore_adapters.numpy import NumpyBackend

    dtypes = _split(args.dtypes) or []
    for dtype in dtypes:
        if dtype not in ("float64", "float32"):
            raise CliError(f"unknown dtype {dtype!r}; regcore check runs float64 and float32")
    plans, not_applicable, skipped = _scenarios(spec, scenarios)
    backends, rows = _backends(_split(args.backends))
    cases = _cases(backends, _split(args.devices), dtypes)
    reference = NumpyBackend()
    refs = {}
    for name, plan in plans.items():
        s = scenarios[name]
        refs[name] = reference.loss_and_grads(s.model, plan, s.initial_params(), *s.data())

    with _progress(len(cases) * len(plans), args.json) as advance:
        for backend, device, dtype in cases:
            row = Row(backend.name, device, dtype)
            rows.append(row)
            if not _available(backend, device):
                row.note = f"device {device!r} not available here"
                advance(len(plans))
                continue
            if not backend.supports(device, dtype):
                row.note = f"{dtype} not supported on {device}"
                advance(len(plans))
                continue
            for name, plan in plans.items():
                _check_one(np, backend, device, dtype, scenarios[name], name, plan, refs[name],
                           Tolerance(dtype, network_chain(scenarios[name].model.sizes,
                                                          scenarios[name].batch_size)), row)
                advance(1)
    return _output(args, rows, not_applicable, skipped)


def _check_one(np, backend, device, dtype, scenario, name, plan, ref, tol, row: Row) -> None:
    x, y = scenario.data()
    label_dtype = "int64" if scenario.classification else dtype
    params = {k: backend.asarray(v, dtype=dtype, device=device)
              for k, v in scenario.initial_params().items()}
    try:
        loss, grads = backend.loss_and_grads(
            scenario.model, plan, params, backend.asarray(x, dtype=dtype, device=device),
            backend.asarray(y, dtype=label_dtype, device=device))
    except UnsupportedError as exc:
        row.note = str(exc)
        return
    except Exception as exc:  # a crashing backend disagrees; say how
        row.failures.append(f"{name}: {type(exc).__name__}: {exc}")
        row.worst = float("inf")
        return
    row.checked.append(name)
    ref_loss, ref_grads = ref
    floor = max(float(np.max(np.abs(g))) for g in ref_grads.values())
    pairs = [("loss", loss, ref_loss, 0.0)] + [
        (f"grad:{k}", grads[k], g, floor) for k, g in ref_grads.items()]
    for what, got, want, scale_floor in pairs:
        got = np.asarray(backend.to_numpy(got), dtype=np.float64)
        want = np.asarray(want, dtype=np.float64)
        scale = max(float(np.max(np.abs(want))), scale_floor)
        diff = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
        error = 0.0 if diff == 0 else (diff / scale if scale > 0 else float("inf"))
        ratio = error / tol.value if np.isfinite(error) else float("inf")
        if not np.isfinite(ratio) or ratio > row.worst:
            row.worst, row.worst_at = ratio, f"{name} {what}"
        if not ratio <= 1:
            row.failures.append(f"{name} {what}: error {error:.3g} > tolerance {tol.value:.3g}")


class _progress:
    """A rich progress bar on stderr while work runs (only on a terminal, never with --json);
    entering gives ``advance(n, description=None)``."""

    def __init__(self, total: int, quiet: bool, description: str = "checking") -> None:
        self.total, self.quiet, self.description = total, quiet, description

    def __enter__(self):
        from rich.console import Console
        from rich.progress import Progress

        console = Console(stderr=True)
        self.bar = Progress(console=console, transient=True,
                            disable=self.quiet or not console.is_terminal)
        self.bar.start()
        task = self.bar.add_task(self.description, total=self.total)

        def advance(n: int, description: str | None = None) -> None:
            self.bar.update(task, advance=n, **({"description": description}
                                                if description else {}))

        return advance

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


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
