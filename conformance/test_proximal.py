"""Proximal gradient (ISTA) steps: ``backend.proximal_train`` against the reference.

Each step is a plain SGD step on the smooth part of the plan (decoupled decay first), then the
shrinkage operators of :func:`regcore.proximal.split` with threshold ``lr·coef``. Only the cases
with a shrinkage operator run (:func:`regcore_conformance.cases.shrinkage_cases`: an L1,
elastic-net or group-lasso term); on any other spec the step is plain SGD, which
``test_trajectory`` checks already, so running them again would only cost suite time.

Tolerance: the SGD trajectory's (:func:`compare_trajectory`, ``2·γ(n)·(K + 1)``). Soft and block
soft thresholding are proximal maps of convex functions, hence 1-Lipschitz: an error in the
parameters entering a shrink is not amplified by it, so the SGD error analysis carries over
step by step. The shrink itself adds a few roundings per entry (the threshold rounded once to
the dtype, a subtraction or a division), and a group's norm is a sum no longer than the largest
parameter, which the chain ``n`` already counts.

Exact zeros (float64): every entry the reference ends at exactly 0 must be exactly 0 in the
backend, so a backend whose shrink leaves ``1e-17`` where the path expects 0 fails. One way
only: an entry the backend zeroes where the reference's is nonzero is a value error, judged by
the tolerance like any other (near the threshold a rounding may decide either way).
"""

from __future__ import annotations

import numpy as np
import pytest

from regcore_conformance import reference
from regcore_conformance.inputs import check_inputs_unchanged, compare_trajectory, inputs
from regcore_conformance.protocol import returned
from regcore_conformance.scenarios import SCENARIOS

pytestmark = pytest.mark.regcore_needs("ProximalTraining")


def test_proximal_trajectory(backend, device, dtype, proximal_case, checker):
    """K full-batch proximal gradient steps of the scenario's SGD learning rate."""
    name, spec = proximal_case
    scenario = SCENARIOS[name]
    check = checker(device=device, dtype=dtype, scenario=name, case=spec)
    params, x, y = inputs(backend, scenario, device, dtype)
    final = backend.proximal_train(scenario.model, reference.scenario_plan(name, spec), params,
                                   x, y, lr=scenario.lr, steps=scenario.steps)
    check_inputs_unchanged(check, backend, scenario, dtype, params, x, y)
    returned(check, backend, "proximal_train", final, params)
    ref = reference.proximal_train(name, spec)
    compare_trajectory(check, backend, f"proximal_{scenario.steps}_steps", final, ref, scenario,
                       dtype)
    if dtype == "float64":
        for pname, ref_p in ref.items():
            zeros = ref_p == 0
            missed = int(np.count_nonzero(zeros & (backend.to_numpy(final[pname]) != 0)))
            check.holds(f"proximal_zeros:{pname}", missed == 0,
                        f"{missed} of the {int(np.count_nonzero(zeros))} entries the reference "
                        "ends at exactly 0 are not 0")
    check.verify()
