"""Choosing λ: a k-fold regularization path on any backend (``regcore path`` on the command
line). Needs NumPy (``pip install 'regcore[numpy]'``); plots need matplotlib
(``regcore[plot]``). ``import regcore`` does not import this package.
"""

from regcore.path.engine import OPTIMIZERS, Problem, Settings, run, step_size
from regcore.path.folds import kfold
from regcore.path.grid import Axis, at, axis, checked, default_grid, log_grid
from regcore.path.select import RULES, choose, summarize

__all__ = [
    "OPTIMIZERS",
    "RULES",
    "Axis",
    "Problem",
    "Settings",
    "at",
    "axis",
    "checked",
    "choose",
    "default_grid",
    "kfold",
    "log_grid",
    "run",
    "step_size",
    "summarize",
]
