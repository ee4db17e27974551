"""``python -m ridelake.reliability``: see :mod:`ridelake.reliability`."""

from ridelake.reliability import main

raise SystemExit(main())
