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


@pytest.mark.parametrize("mask", [None, _ndim_mask, _ndim_mask(_params())])
def test_adamw_reads_as_decoupled_decay_on_what_it_moves(mask):
    params = _params()
    tx = optax.adamw(LR, weight_decay=RATE, mask=mask)
    reading = read_setup(params, tx)
    assert reading.notes == ()
    plan = reading.spec.resolve(param_infos(params))
    assert plan.penalties == ()
    moved = {n: v for n, v in _moved(tx, params).items() if v}
    assert set(plan.decay) == set(moved)
    assert all(rate == RATE for rate in plan.decay.values())
    assert moved == pytest.approx({n: -LR * RATE for n in moved}, rel=1e-6)  # float32 update
    expected = 2 if mask is not None else 5
    assert len(moved) == expected


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
    (lambda: optax.adamw(LR, weight_decay=lambda step: RATE), "schedule"),
    (lambda: optax.chain(optax.adam(LR), optax.add_decayed_weights(RATE)), "not a decay"),
    (lambda: optax.chain(optax.add_decayed_weights(RATE), optax.clip_by_global_norm(1.0),
                         optax.scale_by_learning_rate(LR)), "clip_by_global_norm"),
    (lambda: optax.multi_transform({"a": optax.adamw(LR, weight_decay=RATE),
                                    "b": optax.set_to_zero()},
                                   lambda p: jax.tree.map(lambda _: "a", p)), "multi_transform"),
])
def test_what_cannot_be_read_is_noted_never_dropped(tx, note):
    reading = read_setup(_params(), tx())
    assert reading.spec == Spec()
    assert len(reading.notes) == 1 and note in reading.notes[0]


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
