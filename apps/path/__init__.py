"""Choosing λ: a k-fold regularization path on any backend (``regcore path`` on the command
line). Needs NumPy (``pip install 'regcore[numpy]'``); plots need matplotlib
(``regcore[plot]``). ``import regcore`` does not import this package. A user's own model:
:mod:`regcore_apps.path.torch_problem` (an ``nn.Module``), :mod:`regcore_apps.path.keras_problem`
(a Keras model).
"""

from regcore_apps.path.engine import OPTIMIZERS, Problem, Settings, run, step_size
from regcore_apps.path.folds import kfold
from regcore_apps.path.grid import Axis, at, axis, checked, default_grid, log_grid
from regcore_apps.path.select import RULES, choose, summarize

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
