"""A backend author's expectations file: known skips, expected failures and tolerance overrides,
kept in the author's repository and passed with ``--regcore-expect PATH``.

TOML, one array of tables per kind; every entry needs a ``reason``::

    [[skip]]                      # don't run these tests
    test = "*test_trajectory*adam*"
    reason = "Adam lands in 0.3"

    [[xfail]]                     # run them, expect them to fail (strict: a pass fails the run)
    test = "*test_subgradient_at_zero*orthogonal*"
    reason = "upstream bug #123"
    strict = true                 # the default

    [[tolerance]]                 # widen (or tighten) the derived tolerance of matching checks
    test = "*float32*"            # optional, default "*"
    check = "grad:*"
    factor = 4.0
    reason = "fused kernels reassociate sums"

``test`` is an ``fnmatch`` pattern (case-sensitive) over the test id as the report writes it,
``regcore_conformance.test_terms::test_penalty[cpu-float64-l2_half]``; ``check`` one over the
check name (``loss``, ``grad:dense_0.kernel``, ``sgd_20_steps:dense_0.bias``...). The first
matching entry of a kind applies. An entry that matches no collected test (or, for tolerances, no
check by the end of the run) is reported with an :class:`UnmatchedExpectationWarning`: it is stale
or misspelled; one that names a scenario by an id it had before a rename
(:data:`regcore_conformance.scenarios.RENAMED`) is refused with the new id. Every check run
under an override carries it in the JSON report (``override``), and the report lists every
override with how many checks it touched.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from regcore_conformance.scenarios import RENAMED

KINDS = {"skip": ("test", "reason"), "xfail": ("test", "reason", "strict"),
         "tolerance": ("test", "check", "factor", "reason")}
REQUIRED = {"skip": ("test", "reason"), "xfail": ("test", "reason"),
            "tolerance": ("check", "factor", "reason")}


class ExpectationError(ValueError):
    """A malformed expectations file; the message names the file and the entry."""


class UnmatchedExpectationWarning(UserWarning):
    """An expectation that matched nothing in this run."""


@dataclass
class Expectation:
    kind: str
    test: str
    reason: str
    check: str = "*"
    factor: float = 1.0
    strict: bool = True
    matched: int = field(default=0, compare=False)

    def describe(self) -> str:
        target = f"test {self.test!r}" + (f" check {self.check!r}" if self.kind == "tolerance"
                                          else "")
        return f"[[{self.kind}]] {target}"


@dataclass
class Expectations:
    """The entries of one file (none without ``--regcore-expect``)."""

    source: str = ""
    entries: list[Expectation] = field(default_factory=list)

    def first(self, kind: str, test: str, check: str = "") -> Expectation | None:
        for e in self.entries:
            if e.kind == kind and fnmatchcase(test, e.test) and (
                    kind != "tolerance" or fnmatchcase(check, e.check)):
                return e
        return None

    def unmatched(self) -> list[Expectation]:
        return [e for e in self.entries if not e.matched]

    def overrides(self) -> list[dict[str, object]]:
        """The tolerance overrides, for the JSON report."""
        return [{"test": e.test, "check": e.check, "factor": e.factor, "reason": e.reason,
                 "checks": e.matched} for e in self.entries if e.kind == "tolerance"]


def load(path: str | Path) -> Expectations:
    """Parse and validate an expectations file; :class:`ExpectationError` on any problem."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ExpectationError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ExpectationError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(KINDS))
    if unknown:
        raise ExpectationError(f"{path}: unknown section(s) {unknown}; known: {sorted(KINDS)}")
    entries = []
    for kind, allowed in KINDS.items():
        items = data.get(kind, [])
        if not isinstance(items, list):
            raise ExpectationError(f"{path}: {kind} must be an array of tables ([[{kind}]])")
        for i, item in enumerate(items):
            entries.append(_entry(f"{path}: {kind}[{i}]", kind, allowed, item))
    return Expectations(str(path), entries)


def _entry(where: str, kind: str, allowed: tuple[str, ...], item: object) -> Expectation:
    if not isinstance(item, dict):
        raise ExpectationError(f"{where}: expected a table")
    extra = sorted(set(item) - set(allowed))
    if extra:
        raise ExpectationError(f"{where}: unknown key(s) {extra}; allowed: {list(allowed)}")
    missing = [k for k in REQUIRED[kind] if k not in item]
    if missing:
        raise ExpectationError(f"{where}: missing {missing}")
    for key in ("test", "check", "reason"):
        if key in item and (not isinstance(item[key], str) or not item[key].strip()):
            raise ExpectationError(f"{where}.{key}: expected a non-empty string")
    _refuse_renamed_scenarios(where, item.get("test", "*"))
    factor = item.get("factor", 1.0)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not (
            math.isfinite(factor) and factor > 0):
        raise ExpectationError(f"{where}.factor: expected a finite number > 0, got {factor!r}")
    strict = item.get("strict", True)
    if not isinstance(strict, bool):
        raise ExpectationError(f"{where}.strict: expected true or false, got {strict!r}")
    return Expectation(kind, item.get("test", "*"), item["reason"], item.get("check", "*"),
                       float(factor), strict)


def _refuse_renamed_scenarios(where: str, test: str) -> None:
    """A pattern naming a scenario by its id from before the rename would match nothing and only
    warn; refuse it with the id to write instead."""
    for old, new in RENAMED.items():
        if old in test:
            raise ExpectationError(
                f"{where}.test: scenario {old!r} is now called {new!r}; write "
                f"test = {test.replace(old, new)!r}")
