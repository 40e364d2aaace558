"""Hypothesis profiles for the project's tests, and a count of the examples they ran.

* ``default``: a few dozen examples per property, for ``nox -s tests``;
* ``thorough``: what ``nox -s hypothesis`` runs (``--hypothesis-profile=thorough``); with
  ``REGCORE_MIN_EXAMPLES=N`` set, the session fails unless the property tests ran N examples
  in all, so "10,000 examples" is a checked fact, not a setting.

Both are derandomized from a fixed seed unless ``--hypothesis-seed`` is given, so a CI failure
reproduces; the example database is off (a clean clone has none to replay).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.strategies import examples_run

_COMMON = {"deadline": None, "database": None, "derandomize": True,
           "suppress_health_check": (HealthCheck.too_slow,)}
settings.register_profile("default", max_examples=40, **_COMMON)
settings.register_profile("thorough", max_examples=2000, **_COMMON)


def pytest_configure(config: pytest.Config) -> None:
    """Load ``--hypothesis-profile`` (hypothesis loads it before this conftest registers the
    profiles, so it is loaded again here), else ``default``."""
    settings.load_profile(config.getoption("hypothesis_profile", None) or "default")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: the controller adds the counts up
        workeroutput["regcore_examples"] = examples_run()
        return
    needed = os.environ.get("REGCORE_MIN_EXAMPLES")
    if needed is None:
        return
    count = examples_run() + _WORKER_EXAMPLES["count"]
    print(f"\nhypothesis: {count} property examples ran to completion (needed {needed})")
    if count < int(needed) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_WORKER_EXAMPLES = {"count": 0}


@pytest.hookimpl(optionalhook=True)  # pytest-xdist, in the controller: a worker finished
def pytest_testnodedown(node, error) -> None:
    _WORKER_EXAMPLES["count"] += getattr(node, "workeroutput", {}).get("regcore_examples", 0)
