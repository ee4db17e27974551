"""``--fresh-kernels``: every notebook attempt on a kernel of its own, started and stopped by papermill."""

from __future__ import annotations

import shutil
import tempfile
import time
from typing import IO

from ridelake.core import kernel_log
from ridelake.core.engines.base import (
    KERNEL_NAME,
    Outcome,
    Task,
    check_kernel as _check_kernel,
    kernel_manager_class,
    papermill_failure,
    prepare_task,
    read_receipts,
    short_tmp,
    stamp_notebook,
)

__all__ = ["PapermillEngine"]


class PapermillEngine:
    """Run a notebook with ``papermill.execute_notebook`` on a fresh kernel.

    Args:
        kernel_name: the Jupyter kernel (default ``ridelake``).
        start_timeout: seconds to wait for the kernel to start.
        execution_timeout: seconds a cell may run (None: no limit); a cell past it fails the
            attempt (retryable).
        check_kernel: fail now (ExecutionError) when the kernel is not installed.
    """

    def __init__(
        self,
        kernel_name: str = KERNEL_NAME,
        start_timeout: float = 60,
        execution_timeout: float | None = None,
        check_kernel: bool = True,
    ) -> None:
        self.kernel_name = kernel_name
        self.start_timeout = start_timeout
        self.execution_timeout = execution_timeout
        if check_kernel:
            _check_kernel(kernel_name)

    def execute(self, task: Task) -> Outcome:
        """Execute one attempt; the executed notebook (with papermill's error banner on failure)
        is written to ``task.output_path``.

        Args:
            task: the attempt.

        Returns:
            The :class:`Outcome`.
        """
        started = time.time()
        import papermill  # heavy (nbclient, jupyter_client): imported when the first notebook runs

        env = prepare_task(task)
        ipc_dir = tempfile.mkdtemp(prefix="rl-", dir=short_tmp())
        log: IO[bytes] | None = open(task.log_path, "ab") if task.log_path is not None else None
        error: str | None = None
        cell: int | None = None
        retryable = True
        try:
            papermill.execute_notebook(
                str(task.input_path),
                str(task.output_path),
                parameters=dict(task.parameters),
                kernel_name=self.kernel_name,
                progress_bar=False,
                log_output=False,
                start_timeout=self.start_timeout,
                execution_timeout=self.execution_timeout,
                kernel_manager_class=kernel_manager_class(env, task.cwd, ipc_dir, log),
            )
        except Exception as exc:  # a failing cell, a kernel that did not start or died, I/O
            error, cell, retryable = papermill_failure(exc)
        finally:
            shutil.rmtree(ipc_dir, ignore_errors=True)
            if log is not None:
                log.close()
                kernel_log.clean(task.log_path)  # drop ipykernel's shutdown chatter
        finished = time.time()
        stamp_notebook(task, error)
        return Outcome(error is None, started, finished, error, cell, read_receipts(task.receipt_path), retryable)
