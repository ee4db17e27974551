"""The default engine: one warm kernel per worker, reused for notebook after notebook.

A fresh kernel costs a process start and fresh imports of pandas, pyarrow, pyiceberg and
matplotlib for every notebook. :class:`WarmEngine` starts its kernels at construction, in the
background (the runner builds it before it makes the plan), imports the heavy modules in each once
(:func:`notebook_imports` finds what the pipeline's notebooks import), and then runs notebook
after notebook in them:

- **The document is papermill's.** Each attempt goes through ``papermill.execute_notebook``
  itself (parameters injected by papermill, its metadata, its error banner on failure), on a
  papermill engine (:data:`PAPERMILL_ENGINE`) that hands nbclient the already-running kernel
  instead of starting one. Execution counts start at 1 in every notebook.
- **Between notebooks the kernel is put back as fresh** (:mod:`ridelake.core.engines.kernelside`):
  user variables and module aliases, figures and rcParams, pandas options, warning filters,
  working directory and environment; ``sys.argv`` is left alone. Then a clean-state check; a
  kernel failing it is killed and replaced before the next notebook.
- **A kernel that died or hung is replaced.** A notebook whose kernel died, or whose cell ran past
  ``execution_timeout``, fails with a retryable outcome, and its kernel is killed and replaced
  (the scheduler retries the attempt on a good kernel).

Each kernel is owned by one thread (its asyncio loop and ZeroMQ sockets never change threads);
:meth:`WarmEngine.execute`, called from the executor's threads, borrows an idle kernel and waits.
The kernel process's own output (ipykernel's log lines) goes to the attempt's ``log_path``.
"""

from __future__ import annotations

import ast
import atexit
import json
import os
import queue
import shutil
import signal
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Sequence, TypeVar

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
from ridelake.core.engines.pool import AttachedKernelManager, PoolSpec, Slot, lease
from ridelake.core.procmem import peak_mib, reset_peak, rss_mib
from ridelake.errors import ExecutionError

__all__ = ["DEFAULT_PRELOAD", "MAX_RSS_MIB", "PAPERMILL_ENGINE", "KernelProblem", "WarmEngine", "notebook_imports"]

#: Imported in every warm kernel at start (on top of what the notebooks import).
DEFAULT_PRELOAD = ("pandas", "pyarrow", "pyarrow.parquet", "pyiceberg.catalog.sql", "pyiceberg.table",
                   "matplotlib", "matplotlib.pyplot", "IPython.display")
#: The papermill engine name under which the warm kernels run notebooks.
PAPERMILL_ENGINE = "ridelake-warm"
#: Warm kernels keep IPython's input history in memory: every cell and every reset would
#: otherwise be written to the one ``history.sqlite`` the kernels of the user share (and lock).
KERNEL_ARGS = ("--HistoryManager.hist_file=:memory:",)
_KERNELSIDE = '__import__("ridelake.core.engines.kernelside", fromlist=["_"])'
T = TypeVar("T")


class KernelProblem(ExecutionError):
    """A warm kernel did not start, died, hung, or is not clean; it is replaced."""


