"""The command line in the environments users have: an optional dependency not installed, a
backend registered whose framework is not, and the packaging facts a user relies on (version,
type hints, extras). Missing packages are simulated in a subprocess by an import blocker that
raises what Python raises for a package that is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

import pytest

import regcore

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

BLOCKER = """\
import importlib.abc, runpy, sys
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, NotInstalled())
sys.argv = [{module!r}, *sys.argv[1:]]
runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
"""


def run_without(blocked: set[str], module: str, *args: str,
                **kwargs) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` as if the packages in ``blocked`` were not installed."""
    code = BLOCKER.format(blocked=blocked, module=module)
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, **kwargs)


def test_check_without_scikit_learn_skips_iris_and_still_agrees(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(regcore.to_json(regcore.Spec(
        penalties=(regcore.Rule(regcore.L2(0.01, convention="sum")),))))
    proc = run_without({"sklearn"}, "regcore", "check", str(spec), "--backends", "numpy",
                       "--dtypes", "float64", "--json")
    assert proc.returncode == 0, proc.stderr  # exit 1 is only a real disagreement
    result = json.loads(proc.stdout)
    assert result["agree"] and len(result["rows"][0]["scenarios"]) == 8
    assert result["scenarios_skipped"] == {
        "iris_mlp": "needs scikit-learn, not installed (pip install scikit-learn)"}


def test_check_runs_without_pytest(tmp_path):
    """regcore check is an application: it compares through the suite's Checker, which needs
    pytest only to fail a test."""
    spec = tmp_path / "spec.json"
    spec.write_text(regcore.to_json(regcore.Spec(
        penalties=(regcore.Rule(regcore.L1(0.01, convention="sum")),))))
    proc = run_without({"pytest", "_pytest"}, "regcore", "check", str(spec), "--backends",
                       "numpy", "--dtypes", "float64", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["agree"]


def test_conformance_without_pytest_is_one_line_with_the_install_hint():
    proc = run_without({"pytest", "_pytest"}, "regcore_conformance", "--backend", "numpy")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("python -m regcore_conformance: error: ")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "No module named 'pytest'" in proc.stderr
    assert "pip install 'regcore[conformance]'" in proc.stderr


def _fake_distribution(site: Path, name: str, requires: list[str], backends: dict[str, str],
                       top_level: str = "") -> None:
    info = site / f"{name.replace('-', '_')}-2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("\n".join(
        ["Metadata-Version: 2.1", f"Name: {name}", "Version: 2.0",
         *(f"Requires-Dist: {r}" for r in requires)]) + "\n")
    if backends:
        (info / "entry_points.txt").write_text("[regcore.backends]\n" + "".join(
            f"{k} = {v}\n" for k, v in backends.items()))
    if top_level:
        (info / "top_level.txt").write_text(top_level + "\n")
        (site / f"{top_level}.py").write_text("")


