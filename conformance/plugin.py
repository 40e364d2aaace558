"""The pytest plugin: points the conformance suite at a backend chosen from outside.

    pytest --pyargs regcore_conformance --regcore-backend numpy
    REGCORE_BACKEND=numpy pytest --pyargs regcore_conformance
    python -m regcore_conformance --backend numpy

Registered through the ``pytest11`` entry point, so it is active wherever regcore is installed; it
does nothing unless the suite's own modules are collected. Devices come from what the backend
declares, decided at collection: the tests run on the usable ones only, and each unavailable one
is a single skip record naming backend, device and reason; dtypes the backend lacks are
skips naming the backend, and so is any check that needs a capability class of
:mod:`regcore.capabilities` the backend does not inherit (a test marked
``@pytest.mark.regcore_needs("Harness")``, found with ``isinstance``; the reason names the
capability) or a setting it does not offer (it raised :class:`regcore.UnsupportedError`). A backend
author's known skips, expected failures and tolerance overrides live in their own repository
(``--regcore-expect FILE``, :mod:`regcore_conformance.expectations`). Every check lands in a JSON
report (``--regcore-report``, default ``reports/conformance-<backend>.json``) and in a summary
table at the end of the run.
"""

from __future__ import annotations

import os
import types
import warnings
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from regcore import (
    Backend,
    BackendNotFoundError,
    ModelSpec,
    NativeTranslations,
    UnsupportedError,
    capabilities,
    load_backend,
)
from regcore.capabilities import missing
from regcore.harness import OPTIMIZERS
from regcore_conformance import coverage, expectations
from regcore_conformance.cases import TERM_CASES, scenario_specs, shrinkage_cases
from regcore_conformance.checker import Checker
from regcore_conformance.report import DEVICE_UNAVAILABLE, Record, Report
from regcore_conformance.scenarios import MLP_SCENARIOS, SCENARIOS

SUITE_DTYPES = ("float64", "float32")
LOW_PRECISION_DTYPES = ("float16", "bfloat16")  # parameter dtypes of test_low_precision
LINEAR_SCENARIOS = tuple(n for n, s in SCENARIOS.items()
                         if isinstance(s.model, ModelSpec) and s.model.layers == 1)
_STATE = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("regcore", "regcore conformance suite")
    group.addoption("--regcore-backend", default=os.environ.get("REGCORE_BACKEND"),
                    help="backend to test: a registered name, or package.module:Class "
                         "(env REGCORE_BACKEND)")
    group.addoption("--regcore-report", default=os.environ.get("REGCORE_REPORT"),
                    help="JSON report path (env REGCORE_REPORT; default "
                         "reports/conformance-<backend>.json)")
    group.addoption("--regcore-expect", default=os.environ.get("REGCORE_EXPECT"),
                    help="TOML file of known skips, expected failures and tolerance overrides "
                         "(env REGCORE_EXPECT; see regcore_conformance.expectations)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "regcore_needs(name): the test needs the backend to "
                                       "inherit the class of regcore.capabilities of that name "
                                       "(else a skip naming it)")
    name = config.getoption("--regcore-backend")
    state: dict[str, Any] = {"backend": None, "report": None, "failed_tests": set(),
                             "expect": expectations.Expectations(), "scanned": 0}
    expect = config.getoption("--regcore-expect")
    if expect:
        try:
            state["expect"] = expectations.load(expect)
        except expectations.ExpectationError as exc:
            raise pytest.UsageError(f"--regcore-expect: {exc}") from None
    if name:
        try:
            backend = _load(name)
        except BackendNotFoundError as exc:
            raise pytest.UsageError(f"--regcore-backend: {exc}") from None
        state["backend"] = backend
        state["report"] = Report(backend.name)
        state["report"].capabilities = type(backend).capabilities()
        _decide_devices(state, backend, record=not _is_worker(config))
    config.stash[_STATE] = state


def _is_worker(config: pytest.Config) -> bool:
    """A pytest-xdist worker (``-n N``): it runs tests and sends what it recorded to the
    controller, which writes the one report."""
    return hasattr(config, "workerinput")


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook, called in the controller
def pytest_testnodedown(node: Any, error: Any) -> None:
    state = node.config.stash.get(_STATE, None)
    sent = getattr(node, "workeroutput", {}).get("regcore")
    if not state or state["report"] is None or not sent:
        return
    state["report"].merge(sent["report"])
    for entry, matched in zip(state["expect"].entries, sent["matched"], strict=True):
        # skips and xfails match at collection, which every worker does in full; tolerance
        # overrides match checks, which the workers share out
        entry.matched = entry.matched + matched if entry.kind == "tolerance" else max(
            entry.matched, matched)


