"""ridelake: NCR ride bookings into Bronze, Silver and Gold Apache Iceberg tables.

The notebooks under ``notebooks/`` are thin; they call this package. Modules, one per concern:

- :mod:`ridelake.config`     settings, paths and run parameters
- :mod:`ridelake.schemas`    every table's Iceberg schema, partitioning and checks
- :mod:`ridelake.quality`    the table checks and how they run
- :mod:`ridelake.catalog`    the Iceberg catalog: bootstrap, read, write (all table I/O)
- :mod:`ridelake.source`     reading a delivery file and the staging hand-off
- :mod:`ridelake.transforms` pure pandas transforms for bronze, silver and gold
- :mod:`ridelake.generate`   the synthetic source-file generator
- :mod:`ridelake.dag`, :mod:`ridelake.runner`, :mod:`ridelake.cli`  running the notebooks
"""

from ridelake.errors import RidelakeError

__all__ = ["RidelakeError", "__version__"]
__version__ = "0.1.0"
