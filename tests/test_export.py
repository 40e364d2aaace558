"""The exporters (entry point group ``regcore.exporters``): the snippet's header states the spec,
the snippet imports nothing from regcore, exporting imports no framework, coefficients are exact,
and the snippet applies regcore's selection rules when it runs.

The conformance suite (``regcore_conformance.test_export``) checks the snippets' numbers on the
scenario networks; the tests here that run a snippet on models those networks do not have
(convolutions, normalization, embeddings) skip where the framework is not installed.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib import metadata

import pytest

from regcore import (
    L1,
    L2,
    DecoupledWeightDecay,
    ElasticNet,
    GroupLasso,
    Orthogonal,
    Rule,
    Select,
    Spec,
    SpecError,
)
from regcore.registry import available_exporters, load_exporter

EXPORTERS = ("numpy", "torch", "tf")
FRAMEWORKS = ("numpy", "torch", "tensorflow", "keras", "jax")

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


def export(name: str, spec: Spec) -> str:
    return load_exporter(name)(spec)


def load(code: str) -> dict:
    namespace: dict = {}
    exec(compile(code, "<snippet>", "exec"), namespace)
    return namespace


@pytest.fixture(params=EXPORTERS)
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_every_built_in_backend_has_an_exporter():
    registered = set(available_exporters())
    assert set(EXPORTERS) <= registered  # outside packages (regcore-jax) may add their own
    assert {ep.value for ep in metadata.entry_points(group="regcore.exporters")
            if ep.name in EXPORTERS} == {f"regcore_adapters.{n}.export:export" for n in EXPORTERS}


def test_exporting_imports_no_framework(name):
    probe = (
        f"import json, sys\nimport regcore_adapters.{name}.export as m\n"
        f"from regcore import L2, Rule, Spec\n"
        f"m.export(Spec([Rule(L2(0.01, convention='sum'))]))\n"
        f"print(json.dumps([f for f in {FRAMEWORKS!r} if f in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_snippet_imports_nothing_from_regcore(name):
    imported = []
    for node in ast.walk(ast.parse(export(name, SPEC))):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported.append("." * node.level + (node.module or ""))
    assert imported and not [m for m in imported if m.startswith(("regcore", "."))], imported
    names = {node.id for node in ast.walk(ast.parse(export(name, SPEC)))
             if isinstance(node, ast.Name)}
    assert not [n for n in names if n.startswith("regcore")]


def test_header_states_the_spec_in_words(name):
    code = export(name, SPEC)
    header = code[:code.index("\n\n")].splitlines()
    assert all(line.startswith("#") for line in header)
    text = "\n".join(header)
    assert f"regcore_adapters.{name}.export" in header[0]
    for i, rule in enumerate(SPEC.penalties):
        assert f"penalties[{i}]: {rule.term!r}" in text
    assert "[sum form: coef=0.16666666666666666]" in text  # batch_mean 1/(2·3), as repr
    assert "[sum form: l1=0.01, l2=0.02]" in text  # half: l2 / 2
    assert "on parameters with role weight\n" in text
    assert "on parameters with role bias and ndim 1" in text
    assert r"the whole dotted name matching the regex conv\..* and ndim >= 2" in text
    assert "weight_decay[0]: DecoupledWeightDecay(0.125)" in text
    assert "p <- p * (1 - lr * 0.125)" in text
    assert "on parameters with role embedding" in text


def test_coefficients_are_the_exact_sum_form(name):
    tree = ast.parse(export(name, SPEC))
    data = {t.id: ast.literal_eval(node.value) for node in tree.body
            if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)
            and t.id in ("PENALTIES", "DECAY")}
    for rule, literal in zip(SPEC.penalties, data["PENALTIES"], strict=True):
        for key, value in rule.term.scaled().items():
            assert literal[key] == value and type(literal[key]) is float
    assert data["PENALTIES"][0]["coef"] == 1 / 6
    assert data["PENALTIES"][2] | {"select": None} == {
        "kind": "group_lasso", "coef": 0.05, "axis": -1, "scale_by_size": True, "select": None}
    assert data["PENALTIES"][2]["select"] == {"name": r"conv\..*", "min_ndim": 2}
    assert data["DECAY"] == ({"rate": 0.125, "select": {"roles": ("embedding",)}},)


def test_export_refuses_what_is_not_a_spec(name):
    with pytest.raises(SpecError, match="expected a regcore.Spec"):
        export(name, [Rule(L2(0.01, convention="sum"))])


def test_empty_spec_exports_a_zero_penalty_and_no_decay():
    np = pytest.importorskip("numpy")
    snippet = load(export("numpy", Spec()))
    params = {"dense_0.kernel": np.ones((2, 3)), "dense_0.bias": np.ones(3)}
    roles = {"dense_0.kernel": "weight", "dense_0.bias": "bias"}
    value, grads = snippet["regularization"](params, roles)
    assert value == 0 and all(not g.any() for g in grads.values())
    assert snippet["decay"](params, roles, 0.1) == params


# -- the snippet running on models with more than dense layers -----------------------------------


def _numpy_model():
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    shapes = {"embed.embeddings": ((10, 4), "embedding"), "conv.kernel": ((2, 3, 3, 5), "weight"),
              "conv.bias": ((5,), "bias"), "norm.gamma": ((4,), "norm_scale"),
              "norm.beta": ((4,), "bias"), "head.kernel": ((4, 3), "weight"),
              "head.bias": ((3,), "bias")}
    params = {k: rng.standard_normal(shape) for k, (shape, _) in shapes.items()}
    params["conv.kernel"][..., 1] = 0.0  # an all-zero group: subgradient 0
    roles = {k: role for k, (_, role) in shapes.items()}
    return params, roles


def test_numpy_snippet_matches_the_reference():
    np = pytest.importorskip("numpy")
    from regcore import ParamInfo
    from regcore_adapters.numpy import NumpyBackend

    params, roles = _numpy_model()
    snippet = load(export("numpy", SPEC))
    value, grads = snippet["regularization"](params, roles)
    plan = SPEC.resolve([ParamInfo(k, v.shape, roles[k]) for k, v in params.items()])
    ref_value, ref_grads = NumpyBackend().penalty(plan, params)
    assert type(value) is np.float64 and value == ref_value
    for k in params:
        np.testing.assert_array_equal(grads[k], ref_grads[k])
    decayed = snippet["decay"](params, roles, 0.5)
    np.testing.assert_array_equal(decayed["embed.embeddings"],
                                  params["embed.embeddings"] * (1 - 0.5 * 0.125))
    assert all(decayed[k] is params[k] for k in params if k != "embed.embeddings")


def test_numpy_snippet_accumulates_float16_in_float32():
    np = pytest.importorskip("numpy")
    params, roles = _numpy_model()
    half = {k: v.astype(np.float16) for k, v in params.items()}
    value, grads = load(export("numpy", SPEC))["regularization"](half, roles)
    assert type(value) is np.float32 and all(grads[k].dtype == np.float16 for k in grads)


def _torch_model():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.conv = nn.Conv2d(3, 5, kernel_size=(2, 3))
            self.norm = nn.LayerNorm(4)
            self.head = nn.Linear(4, 3)

    torch.manual_seed(0)
    net = Net().double()
    with torch.no_grad():
        net.conv.weight[1] = 0.0  # out channel 1: a zero group along the canonical last axis
    return torch, net


def test_torch_snippet_matches_the_native_translation():
    torch, net = _torch_model()
    from regcore_adapters.torch.native import PenaltyLoss

    names, params = zip(*net.named_parameters(), strict=True)
    value = load(export("torch", SPEC))["regularization"](net)
    want = PenaltyLoss(SPEC, net)()
    got = torch.autograd.grad(value, params, allow_unused=True, materialize_grads=True)
    expected = torch.autograd.grad(want, params, allow_unused=True, materialize_grads=True)
    assert torch.allclose(value, want, rtol=1e-13, atol=0)
    for name, g, e in zip(names, got, expected, strict=True):
        assert torch.isfinite(g).all(), name
        assert torch.allclose(g, e, rtol=1e-12, atol=1e-15), name
    assert torch.equal(got[names.index("conv.weight")][1], torch.zeros(3, 2, 3,
                                                                       dtype=torch.float64))
    before = net.embed.weight.detach().clone()
    load(export("torch", SPEC))["decay_"](net, 0.5)
    assert torch.equal(net.embed.weight, before * (1 - 0.5 * 0.125))


def _keras_model():
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 3))
    h = keras.layers.Conv2D(5, (2, 3), name="conv")(inputs)
    h = keras.layers.GlobalAveragePooling2D()(h)
    h = keras.layers.Dense(4, name="dense")(h)
    h = keras.layers.LayerNormalization(name="norm")(h)
    net = keras.Model(inputs, keras.layers.Dense(3, name="head")(h))
    kernel = net.get_layer("conv").kernel  # out channel 1: a zero group along the last axis
    kernel.assign(kernel.value * tf.constant([1.0, 0.0, 1.0, 1.0, 1.0]))
    return tf, keras, net


def test_tf_snippet_matches_the_keras_translation():
    tf, keras, net = _keras_model()
    from regcore_adapters.tf.keras_native import penalty

    spec = Spec(penalties=SPEC.penalties)  # no embedding in this model to decay
    regularization = load(export("tf", spec))["regularization"]
    with tf.GradientTape(persistent=True) as tape:
        value, want = regularization(net), penalty(spec, net)()
    sources = [v.value for v in net.trainable_variables]
    got, expected = tape.gradient(value, sources), tape.gradient(want, sources)
    assert abs(float(value) - float(want)) <= 1e-6 * abs(float(want))
    for g, e in zip(got, expected, strict=True):
        assert bool(tf.reduce_all(tf.math.is_finite(g)))
        assert float(tf.reduce_max(tf.abs(g - e))) <= 1e-6 * float(tf.reduce_max(tf.abs(e)))
    compiled = tf.function(regularization, jit_compile=False)
    assert abs(float(compiled(net)) - float(value)) <= 1e-6 * abs(float(value))


def test_tf_snippet_decay_assigns():
    tf, keras, net = _keras_model()
    spec = Spec(weight_decay=[DecoupledWeightDecay(0.125, Select(roles=["norm_scale"]))])
    gamma = net.get_layer("norm").gamma
    gamma.assign(tf.fill(gamma.shape, 2.0))
    load(export("tf", spec))["decay"](net, 0.5)
    assert bool(tf.reduce_all(gamma.value == 2.0 * (1 - 0.5 * 0.125)))


def _run_nothing(name: str):
    """Run the NOTHING spec's snippet on a small model of ``name``'s framework (a skip where
    the framework is not installed)."""
    if name == "numpy":
        params, roles = _numpy_model()
        return load(export(name, NOTHING))["regularization"](params, roles)
    model = _torch_model()[1] if name == "torch" else _keras_model()[2]
    return load(export(name, NOTHING))["regularization"](model)


def test_a_rule_selecting_nothing_raises_when_the_snippet_runs(name):
    message = (r"penalties\[0\]: Select\(name='no_such_layer\\\\\.\.\*'\) selects no parameter; "
               r"available: .*\(weight, ndim ")
    with pytest.raises(ValueError, match=message):
        _run_nothing(name)


def test_a_second_term_of_one_kind_raises_when_the_snippet_runs():
    pytest.importorskip("numpy")
    twice = Spec(penalties=[Rule(L2(0.01, convention="sum")),
                            Rule(L2(0.02, convention="sum"), Select(name=r"head\..*"))])
    params, roles = _numpy_model()
    with pytest.raises(ValueError, match=r"penalties\[1\]: parameter 'head.kernel' already gets "
                                         r"a l2 term from penalties\[0\]"):
        load(export("numpy", twice))["regularization"](params, roles)


def test_a_term_undefined_for_the_shape_raises_when_the_snippet_runs():
    pytest.importorskip("numpy")
    spec = Spec(penalties=[Rule(Orthogonal(0.1, "rows", convention="sum"), Select(ndim=[1]))])
    params, roles = _numpy_model()
    with pytest.raises(ValueError, match="orthogonal: parameter 'conv.bias' has shape"):
        load(export("numpy", spec))["regularization"](params, roles)
