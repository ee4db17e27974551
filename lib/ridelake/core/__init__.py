"""The notebook-run core: run a DAG of parameterized notebooks, knowing nothing of what they compute.

It never imports :mod:`ridelake.tables` or :mod:`ridelake.ops` (an import-linter contract, run
by ``make test``, enforces that). A project plugs in through :class:`ridelake.core.project.Project`.
"""
