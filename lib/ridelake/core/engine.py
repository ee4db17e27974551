"""How one notebook runs (the engine) and how runs are dispatched (the executor).

Two narrow interfaces keep execution apart from scheduling:

- :class:`Engine` runs **one attempt of one notebook**: ``execute(task) -> Outcome``. It never
  raises for a notebook failure; the failure is in the outcome. :class:`PapermillEngine` runs the
  notebook with papermill on a fresh ``ridelake`` kernel. (A later engine may reuse warm kernels.)
- :class:`Executor` dispatches tasks and reports back through callbacks, so the scheduler can
  block on one queue whatever runs the work. :class:`ThreadExecutor` runs an engine in a thread
  pool. (A later executor may send tasks to a Dask cluster: ``client.submit(engine.execute,
  task)`` plus ``add_done_callback``.)

Kernels talk to papermill over the ZeroMQ **IPC transport**, each in its own short temporary
folder, so parallel kernel starts cannot clash on TCP ports. The kernel's working directory is
the notebook's folder; it is set on the kernel process rather than with papermill's ``cwd``
argument, because that one calls ``os.chdir`` for the whole process and threads would race.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Protocol

from ridelake.errors import ExecutionError

__all__ = [
    "FINAL_ERRORS",
    "KERNEL_NAME",
    "Task",
    "Outcome",
    "Engine",
    "PapermillEngine",
    "Executor",
    "ThreadExecutor",
    "read_receipts",
]

#: The Jupyter kernel the notebooks run on (registered by ``make venv``).
KERNEL_NAME = "ridelake"


@dataclass(frozen=True)
class Task:
    """One attempt of one notebook, fully described (picklable, so it can travel to a worker).

    Attributes:
        key: the scheduler's id of the node (``silver/booking`` or ``silver/booking@2024-03``).
        name: the notebook, ``<layer>/<table>``.
        input_path: the source notebook.
        output_path: where the executed notebook is written.
        parameters: the values passed (only the names the notebook declares).
        attempt: 1 for the first attempt.
        env: extra environment variables for the kernel.
        cwd: the kernel's working directory (the notebook's folder).
        receipt_path: JSON-lines file where the notebook's catalog I/O records its reads and writes.
        log_path: file for the kernel process's own stdout and stderr (None: inherit ours).
    """

    key: str
    name: str
    input_path: Path
    output_path: Path
    parameters: Mapping[str, Any] = field(default_factory=dict)
    attempt: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    receipt_path: Path | None = None
    log_path: Path | None = None


#: Errors raised by ridelake itself that another attempt cannot fix: a failed table check, a
#: delivery file that cannot be read, a bad parameter or setting. A notebook failing with one of
#: them is not retried (a kernel that did not start, a commit conflict or a dead kernel are).
FINAL_ERRORS = frozenset({"CheckError", "SourceError", "ParameterError", "ConfigError", "CatalogError",
                          "SelectionError"})


@dataclass
class Outcome:
    """What one attempt did.

    Attributes:
        ok: the notebook ran to the end without an error.
        started_at: epoch seconds when execution began.
        finished_at: epoch seconds when it ended.
        error: ``cell N: EName: evalue`` for a failing cell, else ``EName: message`` (a kernel
            that did not start, died, or an I/O error).
        error_cell: N, the failing cell's index in the executed notebook as papermill reports it
            (papermill's injected-parameters cell counts; its error banner, added on top of the
            kept notebook afterwards, does not).
        receipts: the records the notebook appended to the receipt file.
        retryable: False when another attempt cannot help (see :data:`FINAL_ERRORS`).
    """

    ok: bool
    started_at: float
    finished_at: float
    error: str | None = None
    error_cell: int | None = None
    receipts: list[dict[str, Any]] = field(default_factory=list)
    retryable: bool = True

    @property
    def duration_s(self) -> float:
        """Seconds the attempt took."""
        return max(0.0, self.finished_at - self.started_at)


class Engine(Protocol):
    """Runs one attempt of one notebook."""

    def execute(self, task: Task) -> Outcome:
        """Run the task.

        Args:
            task: the attempt to run.

        Returns:
            The :class:`Outcome`; a failing notebook is ``ok=False``, not an exception.
        """
        ...


def read_receipts(path: Path | None) -> list[dict[str, Any]]:
    """Read a receipt file (missing file or torn last line tolerated).

    Args:
        path: the JSON-lines file.

    Returns:
        The records, in order.
    """
    if path is None or not Path(path).is_file():
        return []
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def _kernel_manager_class(env: Mapping[str, str], cwd: Path | None, ipc_dir: str, log: IO[bytes] | None = None) -> type:
    """Build an ``AsyncKernelManager`` subclass for one kernel: IPC transport, extra env, cwd,
    and the kernel process's stdout/stderr sent to ``log`` (ipykernel's own chatter, e.g. the
    "KeyboardInterrupt caught in kernel" of a normal shutdown, stays off the console)."""
    from jupyter_client.manager import AsyncKernelManager

    extra_env, kernel_cwd, ip = dict(env), str(cwd) if cwd else None, os.path.join(ipc_dir, "k")

    class RidelakeKernelManager(AsyncKernelManager):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            self.transport = "ipc"
            self.ip = ip

        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            merged = dict(kw.get("env") or os.environ)
            merged.update(extra_env)
            kw["env"] = merged
            if kernel_cwd:
                kw["cwd"] = kernel_cwd
            if log is not None:
                kw["stdout"] = kw["stderr"] = log
            return await super()._async_pre_start_kernel(**kw)

    return RidelakeKernelManager


class PapermillEngine:
    """Run a notebook with ``papermill.execute_notebook`` on a fresh kernel.

    Args:
        kernel_name: the Jupyter kernel (default ``ridelake``).
        start_timeout: seconds to wait for the kernel to start.
        execution_timeout: seconds a cell may run (None: no limit).
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
            from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

            try:
                KernelSpecManager().get_kernel_spec(kernel_name)
            except NoSuchKernel:
                raise ExecutionError(
                    f"the Jupyter kernel {kernel_name!r} is not installed: run `make venv` "
                    f"(it runs `python -m ipykernel install --sys-prefix --name {kernel_name}`)"
                ) from None

    def execute(self, task: Task) -> Outcome:
        """Execute one attempt; the executed notebook (with papermill's error banner on failure)
        is written to ``task.output_path``.

        Args:
            task: the attempt.

        Returns:
            The :class:`Outcome`.
        """
        started = time.time()
        import papermill
        from papermill.exceptions import PapermillExecutionError

        task.output_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(task.env)
        if task.receipt_path is not None:
            task.receipt_path.parent.mkdir(parents=True, exist_ok=True)
            task.receipt_path.unlink(missing_ok=True)
            env["RIDELAKE_RECEIPT_FILE"] = str(task.receipt_path)
        ipc_dir = tempfile.mkdtemp(prefix="rl-", dir=_short_tmp())
        log: IO[bytes] | None = None
        if task.log_path is not None:
            task.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(task.log_path, "ab")
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
                kernel_manager_class=_kernel_manager_class(env, task.cwd, ipc_dir, log),
            )
        except PapermillExecutionError as exc:
            cell = exc.cell_index
            evalue = str(exc.evalue).strip()
            error = f"cell {exc.cell_index}: {exc.ename}: {evalue}" if evalue else f"cell {exc.cell_index}: {exc.ename}"
            retryable = exc.ename not in FINAL_ERRORS
        except Exception as exc:  # kernel start failures, dead kernels, I/O: retried like any failure
            error = f"{type(exc).__name__}: {str(exc).strip() or repr(exc)}"
        finally:
            shutil.rmtree(ipc_dir, ignore_errors=True)
            if log is not None:
                log.close()
        finished = time.time()
        _stamp_notebook(task, error)
        return Outcome(error is None, started, finished, error, cell, read_receipts(task.receipt_path), retryable)


def _short_tmp() -> str | None:
    """A temporary folder short enough for IPC socket paths (Unix sockets allow ~104 bytes)."""
    base = tempfile.gettempdir()
    return "/tmp" if len(base) > 60 and os.path.isdir("/tmp") else None


def _stamp_notebook(task: Task, error: str | None) -> None:
    """Record the run's provenance in the executed notebook's metadata (``metadata.ridelake``)."""
    path = task.output_path
    if not path.is_file():
        return
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        nb.setdefault("metadata", {})["ridelake"] = {
            "run_id": task.env.get("RIDELAKE_RUN_ID"),
            "notebook": task.name,
            "key": task.key,
            "attempt": task.attempt,
            "parameters": dict(task.parameters),
            "params_hash": task.env.get("RIDELAKE_PARAMS_HASH"),
            "status": "succeeded" if error is None else "failed",
            "error": error,
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, ValueError):
        pass  # provenance is a convenience; never fail a run for it


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
        engine: the engine each task runs on.
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
        """See :meth:`Executor.close`."""
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