def notebook_imports(paths: Iterable[Path]) -> list[str]:
    """The modules the notebooks import at top level, in first-seen order (for the warm-up).

    Reads the code cells (IPython magics and shell lines skipped; a cell that does not parse is
    skipped). ``from a.b import c`` yields ``a.b`` and ``a.b.c`` (the warm-up skips a name that is
    not a module).

    Args:
        paths: notebook files (an unreadable one is skipped).

    Returns:
        Dotted module names.
    """
    seen: dict[str, None] = {}
    for path in paths:
        try:
            cells = json.loads(Path(path).read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError):
            continue
        for cell in cells:
            if cell.get("cell_type") != "code":
                continue
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else source
            lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith(("%", "!"))]
            try:
                tree = ast.parse("\n".join(lines))
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, ast.Import):
                    seen.update((a.name, None) for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    seen[node.module] = None
                    seen.update((f"{node.module}.{a.name}", None) for a in node.names if a.name != "*")
    return list(seen)


def _without_saving(nb_man: Any, complete: Callable[..., Any]) -> Callable[..., Any]:
    """papermill's ``cell_complete`` without its save: the next cell's start saves the notebook
    with this cell's outputs (the file still shows which cell runs, as the fault suite and a
    person watching it need), and the notebook's end always saves."""

    def cell_complete(*args: Any, **kwargs: Any) -> Any:
        save = nb_man.save
        nb_man.save = lambda **_: None
        try:
            return complete(*args, **kwargs)
        finally:
            nb_man.save = save

    return cell_complete


def _papermill() -> Any:
    """papermill, with :data:`PAPERMILL_ENGINE` registered (imported on a kernel's thread: heavy)."""
    import papermill  # heavy (papermill): only when a notebook runs
    from papermill.clientwrap import PapermillNotebookClient  # heavy (papermill): only when a notebook runs
    from papermill.engines import NBClientEngine, papermill_engines  # heavy (papermill): only when a notebook runs
    from papermill.log import logger  # heavy (papermill): only when a notebook runs

    class WarmNBClientEngine(NBClientEngine):
        """papermill's nbclient engine, on a kernel that is already running (``km``, ``kc``)."""

        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, km: Any = None, kc: Any = None,
                                     log_output: bool = False, start_timeout: float = 60,
                                     execution_timeout: float | None = None, **kwargs: Any) -> Any:
            client = PapermillNotebookClient(
                nb_man, km=km, kernel_name=kernel_name, timeout=execution_timeout, startup_timeout=start_timeout,
                log=logger, log_output=log_output, stdout_file=kwargs.get("stdout_file"),
                stderr_file=kwargs.get("stderr_file"),
            )
            client.kc = kc  # nbclient keeps a kernel it does not own alive, and reuses this client
            nb_man.cell_complete = _without_saving(nb_man, nb_man.cell_complete)
            return client.execute()

    papermill_engines.register(PAPERMILL_ENGINE, WarmNBClientEngine)
    return papermill


def _run(coro: Any) -> Any:
    """Run a coroutine on this thread's event loop (the one the kernel's sockets live on)."""
    from jupyter_core.utils import ensure_event_loop  # loaded with jupyter_client

    return ensure_event_loop().run_until_complete(coro)


