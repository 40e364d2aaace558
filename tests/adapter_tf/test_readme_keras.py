"""The README's Keras-native example, in the ``tf`` nox session: it runs, prints what it says, and
the penalty ``model.fit`` adds is the spec's, ``0.01·Σw²`` over the two Dense kernels (the spec's
``L2(0.02, "torch_weight_decay")``), with AdamW-style decay on the normalization scale only.

The block is found by its ``<!-- tested: ... -->`` marker (tests/test_docs.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_docs import doc_blocks, run_python

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")


def test_readme_keras_example_runs():
    (block,) = doc_blocks("README.md", "test_readme_keras_example_runs")
    ns, _ = run_python(block)
    model, optimizer = ns["model"], ns["optimizer"]
    kernels = [layer.kernel for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [type(k.regularizer) for k in kernels] == [keras.regularizers.L2] * 2
    regularized = [v for v in model.trainable_variables if v.regularizer is not None]
    assert [v.path for v in regularized] == [k.path for k in kernels]  # no bias, no gamma/beta
    expected = 0.01 * sum(np.sum(np.asarray(k.numpy(), np.float64) ** 2) for k in kernels)
    total = float(sum(float(loss) for loss in model.losses))
    assert np.isclose(total, expected, rtol=1e-6)
    assert float(optimizer.weight_decay) == 0.01
    # one step with zero gradients: only the decay acts, w ← (1 − lr·wd)·w on the scale alone
    before = {v.path: np.array(v.numpy()) for v in model.trainable_variables}
    optimizer.apply_gradients([(keras.ops.zeros_like(v), v) for v in model.trainable_variables])
    for v in model.trainable_variables:
        factor = 1 - 0.1 * 0.01 if v.path == model.layers[1].gamma.path else 1.0
        np.testing.assert_allclose(v.numpy(), before[v.path] * factor, rtol=1e-6, err_msg=v.path)
