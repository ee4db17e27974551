"""Arrow's memory pool for the tables' work: jemalloc where this pyarrow has it.

The switch that counts is ``ARROW_DEFAULT_MEMORY_POOL``, read when pyarrow loads: the runner
sets it for every kernel (:meth:`RideBookings.process_env
<ridelake.tables.adapter.RideBookings.process_env>`), and then :func:`configure` changes nothing.
Measured with that variable on a whole run at 1.5M rows (``run.json``, ``peak_rss_mib``), the
largest notebook peaked at 1,375 MiB on pyarrow's default mimalloc pool, 1,219 MiB on the system
allocator and 1,066 MiB on jemalloc. A process that did not get the variable (a notebook opened
in JupyterLab) switches the pool here, at run time; that reaches the allocations made through
pyarrow's Python API, not those Arrow's C++ code makes on its own default pool, so it does less
(``gold/customer_analytics`` at 15M rows: 2.5 GB switched here, 1.9 GB with the variable).
"""

from __future__ import annotations

import os

__all__ = ["configure"]

_done: list[str] = []


def configure() -> str:
    """Make jemalloc Arrow's default pool in this process (once), unless
    ``ARROW_DEFAULT_MEMORY_POOL`` chooses one or this pyarrow has no jemalloc.

    Returns:
        The backend in use (``jemalloc``, ``mimalloc``, ``system``).
    """
    import pyarrow as pa  # the callers import it anyway

    if not _done:
        if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
            try:
                pa.set_memory_pool(pa.jemalloc_memory_pool())
            except (NotImplementedError, AttributeError):  # a build without jemalloc (e.g. Windows)
                pass
        _done.append(pa.default_memory_pool().backend_name)
    return _done[0]
