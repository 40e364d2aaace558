"""Each term is written once per backend: the exported snippet's penalty functions are the
backend's live kernels (``penalties.py``: ``_<kind>(rule, w)``), copied as written, and its
constants are regcore's own. A fix to a kernel, or to ``regcore.ORTHOGONAL_EPSILON``, lands in the
backend and in every snippet at once."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import regcore
from regcore import L1, L2, TERMS, ElasticNet, GroupLasso, Orthogonal, Rule, Select, Spec
from regcore import export_support as support
from regcore.registry import load_exporter

# backend -> (kernels module, exporter module, framework to skip without)
BACKENDS = {
    "numpy": ("regcore_adapters.numpy.penalties", "regcore_adapters.numpy.export", "numpy"),
    "torch": ("regcore_adapters.torch.penalties", "regcore_adapters.torch.export", "torch"),
    "tf": ("regcore_adapters.tf.penalties", "regcore_adapters.tf.export", "tensorflow"),
    "jax": ("regcore_jax.penalties", "regcore_jax.export", "regcore_jax"),
}
ONE_OF_EACH = {
    "l2": L2(0.01, convention="sum"),
    "l1": L1(0.02, convention="sum"),
    "elastic_net": ElasticNet(0.01, 0.04, convention="half"),
    "group_lasso": GroupLasso(0.05, convention="sum", axis=-1, scale_by_size=True),
    "orthogonal": Orthogonal(0.1, "columns", convention="sum"),
}
# the modules whose role inference the torch and TF snippets copy
ROLES = {"torch": ("regcore_adapters.torch.modules", "role_of"),
         "tf": ("regcore_adapters.keras.params", "_role")}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    pytest.importorskip(BACKENDS[request.param][2])
    return request.param


def _spec(kind: str) -> Spec:
    return Spec(penalties=[Rule(ONE_OF_EACH[kind], Select(ndim=[2]))])


def _floats(tree: ast.AST) -> list[float]:
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and type(n.value) is float]


def test_one_spec_of_each_kind():
    assert set(ONE_OF_EACH) == set(TERMS)


@pytest.mark.parametrize("kind", ONE_OF_EACH)
def test_the_snippet_holds_the_live_kernels_source_verbatim(backend, kind):
    kernels = importlib.import_module(BACKENDS[backend][0])
    code = load_exporter(backend)(_spec(kind))
    for name in (f"_{kind}", "_coef", "_accumulate"):
        assert inspect.getsource(getattr(kernels, name)) in code, name
    assert kernels.KERNELS[TERMS[kind]].__name__ == kind  # the live entry runs that kernel
    others = [k for k in ONE_OF_EACH if k != kind]
    assert not [k for k in others if f"\ndef _{k}(" in code]  # only the kinds the spec uses


def test_the_exporters_write_no_kernel(backend):
    """The exporter modules hold no penalty formula of their own: no ``def _<kind>`` text and no
    float but the ones of the snippet's runtime (the empty penalty's 0s, none at all here)."""
    path = Path(importlib.import_module(BACKENDS[backend][1]).__file__)
    text = path.read_text(encoding="utf-8")
    assert not [kind for kind in ONE_OF_EACH if f"def _{kind}(" in text]
    assert not [x for x in _floats(ast.parse(text)) if x not in (0.0, 1.0)]


def test_the_orthogonal_epsilon_is_regcores(backend, monkeypatch):
    """The kernels name ``ORTHOGONAL_EPSILON``, never its value; the snippet defines it once,
    from regcore's value, and follows a change of it."""
    kernels = Path(importlib.import_module(BACKENDS[backend][0]).__file__)
    assert regcore.ORTHOGONAL_EPSILON not in _floats(ast.parse(kernels.read_text("utf-8")))
    code = load_exporter(backend)(_spec("orthogonal"))
    tree = ast.parse(code)
    (assign,) = [n for n in tree.body if isinstance(n, ast.Assign)
                 and [t.id for t in n.targets if isinstance(t, ast.Name)] == [
                     "ORTHOGONAL_EPSILON"]]
    assert ast.literal_eval(assign.value) == regcore.ORTHOGONAL_EPSILON
    assert _floats(tree).count(regcore.ORTHOGONAL_EPSILON) == 1  # that assignment, only
    assert f"max(||v||, {regcore.ORTHOGONAL_EPSILON!r})" in code  # the header says it too
    monkeypatch.setattr(regcore, "ORTHOGONAL_EPSILON", 2.5e-7)
    assert "\nORTHOGONAL_EPSILON = 2.5e-07\n" in load_exporter(backend)(_spec("orthogonal"))


def test_the_snippet_infers_roles_with_the_backends_own_function(backend):
    if backend not in ROLES:
        pytest.skip(f"{backend}: the snippet takes roles as an argument")
    module, name = ROLES[backend]
    source = inspect.getsource(getattr(importlib.import_module(module), name))
    assert source in load_exporter(backend)(_spec("l2"))


def test_numpy_snippet_kernels_are_the_live_ones_to_the_bit():
    np = pytest.importorskip("numpy")
    from regcore_adapters.numpy.penalties import KERNELS

    w = np.random.default_rng(0).standard_normal((5, 4))
    for kind, term in ONE_OF_EACH.items():
        snippet = support.load_snippet(load_exporter("numpy")(_spec(kind)))
        value, grad = snippet["_KERNELS"][kind](support.term_data(term), w)
        want_value, want_grad = KERNELS[type(term)](term, w)
        assert value == want_value and np.array_equal(grad, want_grad), kind


def test_definitions_copies_what_a_kernel_uses(tmp_path):
    source = '''\
from regcore import ORTHOGONAL_EPSILON, Spec

import math

SCALE = 2.0
UNUSED = 3.0


def _helper(x):
    return x * SCALE  # a comment stays


def decorate(f):
    return f


@decorate
def _kind(rule, w):
    return _helper(w) + ORTHOGONAL_EPSILON


@_kind.__call__
def _attached(*args):
    return None


def _other(rule, w):
    return math.pi
'''
    path = tmp_path / "kernels.py"
    path.write_text(source)
    out = support.definitions(path, ["_kind"])
    assert out.startswith(f"ORTHOGONAL_EPSILON = {regcore.ORTHOGONAL_EPSILON!r}\nSCALE = 2.0\n")
    for name in ("_helper", "decorate", "_kind", "_attached"):
        assert f"def {name}(" in out
    assert "# a comment stays" in out and "@decorate\ndef _kind" in out
    assert "UNUSED" not in out and "_other" not in out and "import" not in out
    with pytest.raises(ValueError, match="no top-level definition of _missing"):
        support.definitions(path, ["_missing"])
    path.write_text(source.replace("+ ORTHOGONAL_EPSILON", "+ Spec"))
    with pytest.raises(TypeError, match="regcore.Spec: a kernel may use regcore's numbers"):
        support.definitions(path, ["_kind"])
