"""Sessions: one conformance session per backend, the project's own tests, and a core-only check.

    nox -s numpy torch tf jax array_api-strict array_api-numpy array_api-torch keras-jax \
        keras-torch distributed path report    # the conformance matrix (reports/)
    nox -s tests                       # the project's unit tests
    nox -s hypothesis                  # property-based tests, >= 10,000 examples
    nox -s presets                     # the presets against timm's and transformers' own groups
    nox -s bench                       # benchmarks (not tests; not run by default or in CI)
    nox -s lint                        # ruff on the tree, mypy on the spec package (pinned)

``jax`` is the outside JAX backend (external/regcore-jax); ``path`` chooses λ by k-fold
cross-validation on numpy, torch and tf (reports/path/); ``report`` merges the backend sessions'
reports into reports/matrix.md and reports/matrix.html and fails if any backend disagrees.

Each session installs regcore (non-editable, as users get it) plus only what it needs. A backend
session whose adapter is not registered yet installs its framework, proves `import regcore` still
imports no framework with it installed, and is reported as skipped with the reason.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nox

# the Array API backend's runs, one nox session per namespace (ARRAY_API below)
ARRAY_API_RUNS = ("array_api-strict", "array_api-numpy", "array_api-torch")
# Keras 3 on its jax and torch backends (KERAS below); on tensorflow, the tf session runs them
KERAS_RUNS = ("keras-jax", "keras-torch")
nox.options.sessions = ["lint", "tests", "numpy", "torch", "tf", "jax", *ARRAY_API_RUNS,
                        *KERAS_RUNS, "distributed", "path", "report", "presets"]
nox.options.reuse_venv = "yes"
# uv where it is installed (pip install nox uv; .ci/run does): it creates and fills a session's
# virtualenv in a third of pip's time (the array_api-torch session 60 s -> 38 s here). pip's
# own virtualenvs otherwise.
nox.options.default_venv_backend = "uv|virtualenv"

# uv reads no pip configuration: the same wheel locations, indexes and constraints as pip, where
# the machine configures pip (this project's machines carry the CPU torch wheel on disk, and
# PyPI's torch is a multi-GB CUDA build). The first of pip's keys found wins; UV_* variables
# already set are kept.
PIP_TO_UV = {"find-links": ("UV_FIND_LINKS", ","), "index-url": ("UV_INDEX_URL", " "),
             "extra-index-url": ("UV_EXTRA_INDEX_URL", " "), "constraint": ("UV_CONSTRAINT", " ")}


def _uv_from_pip_config() -> dict[str, str]:
    """``UV_*`` settings equal to pip's (``pip config list``: its files and ``PIP_*``
    variables), with pip's index strategy (the best version across all indexes) and compiled
    bytecode, as pip installs it."""
    import subprocess
    import sys

    try:
        listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                                 capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        listing = ""
    found: dict[str, str] = {}
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        option = key.rpartition(".")[2]
        if option in PIP_TO_UV and PIP_TO_UV[option][0] not in found:
            name, sep = PIP_TO_UV[option]
            found[name] = sep.join(value.strip("'\"").split())
    return {"UV_INDEX_STRATEGY": "unsafe-best-match", "UV_COMPILE_BYTECODE": "1", **found}


for _name, _value in _uv_from_pip_config().items():
    os.environ.setdefault(_name, _value)

REPORTS = "reports"
# Both cores of a CI machine: pytest-xdist workers, each taking the next test when it is free
# (worksteal evens out tests of very different lengths); the suite's controller merges the
# workers' records into one report, equal to a serial run's (tests/test_coverage_baseline.py).
PARALLEL = ("-n", "auto", "--dist", "worksteal")
# pytest rewrites and compiles test modules in every process: where the machine sets
# PYTHONDONTWRITEBYTECODE it could not cache them, and each worker and each of the tests' suite
# subprocesses would pay it again. The sessions' own virtualenvs may hold bytecode.
# One thread per framework per worker: the workers already use every core, and the suite's
# tensors are far too small for a framework's own thread pool to pay (torch's two threads per
# worker on two workers made the torch run slower than a serial one: 73 s against 65 s).
ENV = {"PYTHONDONTWRITEBYTECODE": "", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
       "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
PROPERTY_TESTS = ("tests/test_properties.py", "tests/test_loader_fuzz.py")
# Framework pins: the versions CI installs. torch 2.13.0 is the CPU wheel this project's machines
# carry locally (a newer or unpinned torch from the registry is a multi-GB CUDA build);
# tensorflow-cpu is half the download of tensorflow. jax 0.10.2 accepts jaxlib 0.10.1 too, so
# both are pinned (the jaxlib wheel is the CPU one).
FRAMEWORKS = {
    "numpy": [],
    "torch": ["torch==2.13.0"],
    "tf": ["tensorflow-cpu==2.21.0"],
    "jax": ["jax==0.10.2", "jaxlib==0.10.2"],
}


def _installed_backends(session: nox.Session) -> list[str]:
    out = session.run("python", "-c",
                      "import json, regcore; print(json.dumps(regcore.available_backends()))",
                      silent=True)
    return json.loads(out.strip().splitlines()[-1])


def _conformance(session: nox.Session, backend: str, extra_installs: tuple[str, ...] = (),
                 extra_tests: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 run: str | None = None) -> None:
    """Install regcore (plus ``extra_installs``: an outside backend's package) and the framework,
    run the suite on ``backend``, then the adapter's own tests and ``extra_tests`` (with ``env``
    added to :data:`ENV`). ``run`` names the report and the coverage baseline (default: the
    backend's name)."""
    env = {**ENV, **(env or {})}
    base, _, option = backend.partition(":")
    run = run or backend
    session.install(".[test]", *extra_installs, *FRAMEWORKS.get(base, []))
    if base not in _installed_backends(session):
        session.run("python", "-m", "pytest", "tests/test_import_isolation.py", "-q",
                    "-p", "no:cacheprovider")
        session.skip(f"no {base!r} backend is registered yet: its adapter is not written")
    session.run(
        "python", "-m", "pytest", "--pyargs", "regcore_conformance", "-p", "no:cacheprovider",
        "-q", *PARALLEL, "--regcore-backend", backend,
        "--regcore-report", f"{REPORTS}/conformance-{run}.json", *session.posargs, env=env,
    )
    _check_coverage(session, run, base if option else run)  # one baseline for every namespace
    tests = [t for t in (f"tests/adapter_{base}", *extra_tests) if Path(t).exists()]
    if tests:  # the adapter's own tests
        session.run("python", "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider", *PARALLEL,
                    env={**env, "REGCORE_ARRAY_NAMESPACE": option} if option else env)


COVERAGE = "tests/coverage"  # the committed baseline of each default run's combinations


def _check_coverage(session: nox.Session, run: str, baseline: str | None = None) -> None:
    """Fail when the default run checked fewer combinations than its committed baseline
    (``regcore_conformance.coverage``; ``tests/coverage/<baseline or run>.json``); a run narrowed
    by posargs (``-k``...) is not compared."""
    if not session.posargs:
        session.run("python", "-m", "regcore_conformance.coverage",
                    f"{REPORTS}/conformance-{run}.json", "--baseline",
                    f"{COVERAGE}/{baseline or run}.json")


@nox.session
def numpy(session: nox.Session) -> None:
    """Conformance suite on the NumPy backend (the reference run)."""
    _conformance(session, "numpy")


@nox.session
def torch(session: nox.Session) -> None:
    """Conformance suite on the PyTorch backend."""
    _conformance(session, "torch", extra_tests=("tests/test_export.py",))


@nox.session
def tf(session: nox.Session) -> None:
    """Conformance suite on the TensorFlow backend (tensorflow-cpu)."""
    _conformance(session, "tf", extra_tests=("tests/test_export.py",))


@nox.session
def jax(session: nox.Session) -> None:
    """Conformance suite on the JAX backend: an outside package (``external/regcore-jax``)
    registered by its entry point, on CPU jax; then that package's own tests (with optax, whose
    setups ``regcore_jax.reading`` reads)."""
    _conformance(session, "jax", extra_installs=("./external/regcore-jax", "optax==0.2.8"),
                 extra_tests=("external/regcore-jax/tests", "tests/test_path_backends.py"),
                 env=_jax_cache(session))


def _jax_cache(session: nox.Session) -> dict[str, str]:
    """Compiling dominates a JAX run (XLA: 0.3 s per SGD training loop, 0.6 s per Adam one, 1 ms
    to run it): JAX's persistent compilation cache lets each worker reuse what the other compiled
    for the same program (session-local, so a fresh clone starts empty)."""
    return {"JAX_COMPILATION_CACHE_DIR": str(Path(session.create_tmp()) / "jax-cache"),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


# The keras backend (regcore_adapters.keras) under each Keras backend CI runs: Keras pinned, the
# framework, and no TensorFlow installed (the keras package must not need it). JAX keeps float64
# only with its 64-bit mode on; Keras never turns it on.
KERAS_PIN = "keras==3.15.1"
KERAS = {
    "keras-jax": ("jax", FRAMEWORKS["jax"], {"JAX_ENABLE_X64": "1"}),
    "keras-torch": ("torch", FRAMEWORKS["torch"], {}),
}


def _keras(session: nox.Session, run: str) -> None:
    backend, installs, env = KERAS[run]
    env = {"KERAS_BACKEND": backend, **env, **(_jax_cache(session) if backend == "jax" else {})}
    _conformance(session, f"keras:{backend}", (KERAS_PIN, *installs), run=run, env=env)


@nox.session(name="keras-jax")
def keras_jax(session: nox.Session) -> None:
    """Conformance suite on the keras backend under Keras on JAX (CPU, 64-bit mode on): the
    regularizers, optimizer and ``.keras`` round trip regcore gives Keras, with no TensorFlow
    installed."""
    _keras(session, "keras-jax")


@nox.session(name="keras-torch")
def keras_torch(session: nox.Session) -> None:
    """Conformance suite on the keras backend under Keras on torch (CPU), with no TensorFlow
    installed."""
    _keras(session, "keras-torch")


# The array_api backend (regcore_adapters.array_api) on each namespace CI runs, pinned: its run
# name, the module ``array_api:<module>`` names, and what to install beside array-api-compat.
# array-api-strict is the standard's own minimal implementation: anything outside the standard
# fails there. torch goes through array_api_compat's wrapper.
ARRAY_API_COMPAT = "array-api-compat==1.16.0"
ARRAY_API = {
    "array_api-strict": ("array_api_strict", ["array-api-strict==2.6.1"]),
    "array_api-numpy": ("numpy", []),
    "array_api-torch": ("torch", FRAMEWORKS["torch"]),
}


def _array_api(session: nox.Session, run: str) -> None:
    module, installs = ARRAY_API[run]
    # the protocol's argument checks (shapes, layouts, devices) on every installed backend:
    # the tests session has no array_api_compat, so the array_api backend is checked here
    _conformance(session, f"array_api:{module}", (ARRAY_API_COMPAT, *installs), run=run,
                 extra_tests=("tests/test_param_shapes.py", "tests/test_protocol.py"))


@nox.session(name="array_api-strict")
def array_api_strict(session: nox.Session) -> None:
    """Conformance suite on the Array API backend over array-api-strict, the standard's reference
    namespace (nothing outside the standard runs there)."""
    _array_api(session, "array_api-strict")


@nox.session(name="array_api-numpy")
def array_api_numpy(session: nox.Session) -> None:
    """Conformance suite on the Array API backend over NumPy 2's namespace (array_api_compat)."""
    _array_api(session, "array_api-numpy")


@nox.session(name="array_api-torch")
def array_api_torch(session: nox.Session) -> None:
    """Conformance suite on the Array API backend over torch, through array_api_compat's
    wrapper (CPU)."""
    _array_api(session, "array_api-torch")


@nox.session
def distributed(session: nox.Session) -> None:
    """Data-parallel conformance (``regcore_conformance.distributed``): torch
    ``DistributedDataParallel`` over gloo with 2 and 4 processes, and tf ``MirroredStrategy`` over
    2 logical CPUs (custom loop and ``model.fit``), against the single-process reference. One
    report per backend, ``conformance-<backend>-distributed.json``, whose rows (devices
    ``cpu×2``, ``cpu×4``) the matrix shows beside the backend's own. Two xdist workers, each with
    its own replica pools: one's replicas compute while the other's wait on an all-reduce
    (torch 249 s -> 208 s, tf 179 s -> 114 s on 2 cores)."""
    session.install(".[test]", *FRAMEWORKS["torch"], *FRAMEWORKS["tf"])
    for backend in ("torch", "tf"):
        session.run("python", "-m", "pytest", "--pyargs", "regcore_conformance.distributed",
                    "-p", "no:cacheprovider", "-q", *PARALLEL, "--regcore-backend", backend,
                    "--regcore-report", f"{REPORTS}/conformance-{backend}-distributed.json",
                    *session.posargs)
        _check_coverage(session, f"{backend}-distributed")


PATH_RUNS = {"iris": "docs/examples/iris-l2.json", "synthetic": "docs/examples/synthetic-l1.json"}


@nox.session
def path(session: nox.Session) -> None:
    """Choosing λ (docs/path.md): ``regcore path`` on the Iris MLP and on the synthetic linear
    problem with numpy, torch and tf in one environment, each writing path.json and its plots to
    reports/path/<problem>/ and failing unless every backend makes the same choice; then the
    path's cross-backend, scikit-learn and user-model (nn.Module, Keras model) tests, the
    README's torch-against-Keras port check (``regcore diff``, also written to
    reports/diff/readme-port.json for the matrix) and the layer twins (torch and Keras layers
    with the same weights: the same function and penalty), the one session with both
    frameworks."""
    session.install(".[test,plot]", *FRAMEWORKS["torch"], *FRAMEWORKS["tf"])
    for data, spec in PATH_RUNS.items():
        session.run("regcore", "path", spec, "--data", data, "--backends", "numpy,torch,tf",
                    "--out", f"{REPORTS}/path/{data}")
    # The README's port pair as a "Port checks" section of the matrix: it differs (exit 1), on
    # purpose, by keras #4712's factor 2 and the biases torch decays.
    session.run("regcore", "diff", "keras:portsetups:original", "torch:portsetups:port", "--out",
                f"{REPORTS}/diff/readme-port.json", env={**ENV, "PYTHONPATH": "docs/examples"},
                success_codes=[1])
    session.run("python", "-m", "pytest", "tests/test_path_backends.py",
                "tests/test_path_sklearn.py", "tests/test_path_user_models.py",
                "tests/test_readme_port.py", "tests/test_layer_twins.py", "-q", "-p",
                "no:cacheprovider", *PARALLEL, *session.posargs, env=ENV)


# The recipe libraries the presets are proven against (tests/presets/), pinned. timm needs
# torchvision, and PyPI's torchvision does not load beside the local CPU torch 2.13.0 wheel, so
# this session takes the torch/torchvision pair the machines carry on disk (a CUDA build: 5.5 GB
# in the venv, 81 s to install here; it runs on the CPU).
PRESET_LIBRARIES = ["torch==2.14.1", "torchvision==0.29.1", "timm==1.0.31",
                    "transformers==5.25.0", "accelerate==1.16.0"]


@nox.session
def presets(session: nox.Session) -> None:
    """regcore's presets (``regcore.presets``, ``regcore_adapters.torch.presets``) against the
    libraries' own optimizer set-ups: timm's ``create_optimizer_v2`` on a ResNet and a ViT, Hugging
    Face ``Trainer.create_optimizer`` on a tiny BERT and GPT-2, from configs with random weights
    (nothing downloaded): the same decay per parameter and the same weights after training, bit
    for bit."""
    session.install(".[test]", *PRESET_LIBRARIES)
    session.run("python", "-m", "pytest", "tests/presets", "-q", "-p", "no:cacheprovider",
                *session.posargs, env={**ENV, "HF_HUB_OFFLINE": "1"})


@nox.session
def hypothesis(session: nox.Session) -> None:
    """Property-based tests at depth, with every framework installed in one environment: every
    backend against the reference on random specs, serialization round trips, conversions and
    loader fuzzing, under the ``thorough`` profile (tests/conftest.py). Fails unless at least
    10,000 examples ran to completion. Then ``regcore_adapters.keras`` under Keras on
    tensorflow, jax and torch (tests/test_keras_backends.py), which needs the three together."""
    session.install(".[test]", "./external/regcore-jax",
                    *(pin for pins in FRAMEWORKS.values() for pin in pins))
    session.run("python", "-m", "pytest", *PROPERTY_TESTS, "-q", "-p", "no:cacheprovider",
                "--hypothesis-profile=thorough", *PARALLEL, *session.posargs,
                env={**ENV, "REGCORE_MIN_EXAMPLES": "10000"})
    # the one environment with Keras and all three of its backends' frameworks
    session.run("python", "-m", "pytest", "tests/test_keras_backends.py", "-q", "-p",
                "no:cacheprovider", *PARALLEL, env=ENV)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks, not tests: the cost of regularization per backend, device, shape and idiom as a
    ratio to the unregularized training step, the penalty value alone against the measured read
    bandwidth, and ``import regcore``. Every framework in one environment (each backend still runs
    in a process of its own); writes reports/bench/bench.json and table.md and prints the table.
    Options after ``--`` go to ``python -m benchmarks`` (``--quick``, ``--shapes 24x4096``...)."""
    session.install(".[numpy]", "./external/regcore-jax",
                    *(pin for pins in FRAMEWORKS.values() for pin in pins))
    session.run("python", "-m", "benchmarks", "--out", f"{REPORTS}/bench", *session.posargs)


@nox.session
def report(session: nox.Session) -> None:
    """The cross-backend matrix from the reports the backend sessions left in reports/: a
    markdown table and a self-contained HTML heatmap; non-zero exit if any backend disagrees."""
    session.install(".")
    session.run("python", "-m", "regcore_conformance.matrix", REPORTS, "--expect",
                ",".join(["numpy", "torch", "tf", "jax",
                          *(f"array_api:{ARRAY_API[r][0]}" for r in ARRAY_API_RUNS),
                          *(f"keras:{KERAS[r][0]}" for r in KERAS_RUNS)]))


@nox.session
def tests(session: nox.Session) -> None:
    """The project's own unit tests (spec, plugin, import isolation)."""
    session.install(".[test]")
    session.run("python", "-m", "pytest", "tests", "-p", "no:cacheprovider", *PARALLEL,
                *session.posargs, env=ENV)


# The linters CI runs, pinned: a new release's new rules must not turn a green main red.
LINTERS = ["ruff==0.17.6", "mypy==2.4.1"]


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole tree (pyproject's [tool.ruff]) and mypy on the spec package
    ``regcore``, its public API (pyproject's [tool.mypy]: which files, which flags). mypy reads
    the source, so nothing else is installed."""
    session.install(*LINTERS)
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session
def lite(session: nox.Session) -> None:
    """regcore alone, with no extras: importable and usable without NumPy or any framework."""
    session.install(".")
    session.run("python", "-c",
                "import sys, regcore; s = regcore.Spec([regcore.Rule(regcore.L2(0.01, "
                "convention='sum'))]); assert regcore.from_json(regcore.to_json(s)) == s; "
                "assert not {'numpy', 'torch', 'tensorflow', 'jax'} & set(sys.modules)")