def test_backends_shows_registered_vs_importable_with_versions(tmp_path):
    # "absent" needs a framework that is not installed; "cpuonly" needs "fakefw", which is
    # installed under another distribution name (as tensorflow is by tensorflow-cpu)
    _fake_distribution(tmp_path, "regcore-fakes", ["regcore", "numpy>=1.26",
                                                   "surely-absent-fw>=1; python_version>'3'",
                                                   "fakefw"],
                       {"absent": "regcore_fakes:Backend"}, top_level="regcore_fakes")
    _fake_distribution(tmp_path, "fakefw-cpu", [], {}, top_level="fakefw")
    code = ("import json, sys; from regcore_apps.cli import main; main(['backends', '--json'])\n"
            "print(json.dumps(sorted({'numpy', 'torch', 'tensorflow', 'jax', 'keras', 'sklearn'}"
            " & set(sys.modules))))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(tmp_path),
                                                       "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    listing, loaded = proc.stdout.strip().splitlines()
    assert json.loads(loaded) == []  # metadata and find_spec only
    result = json.loads(listing)
    assert "absent" in result["backends"] and "absent" not in result["importable"]
    assert "numpy" in result["importable"]
    absent = result["details"]["absent"]
    assert absent["registered_by"] == "regcore-fakes 2.0"
    assert absent["needs"] == [{"name": "numpy", "version": version("numpy")},
                               {"name": "surely-absent-fw", "version": None},
                               {"name": "fakefw", "version": "2.0", "as": "fakefw-cpu"}]
    assert absent["reason"] == "surely-absent-fw not installed"
    assert absent["install"] == "pip install surely-absent-fw"
    assert result["details"]["numpy"]["needs"] == [{"name": "numpy",
                                                     "version": version("numpy")}]


@pytest.mark.parametrize(("old", "new"), [
    ("regcore.cli", "regcore_apps.cli"),
    ("regcore.cli_check", "regcore_apps.cli.check"),
    ("regcore.cli_path", "regcore_apps.cli.path"),
    ("regcore.path", "regcore_apps.path"),
    ("regcore.path.engine", "regcore_apps.path"),
    ("regcore_adapters.torch.path", "regcore_apps.path.torch_problem"),
    ("regcore_adapters.tf.path", "regcore_apps.path.keras_problem"),
])
def test_a_moved_module_names_its_new_place(old, new):
    """The applications moved out of the spec and the adapters (into ``regcore_apps``): importing
    an old name is an ImportError that says where it went (the spec's stubs import no
    framework; an adapter's stub needs its framework, as its package does)."""
    framework = {"torch": "torch", "tf": "tensorflow"}.get(old.split(".")[1], "")
    if framework and find_spec(framework) is None:
        pytest.skip(f"{old} needs {framework}, not installed here")
    code = (f"import sys\ntry:\n    import {old}\nexcept ImportError as e:\n    print(e)\n"
            "print(sorted({'numpy', 'torch', 'tensorflow', 'keras'} & set(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    message, loaded = proc.stdout.strip().splitlines()
    assert message.startswith(f"{old.removesuffix('.engine')} moved to {new}"), message
    assert framework or loaded == "[]"


def test_python_m_regcore_without_the_console_script_is_one_line(tmp_path):
    """``python -m regcore`` finds the command through its entry point (the spec imports no
    application); with no ``regcore`` console script installed, one line and exit 2."""
    code = ("import importlib.metadata as md, runpy, sys\n"
            "md.entry_points = lambda **kw: ()\n"
            "runpy.run_module('regcore', run_name='__main__', alter_sys=True)")
    proc = subprocess.run([sys.executable, "-c", code, "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("python -m regcore: error: the regcore command is not installed (no "
                           "'regcore' console script); pip install regcore\n")


def test_version_has_one_source():
    proc = subprocess.run([sys.executable, "-m", "regcore", "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, f"regcore {regcore.__version__}\n")
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "regcore._version.__version__"}
    assert version("regcore") == regcore.__version__


@pytest.mark.parametrize("package", ["regcore", "regcore_adapters", "regcore_conformance",
                                     "regcore_apps"])
def test_every_package_ships_a_py_typed_marker(package):
    folder = PYPROJECT["tool"]["setuptools"]["package-dir"][package]
    assert (ROOT / folder / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"][package]


@pytest.mark.parametrize(("extra", "wanted", "unwanted"), [
    ("tf-cpu", {"numpy", "tensorflow-cpu"}, {"tensorflow"}),
    ("tf", {"numpy", "tensorflow"}, {"tensorflow-cpu"}),
    ("conformance", {"numpy", "pytest", "scikit-learn"}, set()),
])
def test_extras(extra, wanted, unwanted):
    names = {r.split(">")[0].split("[")[0] for r in
             PYPROJECT["project"]["optional-dependencies"][extra]}
    assert wanted <= names and not unwanted & names


def test_all_extra_is_every_other_user_extra():
    extras = PYPROJECT["project"]["optional-dependencies"]
    (everything,) = extras["all"]
    named = set(everything.removeprefix("regcore[").removesuffix("]").split(","))
    assert named == set(extras) - {"all", "test", "tf-cpu"}  # tf-cpu and tf exclude each other
