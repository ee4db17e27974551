"""Arrow's memory pool for the tables' work: jemalloc where this pyarrow has it.

Measured on a whole run at 1.5M rows (``outputs/runs/<id>/run.json``, ``peak_rss_mib``), the
largest notebook peaked at 1,375 MiB on pyarrow's default mimalloc pool, 1,219 MiB on the system
allocator and 1,066 MiB on jemalloc: jemalloc hands freed pages back (Arrow sets a short decay),
the others keep them for the next allocation, and a warm kernel carries that from one notebook to
the next. ``ARROW_DEFAULT_MEMORY_POOL``, when set, wins (it is Arrow's own switch, read when
pyarrow loads: the runner sets it for kernels, :meth:`RideBookings.process_env
<ridelake.tables.adapter.RideBookings.process_env>`; a process that did not, such as a notebook
opened in JupyterLab, switches here).
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
