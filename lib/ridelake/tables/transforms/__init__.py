"""Pure pandas transforms, one module per layer: :mod:`.bronze`, :mod:`.silver`, :mod:`.gold`.

Every function here takes DataFrames (and plain values) and returns DataFrames; none reads or
writes anything. I/O lives in :mod:`ridelake.tables.catalog` and :mod:`ridelake.tables.source`.
Importing them makes jemalloc Arrow's pool (:mod:`ridelake.tables.arrowmem`): every notebook
imports them before its first Arrow allocation.
"""

from ridelake.tables import arrowmem

arrowmem.configure()

__all__ = ["bronze", "silver", "gold"]
