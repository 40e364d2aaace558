"""The applications on top of the spec, installed as ``regcore_apps``: the ``regcore`` command
line (:mod:`regcore_apps.cli`) and choosing λ by k-fold cross-validation
(:mod:`regcore_apps.path`). They import the spec (``regcore``), the adapters and the conformance
suite; nothing below imports them."""
