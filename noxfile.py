"""Sessions: one conformance session per backend, the project's own tests, and a core-only check.

    nox -s numpy torch tf      # the conformance matrix (reports in reports/)
    nox -s tests               # the project's unit tests

Each session installs regcore (non-editable, as users get it) plus only what it needs. A backend
session whose adapter is not registered yet installs its framework, proves `import regcore` still
imports no framework with it installed, and is reported as skipped with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import nox

nox.options.sessions = ["tests", "numpy", "torch", "tf"]
nox.options.reuse_venv = "yes"

REPORTS = "reports"
# Framework pins: the versions CI installs. torch 2.13.0 is the CPU wheel this project's machines
# carry locally (a newer or unpinned torch from the registry is a multi-GB CUDA build);
# tensorflow-cpu is half the download of tensorflow.
FRAMEWORKS = {
    "numpy": [],
    "torch": ["torch==2.13.0"],
    "tf": ["tensorflow-cpu==2.21.0"],
}


def _installed_backends(session: nox.Session) -> list[str]:
    out = session.run("python", "-c",
                      "import json, regcore; print(json.dumps(regcore.available_backends()))",
                      silent=True)
    return json.loads(out.strip().splitlines()[-1])


def _conformance(session: nox.Session, backend: str) -> None:
    session.install(".[test]", *FRAMEWORKS[backend])
    if backend not in _installed_backends(session):
        session.run("python", "-m", "pytest", "tests/test_import_isolation.py", "-q",
                    "-p", "no:cacheprovider")
        session.skip(f"no {backend!r} backend is registered yet: its adapter is not written")
    session.run(
        "python", "-m", "pytest", "--pyargs", "regcore_conformance", "-p", "no:cacheprovider",
        "-q", "--regcore-backend", backend,
        "--regcore-report", f"{REPORTS}/conformance-{backend}.json", *session.posargs,
    )
    if Path("tests", f"adapter_{backend}").is_dir():  # the adapter's native-API tests
        session.run("python", "-m", "pytest", f"tests/adapter_{backend}", "-q",
                    "-p", "no:cacheprovider")


@nox.session
def numpy(session: nox.Session) -> None:
    """Conformance suite on the NumPy backend (the reference run)."""
    _conformance(session, "numpy")


@nox.session
def torch(session: nox.Session) -> None:
    """Conformance suite on the PyTorch backend."""
    _conformance(session, "torch")


@nox.session
def tf(session: nox.Session) -> None:
    """Conformance suite on the TensorFlow backend (tensorflow-cpu)."""
    _conformance(session, "tf")


@nox.session
def tests(session: nox.Session) -> None:
    """The project's own unit tests (spec, plugin, import isolation)."""
    session.install(".[test]")
    session.run("python", "-m", "pytest", "tests", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def lite(session: nox.Session) -> None:
    """regcore alone, with no extras: importable and usable without NumPy or any framework."""
    session.install(".")
    session.run("python", "-c",
                "import sys, regcore; s = regcore.Spec([regcore.Rule(regcore.L2(0.01, "
                "convention='sum'))]); assert regcore.from_json(regcore.to_json(s)) == s; "
                "assert not {'numpy', 'torch', 'tensorflow', 'jax'} & set(sys.modules)")
