"""The problems ``regcore path --data`` knows by name, and loading a user's data file.

* ``iris``: the conformance suite's Iris MLP (``iris_mlp``: 4-16-16-3, ReLU,
  cross-entropy, standardized features; needs scikit-learn, which ships the data);
* ``synthetic``: a linear problem made for a path (:func:`synthetic`): 200 samples, 8 correlated
  features, 4 of them without effect, noisy enough that the best coefficient is inside the grid;
* any conformance scenario by name (``linreg_multi``, ``mlp_regression``, ...);
* ``FILE.npz`` with arrays ``x`` (samples × features) and ``y``; ``FILE.csv``, comma separated,
  the last column the target, an optional header line.

A file's model is linear unless hidden sizes are given; its initial parameters are seeded Glorot
(uniform, biases ±0.1), as the scenarios'.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from regcore import ModelSpec
from regcore.errors import SpecError
from regcore_apps.path.engine import Problem

PRESETS = ("iris", "synthetic")


def synthetic() -> tuple[np.ndarray, np.ndarray]:
    """``y = x·β + 1 + ε``: 200 rows, 8 standardized features with correlation ``0.5^|i−j|``
    (well conditioned: proximal gradient converges to float64 precision in a few hundred
    steps), ``β`` with 4 exact zeros, noise σ = 1.5 (seeded; 200 rows make 5 folds of 40, equal
    sizes, which scikit-learn's ``RidgeCV`` convention needs: its α scales with the
    training-fold size)."""
    rng = np.random.default_rng(7)
    corr = 0.5 ** np.abs(np.subtract.outer(np.arange(8), np.arange(8)))
    x = rng.standard_normal((200, 8)) @ np.linalg.cholesky(corr).T
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    beta = np.array([[1.5], [-1.0], [0.0], [0.0], [0.6], [0.0], [-0.3], [0.0]])
    return x, x @ beta + 1.0 + 1.5 * rng.standard_normal((200, 1))


def problem(data: str, *, hidden: tuple[int, ...] = (), activation: str | None = None,
            loss: str | None = None, seed: int = 0) -> Problem:
    """The :class:`Problem` ``--data`` names. :class:`SpecError` for an unknown name, a file that
    cannot be read, or data that does not fit the model."""
    from regcore_conformance.scenarios import SCENARIOS, glorot

    name = "iris_mlp" if data == "iris" else data
    if name in SCENARIOS:
        if hidden or activation or loss:
            raise SpecError(f"--data {data}: the preset fixes its model; --hidden, --activation "
                            "and --loss are for data files")
        s = SCENARIOS[name]
        try:
            x, y = s.data()
        except ImportError as exc:
            raise SpecError(f"--data {data} needs {exc.name or exc} "
                            "(pip install scikit-learn)") from None
        return Problem(data, s.model, np.array(x), np.array(y), s.initial_params())
    if data == "synthetic":
        if hidden or activation or loss:
            raise SpecError("--data synthetic is a linear problem; --hidden, --activation and "
                            "--loss are for data files")
        x, y = synthetic()
        model = ModelSpec((8, 1), None, "mse")
        return Problem("synthetic", model, x, y, glorot(model, seed))
    x, y = _load(Path(data))
    loss = loss or "mse"
    if loss == "softmax_xent":
        if not np.all(y == np.round(y)) or y.min() < 0:
            raise SpecError(f"{data}: softmax_xent needs integer class labels >= 0 as targets")
        y = y.astype(np.int64).ravel()
        outputs = int(y.max()) + 1
    else:
        y = y.reshape(len(y), -1)
        outputs = y.shape[1]
    model = ModelSpec((x.shape[1], *hidden, outputs), activation if hidden else None, loss)
    return Problem(Path(data).stem, model, x, y, glorot(model, seed))


def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix not in (".npz", ".csv"):
        raise SpecError(f"--data {path}: not a preset ({', '.join(PRESETS)}, or a conformance "
                        "scenario name) and not a .npz or .csv file")
    if not path.is_file():
        raise SpecError(f"--data {path}: no such file")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if "x" not in z or "y" not in z:
                    raise SpecError(f"{path}: needs arrays named x and y; has "
                                    f"{', '.join(z.files) or 'none'}")
                x, y = np.asarray(z["x"], dtype=np.float64), np.asarray(z["y"], np.float64)
        else:
            table = _csv(path)
            x, y = table[:, :-1], table[:, -1]
    except (ValueError, OSError) as exc:
        raise SpecError(f"{path}: cannot read numbers: {' '.join(str(exc).split())}") from None
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1 or len(y) != x.shape[0]:
        raise SpecError(f"{path}: need x of shape (samples, features) and y with one row per "
                        f"sample; got x {x.shape}, y {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise SpecError(f"{path}: the data has NaN or infinite values")
    return x, y


def _csv(path: Path) -> np.ndarray:
    lines = path.read_text().splitlines()
    if lines and any(c.isalpha() for c in lines[0].replace("e", "").replace("E", "")):
        lines = lines[1:]  # a header
    table = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2)
    if table.shape[1] < 2:
        raise ValueError("need at least one feature column and the target column")
    return table
