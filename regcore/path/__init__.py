"""Moved: the λ path is an application on top of the spec, :mod:`regcore_apps.path`."""

raise ImportError("regcore.path moved to regcore_apps.path (same names: "
                  "from regcore_apps.path import Settings, run; the problems: "
                  "regcore_apps.path.data; the plots: regcore_apps.path.plot)")
