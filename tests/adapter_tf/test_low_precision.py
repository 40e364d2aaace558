"""The TF functional path on float16/bfloat16 parameters: the penalty accumulates in float32 and
the gradient comes back in the parameter's own dtype."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from regcore import L2, GroupLasso, ParamInfo, Rule, Select, Spec  # noqa: E402
from regcore_adapters.numpy import NumpyBackend  # noqa: E402
from regcore_adapters.tf import TFBackend  # noqa: E402

N = 4096


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("term", [L2(0.5, convention="sum"),
                                  GroupLasso(0.5, convention="sum", axis=0)])
def test_low_precision_parameters_accumulate_in_float32(dtype, term):
    w = tf.cast(tf.constant(np.random.default_rng(0).uniform(0.5, 1.0, (64, N // 64))), dtype)
    plan = Spec(penalties=(Rule(term, Select()),)).resolve([ParamInfo("w", (64, N // 64),
                                                                      "weight")])
    value, grads = TFBackend().penalty(plan, {"w": w})
    exact = w.numpy().astype(np.float64)  # the float64 reference on the stored numbers
    ref = float(NumpyBackend().penalty(plan, {"w": exact})[0])
    assert value.dtype == tf.float32 and grads["w"].dtype == w.dtype
    assert abs(float(value) - ref) <= 2 * N * 2.0**-24 * ref
