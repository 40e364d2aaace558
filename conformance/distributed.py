"""Data-parallel training: the global batch split over ``W`` replicas must train exactly like one
process on the whole batch, so the penalty counts once per global step (not once per replica,
not divided by the replica count) on every native translation the backend trains data-parallel
through.

A plain suite run does not collect this module (its name does not start with ``test_``);
``nox -s distributed`` names it: ``pytest --pyargs regcore_conformance.distributed``.

Runs the MLP scenarios with every spec, each declared translation
(:attr:`regcore.DataParallel.distributed_translations`) and replica count
(:attr:`regcore.DataParallel.distributed_world_sizes`), SGD and Adam, float64 and float32, on
the CPU, against the single-process reference after K steps. Replicas ending with different
parameters are a failure of the backend's ``distributed_train``. One step's global loss and
gradient (:meth:`regcore.DataParallel.distributed_loss_and_grads`) are checked against the
reference too, on the translations whose penalty goes through the loss or the gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

from regcore import DataParallel, SpecError, UnsupportedError
from regcore.capabilities import missing
from regcore_conformance import reference
from regcore_conformance.cases import scenario_specs
from regcore_conformance.inputs import check_inputs_unchanged, compare_trajectory, inputs
from regcore_conformance.plugin import backend_of
from regcore_conformance.protocol import returned
from regcore_conformance.scenarios import SCENARIOS
from regcore_conformance.tolerance import Tolerance, model_chain

pytestmark = pytest.mark.regcore_needs("DataParallel")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "distributed_translation" not in metafunc.fixturenames:
        return
    backend = backend_of(metafunc.config)
    offered = isinstance(backend, DataParallel)
    translations = list(backend.distributed_translations if offered else ()) or [pytest.param(
        None, id="none", marks=pytest.mark.skip(reason=missing(backend, DataParallel) or (
            f"{backend.name}: declares no data-parallel translations")))]
    sizes = list(backend.distributed_world_sizes if offered else ()) or [pytest.param(
        0, id="none", marks=pytest.mark.skip(reason=missing(backend, DataParallel) or (
            f"{backend.name}: declares no replica counts")))]
    metafunc.parametrize("distributed_translation", translations)
    metafunc.parametrize("world_size", sizes, ids=[f"w{s}" if isinstance(s, int) else "none"
                                                   for s in sizes])


_TRAINED: dict[tuple, tuple[tuple, dict | BaseException]] = {}


def _trained(backend, translation: str, name: str, dtype: str, optimizer: str, world_size: int):
    """The inputs and :meth:`regcore.DataParallel.distributed_train_many`'s results for every
    spec of scenario ``name``: one call per scenario, translation, replica count, dtype and
    optimizer, made by the first of its tests (the plugin parametrizes ``mlp_case`` last, so a
    scenario's specs run one after another) and read by each. Every spec trains from its own
    copy of the parameters; each test checks its own result against a fresh reference."""
    key = (backend.name, translation, name, dtype, optimizer, world_size)
    if key not in _TRAINED:
        scenario = SCENARIOS[name]
        params, x, y = inputs(backend, scenario, "cpu", dtype)
        _TRAINED.clear()  # one scenario's results at a time
        try:
            got: dict | BaseException = backend.distributed_train_many(
                translation, scenario.model,
                {k: v for k, v in scenario_specs(name).items() if not v.activity}, params, x, y,
                optimizer=scenario.optimizer(optimizer), steps=scenario.steps,
                world_size=world_size)
        except Exception as exc:  # every test of the call fails with it, without calling again
            got = exc
        _TRAINED[key] = (params, x, y), got
    inputs_, got = _TRAINED[key]
    if isinstance(got, BaseException):
        raise got
    return inputs_, got


def test_distributed_training(backend, dtype, distributed_translation, world_size, optimizer,
                              mlp_case, checker):
    name, spec_name = mlp_case
    scenario = SCENARIOS[name]
    (params, x, y), results = _trained(backend, distributed_translation, name, dtype, optimizer,
                                       world_size)
    final = results[spec_name]
    if isinstance(final, (SpecError, UnsupportedError)):
        pytest.skip(f"{backend.name} {distributed_translation} cannot run {spec_name}: {final}")
    check = checker(device=f"cpu×{world_size}", dtype=dtype, scenario=name, case=spec_name)
    check_inputs_unchanged(check, backend, scenario, dtype, params, x, y)
    returned(check, backend, f"distributed_train:{distributed_translation}", final, params)
    label = f"distributed_w{world_size}_{distributed_translation}_{optimizer}"
    compare_trajectory(check, backend, label, final, reference.train(name, spec_name, optimizer),
                       scenario, dtype)
    check.verify()


def test_distributed_loss_and_gradients(backend, dtype, distributed_translation, world_size,
                                        mlp_case, checker):
    """One data-parallel step: the global loss (data over the whole batch plus the penalty)
    and the gradient the optimizer sees equal the single-process reference's, on the translations
    whose penalty goes through the loss or the gradient."""
    name, spec_name = mlp_case
    scenario = SCENARIOS[name]
    params, x, y = inputs(backend, scenario, "cpu", dtype)
    try:
        loss, grads = backend.distributed_loss_and_grads(
            distributed_translation, scenario.model, scenario_specs(name)[spec_name], params, x, y,
            world_size=world_size)
    except (SpecError, UnsupportedError) as exc:
        pytest.skip(f"{backend.name} {distributed_translation} cannot run {spec_name}: {exc}")
    check = checker(device=f"cpu×{world_size}", dtype=dtype, scenario=name, case=spec_name)
    check_inputs_unchanged(check, backend, scenario, dtype, params, x, y)
    returned(check, backend, f"distributed_loss_and_grads:{distributed_translation}", grads, params,
             value=loss)
    ref_loss, ref_grads = reference.loss_and_grads(name, spec_name)
    tol = Tolerance(dtype, model_chain(scenario.model, scenario.batch_size))
    label = f"distributed_w{world_size}_{distributed_translation}"
    check.compare(f"{label}:loss", backend.to_numpy(loss), ref_loss, tol)
    floor = max(float(np.max(np.abs(g))) for g in ref_grads.values())
    for pname, ref in ref_grads.items():
        check.compare(f"{label}:grad:{pname}", backend.to_numpy(grads[pname]), ref, tol,
                      scale_floor=floor)
    check.verify()