def backend_of(config: pytest.Config) -> Backend | None:
    """The backend under test (``None`` before one is chosen)."""
    return config.stash[_STATE]["backend"]


def _load(name: str) -> Backend:
    """A registered name, or ``package.module:Class`` for a backend not (yet) registered."""
    return load_backend(name)


_SUITE_DIR = Path(__file__).resolve().parent


def _is_suite(module: types.ModuleType) -> bool:
    """A test module of this package, by its file: pytest names it ``conformance.test_terms``
    rather than ``regcore_conformance.test_terms`` when the package is installed editable."""
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve().parent == _SUITE_DIR


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not _is_suite(metafunc.module):
        return
    backend: Backend | None = metafunc.config.stash[_STATE]["backend"]
    if backend is None:
        metafunc.config.stash[_STATE]["needs_backend"] = True
        return
    names = metafunc.fixturenames
    if "device" in names:  # only the usable ones: the others are one record each
        metafunc.parametrize("device", metafunc.config.stash[_STATE]["devices"])
    if "dtype" in names:
        metafunc.parametrize("dtype", [
            pytest.param(t, id=t, marks=() if t in backend.dtypes else pytest.mark.skip(
                reason=f"{backend.name}: dtype {t} not supported"))
            for t in SUITE_DTYPES
        ])
    if "low_dtype" in names:
        metafunc.parametrize("low_dtype", [
            pytest.param(t, id=t, marks=() if t in backend.low_precision_dtypes else
                         pytest.mark.skip(reason=f"{backend.name}: low-precision dtype {t} not "
                                                 "declared (low_precision_dtypes)"))
            for t in LOW_PRECISION_DTYPES
        ])
    if "scenario_case" in names:
        pairs = [(s, c) for s in SCENARIOS for c in scenario_specs(s)]
        metafunc.parametrize("scenario_case", pairs, ids=[f"{s}-{c}" for s, c in pairs])
    if "proximal_case" in names:
        pairs = list(shrinkage_cases())
        metafunc.parametrize("proximal_case", pairs, ids=[f"{s}-{c}" for s, c in pairs])
    if "term_case" in names:
        metafunc.parametrize("term_case", list(TERM_CASES))
    if "zero_term_case" in names:
        metafunc.parametrize("zero_term_case", [n for n, c in TERM_CASES.items() if c.zeros])
    for fixture, declared in (("native_translation", "native_translations"),
                              ("native_penalty_translation", "native_penalty_translations")):
        if fixture in names:
            offered = getattr(backend, declared) if isinstance(backend, NativeTranslations) else ()
            reason = missing(backend, NativeTranslations) or f"{backend.name}: declares no " \
                                                             f"{declared}"
            metafunc.parametrize(fixture, list(offered) or [pytest.param(
                None, id="none", marks=pytest.mark.skip(reason=reason))])
    if "optimizer" in names:
        metafunc.parametrize("optimizer", OPTIMIZERS)
    if "linear_scenario" in names:
        metafunc.parametrize("linear_scenario", LINEAR_SCENARIOS)
    if "mlp_case" in names:  # last, so a scenario's specs are neighbours (one data-parallel call)
        # activity penalties are not among the data-parallel translations' yet (docs/distributed.md)
        pairs = [(s, c) for s in MLP_SCENARIOS for c, spec in scenario_specs(s).items()
                 if not spec.activity]
        metafunc.parametrize("mlp_case", pairs, ids=[f"{s}-{c}" for s, c in pairs])


def _unavailable_reason(backend: Backend, device: str) -> str | None:
    """``None`` for a usable device; else the reason naming backend and device (and what went
    wrong, if asking the backend raised) — never a collection error."""
    try:
        available = backend.device_available(device)
    except Exception as exc:  # a broken driver must not take the whole run down
        return (f"{backend.name}: device {device!r}: device_available raised "
                f"{type(exc).__name__}: {exc}")
    return None if available else f"{backend.name}: device {device!r} not available here"


