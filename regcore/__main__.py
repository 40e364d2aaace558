"""``python -m regcore``: the command-line tool (see :mod:`regcore.cli`)."""

from regcore.cli import main

raise SystemExit(main())
