"""What every engine shares: the task and outcome types, reading papermill's failure, the
executed notebook's provenance stamp, and the kernel manager on the IPC transport.

Kernels talk to papermill over the ZeroMQ **IPC transport**, each in its own short temporary
folder, so parallel kernel starts cannot clash on TCP ports. A kernel's working directory and
extra environment are set on the kernel process (never with ``os.chdir`` in the runner, which
would race between threads).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Mapping, Protocol

from ridelake.core.protocol import ENV
from ridelake.errors import ExecutionError, final_error_names

__all__ = [
    "FINAL_ERRORS",
    "PYTHON_ERRORS",
    "KERNEL_NAME",
    "Task",
    "Outcome",
    "Engine",
    "read_receipts",
    "check_kernel",
    "kernel_manager_class",
    "papermill_failure",
    "prepare_task",
    "short_tmp",
    "stamp_notebook",
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
FINAL_ERRORS = final_error_names()

#: Built-in exceptions that notebook code raises again on every attempt with the same inputs (a bad
#: value or type, a missing key, name or attribute, a division by zero, an index out of range): not
#: retried either. Left retryable on purpose: RuntimeError, OSError, MemoryError (may pass), and
#: what never arrives under these names (a dead kernel, a cell timeout, CommitFailedException).
PYTHON_ERRORS = frozenset({"ValueError", "TypeError", "KeyError", "NameError", "AttributeError",
                           "ZeroDivisionError", "IndexError"})


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
        peak_rss_mib: the kernel's peak resident memory during the attempt (None: not measured).
    """

    ok: bool
    started_at: float
    finished_at: float
    error: str | None = None
    error_cell: int | None = None
    receipts: list[dict[str, Any]] = field(default_factory=list)
    retryable: bool = True
    peak_rss_mib: float | None = None

    @property
    def duration_s(self) -> float:
        """Seconds the attempt took."""
        return max(0.0, self.finished_at - self.started_at)


class Engine(Protocol):
    """Runs one attempt of one notebook. An engine holding resources (kernels) also has a
    ``close()`` method, which the executor calls when it closes."""

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


def kernel_manager_class(env: Mapping[str, str], cwd: Path | None, ipc_dir: str, log: IO[bytes] | None = None,
                         independent: bool = False) -> type:
    """Build an ``AsyncKernelManager`` subclass for one kernel: IPC transport, extra env, cwd,
    and the kernel process's stdout/stderr sent to ``log`` (ipykernel's own chatter, e.g. the
    "KeyboardInterrupt caught in kernel" of a normal shutdown, stays off the console).
    ``independent``: the kernel does not end with this process (a pooled kernel)."""
    from jupyter_client.manager import AsyncKernelManager  # heavy: only when kernels start

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
            if independent:
                kw["independent"] = True  # no JPY_PARENT_PID: ipykernel does not watch for our exit
            return await super()._async_pre_start_kernel(**kw)

    return RidelakeKernelManager


def short_tmp() -> str | None:
    """A temporary folder short enough for IPC socket paths (Unix sockets allow ~104 bytes)."""
    base = tempfile.gettempdir()
    return "/tmp" if len(base) > 60 and os.path.isdir("/tmp") else None


def stamp_notebook(task: Task, error: str | None) -> None:
    """Record the run's provenance in the executed notebook's metadata (``metadata.ridelake``)."""
    path = task.output_path
    if not path.is_file():
        return
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        nb.setdefault("metadata", {})["ridelake"] = {
            "run_id": task.env.get(ENV.RUN_ID),
            "notebook": task.name,
            "key": task.key,
            "attempt": task.attempt,
            "parameters": dict(task.parameters),
            "params_hash": task.env.get(ENV.PARAMS_HASH),
            "status": "succeeded" if error is None else "failed",
            "error": error,
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, ValueError):
        pass  # provenance is a convenience; never fail a run for it


def check_kernel(kernel_name: str) -> None:
    """Fail now when the Jupyter kernel is not installed.

    Raises:
        ExecutionError: naming the kernel and how to install it.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel  # heavy; only when a run starts

    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise ExecutionError(
            f"the Jupyter kernel {kernel_name!r} is not installed: run `make venv` "
            f"(it runs `python -m ipykernel install --sys-prefix --name {kernel_name}`)"
        ) from None


def prepare_task(task: Task) -> dict[str, str]:
    """Make the task's output folders, clear its receipt file, and return the kernel's extra
    environment (the task's, plus ``RIDELAKE_RECEIPT_FILE`` when the task has a receipt)."""
    task.output_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(task.env)
    if task.receipt_path is not None:
        task.receipt_path.parent.mkdir(parents=True, exist_ok=True)
        task.receipt_path.unlink(missing_ok=True)
        env[ENV.RECEIPT_FILE] = str(task.receipt_path)
    if task.log_path is not None:
        task.log_path.parent.mkdir(parents=True, exist_ok=True)
    return env


def papermill_failure(exc: BaseException) -> tuple[str, int | None, bool]:
    """Describe a failed ``papermill.execute_notebook``.

    Args:
        exc: what it raised.

    Returns:
        ``(error, cell, retryable)``: ``cell N: EName: evalue`` and N for a failing cell (not
        retryable when the error is one of :data:`FINAL_ERRORS` or :data:`PYTHON_ERRORS`), else
        ``EName: message``, None and True (a kernel that did not start or died, a timeout, an I/O
        error).
    """
    from papermill.exceptions import PapermillExecutionError  # loaded with papermill anyway

    if isinstance(exc, PapermillExecutionError):
        evalue = str(exc.evalue).strip()
        error = f"cell {exc.cell_index}: {exc.ename}: {evalue}" if evalue else f"cell {exc.cell_index}: {exc.ename}"
        return error, exc.cell_index, exc.ename not in final_error_names() | PYTHON_ERRORS
    return f"{type(exc).__name__}: {str(exc).strip() or repr(exc)}", None, True