async def _answering(kc: Any, timeout: float) -> None:
    """Wait until a kernel answers on the shell channel *and* this client receives its IOPub
    messages (a new subscription misses what was published before it connected): a
    ``kernel_info`` request every 50 ms until the status message of one of them arrives.
    (``wait_for_ready`` also does this, but then waits a fixed 0.2 s for IOPub to fall quiet.)

    Raises:
        KernelProblem: no answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    sent: set[str] = set()
    while time.monotonic() < deadline:
        sent.add(kc.kernel_info())
        try:
            msg = await kc.get_iopub_msg(timeout=0.05)
        except queue.Empty:
            continue
        while True:
            if msg.get("parent_header", {}).get("msg_id") in sent and msg.get("msg_type") == "status":
                while True:  # the kernel_info replies on the shell channel: not wanted later
                    try:
                        await kc.get_shell_msg(timeout=0.01)
                    except queue.Empty:
                        return
            try:
                msg = await kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                break
    raise KernelProblem(f"the pooled kernel did not answer within {timeout:g} s")


class _Kernel:
    """One warm kernel, owned by one thread: start, run a notebook, reset, kill, replace."""

    def __init__(self, index: int, engine: "WarmEngine") -> None:
        self.index = index
        self.engine = engine
        self.km: Any = None
        self.kc: Any = None
        self.pid: int | None = None
        self.started = 0  # kernels started in this slot
        self.notebooks = 0  # notebooks run on the current kernel
        self.running = False  # a notebook is running on it
        self.closing = False
        self._ipc_dir: str | None = None
        self.slot: Slot | None = None  # this kernel's place in the pool (a pooled engine)
        self.reused = 0  # kernels taken over from the pool
        self._log: IO[bytes] | None = None
        self._log_path: Path | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ridelake-kernel-{index}")

    # -- on the kernel's thread ------------------------------------------------------------------

    def _call(self, expr: str, timeout: float) -> None:
        """Run ``kernelside.<expr>`` in the kernel, silently.

        Raises:
            KernelProblem: it raised; no reply came within ``timeout`` seconds; the kernel died;
                or the engine is closing.
        """
        msg_id = self.kc.execute(f"{_KERNELSIDE}.{expr}", silent=True, store_history=False, allow_stdin=False)
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = _run(self.kc.get_shell_msg(timeout=0.25))
            except queue.Empty:
                self._abort_if_closing()
                if not self._alive():
                    raise KernelProblem("the kernel died") from None
                if time.monotonic() > deadline:
                    raise KernelProblem(f"the kernel did not answer within {timeout:g} s") from None
                continue
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                break
        content = reply.get("content", {})
        if content.get("status") != "ok":
            raise KernelProblem(f"{content.get('ename', 'error')}: {content.get('evalue', '')}".strip())

    def _start(self) -> None:
        """Start a kernel (in the pool slot, when pooled), note its fresh state, import the
        heavy modules, check it."""
        eng = self.engine
        slot = self.slot
        if slot is not None:
            self._ipc_dir = str(slot.folder)
        else:
            self._ipc_dir = tempfile.mkdtemp(prefix="rlw-", dir=short_tmp())
        self._log_path = Path(self._ipc_dir) / "kernel.log"
        self._log = open(self._log_path, "ab")
        self.started += 1
        self.notebooks = 0
        try:
            km_class = kernel_manager_class({}, eng.cwd, self._ipc_dir, self._log, independent=slot is not None)
            self.km = km_class(kernel_name=eng.kernel_name)
            if slot is not None:  # a name of its own: its command line tells this kernel from an earlier one
                self.km.connection_file = str(slot.folder / f"connection-{os.urandom(4).hex()}.json")
            _run(self.km.start_kernel(extra_arguments=list(KERNEL_ARGS)))
            self.pid = getattr(self.km.provisioner, "pid", None)
            self._abort_if_closing()
            self.kc = self.km.client()
            self.kc.start_channels()
            _run(self.kc.wait_for_ready(timeout=eng.start_timeout))
            self._abort_if_closing()
            self._call(f"warm_up({list(eng.preload)!r})", max(eng.call_timeout, eng.start_timeout))
            self._abort_if_closing()
            self._call("baseline()", eng.call_timeout)
            self._call("check()", eng.call_timeout)
            if slot is not None and eng.pool is not None and self.pid:
                self._call(f"reap_when_idle({str(slot.folder)!r}, {eng.pool.idle!r})", eng.call_timeout)
                slot.record(self.pid, self.km.connection_file)
        except Exception as exc:
            self._kill()
            if isinstance(exc, KernelProblem):
                raise
            raise KernelProblem(f"the kernel did not start: {type(exc).__name__}: {exc}") from exc

    def _attach(self, info: dict[str, Any]) -> bool:
        """Take over the pooled kernel ``info`` names (left clean by an earlier command); False
        when it does not answer or is not clean (the slot is then cleared)."""
        assert self.slot is not None
        try:
            self.km = AttachedKernelManager(info, self.engine.kernel_name)
            self.pid = self.km.pid
            self.kc = self.km.client()
            self.kc.start_channels()
            _run(_answering(self.kc, 10))  # it was reset and checked when it was handed back
        except Exception:  # noqa: BLE001 - not usable: start a new one in its place
            self._kill()
            return False
        self._ipc_dir = str(self.slot.folder)
        self._log_path = self.slot.folder / "kernel.log"
        self.reused += 1
        self.notebooks = 0
        return True

    def _abort_if_closing(self) -> None:
        if self.closing:
            raise KernelProblem("the engine is closing")

    def _kill(self) -> None:
        """Stop the kernel now (it may be dead or hung) and remove its files (a pool slot stays
        leased, empty, for the next kernel)."""
        if self.kc is not None:
            try:
                self.kc.stop_channels()
            except Exception:  # noqa: BLE001 - already gone
                pass
        if self.km is not None:
            try:
                _run(self.km.shutdown_kernel(now=True))
            except Exception:  # noqa: BLE001 - it may already be dead; make sure
                if self.pid:
                    try:
                        os.kill(self.pid, signal.SIGKILL)
                    except OSError:
                        pass
        self.km = self.kc = self.pid = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.slot is not None:
            self.slot.clear()
        elif self._ipc_dir:
            shutil.rmtree(self._ipc_dir, ignore_errors=True)
        self._ipc_dir = None

    def _hand_back(self) -> None:
        """End of the command: a clean pooled kernel goes back to the pool (still running);
        anything else is killed."""
        slot = self.slot
        if slot is None or self.km is None or not self._alive() or (slot.folder / "dirty").exists():
            self._kill()
        else:
            try:
                self.kc.stop_channels()
            except Exception:  # noqa: BLE001 - the kernel stays; only our sockets close
                pass
            self.km = self.kc = self.pid = None
            if self._log is not None:
                self._log.close()
                self._log = None
        if slot is not None:
            slot.release()
            self.slot = None

    def _alive(self) -> bool:
        if self.km is None:
            return False
        try:
            return bool(_run(self.km.is_alive()))
        except Exception:  # noqa: BLE001
            return False

    def ensure(self) -> None:
        """Have a running, clean kernel: ours, else one the pool kept (pooled engine), else a
        new one."""
        if self.km is not None and not self._alive():
            self._kill()
        if self.km is not None:
            return
        pool = self.engine.pool
        if pool is not None and self.slot is None:
            try:
                self.slot = lease(pool)
            except OSError:
                self.slot = None  # a kernel of this command only
        if self.slot is not None:
            info = self.slot.usable()
            if info is not None and self._attach(info):
                return
            self.slot.clear()
        self._start()

    def _copy_log(self, offset: int, task: Task) -> None:
        if task.log_path is None or self._log_path is None or not self._log_path.is_file():
            return
        if self._log is not None:
            self._log.flush()
        with open(self._log_path, "rb") as src:
            src.seek(offset)
            data = src.read()
        text = kernel_log.meaningful(data.decode("utf-8", errors="replace"))  # without shutdown chatter
        if text:
            with open(task.log_path, "a", encoding="utf-8") as dst:
                dst.write(text)

    def run_task(self, task: Task) -> Outcome:
        """Run one attempt on this kernel; reset and check the kernel afterwards."""
        eng = self.engine
        started = time.time()
        env = prepare_task(task)
        try:
            self.ensure()
            try:
                self._call(f"begin({env!r}, {str(task.cwd) if task.cwd else None!r})", eng.call_timeout)
            except KernelProblem:  # one more try on a new kernel
                self._kill()
                self.ensure()
                self._call(f"begin({env!r}, {str(task.cwd) if task.cwd else None!r})", eng.call_timeout)
        except KernelProblem as exc:
            return self._finish(task, started, f"KernelProblem: {exc}", None, True)
        if self.slot is not None:
            self.slot.dirty(True)  # until reset and checked: a command dying now leaves it unusable
        offset = self._log_path.stat().st_size if self._log_path and self._log_path.is_file() else 0
        error: str | None = None
        cell: int | None = None
        retryable = True
        broken: str | None = None
        self.notebooks += 1
        self.running = True
        measured = self.pid is not None and reset_peak(self.pid)
        try:
            _papermill().execute_notebook(
                str(task.input_path),
                str(task.output_path),
                parameters=dict(task.parameters),
                engine_name=PAPERMILL_ENGINE,
                kernel_name=eng.kernel_name,
                progress_bar=False,
                log_output=False,
                start_timeout=eng.start_timeout,
                execution_timeout=eng.execution_timeout,
                km=self.km,
                kc=self.kc,
            )
        except Exception as exc:  # a failing cell; or the kernel died or a cell timed out
            error, cell, retryable = papermill_failure(exc)
            if cell is None:
                broken = error
        finally:
            self.running = False
        peak = peak_mib(self.pid) if measured and self.pid is not None else None
        if broken is None:
            try:
                self._call("reset()", eng.call_timeout)
                self._call("check()", eng.call_timeout)
            except KernelProblem as exc:
                broken = f"not clean after {task.name}: {exc}"
        if broken is None and self.slot is not None:
            self.slot.dirty(False)
        self._copy_log(offset, task)
        held = rss_mib(self.pid) if broken is None and eng.max_rss_mib and self.pid else None
        if broken is not None:
            self._note(task, f"kernel {self.index}.{self.started} replaced: {broken}")
            self._kill()
        elif held is not None and held > eng.max_rss_mib:
            # memory the allocators keep after a large notebook would add to the next one's peak
            self._note(task, f"kernel {self.index}.{self.started} replaced: it held {held:,.0f} MiB after the "
                             f"notebook (more than RIDELAKE_KERNEL_MAX_RSS_MIB={eng.max_rss_mib:,.0f})")
            self._kill()
            self.start_soon()  # on this kernel's thread, before its next notebook
        return self._finish(task, started, error, cell, retryable, peak)

    def _note(self, task: Task, line: str) -> None:
        if task.log_path is not None:
            with open(task.log_path, "a", encoding="utf-8") as fh:
                fh.write(f"[ridelake] {line}\n")

    def _finish(self, task: Task, started: float, error: str | None, cell: int | None,
                retryable: bool, peak: float | None = None) -> Outcome:
        stamp_notebook(task, error)
        return Outcome(error is None, started, time.time(), error, cell, read_receipts(task.receipt_path), retryable,
                       None if peak is None else round(peak, 1))

    # -- from any thread ---------------------------------------------------------------------------

    def submit(self, fn: Callable[..., T], *args: Any) -> "Future[T]":
        """Run ``fn(*args)`` on the kernel's thread."""
        return self._thread.submit(fn, *args)

    def start_soon(self, then: Callable[[], None] | None = None) -> None:
        """Start the kernel in the background (a failure is retried by the first notebook), then
        call ``then`` (on the kernel's thread)."""

        def start() -> None:
            try:
                self.ensure()
                _papermill()  # imported now, while nothing runs, not when the first notebook is due
            except KernelProblem:
                pass
            finally:
                if then is not None:
                    then()

        self.submit(start)

    def close(self, cancel: bool = False) -> None:
        """Stop the kernel, or hand it back to the pool (a pooled engine, nothing running); with
        ``cancel``, kill it at once even when a notebook is running (a kernel still starting or
        idle is killed at once anyway)."""
        self.closing = True
        keep = self.engine.pool is not None and not cancel and not self.running
        if not keep and (cancel or not self.running) and self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            self.submit(self._hand_back if keep else self._kill_and_release)
        except RuntimeError:  # already closed
            return
        self._thread.shutdown(wait=not cancel or keep, cancel_futures=cancel)

    def _kill_and_release(self) -> None:
        self._kill()
        if self.slot is not None:
            self.slot.release()
            self.slot = None


