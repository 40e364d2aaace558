"""The Array API backend beyond what the conformance suite checks: its arrays stay the
namespace's own (no NumPy fallback), a function the namespace lacks is refused by name, and
``array_api:<module>`` names reach it through the registry.

The ``array_api-*`` nox sessions run this file with ``REGCORE_ARRAY_NAMESPACE`` set to their
module; elsewhere it runs on NumPy's namespace.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import types

import numpy as np
import pytest

pytest.importorskip("array_api_compat")

import regcore  # noqa: E402
from regcore import L2, Orthogonal, Rule, Spec, UnsupportedError  # noqa: E402
from regcore.network import Conv2D, Dense, GlobalAvgPool, Network  # noqa: E402
from regcore_adapters.array_api import ArrayApiBackend  # noqa: E402
from regcore_adapters.array_api.namespace import Standard  # noqa: E402

MODULE = os.environ.get("REGCORE_ARRAY_NAMESPACE") or "numpy"


@pytest.fixture(scope="module")
def backend() -> ArrayApiBackend:
    pytest.importorskip(MODULE)
    return regcore.load_backend(f"array_api:{MODULE}")


def _net() -> Network:
    return Network((5, 5, 2), (Conv2D("conv", 2, 3, (2, 2)), GlobalAvgPool(),
                               Dense("head", 3, 2)), "mse")


def test_every_result_is_the_namespaces_own_array(backend: ArrayApiBackend) -> None:
    """Loss, gradients and trained parameters are arrays of the namespace's type, on a conv
    network: a NumPy array slipping into the computation would show here (and array-api-strict
    refuses to mix with NumPy at all)."""
    net = _net()
    rng = np.random.default_rng(0)
    params = {p.name: backend.asarray(rng.normal(size=p.shape), dtype="float64", device="cpu")
              for p in net.params()}
    x = backend.asarray(rng.normal(size=(4, 5, 5, 2)), dtype="float64", device="cpu")
    y = backend.asarray(rng.normal(size=(4, 2)), dtype="float64", device="cpu")
    plan = Spec([Rule(L2(0.1, convention="sum"))]).resolve(net.params())
    loss, grads = backend.loss_and_grads(net, plan, params, x, y)
    trained = backend.train(net, plan, params, x, y,
                            optimizer=regcore.Optimizer("adam", 0.01), steps=2)
    kind = backend.array_types
    # NumPy's one deviation from the standard: a full reduction is a NumPy scalar, not a 0-d array
    assert kind and (isinstance(loss, kind) or MODULE == "numpy" and isinstance(loss, np.generic))
    assert all(isinstance(v, kind) for v in (*grads.values(), *trained.values()))


class _Without:
    """A namespace without the functions named: everything else is ``namespace``'s."""

    def __init__(self, namespace: object, *missing: str) -> None:
        self._ns, self._missing = namespace, missing

    def __getattr__(self, name: str) -> object:
        if name in self._missing:
            raise AttributeError(name)
        return getattr(self._ns, name)


def test_a_function_the_namespace_lacks_is_refused_by_name(backend: ArrayApiBackend) -> None:
    """Orthogonal needs ``triu``: without it the penalty is an UnsupportedError naming
    ``triu`` and the namespace; L2, which does not need it, still computes."""
    stripped = type(backend)()
    stripped.xp = Standard(_Without(backend.xp._xp, "triu"), "array_api:stripped")
    w = backend.asarray(np.arange(1.0, 7.0).reshape(2, 3), dtype="float64", device="cpu")
    infos = [regcore.ParamInfo("w", (2, 3), "weight")]
    with pytest.raises(UnsupportedError, match=r"array_api:stripped: the namespace has no "
                                               r"'triu' \(Array API standard\)"):
        stripped.penalty(Spec([Rule(Orthogonal(0.1, convention="sum"))]).resolve(infos), {"w": w})
    value, _ = stripped.penalty(Spec([Rule(L2(0.5, convention="sum"))]).resolve(infos), {"w": w})
    assert float(backend.to_numpy(value)) == 0.5 * 91


def test_the_standards_dtypes_only(backend: ArrayApiBackend) -> None:
    """float16 and bfloat16 are not in the standard: none is declared, so the suite's
    low-precision checks skip with that reason instead of computing in another dtype."""
    assert backend.low_precision_dtypes == ()
    assert set(backend.dtypes) == {"float32", "float64"}


def test_names_reach_the_backend_through_the_registry() -> None:
    """``array_api:<module>`` is that module's variant; the bare name NumPy's; a module that
    cannot be imported, or an option to a backend without variants, is a BackendNotFoundError
    naming the cause."""
    assert regcore.load_backend("array_api").name == "array_api:numpy"
    assert regcore.load_backend(f"array_api:{MODULE}").name == f"array_api:{MODULE}"
    with pytest.raises(regcore.BackendNotFoundError, match="cannot import 'no_such_lib'"):
        regcore.load_backend("array_api:no_such_lib")
    with pytest.raises(regcore.BackendNotFoundError, match="array_api:types: 'types' has no "
                                                           "Array API namespace"):
        regcore.load_backend("array_api:types")
    with pytest.raises(regcore.BackendNotFoundError, match="'numpy' takes no option"):
        regcore.load_backend("numpy:float32")
    assert isinstance(types, types.ModuleType)  # the module the refusal above named


def test_importing_the_adapter_imports_no_array_library() -> None:
    code = ("import sys, regcore_adapters.array_api, regcore_adapters.array_api.backend; "
            "print(sorted({'numpy', 'torch', 'array_api_strict', 'array_api_compat'} "
            "& set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_the_guides_array_api_example(tmp_path) -> None:
    """docs/adding-a-backend.md's opening: the penalty on array-api-strict, then its suite
    command (narrowed to two checks; the nox sessions run it whole)."""
    pytest.importorskip("array_api_strict")
    from tests.test_docs import doc_blocks, run_python

    example, commands = doc_blocks("docs/adding-a-backend.md",
                                   "test_the_guides_array_api_example")
    _, printed = run_python(example)
    assert printed == ["12.5 array_api_strict._array_object"]
    (suite,) = [line for line in commands.code.splitlines() if line.startswith("python ")]
    argv = [sys.executable, *shlex.split(suite)[1:], "-k", "test_penalty and l2_half"]
    argv[argv.index("--report") + 1] = str(tmp_path / "report.json")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "0 failed" in proc.stdout
