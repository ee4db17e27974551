"""``--executor dask``: every notebook execution a task on a ``dask.distributed`` cluster.

:class:`DaskExecutor` implements the :class:`~ridelake.core.engines.executor.Executor` interface,
so the run is scheduled exactly as a local one: the core's
:class:`~ridelake.core.scheduler.Scheduler` decides the order, the retries, the up-to-date
skipping and the records; Dask only places each attempt on a worker.

- **One task per attempt.** ``client.submit(run_remote, ..., key=..., pure=False, retries=0)``;
  Dask's own retries stay at 0 (the scheduler retries, with its delay and its rules).
- **The notebook travels with the task.** The task carries the notebook's JSON; a worker writes it
  into a temporary folder under its local directory, executes it there, and returns the executed
  notebook, the receipt file and the kernel log in the result. The client writes them at the
  :class:`~ridelake.core.engines.base.Task`'s paths, so ``outputs/runs/<run_id>/`` fills on the
  machine that started the run (no shared file system for outputs). A worker needs only the
  installed package, the ``ridelake`` Jupyter kernel, and access to the warehouse and catalog,
  whose settings reach the kernels through ``Task.env``, as in a local run.
- **Workers run the warm-kernel engine.** One :class:`~ridelake.core.engines.warm.WarmEngine`
  per worker process (as many kernels as the worker has threads), made on the first task (or by
  the warm-up the executor sends when it connects) and cached in the process; the worker plugin
  :class:`EnginePlugin` closes it when the worker shuts down. ``--fresh-kernels`` and
  ``--cell-timeout`` are honoured on the workers.
- **A worker that dies mid-task** (killed, out of memory): Dask runs the task again on another
  worker by itself; the future completes once, so the scheduler gets one outcome. Past Dask's
  ``allowed-failures`` the future fails with ``KilledWorker``: a failed, retryable outcome.
- **Started** is reported by the worker as an event (:data:`STARTED_TOPIC`) when the attempt
  begins; the client calls ``started`` once per attempt, and never after ``done``.

Without a scheduler address, :meth:`DaskExecutor.start` starts a ``LocalCluster`` for the run:
``-j`` worker processes of one thread each, everything (scheduler, workers, dashboard) on
127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TextIO

from distributed import Client, LocalCluster, get_worker
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.scheduler import KilledWorker

from ridelake.core.dag import load_pipeline
from ridelake.core.engines.base import Engine, Outcome, Task
from ridelake.core.engines.fresh import PapermillEngine
from ridelake.core.engines.warm import DEFAULT_PRELOAD, WarmEngine, notebook_imports
from ridelake.core.protocol import ENV
from ridelake.errors import ExecutionError, RidelakeError

__all__ = [
    "STARTED_TOPIC",
    "PLUGIN_NAME",
    "EngineOptions",
    "RemoteTask",
    "RemoteResult",
    "EnginePlugin",
    "worker_engine",
    "close_worker_engines",
    "warm_worker",
    "run_remote",
    "outcome_of_error",
    "DaskExecutor",
]

#: The event topic a worker logs when an attempt starts (``{"key", "time", "worker", "run_id", "node"}``:
#: the Dask key, the worker's clock, its address, the run and the scheduler's node).
STARTED_TOPIC = "ridelake-started"
#: The name the worker plugin is registered under (once per cluster).
PLUGIN_NAME = "ridelake-engines"
#: The LocalCluster's dashboard (another free port when it is taken).
LOCAL_DASHBOARD = "127.0.0.1:8787"


@dataclass(frozen=True)
class EngineOptions:
    """How the workers run notebooks (picklable; sent with every task).

    Attributes:
        fresh_kernels: a fresh kernel per notebook instead of the warm ones.
        cell_timeout: seconds a cell may run (None: no limit).
        preload: modules a warm kernel imports when it starts.
    """

    fresh_kernels: bool = False
    cell_timeout: float | None = None
    preload: tuple[str, ...] = DEFAULT_PRELOAD

    @property
    def cache_key(self) -> tuple[bool, float | None]:
        """Workers keep one engine per key (the preload is the first run's)."""
        return (self.fresh_kernels, self.cell_timeout)


@dataclass(frozen=True)
class RemoteTask:
    """What travels to a worker: the attempt, the notebook's JSON, the engine options, and the
    Dask key (the worker names it in its started event)."""

    task: Task
    notebook: str
    options: EngineOptions
    key: str


@dataclass
class RemoteResult:
    """What comes back: the outcome and the files the attempt wrote on the worker (None: not
    written), and the worker's address."""

    outcome: Outcome
    notebook: bytes | None
    receipts: bytes | None
    log: bytes | None
    worker: str


# -- on the workers --------------------------------------------------------------------------------

_ENGINES: dict[tuple[bool, float | None], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def worker_engine(options: EngineOptions, slots: int) -> Engine:
    """This process's engine for ``options``, made on first use and then cached.

    Args:
        options: the run's engine options.
        slots: kernels a warm engine may keep (the worker's threads).

    Raises:
        ExecutionError: the ``ridelake`` Jupyter kernel is not installed on this worker.
    """
    with _ENGINES_LOCK:
        engine = _ENGINES.get(options.cache_key)
        if engine is None:
            if options.fresh_kernels:
                engine = PapermillEngine(execution_timeout=options.cell_timeout)
            else:
                engine = WarmEngine(slots, preload=options.preload, execution_timeout=options.cell_timeout)
            _ENGINES[options.cache_key] = engine
        return engine


def close_worker_engines(cancel: bool = True) -> int:
    """Close this process's engines (their kernels); the next task makes new ones.

    Returns:
        How many engines were closed.
    """
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        close = getattr(engine, "close", None)
        if close is not None:
            close(cancel=cancel)
    return len(engines)


class EnginePlugin(WorkerPlugin):
    """Closes the worker's engines (kills their kernels) when the worker shuts down.

    Registered once per cluster (``idempotent``: a second run does not replace it, which would
    close engines another run is using).
    """

    idempotent = True
    name = PLUGIN_NAME

    def teardown(self, worker: Any) -> None:
        """The worker is closing: its kernels go with it."""
        close_worker_engines(cancel=True)


def warm_worker(options: EngineOptions, dask_worker: Any = None) -> bool:
    """Make this worker's engine now, so its kernel starts while the client plans (``client.run``
    fills in ``dask_worker``). Returns False when it cannot be made here (the first task reports
    why)."""
    try:
        worker_engine(options, dask_worker.state.nthreads if dask_worker is not None else 1)
    except RidelakeError:
        return False
    return True


def _localize(task: Task, notebook: str, folder: Path) -> Task:
    """The task with every path in ``folder`` (the notebook written there, run there)."""
    source = folder / "notebooks" / f"{task.name}.ipynb"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(notebook, encoding="utf-8")
    return replace(
        task,
        input_path=source,
        output_path=folder / "out" / task.output_path.name,
        cwd=source.parent,
        receipt_path=folder / "receipt.jsonl" if task.receipt_path is not None else None,
        log_path=folder / "kernel.log" if task.log_path is not None else None,
    )


def _executed_notebook(local: Task, task: Task) -> bytes | None:
    """The executed notebook's bytes, with papermill's paths set to the client's (the document
    is then the one a local run writes)."""
    path = local.output_path
    if not path.is_file():
        return None
    data = path.read_bytes()
    try:
        nb = json.loads(data)
        meta = nb.get("metadata", {}).get("papermill")
        if isinstance(meta, dict):
            meta["input_path"], meta["output_path"] = str(task.input_path), str(task.output_path)
        return (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    except ValueError:
        return data


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None and path.is_file() else None


def run_remote(remote: RemoteTask) -> RemoteResult:
    """Run one attempt on this worker (the function each Dask task calls).

    Args:
        remote: the attempt and its notebook.

    Returns:
        The :class:`RemoteResult`; a failing notebook (or an engine that cannot start) is a
        failed outcome, not an exception.
    """
    worker = get_worker()
    started = time.time()
    worker.log_event(STARTED_TOPIC, {"key": remote.key, "time": started, "worker": worker.address,
                                     "run_id": remote.task.env.get(ENV.RUN_ID), "node": remote.task.key})
    # under the worker's local directory: a worker killed mid-task leaves it to Dask's clean-up
    folder = Path(worker.local_directory) / "ridelake" / uuid.uuid4().hex[:12]
    try:
        local = _localize(remote.task, remote.notebook, folder)
        try:
            outcome = worker_engine(remote.options, worker.state.nthreads).execute(local)
        except Exception as exc:  # an engine that cannot start here must not lose the outcome
            outcome = Outcome(False, started, time.time(),
                              f"engine error on {worker.address}: {type(exc).__name__}: {exc}")
        return RemoteResult(outcome, _executed_notebook(local, remote.task), _read(local.receipt_path),
                            _read(local.log_path), worker.address)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- on the client ---------------------------------------------------------------------------------

@contextmanager
def _ctrl_c_ignored() -> Iterator[None]:
    """Ignore SIGINT meanwhile, so that the processes started meanwhile inherit the ignoring: a
    LocalCluster's workers then leave Ctrl-C to the client, which cancels the run and closes the
    cluster (instead of each worker printing a KeyboardInterrupt). Off the main thread: no-op."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals cannot be changed
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def outcome_of_error(exc: BaseException | None, started_at: float, worker: str | None = None) -> Outcome:
    """The outcome of a task whose future failed (not a failing notebook: that is a result).

    A ``KilledWorker`` (the task's workers died more often than Dask's ``allowed-failures``), a
    lost connection or any other error is a failed, retryable outcome.
    """
    where = f" (last on {worker})" if worker else ""
    if isinstance(exc, KilledWorker):
        last = getattr(exc.last_worker, "address", exc.last_worker)
        error = f"KilledWorker: the {exc.allowed_failures + 1} workers that ran it died (the last: {last})"
    elif exc is None:
        error = f"cancelled{where}"
    else:
        error = f"{type(exc).__name__}: {str(exc).strip() or repr(exc)}{where}"
    return Outcome(False, started_at, time.time(), error, retryable=True)


def _write(path: Path, data: bytes, append: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if append:
        with open(path, "ab") as fh:
            fh.write(data)
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _keep(task: Task, result: RemoteResult) -> None:
    """Write what the attempt wrote on the worker at the task's paths."""
    if result.notebook is not None:
        _write(task.output_path, result.notebook)
    if result.receipts is not None and task.receipt_path is not None:
        _write(task.receipt_path, result.receipts)
    if result.log is not None and task.log_path is not None:
        _write(task.log_path, result.log, append=True)


@dataclass
class _Submission:
    """One submitted attempt, on the client."""

    task: Task
    started: Callable[[float], None]
    done: Callable[[Outcome], None]
    submitted_at: float
    future: Any = None
    worker: str | None = None
    started_called: bool = False
    finished: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class DaskExecutor:
    """Dispatch attempts to a Dask cluster (see the module doc).

    Args:
        client: a connected ``distributed.Client``.
        slots: how many attempts may run at once (the scheduler keeps to it).
        options: how the workers run notebooks.
        cluster: a cluster this executor started and closes (the LocalCluster).
        warm: start the workers' engines now (their kernels warm up while the client plans).
    """

    def __init__(self, client: Client, slots: int, *, options: EngineOptions | None = None,
                 cluster: Any = None, warm: bool = True) -> None:
        self.client = client
        self.cluster = cluster
        self.slots = max(1, int(slots))
        self.options = options or EngineOptions()
        self._subs: dict[str, _Submission] = {}
        self._lock = threading.Lock()
        self._closed = False
        client.register_plugin(EnginePlugin(), name=PLUGIN_NAME)
        client.subscribe_topic(STARTED_TOPIC, self._on_started)
        if warm:
            client.run(warm_worker, self.options, on_error="ignore")  # returns once the kernels are starting

    @classmethod
    def start(cls, scheduler: str | None = None, jobs: int | None = None, *, root: Path | None = None,
              fresh_kernels: bool = False, cell_timeout: float | None = None, err: TextIO | None = None,
              connect_timeout: float = 30, workers_timeout: float = 60) -> "DaskExecutor":
        """Connect to a scheduler, or start a LocalCluster, and print where the dashboard is.

        Args:
            scheduler: ``tcp://HOST:PORT`` (None: a LocalCluster of ``jobs`` worker processes,
                one thread each, on 127.0.0.1, closed with the executor).
            jobs: attempts at a time (default: the cluster's threads; for a LocalCluster the cores).
            root: the project root; the warm kernels import what its notebooks import.
            fresh_kernels: a fresh kernel per notebook on the workers.
            cell_timeout: seconds a cell may run.
            err: where the cluster line goes (default stderr).
            connect_timeout: seconds to reach the scheduler.
            workers_timeout: seconds to wait for a first worker.

        Raises:
            ExecutionError: the scheduler cannot be reached or has no worker.
        """
        preload = list(DEFAULT_PRELOAD)
        if root is not None:
            try:
                preload += notebook_imports(spec.path for spec in load_pipeline(root).notebooks.values())
            except RidelakeError:
                pass  # the runner reports an unreadable pipeline
        options = EngineOptions(fresh_kernels, cell_timeout, tuple(dict.fromkeys(preload)))
        cluster = None
        if scheduler is None:
            n = jobs or os.cpu_count() or 1
            with _ctrl_c_ignored():  # by the worker processes: Ctrl-C reaches the whole process group
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       scheduler_port=0, dashboard_address=LOCAL_DASHBOARD,
                                       worker_dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
        else:
            try:
                client = Client(scheduler, timeout=connect_timeout)
            except (OSError, TimeoutError, ValueError) as exc:  # refused, timed out, not an address
                raise ExecutionError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
            try:
                client.wait_for_workers(1, timeout=workers_timeout)
            except TimeoutError:
                client.close()
                raise ExecutionError(f"the Dask scheduler at {scheduler} has no worker after {workers_timeout:g} s "
                                     f"(start some: `dask worker {scheduler}`)") from None
        threads = client.nthreads()
        slots = jobs or sum(threads.values()) or 1
        info = client.scheduler_info(n_workers=0)
        dashboard = (f"dashboard {client.dashboard_link}" if "dashboard" in info.get("services", {})
                     else "no dashboard (install bokeh where the scheduler runs)")
        kind = "LocalCluster" if cluster is not None else "scheduler"
        print(f"dask: {kind} {client.scheduler.address}: {len(threads)} worker(s), {sum(threads.values())} "
              f"thread(s), {slots} notebook(s) at a time; {dashboard}", file=err or sys.stderr)
        try:
            return cls(client, slots, options=options, cluster=cluster)
        except BaseException:
            client.close()
            if cluster is not None:
                cluster.close()
            raise

    # -- Executor ------------------------------------------------------------------------------

    def submit(self, task: Task, started: Callable[[float], None], done: Callable[[Outcome], None]) -> None:
        """See :meth:`~ridelake.core.engines.executor.Executor.submit`.

        Raises:
            OSError: the notebook cannot be read (the scheduler counts a failed attempt).
            ExecutionError: the executor is closed.
        """
        notebook = Path(task.input_path).read_text(encoding="utf-8")
        key = f"ridelake {task.key} attempt {task.attempt} {uuid.uuid4().hex[:12]}"
        sub = _Submission(task, started, done, time.time())
        with self._lock:
            if self._closed:
                raise ExecutionError("the Dask executor is closed")
            self._subs[key] = sub
        try:
            sub.future = self.client.submit(run_remote, RemoteTask(task, notebook, self.options, key),
                                            key=key, pure=False, retries=0)
        except BaseException:
            with self._lock:
                self._subs.pop(key, None)
            raise
        sub.future.add_done_callback(lambda future, k=key: self._on_done(k, future))

    def close(self, cancel: bool = False) -> None:
        """See :meth:`~ridelake.core.engines.executor.Executor.close` (safe to repeat).

        With ``cancel``, the run's tasks are cancelled and the kernels of the workers running them
        are killed (a notebook of another run on those workers fails and is retried by its run);
        a LocalCluster is closed with its workers either way.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending = dict(self._subs)
        try:
            if cancel and pending:
                busy = [w for w, keys in self.client.processing().items() if set(keys) & set(pending)]
                self.client.cancel([s.future for s in pending.values() if s.future is not None], force=True)
                if busy and self.cluster is None:
                    self.client.run(close_worker_engines, workers=busy, on_error="ignore")
            self.client.unsubscribe_topic(STARTED_TOPIC)
        except Exception:  # noqa: BLE001 - closing must go on (a scheduler that went away)
            pass
        finally:
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()

    # -- callbacks -------------------------------------------------------------------------------

    def _on_started(self, event: tuple[float, Mapping[str, Any]]) -> None:
        """A worker began an attempt (runs on the client's event loop)."""
        msg = event[1] if isinstance(event, (tuple, list)) and len(event) > 1 else {}
        sub = self._subs.get(msg.get("key")) if isinstance(msg, Mapping) else None
        if sub is None:
            return  # another run's task, or one already done
        sub.worker = msg.get("worker")
        with sub.lock:
            if sub.started_called or sub.finished:
                return  # a rerun after its worker died: the attempt started already
            sub.started_called = True
        sub.started(float(msg.get("time") or time.time()))

    def _on_done(self, key: str, future: Any) -> None:
        """The future ended (on Dask's callback thread): keep the files, report the outcome once."""
        with self._lock:
            sub = self._subs.pop(key, None)
        if sub is None:
            return
        outcome = self._collect(sub, future)
        with sub.lock:
            if sub.finished:
                return
            call_started = not sub.started_called
            sub.started_called = sub.finished = True
        if call_started:  # the started event had not arrived: keep started-before-done
            sub.started(outcome.started_at)
        sub.done(outcome)

    def _collect(self, sub: _Submission, future: Any) -> Outcome:
        try:
            if future.status == "finished":
                result: RemoteResult = future.result()
                sub.worker = result.worker
                _keep(sub.task, result)
                return result.outcome
            if future.status == "cancelled":
                return outcome_of_error(None, sub.submitted_at, sub.worker)
            return outcome_of_error(future.exception(), sub.submitted_at, sub.worker)
        except Exception as exc:  # the result could not be fetched or written here
            return outcome_of_error(exc, sub.submitted_at, sub.worker)
