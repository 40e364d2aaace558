"""The JAX exporter (entry point ``regcore.exporters``, name ``jax``): the snippet imports nothing
from regcore, exporting imports no JAX, the snippet gives the backend's own penalty and the
reference subgradients at 0 (JAX's ``abs'(0) = 1`` and NaN norms worked around in the snippet
itself), and it applies regcore's selection rules when it runs.

The conformance suite (``regcore_conformance.test_export``) checks the snippet's numbers against
the reference on the scenario networks; the tests here add models with more than dense layers.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib import metadata

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import DTYPES, TRANSFORMS, ZERO_CASES
from regcore_jax.backend import load_snippet, penalty_value, x64
from regcore_jax.export import export

import regcore
from regcore import (
    L1,
    L2,
    DecoupledWeightDecay,
    ElasticNet,
    GroupLasso,
    Orthogonal,
    ParamInfo,
    Rule,
    Select,
    Spec,
    SpecError,
)
from regcore.registry import load_exporter

SPEC = Spec(
    penalties=[
        Rule(L2(1.0, convention="batch_mean", batch_size=3)),  # sum form 1/6, not a short decimal
        Rule(ElasticNet(0.01, 0.04, convention="half"), Select(roles=["norm_scale"])),
        Rule(GroupLasso(0.05, convention="sum", axis=-1, scale_by_size=True),
             Select(name=r"conv\..*", min_ndim=2)),
        Rule(Orthogonal(0.1, "columns", convention="sum"), Select(name=r"head\.(weight|kernel)")),
        Rule(L1(0.02, convention="sum"), Select(roles=["bias"], ndim=[1])),
    ],
    weight_decay=[DecoupledWeightDecay(0.125, Select(roles=["embedding"]))],
)
NOTHING = Spec(penalties=[Rule(L2(0.01, convention="sum"), Select(name=r"no_such_layer\..*"))])

SHAPES = {"embed.embeddings": ((10, 4), "embedding"), "conv.kernel": ((2, 3, 3, 5), "weight"),
          "conv.bias": ((5,), "bias"), "norm.gamma": ((4,), "norm_scale"),
          "norm.beta": ((4,), "bias"), "head.kernel": ((4, 3), "weight"),
          "head.bias": ((3,), "bias")}
ROLES = {name: role for name, (_, role) in SHAPES.items()}


def model(dtype: str = "float64") -> dict[str, np.ndarray]:
    """NumPy parameters of a small conv/norm/embedding model, with an all-zero conv group (out
    channel 1, the canonical last axis) and exact zeros in a bias."""
    rng = np.random.default_rng(0)
    params = {name: rng.standard_normal(shape) for name, (shape, _) in SHAPES.items()}
    params["conv.kernel"][..., 1] = 0.0
    params["conv.bias"][[0, 3]] = 0.0
    return {name: w.astype(dtype) for name, w in params.items()}


def imported_modules(code: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append("." * node.level + (node.module or ""))
    return found


def test_registered_as_the_jax_exporter():
    (ep,) = [ep for ep in metadata.entry_points(group="regcore.exporters") if ep.name == "jax"]
    assert ep.value == "regcore_jax.export:export" and load_exporter("jax") is export


@pytest.mark.parametrize("spec", [SPEC, NOTHING, Spec()], ids=["full", "nothing", "empty"])
def test_snippet_imports_nothing_from_regcore(spec):
    code = export(spec)
    assert sorted(set(imported_modules(code))) == ["jax", "jax.numpy", "re"]
    names = {node.id for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Name)}
    assert not [n for n in names if n.startswith("regcore")]


def test_exporting_imports_no_jax():
    probe = (
        "import json, sys\nimport regcore_jax.export as m\n"
        "from regcore import GroupLasso, L1, L2, Orthogonal, Rule, Spec\n"
        "m.export(Spec([Rule(L2(0.01, convention='sum')), Rule(L1(0.1, convention='sum')),\n"
        "               Rule(GroupLasso(0.1, convention='sum')),\n"
        "               Rule(Orthogonal(0.1, convention='sum'))]))\n"
        "print(json.dumps([f for f in ('jax', 'jaxlib', 'numpy') if f in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_header_states_the_spec_in_words():
    code = export(SPEC)
    header = code[:code.index("\n\n")].splitlines()
    assert all(line.startswith("#") for line in header)
    text = "\n".join(header)
    assert f"Exported by regcore {regcore.__version__} (regcore_jax.export): plain JAX" in header[0]
    for i, rule in enumerate(SPEC.penalties):
        assert f"penalties[{i}]: {rule.term!r}" in text
    assert "[sum form: coef=0.16666666666666666]" in text
    assert "[sum form: l1=0.01, l2=0.02]" in text
    assert r"the whole dotted name matching the regex conv\..* and ndim >= 2" in text
    assert "p <- p * (1 - lr * 0.125)" in text and "on parameters with role embedding" in text


def test_coefficients_are_the_exact_sum_form():
    tree = ast.parse(export(SPEC))
    data = {t.id: ast.literal_eval(node.value) for node in tree.body
            if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)
            and t.id in ("PENALTIES", "DECAY")}
    for rule, literal in zip(SPEC.penalties, data["PENALTIES"], strict=True):
        for key, value in rule.term.scaled().items():
            assert literal[key] == value and type(literal[key]) is float
    assert data["PENALTIES"][2]["select"] == {"name": r"conv\..*", "min_ndim": 2}
    assert data["DECAY"] == ({"rate": 0.125, "select": {"roles": ("embedding",)}},)


def test_framework_free_text_comes_from_regcores_exporter_kit():
    """Header, rules as data and run-time selection are regcore.export_support's, the public kit
    every exporter shares, so a JAX snippet reads like the bundled ones."""
    from regcore import export_support as support

    for spec in (SPEC, NOTHING, Spec()):
        code = export(spec)
        assert support.data_source(spec) in code
        assert support.selection_source(spec) in code
        ours = support.header(spec, module="regcore_jax.export", framework="JAX", contract=())
        assert code.startswith(ours.rsplit("\n#\n", 1)[0])


def test_export_refuses_what_is_not_a_spec():
    with pytest.raises(SpecError, match="expected a regcore.Spec"):
        export([Rule(L2(0.01, convention="sum"))])


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_snippet_matches_the_backend_penalty(dtype, transform):
    """Value and jax.grad of the snippet equal the backend's own penalty (same formulas, same
    order), eagerly and under jax.jit; the all-zero group has gradient 0, nothing is NaN."""
    params = model(dtype)
    regularization = load_snippet(export(SPEC))["regularization"]
    plan = SPEC.resolve([ParamInfo(k, v.shape, ROLES[k]) for k, v in params.items()])
    with x64():
        arrays = {k: jnp.asarray(v) for k, v in params.items()}
        value, grads = TRANSFORMS[transform](jax.value_and_grad(
            lambda p: regularization(p, ROLES)))(arrays)
        want, expected = jax.jit(jax.value_and_grad(
            lambda p: penalty_value(plan.penalties, p)))(arrays)
    assert value.shape == () and value.dtype == dtype
    rtol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(float(value), float(want), rtol=rtol)
    for k in params:
        got = np.asarray(grads[k])
        assert got.dtype == dtype and np.isfinite(got).all(), k
        np.testing.assert_allclose(got, np.asarray(expected[k]), rtol=rtol, atol=rtol * 1e-3)
    assert not np.asarray(grads["conv.kernel"])[..., 1].any()
    assert not np.asarray(grads["embed.embeddings"]).any()  # decayed, not penalized


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ZERO_CASES)
def test_snippet_subgradient_is_zero_at_exact_zeros(case, dtype, transform):
    term, w, zero = ZERO_CASES[case]
    regularization = load_snippet(export(Spec(penalties=[Rule(term, Select())])))[
        "regularization"]
    with x64():
        grad = TRANSFORMS[transform](jax.grad(lambda q: regularization(q, {"w": "weight"})))(
            {"w": jnp.asarray(w, dtype=dtype)})["w"]
    got = np.asarray(grad)
    assert got.dtype == dtype and np.isfinite(got).all()
    np.testing.assert_array_equal(got[zero], 0.0)
    assert got[~zero].all()  # the rest does move


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_accumulates_in_float32(dtype):
    params = {k: jnp.asarray(v, dtype=dtype) for k, v in model("float32").items()}
    regularization = load_snippet(export(SPEC))["regularization"]
    value, grads = jax.value_and_grad(lambda p: regularization(p, ROLES))(params)
    assert value.dtype == jnp.float32 and np.isfinite(float(value))
    assert all(g.dtype == dtype for g in grads.values())


def test_decay_scales_the_decayed_parameters_only():
    params = {k: jnp.asarray(v) for k, v in model("float32").items()}
    after = load_snippet(export(SPEC))["decay"](params, ROLES, 0.5)
    assert set(after) == set(params)
    factor = np.float32(1 - 0.5 * 0.125)
    np.testing.assert_array_equal(np.asarray(after["embed.embeddings"]),
                                  np.asarray(params["embed.embeddings"]) * factor)
    assert after["embed.embeddings"].dtype == jnp.float32
    assert all(after[k] is params[k] for k in params if k != "embed.embeddings")


def test_empty_spec_is_a_zero_penalty_and_no_decay():
    snippet = load_snippet(export(Spec()))
    params = {k: jnp.asarray(v) for k, v in model("float32").items()}
    value, grads = jax.value_and_grad(lambda p: snippet["regularization"](p, ROLES))(params)
    assert float(value) == 0 and not any(np.asarray(g).any() for g in grads.values())
    assert snippet["decay"](params, ROLES, 0.1) == params


def test_a_rule_selecting_nothing_raises_when_the_snippet_runs():
    message = (r"penalties\[0\]: Select\(name='no_such_layer\\\\\.\.\*'\) selects no parameter; "
               r"available: .*\(weight, ndim ")
    with pytest.raises(ValueError, match=message):
        load_snippet(export(NOTHING))["regularization"](model(), ROLES)
    nothing_decayed = Spec(weight_decay=[DecoupledWeightDecay(0.1, Select(roles=["other"]))])
    with pytest.raises(ValueError, match=r"weight_decay\[0\]: .* selects no parameter"):
        load_snippet(export(nothing_decayed))["decay"](model(), ROLES, 0.1)


def test_resolution_errors_raise_when_the_snippet_runs():
    twice = Spec(penalties=[Rule(L2(0.01, convention="sum")),
                            Rule(L2(0.02, convention="sum"), Select(name=r"head\..*"))])
    with pytest.raises(ValueError, match=r"penalties\[1\]: parameter 'head.kernel' already gets "
                                         r"a l2 term from penalties\[0\]"):
        load_snippet(export(twice))["regularization"](model(), ROLES)
    on_vectors = Spec(penalties=[Rule(Orthogonal(0.1, "rows", convention="sum"),
                                      Select(ndim=[1]))])
    with pytest.raises(ValueError, match="orthogonal: parameter 'conv.bias' has shape"):
        load_snippet(export(on_vectors))["regularization"](model(), ROLES)
    with pytest.raises(ValueError, match=r"roles: no role for parameter\(s\) \['extra'\]"):
        load_snippet(export(SPEC))["regularization"]({**model(), "extra": np.ones(2)}, ROLES)
