"""``python -m regcore_apps``: the ``regcore`` command (:mod:`regcore_apps.cli`)."""

from regcore_apps.cli.app import main

raise SystemExit(main())
