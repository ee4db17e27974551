"""The ride-bookings tables domain: settings, schemas with their checks, catalog and source I/O,
pure transforms and charts, and the adapter that plugs them into :mod:`ridelake.core`.

The data contract these modules implement is ``docs/contract.md``.
"""
