"""How one notebook runs (the engine) and how runs are dispatched (the executor).

Two narrow interfaces keep execution apart from scheduling:

- :class:`Engine` runs **one attempt of one notebook**: ``execute(task) -> Outcome``. It never
  raises for a notebook failure; the failure is in the outcome. :class:`WarmEngine` (the
  default) runs notebook after notebook on one warm kernel per worker, reset to a fresh state
  between notebooks; :class:`PapermillEngine` (``--fresh-kernels``) starts a fresh kernel per
  notebook. Both write the document papermill writes.
- :class:`Executor` dispatches tasks and reports back through callbacks, so the scheduler can
  block on one queue whatever runs the work. :class:`ThreadExecutor` runs an engine in a thread
  pool.

The code lives in :mod:`ridelake.core.engines`; this module is the one place to import it from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from ridelake.core.engines.base import FINAL_ERRORS, KERNEL_NAME, Engine, Outcome, Task, read_receipts
from ridelake.core.engines.executor import Executor, ThreadExecutor
from ridelake.core.engines.fresh import PapermillEngine
from ridelake.core.engines.pool import pool_spec
from ridelake.core.engines.warm import DEFAULT_PRELOAD, WarmEngine, notebook_imports

__all__ = [
    "FINAL_ERRORS",
    "KERNEL_NAME",
    "Task",
    "Outcome",
    "Engine",
    "PapermillEngine",
    "WarmEngine",
    "Executor",
    "ThreadExecutor",
    "read_receipts",
    "make_engine",
]


def make_engine(slots: int, fresh_kernels: bool = False, cell_timeout: float | None = None,
                notebooks: Iterable[Path] = (), prestart: bool = True,
                pool_identity: Sequence[str] | None = None, pool_label: str = "") -> Engine:
    """The engine a run uses by default.

    Args:
        slots: notebooks at a time (one warm kernel each).
        fresh_kernels: a fresh kernel per notebook (:class:`PapermillEngine`) instead of warm ones.
        cell_timeout: seconds a cell may run (None: no limit); past it the attempt fails
            (retryable) and a warm kernel is replaced.
        notebooks: the pipeline's notebooks; the warm kernels import what they import, at start.
        prestart: start the first warm kernel now, in the background (for a command that is
            sure to run a notebook); else when the first notebook is due, so a run that finds
            everything up-to-date starts no kernel at all.
        pool_identity: what the warm kernels' state depends on besides code and environment
            (project root, warehouse...): kernels are taken from, and handed back to, the pool of
            that identity (:mod:`ridelake.core.engines.pool`; off when ``RIDELAKE_KERNEL_IDLE``
            is 0). None: the kernels end with the engine.
        pool_label: the pool's name in ``ridelake kernels``.

    Returns:
        A :class:`WarmEngine` whose kernels are already starting in the background, or a
        :class:`PapermillEngine`.
    """
    if fresh_kernels:
        return PapermillEngine(execution_timeout=cell_timeout)
    preload = [*DEFAULT_PRELOAD, *notebook_imports(notebooks)]
    pool = pool_spec(pool_identity, KERNEL_NAME, preload, pool_label) if pool_identity is not None else None
    return WarmEngine(slots, preload=preload, execution_timeout=cell_timeout, start=prestart, pool=pool)