def _decide_devices(state: dict[str, Any], backend: Backend, record: bool = True) -> None:
    """Decide at collection which declared devices run (``cpu`` always first): the suite's tests
    are parametrized over those only, and each other device is one ``skip`` record
    (:data:`DEVICE_UNAVAILABLE`) with its reason, so the run's counts say what ran."""
    state["devices"] = []
    for device in dict.fromkeys(("cpu", *backend.devices)):
        reason = _unavailable_reason(backend, device)
        if reason is None:
            state["devices"].append(device)
            continue
        if record:  # once per run: by the controller under pytest-xdist
            state["report"].add(Record(
                backend=backend.name, device=device, dtype="-", scenario="-", case="-",
                check=DEVICE_UNAVAILABLE, error=0.0, max_abs_error=0.0, scale=0.0,
                tolerance=0.0, tolerance_formula="-", outcome="skip",
                test="regcore_conformance::collection", detail=reason))


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselect, so patterns see every suite test
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[_STATE]
    if state.get("needs_backend"):
        raise pytest.UsageError(
            "the regcore conformance suite needs a backend: pass --regcore-backend NAME or set "
            "REGCORE_BACKEND"
        )
    expect, backend = state["expect"], state["backend"]
    if backend is None or not expect.entries:
        return
    for item in items:
        module = getattr(item, "module", None)
        if module is None or not _is_suite(module):
            continue
        test = _test_id(item)
        skip = expect.first("skip", test)
        if skip is not None:
            skip.matched += 1
            item.add_marker(pytest.mark.skip(
                reason=f"{backend.name}: expected skip ({expect.source}): {skip.reason}"))
            continue
        xfail = expect.first("xfail", test)
        if xfail is not None:
            xfail.matched += 1
            item.add_marker(pytest.mark.xfail(
                reason=f"{backend.name}: expected failure ({expect.source}): {xfail.reason}",
                strict=xfail.strict))
    for e in expect.unmatched():
        if e.kind != "tolerance":
            _warn_unmatched(expect, e)


