"""Moved: ``regcore path`` lives in :mod:`regcore_apps.cli.path`."""

raise ImportError("regcore.cli_path moved to regcore_apps.cli.path")
