"""What the suite's test modules share: a scenario's data as a backend's arrays, the check that a
call left them unchanged, and the comparison of trained parameters with the reference's."""

from __future__ import annotations

import numpy as np

from regcore_conformance.tolerance import Tolerance, model_chain


def inputs(backend, scenario, device, dtype):
    """The scenario's initial parameters, inputs and targets as ``backend``'s arrays of
    ``dtype`` on ``device`` (integer labels for classification, integer token ids)."""
    x, y = scenario.data()
    label_dtype = "int64" if scenario.classification else dtype
    params = {k: backend.asarray(v, dtype=dtype, device=device)
              for k, v in scenario.initial_params().items()}
    return (params, backend.asarray(x, dtype=_input_dtype(scenario, dtype), device=device),
            backend.asarray(y, dtype=label_dtype, device=device))


def check_inputs_unchanged(check, backend, scenario, dtype, params, x, y) -> None:
    """The call left the caller's parameters, inputs and targets exactly as they were."""
    data_x, data_y = scenario.data()
    given = np.concatenate([np.ravel(backend.to_numpy(p)) for p in params.values()]
                           + [np.ravel(backend.to_numpy(x))])
    original = np.concatenate([np.ravel(p) for p in scenario.initial_params().values()]
                              + [np.ravel(data_x).astype(_input_dtype(scenario, dtype))]
                              ).astype(dtype)
    check.unchanged("inputs_unchanged", given, original)
    labels = data_y if scenario.classification else data_y.astype(dtype)
    check.unchanged("inputs_unchanged:y", backend.to_numpy(y), labels)


def _input_dtype(scenario, dtype: str) -> str:
    return "int64" if getattr(scenario.model, "tokens", False) else dtype


def compare_trajectory(check, backend, label, final, ref, scenario, dtype) -> None:
    """Every parameter after the steps against the reference, normwise over the case."""
    tol = Tolerance(dtype, model_chain(scenario.model, scenario.batch_size),
                    steps=scenario.steps)
    floor = max(float(np.max(np.abs(p))) for p in ref.values())
    for pname, ref_p in ref.items():
        check.compare(f"{label}:{pname}", backend.to_numpy(final[pname]), ref_p, tol,
                      scale_floor=floor)
