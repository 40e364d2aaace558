"""Deterministic k-fold splits: the same indices on every backend, from a seed alone.

``kfold(n, k, seed)`` shuffles ``0..n-1`` with ``numpy.random.default_rng(seed)`` and cuts the
permutation into ``k`` contiguous validation folds, the first ``n % k`` one sample larger
(scikit-learn's ``KFold`` sizes). The folds are plain index arrays, made once in NumPy and
handed to every backend as data, so they cannot differ between backends; pass them as
``cv=[(train, val), ...]`` to a scikit-learn ``*CV`` estimator to get the same splits there.
"""

from __future__ import annotations

import numpy as np

from regcore.errors import SpecError


def kfold(n: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, validation) index pairs over ``n`` samples, each sorted."""
    for name, value in (("n", n), ("k", k), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise SpecError(f"path folds: {name} must be an integer, got {value!r}")
    if seed < 0:
        raise SpecError(f"path folds: seed must be >= 0, got {seed}")
    if not 2 <= k <= n:
        raise SpecError(f"path folds: need 2 <= folds <= samples ({n}), got {k}")
    order = np.random.default_rng(seed).permutation(n)
    sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    out, start = [], 0
    for size in sizes:
        val = np.sort(order[start:start + size])
        train = np.sort(np.concatenate([order[:start], order[start + size:]]))
        out.append((train, val))
        start += size
    return out
