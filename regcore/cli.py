"""Moved: the command line is an application on top of the spec, :mod:`regcore_apps.cli`."""

raise ImportError("regcore.cli moved to regcore_apps.cli (from regcore_apps.cli import main); "
                  "the regcore command and python -m regcore are unchanged")
