"""Moved: ``regcore check`` lives in :mod:`regcore_apps.cli.check`."""

raise ImportError("regcore.cli_check moved to regcore_apps.cli.check")
