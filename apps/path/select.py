"""Choosing the coefficient from the folds' validation losses.

With the grid largest first and ``L[f, j]`` fold ``f``'s validation loss at value ``j``:

* ``mean_j = mean_f L[f, j]`` (folds weighted equally, as scikit-learn's ``*CV`` estimators);
* ``se_j = std_f(L[f, j], ddof=1) / √k``, the standard error of that mean;
* ``min``: the value with the smallest mean; on an exact tie the larger value (the first in the
  grid, as scikit-learn picks);
* ``1se`` (the one-standard-error rule, Hastie, Tibshirani & Friedman, ESL §7.10): the largest
  value whose mean is within one standard error of the minimum,
  ``mean_j <= mean_min + se_min`` — the most regularized model that cannot be told apart from
  the best.
"""

from __future__ import annotations

import numpy as np

RULES = ("min", "1se")


def summarize(losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over folds (axis 0) of a ``(k, grid)`` array."""
    losses = np.asarray(losses, dtype=np.float64)
    k = losses.shape[0]
    return losses.mean(axis=0), losses.std(axis=0, ddof=1) / np.sqrt(k)


def choose(losses: np.ndarray) -> dict[str, int]:
    """Grid indices chosen by each rule (``{"min": i, "1se": j}``), ``j <= i``. Non-finite
    means (a diverged fit) never win."""
    mean, se = summarize(losses)
    finite = np.isfinite(mean)
    if not finite.any():
        raise ValueError("every value's mean validation loss is not finite")
    masked = np.where(finite, mean, np.inf)
    best = int(np.argmin(masked))
    bound = mean[best] + (se[best] if np.isfinite(se[best]) else 0.0)
    within = np.flatnonzero(finite & (mean <= bound))
    return {"min": best, "1se": int(within[0])}
