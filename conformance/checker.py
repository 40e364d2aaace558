"""Comparing a backend's results with the reference, one recorded check at a time."""

from __future__ import annotations

from typing import Any

import numpy as np

from regcore_conformance.expectations import Expectations
from regcore_conformance.report import Record, Report
from regcore_conformance.tolerance import Bound, Overridden, Tolerance


class Checker:
    """Compares backend results with the reference, records every comparison, and fails the test
    at the end with all the comparisons that missed their tolerance.

    A comparison also fails when the result's dtype is not the one the case asked for (a backend
    that silently computes float32 cases in float64 is not conforming). A tolerance override from
    the backend author's expectations file applies to the checks it matches, and is recorded.
    """

    def __init__(self, report: Report, test: str, failed_tests: set[str],
                 expectations: Expectations | None = None, **context: str) -> None:
        self.report, self.test, self.failed_tests, self.context = (
            report, test, failed_tests, context)
        self.expectations = expectations or Expectations()
        self.failures: list[str] = []

    def compare(self, check: str, actual: Any, expected: Any, tol: Tolerance | Bound,
                scale_floor: float = 0.0, *, check_dtype: bool = True) -> None:
        override = self.expectations.first("tolerance", self.test, check)
        if override is not None:
            override.matched += 1
            tol = Overridden(tol, override.factor, override.reason)
        actual = np.asarray(actual)
        want_dtype = self.context.get("dtype")
        if check_dtype and want_dtype in ("float32", "float64") and actual.dtype.name != want_dtype:
            self._fail(check, np.inf, np.inf, 0.0, tol,
                       f"{check}: dtype {actual.dtype.name}, expected {want_dtype}")
            return
        actual = actual.astype(np.float64)
        expected = np.asarray(expected, dtype=np.float64)
        if actual.shape != expected.shape:
            self._fail(check, np.inf, np.inf, 0.0, tol,
                       f"{check}: shape {actual.shape} != {expected.shape}")
            return
        diff = np.abs(actual - expected)
        max_abs = float(np.max(diff)) if diff.size else 0.0
        if not np.all(np.isfinite(actual)):
            max_abs = np.inf
        scale = max(float(np.max(np.abs(expected))) if expected.size else 0.0, scale_floor)
        error = 0.0 if max_abs == 0 else (max_abs / scale if scale > 0 else np.inf)
        if error <= tol.value:
            self._record(check, error, max_abs, scale, tol, "pass", "")
        else:
            self._fail(check, error, max_abs, scale, tol,
                       f"{check}: error {error:.3g} > tolerance {tol.value:.3g} "
                       f"({tol.describe()}; max abs {max_abs:.3g}, scale {scale:.3g})")

    def unchanged(self, check: str, actual: Any, original: Any) -> None:
        """The backend left an input exactly as it was given (no in-place update of the caller's
        arrays)."""
        self.compare(check, actual, original, Bound(0.0, "bitwise equal"), check_dtype=False)

    def holds(self, check: str, condition: bool, detail: str) -> None:
        """A property with no numeric error (e.g. "the penalty of a NaN parameter is not a
        finite number"): recorded as error 0 or inf against tolerance 0."""
        tol = Bound(0.0, "property")
        if condition:
            self._record(check, 0.0, 0.0, 0.0, tol, "pass", "")
        else:
            self._fail(check, np.inf, np.inf, 0.0, tol, f"{check}: {detail}")

    def _fail(self, check: str, error: float, max_abs: float, scale: float,
              tol: Tolerance | Bound | Overridden, message: str) -> None:
        self._record(check, error, max_abs, scale, tol, "fail", message)
        self.failures.append(message)
        self.failed_tests.add(self.test)

    def _record(self, check: str, error: float, max_abs: float, scale: float,
                tol: Tolerance | Bound | Overridden, outcome: str, detail: str) -> None:
        self.report.add(Record(
            backend=self.context.get("backend", self.report.backend), check=check,
            error=float(error), max_abs_error=float(max_abs), scale=float(scale),
            tolerance=tol.value, tolerance_formula=tol.describe(), outcome=outcome,
            test=self.test, device=self.context.get("device", "-"),
            dtype=self.context.get("dtype", "-"), scenario=self.context.get("scenario", "-"),
            case=self.context.get("case", "-"), detail=detail,
            override=tol.reason if isinstance(tol, Overridden) else "",
        ))

    def verify(self) -> None:
        if self.failures:
            import pytest  # here: regcore check compares without pytest installed

            pytest.fail("\n".join(self.failures), pytrace=False)
