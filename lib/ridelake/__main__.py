"""``python -m ridelake``: the command line (see :mod:`ridelake.cli`)."""

from ridelake.core.startup import lean_imports

lean_imports()  # before anything imports papermill (see ridelake.core.startup)

from ridelake.cli import main  # noqa: E402

raise SystemExit(main())
