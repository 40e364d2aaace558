"""The suite's scenario data: Iris, read from scikit-learn's own file without importing it,
equals ``sklearn.datasets.load_iris`` standardized."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from regcore_conformance.scenarios import SCENARIOS


def test_iris_equals_scikit_learns_load_iris():
    datasets = pytest.importorskip("sklearn.datasets")
    x, y = SCENARIOS["iris_mlp"].data()
    want_x, want_y = datasets.load_iris(return_X_y=True)
    want_x = (want_x - want_x.mean(axis=0)) / want_x.std(axis=0)
    assert x.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(x, want_x)  # bit for bit
    np.testing.assert_array_equal(y, want_y)


def test_collecting_the_suite_does_not_import_scikit_learn():
    """Iris's row count is needed at collection (specs state the batch size): reading it must
    not cost every run, and every pytest-xdist worker, scikit-learn's import."""
    code = ("import sys; from regcore_conformance.cases import scenario_specs; "
            "from regcore_conformance.scenarios import SCENARIOS; "
            "[scenario_specs(s) for s in SCENARIOS]; print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