#: A warm kernel holding more than this (MiB) after a notebook is replaced: a kernel with its
#: imports holds 200-600 MiB between notebooks; what a large notebook's allocators keep beyond
#: that would add to the next notebook's peak (at 15M rows, 1.8 GB of it).
MAX_RSS_MIB = 1024.0


class WarmEngine:
    """Run notebooks on warm kernels, one per slot (see the module doc).

    Args:
        slots: kernels (one per worker; the executor's ``slots``).
        kernel_name: the Jupyter kernel (default ``ridelake``).
        preload: modules each kernel imports when it starts (default :data:`DEFAULT_PRELOAD`).
        start_timeout: seconds to wait for a kernel to start.
        execution_timeout: seconds a cell may run (None: no limit); past it the attempt fails
            (retryable) and the kernel is replaced.
        call_timeout: seconds the engine's own calls into a kernel (reset, check) may take
            before the kernel counts as hung.
        cwd: the kernels' working directory between notebooks (default ours).
        check_kernel: fail now (ExecutionError) when the kernel is not installed.
        start: start the first kernel now, in the background (else when the first notebook runs).
        pool: take kernels from this pool and hand them back at the end, still running
            (:mod:`ridelake.core.engines.pool`); None: the kernels end with the engine.
        max_rss_mib: a kernel still holding more than this (MiB, resident) after a notebook and
            its reset is replaced (default ``RIDELAKE_KERNEL_MAX_RSS_MIB``, else
            :data:`MAX_RSS_MIB`; 0: never).
    """

    def __init__(
        self,
        slots: int = 1,
        kernel_name: str = KERNEL_NAME,
        preload: Sequence[str] = DEFAULT_PRELOAD,
        start_timeout: float = 60,
        execution_timeout: float | None = None,
        call_timeout: float = 60,
        cwd: Path | None = None,
        check_kernel: bool = True,
        start: bool = True,
        pool: PoolSpec | None = None,
        max_rss_mib: float | None = None,
    ) -> None:
        self.kernel_name = kernel_name
        if max_rss_mib is None:
            max_rss_mib = float(os.environ.get("RIDELAKE_KERNEL_MAX_RSS_MIB") or MAX_RSS_MIB)
        self.max_rss_mib = max_rss_mib
        self.preload = tuple(dict.fromkeys(preload))
        self.start_timeout = start_timeout
        self.execution_timeout = execution_timeout
        self.call_timeout = call_timeout
        self.cwd = cwd
        self.pool = pool
        if check_kernel:
            _check_kernel(kernel_name)
        self.max_slots = max(1, int(slots))
        self._kernels: list[_Kernel] = []
        self._idle: queue.SimpleQueue[_Kernel] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        atexit.register(self.close, cancel=True)
        if start:
            self._grow()

    @property
    def slots(self) -> int:
        """How many kernels the engine may keep."""
        return self.max_slots

    def kernels_started(self) -> int:
        """Kernels started so far (more than ``slots`` means some were replaced)."""
        return sum(k.started for k in self._kernels)

    def kernels_reused(self) -> int:
        """Kernels taken over from the pool (left by an earlier command)."""
        return sum(k.reused for k in self._kernels)

    def _grow(self) -> None:
        """Start one more kernel in the background (below ``slots``); it joins the idle ones when
        it is ready."""
        with self._lock:
            if self._closed or len(self._kernels) >= self.max_slots:
                return
            kernel = _Kernel(len(self._kernels), self)
            self._kernels.append(kernel)
        kernel.start_soon(then=lambda: self._idle.put(kernel))

    def execute(self, task: Task) -> Outcome:
        """Run one attempt on an idle warm kernel (waits for one); see :class:`Engine`.

        Kernels start on demand: the first at construction, another whenever every started
        one is busy (so a one-notebook run keeps one kernel, a wide wave gets ``slots``).

        Args:
            task: the attempt.

        Returns:
            The :class:`Outcome`.
        """
        if not self._kernels:
            self._grow()
        try:
            kernel = self._idle.get_nowait()
        except queue.Empty:
            self._grow()
            kernel = self._idle.get()
        if self._idle.empty():
            self._grow()  # every kernel is busy now: have the next one ready
        try:
            return kernel.submit(kernel.run_task, task).result()
        finally:
            self._idle.put(kernel)

    def close(self, cancel: bool = False) -> None:
        """Stop every kernel (safe to repeat); with ``cancel``, kill them at once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        for k in self._kernels:
            k.close(cancel=cancel)
