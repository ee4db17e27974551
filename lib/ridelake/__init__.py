"""ridelake: NCR ride bookings into Bronze, Silver and Gold Apache Iceberg tables.

The notebooks under ``notebooks/`` are thin; they call this package. Modules, one per concern:

- :mod:`ridelake.tables.config`     settings, paths and run parameters
- :mod:`ridelake.tables.schemas`    every table's Iceberg schema, partitioning and checks
- :mod:`ridelake.tables.quality`    the table checks and how they run
- :mod:`ridelake.tables.catalog`    the Iceberg catalog: bootstrap, read, write (all table I/O)
- :mod:`ridelake.tables.source`     reading a delivery file and the staging hand-off
- :mod:`ridelake.tables.transforms` pure pandas transforms for bronze, silver and gold
- :mod:`ridelake.tables.generate`   the synthetic source-file generator
- :mod:`ridelake.core.dag`, :mod:`ridelake.core.runner`, :mod:`ridelake.cli`  running the notebooks
"""

from ridelake.errors import RidelakeError

__all__ = ["RidelakeError", "__version__"]
__version__ = "0.1.0"