def _warn_unmatched(expect: expectations.Expectations, e: expectations.Expectation) -> None:
    what = "no collected test" if e.kind != "tolerance" else "no check in this run"
    warnings.warn(expectations.UnmatchedExpectationWarning(
        f"{expect.source}: {e.describe()} matches {what}; stale or misspelled?"), stacklevel=1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A check needing an optional capability the backend lacks is a skip naming the backend."""
    try:
        return (yield)
    except UnsupportedError as exc:
        backend = item.config.stash[_STATE]["backend"]
        name = backend.name if backend is not None else "backend"
        message = str(exc)
        pytest.skip(message if message.startswith(f"{name}") else f"{name}: {message}")


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.config.stash[_STATE]["backend"]


@pytest.fixture(autouse=True)
def _supported_combination(request: pytest.FixtureRequest) -> None:
    """Skip a test needing a capability the backend does not inherit (``regcore_needs``), and a
    device/dtype pair the backend declares both of but not together (float64 on MPS)."""
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    backend = request.config.stash[_STATE]["backend"]
    if backend is None:
        return
    for mark in request.node.iter_markers("regcore_needs"):
        reason = missing(backend, getattr(capabilities, mark.args[0]))
        if reason:
            pytest.skip(reason)
    if "device" in params and "dtype" in params:
        if not backend.supports(params["device"], params["dtype"]):
            pytest.skip(f"{backend.name}: {params['dtype']} is not supported on {params['device']}")


@pytest.fixture
def checker(request: pytest.FixtureRequest):
    state = request.config.stash[_STATE]

    def make(**context: str) -> Checker:
        return Checker(state["report"], _test_id(request.node), state["failed_tests"],
                       state["expect"], **context)

    return make


def _test_id(item: pytest.Item) -> str:
    """``regcore_conformance.test_terms::test_penalty[...]``, however pytest named the module."""
    return f"{__package__}.{Path(item.module.__file__).stem}::{item.name}"


def _context(params: dict[str, Any]) -> dict[str, str]:
    """Backend-neutral labels of a test's parameters, for records that no comparison made."""
    scenario, case = "-", "-"
    if "scenario_case" in params or "proximal_case" in params:
        scenario, case = params.get("scenario_case", params.get("proximal_case"))
    elif "linear_scenario" in params:
        scenario, case = params["linear_scenario"], "ridge_oracle"
    elif "scenario_name" in params:
        scenario = params["scenario_name"]
    for key in ("term_case", "zero_term_case"):
        if key in params:
            scenario, case = "terms", params[key]
    if "low_precision_term" in params:
        scenario, case = "low_precision", params["low_precision_term"]
    dtype = params.get("dtype", params.get("low_dtype", "-"))
    return {"device": str(params.get("device", "-")), "dtype": str(dtype),
            "scenario": scenario, "case": case}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Skips and crashes land in the report too: a backend that raises is not green."""
    rep = yield
    state = item.config.stash.get(_STATE, None)
    module = getattr(item, "module", None)
    if not state or state["report"] is None or module is None or not _is_suite(module):
        return rep
    test = _test_id(item)
    params = getattr(getattr(item, "callspec", None), "params", {})
    _note_coverage(state, params)
    state["report"].note_time(_timing_key(item, params), rep.when, rep.duration)
    ctx = _context(params)
    if rep.skipped and hasattr(rep, "wasxfail"):  # failed as the expectations file says
        for r in state["report"].records:
            if r.test == test and r.outcome == "fail":
                r.outcome, r.detail = "xfail", f"{rep.wasxfail} | {r.detail}"
        if not any(r.test == test for r in state["report"].records):
            state["report"].add(Record(
                backend=state["backend"].name, check=f"{rep.when}_error", error=0.0,
                max_abs_error=0.0, scale=0.0, tolerance=0.0, tolerance_formula="-",
                outcome="xfail", test=test, detail=rep.wasxfail, **ctx))
        state["failed_tests"].discard(test)
    elif rep.skipped and rep.when in ("setup", "call"):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        state["report"].add(Record(
            backend=state["backend"].name, check="skipped", error=0.0, max_abs_error=0.0,
            scale=0.0, tolerance=0.0, tolerance_formula="-", outcome="skip", test=test,
            detail=reason.removeprefix("Skipped: "), **ctx))
    elif rep.failed and test not in state["failed_tests"]:
        state["failed_tests"].add(test)
        lines = str(rep.longreprtext).strip().splitlines()
        state["report"].add(Record(
            backend=state["backend"].name, check=f"{rep.when}_error", error=float("inf"),
            max_abs_error=float("inf"), scale=0.0, tolerance=0.0, tolerance_formula="-",
            outcome="error", test=test, detail=lines[-1] if lines else "error", **ctx))
    return rep


TRANSLATION_PARAMS = ("native_translation", "native_penalty_translation",
                      "distributed_translation")


def _note_coverage(state: dict[str, Any], params: dict[str, Any]) -> None:
    """Add the combinations the records since the last call checked to the run's coverage set
    (:mod:`regcore_conformance.coverage`), with the test's native translation."""
    records = state["report"].records
    translation = next((str(params[k]) for k in TRANSLATION_PARAMS if params.get(k)), "-")
    for record in records[state["scanned"]:]:
        if record.outcome in coverage.CHECKED:
            state["report"].coverage.add(coverage.combination(asdict(record), translation))
    state["scanned"] = len(records)


def _timing_key(item: pytest.Item, params: dict[str, Any]) -> str:
    """The test function, with its translation where it has one: the rows of the timing table."""
    name = getattr(item, "originalname", item.name)
    translation = next((str(params[k]) for k in TRANSLATION_PARAMS if params.get(k)), None)
    return f"{name}[{translation}]" if translation else name


def _report_path(config: pytest.Config, backend: str) -> Path:
    given = config.getoption("--regcore-report")
    return Path(given) if given else Path("reports") / f"conformance-{backend}.json"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_STATE, None)
    if not state or state["report"] is None or not state["report"].records:
        return
    if _is_worker(session.config):  # the controller merges and writes (pytest_testnodedown)
        session.config.workeroutput["regcore"] = {  # type: ignore[attr-defined]
            "report": state["report"].to_transfer(),
            "matched": [e.matched for e in state["expect"].entries]}
        return
    backend, expect = state["backend"], state["expect"]
    for e in expect.unmatched():
        if e.kind == "tolerance":
            _warn_unmatched(expect, e)
    state["report"].expectations = {
        "source": expect.source, "overrides": expect.overrides(),
        "unmatched": [e.describe() for e in expect.unmatched()],
    }
    env = {"regcore": metadata.version("regcore"), "numpy": np.__version__}
    env.update(backend.versions())
    path = _report_path(session.config, backend.name)
    state["report"].write(path, env)
    state["path"] = path


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if not state or state["report"] is None or not state["report"].records:
        return
    terminalreporter.section(f"regcore conformance: {state['backend'].name}")
    for line in state["report"].summary_lines():
        terminalreporter.write_line(line)
    terminalreporter.write_line("where the time went, by test function (setup + call):")
    for line in state["report"].timing_lines():
        terminalreporter.write_line(line)
    for e in state["expect"].unmatched():
        terminalreporter.write_line(
            f"warning: {state['expect'].source}: {e.describe()} matched nothing")
    if "path" in state:
        terminalreporter.write_line(f"report: {state['path']}")
