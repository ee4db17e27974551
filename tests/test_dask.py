"""The Dask executor (``ridelake run --executor dask``).

The cluster tests start a real ``dask scheduler`` and two ``dask worker`` processes (one thread
each, with their nannies) on 127.0.0.1, in folders of their own and without any RIDELAKE_*
variable: what the workers need comes with the tasks. One cluster serves the module. On a
generated sample, the whole pipeline runs once locally and once on the cluster; the tables must
be the same. Then: a second run is up-to-date (nothing is submitted), a failing notebook is
retried and reported as a local run reports it, a worker killed mid-notebook does not lose the run,
and ``--executor dask`` without ``--scheduler`` runs on a LocalCluster of its own.

The unit tests at the top drive :class:`DaskExecutor`'s callbacks with a stand-in client.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import psutil
import pytest
from distributed import Client
from distributed.scheduler import KilledWorker

from ridelake import cli
from ridelake.core.engine import Outcome, Task
from ridelake.core.engines.dask import (
    PLUGIN_NAME,
    STARTED_TOPIC,
    DaskExecutor,
    EngineOptions,
    EnginePlugin,
    RemoteResult,
    RemoteTask,
    close_worker_engines,
    outcome_of_error,
    run_remote,
    worker_engine,
)
from ridelake.errors import ExecutionError
from ridelake.tables import catalog
from ridelake.tables.generate import write_csv
from ridelake.tables.schemas import TABLES

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ("-p", "extraction_date=2024-12-31")


# -- unit: the executor's callbacks, with a stand-in client ----------------------------------------

class _Future:
    def __init__(self) -> None:
        self.status = "pending"
        self.callbacks: list[Any] = []
        self._result: Any = None
        self._exc: BaseException | None = None

    def add_done_callback(self, fn: Any) -> None:
        self.callbacks.append(fn)

    def result(self) -> Any:
        return self._result

    def exception(self) -> BaseException | None:
        return self._exc

    def finish(self, result: Any = None, exc: BaseException | None = None) -> None:
        self.status, self._result, self._exc = ("error" if exc else "finished"), result, exc
        for fn in self.callbacks:
            fn(self)


class _Client:
    """Records what the executor asks of a ``distributed.Client``."""

    def __init__(self) -> None:
        self.plugins: dict[str, Any] = {}
        self.handlers: dict[str, Any] = {}
        self.submitted: list[dict[str, Any]] = []
        self.runs: list[Any] = []
        self.cancelled: list[Any] = []
        self.closed = False

    def register_plugin(self, plugin: Any, name: str | None = None) -> None:
        self.plugins[name] = plugin

    def subscribe_topic(self, topic: str, handler: Any) -> None:
        self.handlers[topic] = handler

    def unsubscribe_topic(self, topic: str) -> None:
        self.handlers.pop(topic, None)

    def run(self, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.runs.append((fn, kwargs.get("workers")))
        return {}

    def submit(self, fn: Any, arg: Any, **kwargs: Any) -> _Future:
        future = _Future()
        self.submitted.append({"fn": fn, "arg": arg, "future": future, **kwargs})
        return future

    def processing(self) -> dict[str, list[str]]:
        return {"tcp://w1": [s["key"] for s in self.submitted if s["future"].status == "pending"]}

    def cancel(self, futures: list[Any], force: bool = False) -> None:
        self.cancelled.extend(futures)

    def close(self) -> None:
        self.closed = True


def _task(tmp_path: Path, key: str = "gold/x", attempt: int = 1) -> Task:
    source = tmp_path / "notebooks" / "gold" / "x.ipynb"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', encoding="utf-8")
    run = tmp_path / "outputs" / "runs" / "r1"
    return Task(key=key, name="gold/x", input_path=source, output_path=run / "gold" / "x.ipynb",
                attempt=attempt, env={"RIDELAKE_RUN_ID": "r1"}, cwd=source.parent,
                receipt_path=run / "receipts" / "gold__x.1.jsonl", log_path=run / "logs" / "gold__x.1.log")


class _Calls:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def started(self, t: float) -> None:
        self.events.append(("started", t))

    def done(self, outcome: Outcome) -> None:
        self.events.append(("done", outcome))


def test_submit_sends_the_notebook_with_the_task_and_no_dask_retries(tmp_path):
    client = _Client()
    ex = DaskExecutor(client, 2)  # type: ignore[arg-type]
    assert isinstance(client.plugins[PLUGIN_NAME], EnginePlugin) and STARTED_TOPIC in client.handlers
    task, calls = _task(tmp_path), _Calls()
    ex.submit(task, calls.started, calls.done)
    ex.submit(task, calls.started, calls.done)
    first, second = client.submitted
    assert first["fn"] is run_remote and first["pure"] is False and first["retries"] == 0
    assert first["key"] != second["key"] and "gold/x" in first["key"]
    remote = first["arg"]
    assert isinstance(remote, RemoteTask) and remote.key == first["key"] and remote.task == task
    assert remote.notebook == task.input_path.read_text(encoding="utf-8")
    assert calls.events == []


def test_started_once_then_done_once_and_the_files_written_at_the_tasks_paths(tmp_path):
    client = _Client()
    ex = DaskExecutor(client, 1)  # type: ignore[arg-type]
    task, calls = _task(tmp_path), _Calls()
    task.log_path.parent.mkdir(parents=True)
    task.log_path.write_text("earlier line\n")
    ex.submit(task, calls.started, calls.done)
    sub = client.submitted[0]
    event = (0.0, {"key": sub["key"], "time": 5.0, "worker": "tcp://w1"})
    client.handlers[STARTED_TOPIC](event)
    client.handlers[STARTED_TOPIC](event)  # the task again on another worker after the first one died
    client.handlers[STARTED_TOPIC]((0.0, {"key": "someone else's", "time": 1.0}))
    assert calls.events == [("started", 5.0)]
    outcome = Outcome(True, 5.0, 7.0, receipts=[{"op": "write", "table": "gold.x"}])
    sub["future"].finish(RemoteResult(outcome, b'{"nb": 1}', b'{"op": "write"}\n', b"kernel said hi\n", "tcp://w2"))
    sub["future"].finish(RemoteResult(outcome, b"{}", None, None, "tcp://w2"))  # a second callback: ignored
    client.handlers[STARTED_TOPIC](event)  # an event arriving late: ignored
    assert calls.events == [("started", 5.0), ("done", outcome)]
    assert task.output_path.read_bytes() == b'{"nb": 1}'
    assert task.receipt_path.read_bytes() == b'{"op": "write"}\n'
    assert task.log_path.read_text() == "earlier line\nkernel said hi\n"


def test_a_killed_worker_is_a_retryable_failure_reported_after_a_start(tmp_path):
    client = _Client()
    ex = DaskExecutor(client, 1)  # type: ignore[arg-type]
    calls = _Calls()
    ex.submit(_task(tmp_path), calls.started, calls.done)
    client.submitted[0]["future"].finish(exc=KilledWorker("ridelake gold/x attempt 1", SimpleNamespace(address="tcp://w1"), 3))
    (kind1, t), (kind2, outcome) = calls.events
    assert kind1 == "started" and kind2 == "done" and t == outcome.started_at
    assert not outcome.ok and outcome.retryable and outcome.error.startswith("KilledWorker")
    assert not Path(_task(tmp_path).output_path).exists()


def test_outcome_of_error():
    killed = outcome_of_error(KilledWorker("k", SimpleNamespace(address="tcp://w1"), 3), 1.0, "tcp://w1")
    assert not killed.ok and killed.retryable
    assert killed.error == "KilledWorker: the 4 workers that ran it died (the last: tcp://w1)"
    lost = outcome_of_error(OSError("connection lost"), 1.0)
    assert lost.retryable and lost.error == "OSError: connection lost"
    assert outcome_of_error(None, 1.0).error == "cancelled"


def test_cancel_kills_the_kernels_of_the_workers_running_the_run_and_close_is_idempotent(tmp_path):
    client = _Client()
    ex = DaskExecutor(client, 1, warm=False)  # type: ignore[arg-type]
    ex.submit(_task(tmp_path), _Calls().started, _Calls().done)
    ex.close(cancel=True)
    ex.close()
    assert client.cancelled == [client.submitted[0]["future"]]
    assert [workers for _, workers in client.runs] == [["tcp://w1"]] and client.closed
    with pytest.raises(ExecutionError, match="closed"):
        ex.submit(_task(tmp_path), _Calls().started, _Calls().done)


def test_an_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(ExecutionError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        DaskExecutor.start("tcp://127.0.0.1:9", connect_timeout=1)


def test_scheduler_with_the_local_executor_is_a_usage_error(warehouse, capsys):
    assert cli.main(["run", "--executor", "local", "--scheduler", "tcp://127.0.0.1:8786", "--dry-run"]) == 2
    assert "--scheduler is the Dask scheduler" in capsys.readouterr().err


def test_a_dry_run_with_the_dask_executor_starts_no_cluster(warehouse, capsys, monkeypatch):
    monkeypatch.setattr(DaskExecutor, "start", lambda *a, **k: pytest.fail("a dry run started a cluster"))
    assert cli.main(["run", "gold", "--executor", "dask", "--dry-run"]) == 0
    assert "dry run" in capsys.readouterr().out


@pytest.mark.slow
def test_a_worker_keeps_one_engine_and_the_plugin_closes_it_at_teardown():
    options = EngineOptions(preload=())
    engine = worker_engine(options, 1)
    try:
        assert worker_engine(options, 1) is engine  # cached: one engine per worker process
        kernels = _wait_for(lambda: [c.pid for c in psutil.Process().children()
                                     if "ipykernel" in " ".join(c.cmdline())], 60, "the warm kernel to start")
    finally:
        EnginePlugin().teardown(None)
    _wait_for(lambda: not any(_alive(k) for k in kernels), 30, "the kernel to be killed")
    assert worker_engine(options, 1) is not engine  # the next task makes a new one
    close_worker_engines()


# -- a real cluster -----------------------------------------------------------------------------

def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIDELAKE_")}
    env["RIDELAKE_KERNEL_IDLE"] = "0"  # no kernels left idling after the test (conftest)
    env.update(extra)
    return env


def _wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two workers (with nannies) on 127.0.0.1, and a client of the test's own."""
    tmp = tmp_path_factory.mktemp("cluster")
    file = tmp / "scheduler.json"
    procs: list[subprocess.Popen] = []
    logs = []

    def start(args: list[str], name: str) -> None:
        folder = tmp / name
        folder.mkdir()
        log = open(folder / "log.txt", "w")
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, "-m", *args], cwd=folder, env=_env(), stdout=log,
                                      stderr=subprocess.STDOUT))

    try:
        start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
               "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(file)], "scheduler")
        _wait_for(file.is_file, 60, "the scheduler file")
        for i in range(2):
            start(["distributed.cli.dask_worker", "--scheduler-file", str(file), "--nworkers", "1", "--nthreads", "1",
                   "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(tmp / f"w{i}-scratch"),
                   "--name", f"w{i}"], f"w{i}")
        client = Client(scheduler_file=str(file), timeout=30)
        client.wait_for_workers(2, timeout=120)
        yield SimpleNamespace(client=client, address=client.scheduler.address, tmp=tmp)
        client.close()
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()


