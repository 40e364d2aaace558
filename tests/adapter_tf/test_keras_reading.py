"""Reading a Keras (model, optimizer) setup back into a spec, and comparing it with its torch
twin: the port check of regcore.diff on real framework objects."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from regcore import L1, L2, DecoupledWeightDecay, Rule, Select, Spec  # noqa: E402
from regcore.diff import compare, map_by_order  # noqa: E402
from regcore_adapters.keras.params import model_params  # noqa: E402
from regcore_adapters.keras.reading import read_setup  # noqa: E402
from regcore_adapters.tf.keras_native import apply_spec, build_optimizer  # noqa: E402


def _model(**regularizers) -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, **regularizers),
                              keras.layers.LayerNormalization(), keras.layers.Dense(2)])
    return model


def _applied(spec: Spec, model) -> tuple[set, dict]:
    plan = spec.resolve([p.info for p in model_params(model)])
    return ({(a.param, type(a.term).__name__, tuple(sorted(a.term.scaled().items())))
             for a in plan.penalties}, plan.decay)


@pytest.mark.parametrize("spec", [
    Spec([Rule(L2(0.01, convention="sum"), Select(roles=("weight",)))]),
    Spec([Rule(L1(0.5, convention="sum"), Select(roles=("bias",)))],
         weight_decay=[DecoupledWeightDecay(0.004, Select(roles=("weight",)))]),
])
def test_a_spec_applied_to_keras_reads_back_as_itself(spec):
    model = _model()
    apply_spec(spec, model)
    read = read_setup(model, build_optimizer(spec, model, keras.optimizers.AdamW,
                                             learning_rate=1e-3))
    assert read.notes == ()
    assert _applied(read.spec, model) == _applied(spec, model)


def test_exclusions_by_name_and_unknown_regularizers():
    class Custom(keras.regularizers.Regularizer):
        def __call__(self, x):
            return keras.ops.sum(x)

    model = _model(kernel_regularizer=keras.regularizers.L2(0.01), bias_regularizer=Custom())
    opt = keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.05)
    opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    read = read_setup(model, opt)
    penalties, rates = _applied(read.spec, model)
    assert {(p, kind) for p, kind, _ in penalties} == {(model_params(model)[0].info.name, "L2")}
    assert set(rates.values()) == {0.05}
    assert all(p.endswith("kernel") for p in rates) and len(rates) == 2
    assert any("does not know the maths of Custom" in n for n in read.notes)


def test_keras_l2_against_torch_weight_decay_of_the_same_number():
    """The classic port bug (keras #4712): Keras ``L2(0.01)`` on the kernels against torch
    ``SGD(weight_decay=0.01)`` on everything: a factor 2 on the kernels, and the biases and
    the norm's parameters decayed in torch only."""
    torch = pytest.importorskip("torch")
    from regcore_adapters.torch.modules import module_params
    from regcore_adapters.torch.reading import read_setup as read_torch

    keras_model = _model(kernel_regularizer=keras.regularizers.L2(0.01))
    keras_model.layers[-1].kernel.regularizer = keras.regularizers.L2(0.01)
    torch_model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8),
                                      torch.nn.Linear(8, 2))
    torch_reading = read_torch(torch_model, torch.optim.SGD(torch_model.parameters(), lr=0.1,
                                                            weight_decay=0.01))
    k_params, t_params = [p.info for p in model_params(keras_model)], [
        p.info for p in module_params(torch_model)]
    rows = compare(read_setup(keras_model).spec.resolve(k_params),
                   torch_reading.spec.resolve(t_params), map_by_order(k_params, t_params))
    verdicts = {(r.b, r.kind): r.verdict for r in rows}
    assert verdicts[("0.weight", "l2")] == "factor 2: L2 vs weight_decay"
    assert verdicts[("2.weight", "l2")] == "factor 2: L2 vs weight_decay"
    for name in ("0.bias", "1.weight", "1.bias", "2.bias"):
        assert verdicts[(name, "l2")] == "only in B"
