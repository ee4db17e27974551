"""``python -m ridelake.bench``: see :mod:`ridelake.bench`."""

from ridelake.bench import main

raise SystemExit(main())