def _cluster_logs(cluster) -> str:
    return "\n".join(f"--- {p.parent.name}\n{p.read_text()[-3000:]}" for p in sorted(cluster.tmp.glob("*/log.txt")))


def _project(tmp: Path, name: str, csv: Path, warehouse: Path | None) -> SimpleNamespace:
    root = tmp / name
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copytree(ROOT / "params", root / "params")
    (root / "data").mkdir()
    shutil.copy(csv, root / "data" / "ncr_ride_bookings.csv")
    env = _env(RIDELAKE_HOME=str(root), MPLBACKEND="Agg")
    if warehouse is not None:
        env["RIDELAKE_WAREHOUSE"] = str(warehouse)
    return SimpleNamespace(root=root, env=env, warehouse=warehouse or root / "warehouse")


def _ridelake(project: SimpleNamespace, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ridelake", *args], cwd=project.root, env=project.env,
                          capture_output=True, text=True, timeout=timeout)


def _manifest(project: SimpleNamespace, run: str = "latest") -> dict[str, Any]:
    return json.loads((project.root / "outputs" / "runs" / run / "run.json").read_text())


def _events(cluster, run_id: str) -> list[dict[str, Any]]:
    return [msg for _, msg in cluster.client.get_events(STARTED_TOPIC) if msg.get("run_id") == run_id]


