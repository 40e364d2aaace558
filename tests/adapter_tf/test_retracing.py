"""No TensorFlow retracing warning from regcore's own ``tf.function``s in a typical loop: a sweep
over specs (each its own compiled function, traced once), a coefficient sweep (one trace for
every λ), and a few exported snippets evaluated in turn.

TensorFlow counts traces per Python code object, so before the fix every configuration's
compiled function (made by the same factory) counted as one function retraced, and the fifth
configuration logged "5 out of the last 5 calls ... triggered tf.function retracing".
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from regcore import (  # noqa: E402
    L1,
    L2,
    ElasticNet,
    GroupLasso,
    ModelSpec,
    Optimizer,
    Orthogonal,
    Rule,
    Select,
    Spec,
)
from regcore_adapters.tf.backend import TFBackend  # noqa: E402
from regcore_adapters.tf.export import export  # noqa: E402

MODEL = ModelSpec((4, 3, 2), "tanh", "mse")
WEIGHTS = Select(roles=("weight",))
SPECS = [
    Spec(penalties=(Rule(L2(0.01, convention="sum")),)),
    Spec(penalties=(Rule(L1(0.01, convention="sum"), WEIGHTS),)),
    Spec(penalties=(Rule(ElasticNet(0.01, 0.02, convention="sum"), WEIGHTS),)),
    Spec(penalties=(Rule(GroupLasso(0.01, convention="sum"), WEIGHTS),)),
    Spec(penalties=(Rule(Orthogonal(0.01, convention="sum"), WEIGHTS),)),
    Spec(penalties=(Rule(L2(0.01, convention="sum"), WEIGHTS),
                    Rule(L1(0.01, convention="sum"), WEIGHTS))),
]


class _Retracing(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "triggered tf.function retracing" in record.getMessage():
            self.messages.append(record.getMessage())


@pytest.fixture
def retracing():
    handler, logger = _Retracing(), logging.getLogger("tensorflow")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def _case(backend):
    rng = np.random.default_rng(0)
    params = {p.name: backend.asarray(rng.normal(size=p.shape), dtype="float32", device="cpu")
              for p in MODEL.params()}
    x = backend.asarray(rng.normal(size=(5, 4)), dtype="float32", device="cpu")
    y = backend.asarray(rng.normal(size=(5, 2)), dtype="float32", device="cpu")
    return params, x, y


def test_a_loop_over_specs_and_coefficients_does_not_warn_about_retracing(retracing):
    backend = TFBackend()
    params, x, y = _case(backend)
    for spec in SPECS:  # each spec its own compiled functions
        plan = spec.resolve(MODEL.params())
        for _ in range(2):
            backend.penalty(plan, params)
            backend.loss_and_grads(MODEL, plan, params, x, y)
    for coef in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6):  # one trace serves every coefficient
        plan = Spec(penalties=(Rule(L2(coef, convention="sum")),)).resolve(MODEL.params())
        backend.penalty(plan, params)
        backend.train(MODEL, plan, params, x, y, optimizer=Optimizer("sgd", 0.1), steps=2)
    assert not retracing, retracing


def test_exported_snippets_in_turn_do_not_warn_about_retracing(retracing):
    backend = TFBackend()
    params, _, _ = _case(backend)
    for spec in SPECS[:5]:
        backend.exported_penalty(export(spec), MODEL, params)
    assert not retracing, retracing
