"""Pure pandas transforms, one module per layer: :mod:`.bronze`, :mod:`.silver`, :mod:`.gold`.

Every function here takes DataFrames (and plain values) and returns DataFrames; none reads or
writes anything. I/O lives in :mod:`ridelake.tables.catalog` and :mod:`ridelake.tables.source`.
"""

__all__ = ["bronze", "silver", "gold"]
