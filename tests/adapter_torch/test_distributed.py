"""torch data-parallel helpers: batch shards and their weights, and FSDP's refusal of terms that
need whole parameters. The conformance suite (``nox -s distributed``) checks the trained numbers."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from regcore import (  # noqa: E402
    L2,
    ModelSpec,
    Optimizer,
    Orthogonal,
    Rule,
    Spec,
    SpecError,
    UnknownTranslationError,
)
from regcore_adapters.torch import distributed  # noqa: E402


@pytest.mark.parametrize(("n", "world_size"), [(150, 4), (64, 4), (150, 2), (7, 4)])
def test_shards_cover_the_batch_and_weights_make_the_mean(n, world_size):
    shards = [distributed.shard(n, world_size, r) for r in range(world_size)]
    covered = np.concatenate([np.arange(n)[s] for s, _ in shards])
    assert np.array_equal(covered, np.arange(n))
    sizes = [s.stop - s.start for s, _ in shards]
    assert max(sizes) - min(sizes) <= 1
    # the DDP average of the replicas' weighted means is the global mean
    values = np.random.default_rng(0).standard_normal(n)
    avg = np.mean([w * values[s].mean() for s, w in shards])
    assert avg == pytest.approx(values.mean(), rel=1e-13)


def _job(spec: Spec, translation: str):
    model = ModelSpec((3, 4, 2), "tanh", "mse")
    rng = np.random.default_rng(0)
    params = {"dense_0.kernel": rng.standard_normal((3, 4)), "dense_0.bias": np.zeros(4),
              "dense_1.kernel": rng.standard_normal((4, 2)), "dense_1.bias": np.zeros(2)}
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    return distributed.train(translation, model, spec, params, x, y,
                             optimizer=Optimizer("sgd", 0.1),
                             steps=2, world_size=2)


def test_fsdp_refuses_a_term_that_needs_the_whole_parameter():
    with pytest.raises(SpecError, match="sharded .* needs whole rows or columns"):
        _job(Spec([Rule(Orthogonal(0.1, convention="sum"))]), "fsdp_loss_term")
    # the replicas live on after a refusal: an elementwise spec trains
    final = _job(Spec([Rule(L2(0.1, convention="sum"))]), "fsdp_loss_term")
    assert set(final) == {"dense_0.kernel", "dense_0.bias", "dense_1.kernel", "dense_1.bias"}


def test_bad_translation_or_world_size_is_a_value_error():
    with pytest.raises(UnknownTranslationError, match="unknown translation 'ddp'; "
                                                      "distributed_translations declares"):
        _job(Spec([Rule(L2(0.1, convention="sum"))]), "ddp")
    with pytest.raises(ValueError, match="world_size: expected one of"):
        distributed.train("loss_term", ModelSpec((1, 1), None, "mse"), Spec(), {}, np.zeros((4, 1)),
                          np.zeros((4, 1)), optimizer=Optimizer("sgd", 0.1), steps=1,
                          world_size=3)


@pytest.mark.parametrize("translation", ["loss_term", "fsdp_loss_term"])
def test_specs_trained_side_by_side_equal_each_trained_alone(translation):
    """``train_many`` trains every spec on its own copy of the model in one wrapped module: each
    result is the one-spec call's, bit for bit, and a spec the translation refuses comes back
    as its refusal without stopping the others."""
    model = ModelSpec((3, 4, 2), "tanh", "mse")
    rng = np.random.default_rng(1)
    params = {"dense_0.kernel": rng.standard_normal((3, 4)), "dense_0.bias": rng.standard_normal(4),
              "dense_1.kernel": rng.standard_normal((4, 2)), "dense_1.bias": np.zeros(2)}
    x, y = rng.standard_normal((9, 3)), rng.standard_normal((9, 2))
    specs = {"l2": Spec([Rule(L2(0.1, convention="sum"))]),
             "orthogonal": Spec([Rule(Orthogonal(0.1, convention="sum"))]),
             "none": Spec()}
    run = {"optimizer": Optimizer("adam", 0.05), "steps": 3, "world_size": 2}
    together = distributed.train_many(translation, model, specs, params, x, y, **run)
    assert set(together) == set(specs)
    for name, spec in specs.items():
        try:
            alone = distributed.train(translation, model, spec, params, x, y, **run)
        except SpecError as exc:
            assert isinstance(together[name], SpecError) and str(together[name]) == str(exc)
            continue
        assert not isinstance(together[name], Exception)
        for k, v in alone.items():
            np.testing.assert_array_equal(together[name][k], v, err_msg=f"{name} {k}")
    assert isinstance(together["orthogonal"], SpecError) == translation.startswith("fsdp")
    assert not np.array_equal(together["l2"]["dense_0.kernel"],
                              together["none"]["dense_0.kernel"])  # the penalty took part


def test_the_default_train_many_calls_train_once_per_spec():
    from regcore import DataParallel

    calls = []

    class OneAtATime:
        def distributed_train(self, translation, model, spec, params, x, y, **kw):
            calls.append(spec)
            if spec is refused:
                raise SpecError("cannot")
            return {"w": len(calls)}

    accepted, refused = Spec([Rule(L2(0.1, convention="sum"))]), Spec()
    got = DataParallel.distributed_train_many(
        OneAtATime(), "t", ModelSpec((1, 1), None, "mse"), {"a": accepted, "r": refused}, {}, None,
        None, optimizer=Optimizer("sgd", 0.1), steps=1, world_size=2)
    assert calls == [accepted, refused]
    assert got["a"] == {"w": 1} and isinstance(got["r"], SpecError)
