"""Reading optax setups (``regcore_jax.reading``): each reading is checked against what the
transformation does — one update with zero gradients moves a decoupled-decayed leaf by exactly
``−lr·rate·p`` and leaves every other leaf alone — and what cannot be read is noted."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

optax = pytest.importorskip("optax")

from regcore_jax.reading import decay_mask, param_infos, read_decay, read_setup  # noqa: E402

from regcore import L2, DecoupledWeightDecay, Select, Spec  # noqa: E402

LR, RATE = 0.1, 0.01


def _params():
    k = iter(jax.random.split(jax.random.key(0), 8))
    return {"Dense_0": {"kernel": jax.random.normal(next(k), (3, 4)),
                        "bias": jax.random.normal(next(k), (4,))},
            "LayerNorm_0": {"scale": jax.random.normal(next(k), (4,)),
                            "bias": jax.random.normal(next(k), (4,))},
            "Embed_0": {"embedding": jax.random.normal(next(k), (10, 3))}}


def _ndim_mask(params):
    return jax.tree.map(lambda p: p.ndim > 1, params)


def _moved(tx, params) -> dict[str, float]:
    """``update / p`` per leaf after one step with zero gradients (0 where nothing moved)."""
    updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
    flat = jax.tree_util.tree_flatten_with_path(jax.tree.map(lambda u, p: u / p, updates,
                                                             params))[0]
    return {".".join(k.key for k in path): float(np.mean(v)) for path, v in flat}


def test_param_infos_roles_from_the_leaf_keys():
    roles = {p.name: p.role for p in param_infos(_params())}
    assert roles == {"Dense_0.kernel": "weight", "Dense_0.bias": "bias",
                     "Embed_0.embedding": "embedding", "LayerNorm_0.bias": "bias",
                     "LayerNorm_0.scale": "norm_scale"}


def _gradient_coefficients(plan) -> dict[str, float]:
    """What each parameter's regularization adds per step to the update's ``p`` coefficient,
    before the learning rate: decoupled ``rate``, coupled L2 its gradient ``2·coef`` (sum form)."""
    out = dict(plan.decay)
    for a in plan.penalties:
        out[a.param] = 2 * a.term.scaled()["coef"]
    return out


@pytest.mark.parametrize(("tx", "how", "expected"), [
    (lambda: optax.adamw(LR, weight_decay=RATE), "decoupled", 5),
    (lambda: optax.adamw(LR, weight_decay=RATE, mask=_ndim_mask), "decoupled", 2),
    (lambda: optax.adamw(LR, weight_decay=RATE, mask=_ndim_mask(_params())), "decoupled", 2),
    # a mask that is a prefix of the params tree: optax broadcasts it over each subtree
    (lambda: optax.adamw(LR, weight_decay=RATE, mask={"Dense_0": True, "Embed_0": True,
                                                      "LayerNorm_0": False}), "decoupled", 3),
    (lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(LR, weight_decay=RATE)),
     "decoupled", 5),
    # adafactor scales by the learning rate before its decay, by -1 after: rate/lr in AdamW's form
    (lambda: optax.adafactor(LR, weight_decay_rate=RATE), "decoupled", 5),
    (lambda: optax.chain(optax.add_decayed_weights(RATE, _ndim_mask), optax.sgd(LR)),
     "coupled", 2),
])
def test_a_reading_is_what_one_update_does(tx, how, expected):
    """One update with zero gradients moves each regularized leaf by exactly ``-lr·c·p`` (``c``:
    the reading's decay rate, or its L2's gradient coefficient) and no other leaf."""
    params, tx = _params(), tx()
    reading = read_setup(params, tx)
    assert reading.notes == ()
    plan = reading.spec.resolve(param_infos(params))
    assert bool(plan.decay) == (how == "decoupled") and bool(plan.penalties) == (how == "coupled")
    coefficients = _gradient_coefficients(plan)
    moved = {n: v for n, v in _moved(tx, params).items() if v}
    assert set(coefficients) == set(moved) and len(moved) == expected
    assert moved == pytest.approx({n: -LR * c for n, c in coefficients.items()}, rel=1e-5)


@pytest.mark.parametrize("inner", [lambda: optax.adam(LR), lambda: optax.sgd(LR, momentum=0.9)])
def test_decay_before_a_gradient_transformation_is_coupled_l2(inner):
    params = _params()
    reading = read_setup(params, optax.chain(optax.add_decayed_weights(RATE, _ndim_mask),
                                             inner()))
    plan = reading.spec.resolve(param_infos(params))
    assert plan.decay == {}
    assert {a.param for a in plan.penalties} == {"Dense_0.kernel", "Embed_0.embedding"}
    assert {(type(a.term), a.term.convention, a.term.coef) for a in plan.penalties} == \
        {(L2, "torch_weight_decay", RATE)}


@pytest.mark.parametrize(("tx", "note"), [
    (lambda: optax.adamw(LR, weight_decay=lambda step: RATE), "schedule as its rate"),
    (lambda: optax.chain(optax.adam(LR), optax.add_decayed_weights(RATE)), "growth"),
    (lambda: optax.lamb(LR, weight_decay=RATE), "scale_by_adam before it and "
                                                "scale_by_trust_ratio after it"),
    (lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.add_decayed_weights(RATE),
                         optax.adam(LR)), "clip_by_global_norm before it"),
    (lambda: optax.chain(optax.add_decayed_weights(RATE), optax.keep_params_nonnegative(),
                         optax.scale_by_learning_rate(LR)), "keep_params_nonnegative"),
    (lambda: optax.multi_transform({"a": optax.adamw(LR, weight_decay=RATE),
                                    "b": optax.set_to_zero()},
                                   lambda p: jax.tree.map(lambda _: "a", p)),
     "partition"),  # optax 0.2.8 names multi_transform's update so
    (lambda: optax.inject_hyperparams(optax.adamw)(learning_rate=LR, weight_decay=RATE),
     "inject_hyperparams"),
    (lambda: optax.MultiSteps(optax.adamw(LR, weight_decay=RATE), 2), "MultiSteps"),
    (lambda: optax.named_chain(("adam", optax.adam(LR)),
                               ("decay", optax.add_decayed_weights(RATE))), "named_chain"),
    (lambda: optax.masked(optax.masked(optax.add_decayed_weights(RATE), _ndim_mask),
                          _ndim_mask), "inside a mask"),
])
def test_what_cannot_be_read_is_noted_never_dropped(tx, note):
    reading = read_setup(_params(), tx())
    assert reading.spec == Spec()
    assert len(reading.notes) == 1 and note in reading.notes[0], reading.notes


def test_a_spec_through_optax_reads_back_as_itself():
    params = _params()
    spec = Spec(weight_decay=(DecoupledWeightDecay(RATE, Select(roles=("weight", "embedding"))),))
    ((rate, mask),) = decay_mask(spec, params).items()
    read = read_setup(params, optax.adamw(LR, weight_decay=rate, mask=mask))
    infos = param_infos(params)
    assert read.spec.resolve(infos).decay == spec.resolve(infos).decay
    stated = read_decay(params, RATE, mask)
    assert stated.spec.resolve(infos).decay == spec.resolve(infos).decay


SETUPS = '''
import json

import jax
import optax


def adamw():
    k1, k2 = jax.random.split(jax.random.key(0))
    params = {"Dense_0": {"kernel": jax.random.normal(k1, (3, 4)),
                          "bias": jax.random.normal(k2, (4,))}}
    return params, optax.adamw(0.1, weight_decay=0.01,
                               mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p))


def schedule():
    params, _ = adamw()
    return params, optax.adamw(0.1, weight_decay=lambda step: 0.01)
'''


def test_audit_and_diff_on_optax_setups(tmp_path, monkeypatch, capsys):
    from regcore_apps.cli import main

    (tmp_path / "optaxsetups.py").write_text(SETUPS)
    monkeypatch.chdir(tmp_path)
    assert main(["audit", "optax:optaxsetups:adamw", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert {r["param"]: r["decay"] for r in got["params"]} == {"Dense_0.kernel": 0.01,
                                                               "Dense_0.bias": None}
    assert main(["diff", "optax:optaxsetups:adamw", "optax:optaxsetups:schedule"]) == 1
    out = capsys.readouterr().out
    assert "only in A" in out
    assert main(["audit", "optax:optaxsetups:schedule"]) == 0
    assert "note: add_decayed_weights with a schedule" in capsys.readouterr().out
