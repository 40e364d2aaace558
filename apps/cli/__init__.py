"""``regcore`` on the command line (also ``python -m regcore``): :func:`main`, one module per
verb (:mod:`~regcore_apps.cli.backends`, :mod:`~regcore_apps.cli.convert`,
:mod:`~regcore_apps.cli.check`, :mod:`~regcore_apps.cli.export`, :mod:`~regcore_apps.cli.path`),
the parser and exit codes in :mod:`~regcore_apps.cli.app`, what they share in
:mod:`~regcore_apps.cli.common`."""

from regcore_apps.cli.app import main

__all__ = ["main"]
