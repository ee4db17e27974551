"""How runs are dispatched: the :class:`Executor` interface and :class:`ThreadExecutor`.

An executor dispatches tasks and reports back through callbacks, so the scheduler can block on
one queue whatever runs the work. :class:`ThreadExecutor` runs an engine in a thread pool. (A
later executor may send tasks to a Dask cluster: ``client.submit(engine.execute, task)`` plus
``add_done_callback``.)
"""

from __future__ import annotations

import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Protocol

from ridelake.core.engines.base import Engine, Outcome, Task

__all__ = ["Executor", "ThreadExecutor"]


class Executor(Protocol):
    """Dispatches tasks; the scheduler decides what to submit and when.

    Attributes:
        slots: how many tasks may run at once.
    """

    slots: int

    def submit(self, task: Task, started: Callable[[float], None], done: Callable[[Outcome], None]) -> None:
        """Start a task without blocking.

        Args:
            task: the attempt to run.
            started: called with the epoch time when it actually starts (any thread).
            done: called with its outcome when it ends (any thread); called exactly once.
        """
        ...

    def close(self, cancel: bool = False) -> None:
        """Release the workers; with ``cancel``, drop tasks that have not started."""
        ...


class ThreadExecutor:
    """Run an engine in a pool of threads (papermill is thread-safe with IPC kernels).

    Args:
        engine: the engine each task runs on; closed with the executor when it has ``close()``.
        slots: pool size.
    """

    def __init__(self, engine: Engine, slots: int) -> None:
        self.engine = engine
        self.slots = max(1, int(slots))
        self._pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="ridelake")

    def submit(self, task: Task, started: Callable[[float], None], done: Callable[[Outcome], None]) -> None:
        """See :meth:`Executor.submit`."""

        def work() -> None:
            t0 = time.time()
            started(t0)
            try:
                outcome = self.engine.execute(task)
            except Exception as exc:  # an engine bug must not hang the scheduler
                last = traceback.format_exception_only(type(exc), exc)[-1].strip()
                outcome = Outcome(False, t0, time.time(), f"engine error: {last}")
            done(outcome)

        self._pool.submit(work)

    def close(self, cancel: bool = False) -> None:
        """See :meth:`Executor.close`; also closes the engine (its kernels), killing the running
        ones when ``cancel``."""
        close_engine = getattr(self.engine, "close", None)
        if cancel and close_engine is not None:
            close_engine(cancel=True)  # kill running kernels first, so their threads return
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        if not cancel and close_engine is not None:
            close_engine()