def _shown(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout[-3000:] + proc.stderr[-5000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cluster):
    """The whole pipeline on the same 2,000-row sample: locally, and on the cluster (the dask
    project keeps its default warehouse, ``<root>/warehouse``: the client spells it out)."""
    tmp = tmp_path_factory.mktemp("dask-e2e")
    csv = tmp / "sample.csv"
    write_csv(csv, rows=2000, seed=11, bad_rows=12)
    local = _project(tmp, "local", csv, tmp / "local-warehouse")
    remote = _project(tmp, "dask", csv, None)
    local.proc = _ridelake(local, "run", "-j", "2", *PARAMS)
    remote.proc = _ridelake(remote, "run", *PARAMS, "--executor", "dask", "--scheduler", cluster.address)
    return SimpleNamespace(local=local, dask=remote, tmp=tmp)


def _tables(project: SimpleNamespace) -> dict[str, pd.DataFrame]:
    """Every table, without its timestamp columns (when the run happened), in a stable row order."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RIDELAKE_WAREHOUSE", str(project.warehouse))
        for var in ("RIDELAKE_CATALOG_URI", "RIDELAKE_RECEIPT_FILE", "RIDELAKE_READS"):
            mp.delenv(var, raising=False)
        for name, spec in TABLES.items():
            frame = catalog.read_table(name)
            frame = frame.drop(columns=[c.name for c in spec.columns if c.type == "timestamptz"])
            out[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return out


@pytest.mark.slow
def test_the_pipeline_on_dask_gives_the_tables_of_a_local_run(runs, cluster):
    local, remote = runs.local, runs.dask
    assert local.proc.returncode == 0, _shown(local.proc)
    assert remote.proc.returncode == 0, _shown(remote.proc) + _cluster_logs(cluster)
    assert f"dask: scheduler {cluster.address}: 2 worker(s), 2 thread(s), 2 notebook(s) at a time" in remote.proc.stderr
    assert "dashboard http://127.0.0.1:" in remote.proc.stderr
    mine, theirs = _manifest(remote), _manifest(local)
    assert mine["status"] == "succeeded" and mine["jobs"] == 2
    assert [(n["key"], n["status"], n["attempts"]) for n in mine["notebooks"]] == [
        (n["key"], "succeeded", 1) for n in theirs["notebooks"]]
    assert {n["key"]: n["rows_written"] for n in mine["notebooks"]} == {
        n["key"]: n["rows_written"] for n in theirs["notebooks"]}
    # every notebook ran on a worker, and both workers took some
    events = _events(cluster, mine["run_id"])
    assert sorted(e["node"] for e in events) == sorted(n["key"] for n in mine["notebooks"])
    assert len({e["worker"] for e in events}) == 2
    # the executed notebooks came back to the client's run folder, as a local run writes them
    run_dir = remote.root / "outputs" / "runs" / mine["run_id"]
    for n in mine["notebooks"]:
        nb = json.loads((remote.root / n["output"]).read_text())
        assert nb["metadata"]["papermill"]["input_path"] == str(remote.root / "notebooks" / f"{n['name']}.ipynb")
        assert nb["metadata"]["papermill"]["output_path"] == str(run_dir / f"{n['name']}.ipynb")
        assert nb["metadata"]["ridelake"]["run_id"] == mine["run_id"]
        assert any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), n["name"]
        assert (run_dir / "receipts" / f"{n['key'].replace('/', '__')}.1.jsonl").is_file()
    assert (run_dir / "index.html").is_file()
    # and the tables are the same
    ours, reference = _tables(remote), _tables(local)
    for name, frame in reference.items():
        assert len(frame) > 0, name
        pd.testing.assert_frame_equal(ours[name], frame, check_exact=True, obj=name)


@pytest.mark.slow
def test_a_second_run_on_dask_is_up_to_date_and_submits_nothing(runs, cluster):
    proc = _ridelake(runs.dask, "run", *PARAMS, "--executor", "dask", "--scheduler", cluster.address)
    assert proc.returncode == 0, _shown(proc)
    manifest = _manifest(runs.dask)
    assert {n["status"] for n in manifest["notebooks"]} == {"up-to-date"}
    assert _events(cluster, manifest["run_id"]) == []


def _insert_cell(path: Path, source: str) -> str:
    """Put a code cell right after the parameters cell; returns the notebook's original text."""
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    at = next(i for i, c in enumerate(nb["cells"]) if "parameters" in c.get("metadata", {}).get("tags", []))
    nb["cells"].insert(at + 1, {"cell_type": "code", "execution_count": None, "id": "inserted-by-test",
                                "metadata": {}, "outputs": [], "source": source})
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return text


def _files(run_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())


@pytest.mark.slow
def test_a_notebook_failing_on_a_worker_is_retried_and_reported_as_locally(runs, cluster):
    name = "gold/customer_analytics"
    failing = 'raise RuntimeError("failing on purpose")'
    originals = [(p, _insert_cell(p.root / "notebooks" / f"{name}.ipynb", failing)) for p in (runs.local, runs.dask)]
    try:
        args = ("run", name, *PARAMS, "--retries", "1", "--retry-delay", "0")
        local = _ridelake(runs.local, *args, "-j", "1")
        remote = _ridelake(runs.dask, *args, "--executor", "dask", "--scheduler", cluster.address)
    finally:
        for project, text in originals:
            (project.root / "notebooks" / f"{name}.ipynb").write_text(text, encoding="utf-8")
    assert local.returncode == remote.returncode == 1, _shown(local) + _shown(remote)
    ours, reference = _manifest(runs.dask), _manifest(runs.local)
    (mine,), (theirs,) = ours["notebooks"], reference["notebooks"]
    assert mine["status"] == theirs["status"] == "failed"
    assert mine["attempts"] == theirs["attempts"] == 2
    assert mine["error"] == theirs["error"] and "RuntimeError: failing on purpose" in mine["error"]
    assert mine["error_cell"] == theirs["error_cell"] is not None
    assert [a["output"] is not None for a in mine["attempt_log"]] == [True, True]
    assert len(_events(cluster, ours["run_id"])) == 2  # both attempts ran on the cluster
    # the same files in both run folders: executed copies of both attempts, receipts, logs, report
    dask_dir = runs.dask.root / "outputs" / "runs" / ours["run_id"]
    local_dir = runs.local.root / "outputs" / "runs" / reference["run_id"]
    assert _files(dask_dir) == _files(local_dir)
    for attempt in mine["attempt_log"]:
        nb = json.loads((runs.dask.root / attempt["output"]).read_text())
        assert "papermill-error-cell" in "".join(nb["cells"][0]["source"])  # papermill's error banner
        assert nb["metadata"]["ridelake"]["status"] == "failed"
    assert f"{name}: {mine['error']}" in remote.stdout + remote.stderr


@pytest.mark.slow
def test_a_worker_killed_mid_notebook_does_not_lose_the_run(runs, cluster):
    name = "gold/daily_booking_summary"
    marker = runs.tmp / "slept-once"
    slow = (f"import pathlib, time\nmarker = pathlib.Path({str(marker)!r})\n"
            "if not marker.exists():\n    marker.touch()\n    time.sleep(120)")
    path = runs.dask.root / "notebooks" / f"{name}.ipynb"
    original = _insert_cell(path, slow)
    client = cluster.client
    before = {m["key"] for _, m in client.get_events(STARTED_TOPIC)}
    try:
        proc = subprocess.Popen([sys.executable, "-m", "ridelake", "run", name, *PARAMS, "--executor", "dask",
                                 "--scheduler", cluster.address], cwd=runs.dask.root, env=runs.dask.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out: dict[str, str] = {}
        reader = threading.Thread(target=lambda: out.update(zip(("stdout", "stderr"), proc.communicate())))
        reader.start()
        seen = _wait_for(lambda: [m for _, m in client.get_events(STARTED_TOPIC) if m.get("node") == name
                                  and m["key"] not in before], 180, "the notebook to start")
        _wait_for(marker.exists, 60, "the slow cell to run")
        victim = seen[0]["worker"]
        pid = client.run(os.getpid, workers=[victim])[victim]
        kernels = [c.pid for c in psutil.Process(pid).children()]  # the worker's warm kernel
        assert kernels
        os.kill(pid, signal.SIGKILL)
        reader.join(timeout=600)
    finally:
        path.write_text(original, encoding="utf-8")
    assert proc.returncode == 0, out.get("stdout", "")[-3000:] + out.get("stderr", "")[-5000:] + _cluster_logs(cluster)
    manifest = _manifest(runs.dask)
    (entry,) = manifest["notebooks"]
    assert entry["status"] == "succeeded" and entry["attempts"] == 1  # Dask ran it again, not our retry
    events = _events(cluster, manifest["run_id"])
    assert len(events) == 2 and events[0]["key"] == events[1]["key"] and events[0]["worker"] == victim
    assert events[1]["worker"] != victim
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RIDELAKE_WAREHOUSE", str(runs.dask.warehouse))
        props = catalog.load_table("gold.daily_booking_summary").current_snapshot().summary.additional_properties
    assert props["ridelake.run-id"] == manifest["run_id"]
    # the dead worker's kernel went too (ipykernel exits when its parent does): it commits nothing later
    _wait_for(lambda: not any(_alive(k) for k in kernels), 30, "the killed worker's kernel to exit")
    client.wait_for_workers(2, timeout=120)  # the nanny started a new worker


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_without_a_scheduler_a_local_cluster_runs_the_notebooks(runs):
    proc = _ridelake(runs.dask, "run", "gold/location_analytics", *PARAMS, "--force", "--executor", "dask", "-j", "1")
    assert proc.returncode == 0, _shown(proc)
    assert "dask: LocalCluster tcp://127.0.0.1:" in proc.stderr and "1 worker(s), 1 thread(s)" in proc.stderr
    assert "dashboard http://127.0.0.1:" in proc.stderr
    (entry,) = _manifest(runs.dask)["notebooks"]
    assert entry["status"] == "succeeded" and (runs.dask.root / entry["output"]).is_file()
