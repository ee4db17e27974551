"""``python -m ridelake``: the command line (see :mod:`ridelake.cli`)."""

from ridelake.cli import main

raise SystemExit(main())
