"""The coordinator: parameters, records, failures, --from-failure, the lock, incremental planning.

Every test but the last runs on a fake engine (no kernels). The last one executes a tiny
temporary pipeline through papermill on the ``ridelake`` kernel.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import threading
import time
from pathlib import Path

import pytest

from fake_project import PARAMS, fake, make_project, write_notebook

from ridelake.core.engine import Outcome, Task
from ridelake.errors import LockError, ParameterError, SelectionError
from ridelake.core.lock import WarehouseLock, lock_path
from ridelake.core.manifest import latest_run_id, read_manifest
from ridelake.core.runner import RunRequest, Stage, execute, resolve_params
from ridelake.core.uptodate import params_hash
from ridelake.tables.source import staged_months


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project(tmp_path / "proj")
    monkeypatch.delenv("RIDELAKE_WAREHOUSE", raising=False)
    monkeypatch.delenv("RIDELAKE_CATALOG_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # not the project: relative paths must resolve against the root
    return root


class FakeEngine:
    """Writes an output notebook and catalog receipts; fails as told; records every task."""

    def __init__(self, fail: dict[str, int] | None = None, months: list[str] | None = None) -> None:
        self.fail = fail or {}
        self.months = months or ["2024-01", "2024-02"]
        self.tasks: list[Task] = []
        self._lock = threading.Lock()

    def execute(self, task: Task) -> Outcome:
        start = time.time()
        with self._lock:
            self.tasks.append(task)
        task.output_path.parent.mkdir(parents=True, exist_ok=True)
        task.output_path.write_text(json.dumps({"attempt": task.attempt}))
        table = task.name.replace("/", ".")
        n = self.fail.get(task.key, 0)
        ok = not (n < 0 or task.attempt <= n)
        with open(task.receipt_path, "a") as fh:  # a failing notebook fails before its write
            fh.write(json.dumps({"op": "read", "table": "bronze.booking", "snapshot_id": 7, "rows": 10}) + "\n")
            if ok:
                fh.write(json.dumps({"op": "write", "table": table, "rows_written": 10, "rows_deleted": 0,
                                     "snapshot_id": 100 + task.attempt, "operation": "append"}) + "\n")
                fh.write(json.dumps({"op": "write", "table": table, "rows_written": 5, "rows_deleted": 0,
                                     "snapshot_id": 200 + task.attempt, "operation": "append"}) + "\n")
        if task.name == "bronze/prepare":  # stage the delivery like the real prepare step does
            wh = Path(task.env.get("RIDELAKE_WAREHOUSE") or Path(task.env["RIDELAKE_HOME"]) / "warehouse")
            key = f"{Path(task.parameters['source_file']).name}__{task.parameters['extraction_date']}__all"
            (wh / "_staging").mkdir(parents=True, exist_ok=True)
            (wh / "_staging" / f"{key}.json").write_text(json.dumps({"months": self.months, "rows": 3}))
        from ridelake.core.engine import read_receipts

        return Outcome(ok, start, time.time(), None if ok else "cell 3: KeyError: 'customer_id'",
                       None if ok else 3, read_receipts(task.receipt_path))


def _run(root: Path, engine: FakeEngine, **kw) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    kw.setdefault("retry_delay", 0)
    kw.setdefault("jobs", 2)
    result = execute(RunRequest(**kw), fake(root), engine=engine, out=out, err=err, live=False)
    return result, out.getvalue(), err.getvalue()


def _by_key(manifest: dict) -> dict[str, dict]:
    return {nb["key"]: nb for nb in manifest["notebooks"]}


def test_full_run_records_everything(project: Path) -> None:
    engine = FakeEngine()
    result, out, _ = _run(project, engine)
    assert result.exit_code == 0
    run_dir = project / "outputs" / "runs" / result.run_id
    data = read_manifest(run_dir)
    assert data["status"] == "succeeded" and data["exit_code"] == 0
    assert {"run_id", "started_at", "finished_at", "status", "params", "notebooks"} <= set(data)
    assert latest_run_id(project / "outputs" / "runs") == result.run_id
    assert (project / "outputs" / "runs" / "latest" / "run.json").is_file()
    nbs = _by_key(data)
    assert list(nbs) == list(PARAMS)  # dependency order
    prep = nbs["bronze/prepare"]
    assert prep["name"] == "bronze/prepare" and prep["status"] == "succeeded" and prep["attempts"] == 1
    assert prep["output"] == f"outputs/runs/{result.run_id}/bronze/prepare.ipynb"
    assert (run_dir / "bronze" / "prepare.ipynb").is_file()
    assert prep["table"] == "bronze.rejected_row"
    assert prep["rows_written"] == 15
    assert prep["writes"] == {"bronze.prepare": 201}
    assert prep["reads"] == {"bronze.booking": 7}
    assert prep["error"] is None and prep["duration_s"] >= 0
    assert prep["started_at"].endswith("Z") and prep["finished_at"] >= prep["started_at"]
    assert "gold/customer_analytics" in out and "exit status 0" in out and "total" in out


def test_each_notebook_gets_only_its_parameters(project: Path) -> None:
    engine = FakeEngine()
    result, _, _ = _run(project, engine, overrides={"extraction_month": "2024-03"})
    tasks = {t.name: t for t in engine.tasks}
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    assert dict(tasks["bronze/prepare"].parameters) == {
        "source_file": str(project / "data" / "x.csv"), "extraction_date": today, "extraction_month": "2024-03"}
    assert dict(tasks["silver/customer"].parameters) == {}
    assert dict(tasks["silver/booking"].parameters) == {"extraction_month": "2024-03"}
    assert dict(tasks["gold/customer_analytics"].parameters) == {"target_date": None}
    # one extraction_date for the whole run, the params recorded in run.json and the kernel env
    assert {t.parameters["extraction_date"] for t in engine.tasks if "extraction_date" in t.parameters} == {today}
    assert result.manifest["params"]["extraction_date"] == today
    assert _by_key(result.manifest)["silver/booking"]["params"] == {"extraction_month": "2024-03"}
    env = tasks["silver/booking"].env
    assert env["RIDELAKE_RUN_ID"] == result.run_id and env["RIDELAKE_NOTEBOOK"] == "silver/booking"
    assert env["RIDELAKE_PARAMS_HASH"] == params_hash({"extraction_month": "2024-03"})
    assert env["RIDELAKE_HOME"] == str(project)
    assert tasks["silver/booking"].cwd == project / "notebooks" / "silver"


def test_warehouse_env_is_passed_to_kernels(project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RIDELAKE_WAREHOUSE", str(tmp_path / "wh"))
    engine = FakeEngine()
    result, _, _ = _run(project, engine, stages=(Stage("one", ("bronze/prepare",)),))
    assert engine.tasks[0].env["RIDELAKE_WAREHOUSE"] == str(tmp_path / "wh")
    assert result.manifest["warehouse"] == str(tmp_path / "wh")
    assert not (tmp_path / "wh" / ".ridelake.lock").exists()  # released


def test_a_parameter_only_unselected_notebooks_declare_is_ignored_with_a_note(project: Path) -> None:
    engine = FakeEngine()
    result, _, err = _run(project, engine, stages=(Stage("b", ("bronze",)),),
                          overrides={"target_date": "2024-01-01", "extraction_date": "2024-12-31"})
    assert result.exit_code == 0
    assert "note: ignoring target_date: none of the 3 selected notebook(s) declares it" in err
    assert all("target_date" not in t.parameters for t in engine.tasks)
    assert all(t.parameters["extraction_date"] == "2024-12-31" for t in engine.tasks)


def test_parameter_errors(project: Path) -> None:
    with pytest.raises(ParameterError, match="colour not declared by any notebook of the pipeline"):
        _run(project, FakeEngine(), overrides={"colour": "blue"})
    with pytest.raises(ParameterError, match="not declared"):
        _run(project, FakeEngine(), stages=(Stage("b", ("bronze",)),), overrides={"colour": "blue"})
    with pytest.raises(ParameterError, match="extraction_date must be YYYY-MM-DD"):
        _run(project, FakeEngine(), overrides={"extraction_date": "yesterday"})
    with pytest.raises(ParameterError, match="does not exist"):
        _run(project, FakeEngine(), overrides={"source_file": "nope.csv"})
    with pytest.raises(SelectionError, match="did you mean silver/booking"):
        _run(project, FakeEngine(), stages=(Stage("x", ("silver/bookin",)),))
    assert not (project / "outputs" / "runs").exists()  # nothing ran, nothing recorded


def test_resolve_params_source_file_and_date(project: Path, tmp_path: Path) -> None:
    p = resolve_params(fake(project), today=dt.date(2026, 1, 2))
    assert p["extraction_date"] == "2026-01-02" and p["source_file"] == str(project / "data" / "x.csv")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("")  # also in the working directory:
    # a parameters file's relative path is relative to the project root ...
    assert resolve_params(fake(project))["source_file"] == str(project / "data" / "x.csv")
    # ... while a -p value is looked up in the working directory first
    assert resolve_params(fake(project), overrides={"source_file": "data/x.csv"})["source_file"] == str(
        tmp_path / "data" / "x.csv")
    assert resolve_params(fake(project), overrides={"extraction_date": "2024-12-31"})["extraction_date"] == "2024-12-31"


def test_failure_skips_downstream_and_exit_code(project: Path) -> None:
    engine = FakeEngine(fail={"silver/customer": -1})
    result, out, err = _run(project, engine, retries=1)
    assert result.exit_code == 1
    nbs = _by_key(result.manifest)
    assert nbs["silver/customer"]["status"] == "failed" and nbs["silver/customer"]["attempts"] == 2
    assert nbs["silver/customer"]["error"] == "cell 3: KeyError: 'customer_id'"
    assert nbs["silver/customer"]["error_cell"] == 3
    for key in ("silver/booking", "silver/ride", "gold/customer_analytics"):
        assert nbs[key]["status"] == "skipped" and nbs[key]["attempts"] == 0
        assert nbs[key]["output"] is None and nbs[key]["rows_written"] is None
    assert all(nbs[k]["status"] == "succeeded" for k in nbs if k.startswith("bronze/"))
    assert result.manifest["status"] == "failed"
    # the console names the notebook, the cell and the error, and the failed notebook is kept
    assert "silver/customer failed after 2 attempts: cell 3: KeyError: 'customer_id'" in err
    assert "exit status 1" in out
    run_dir = project / "outputs" / "runs" / result.run_id
    assert (run_dir / "silver" / "customer.ipynb").is_file()
    assert (run_dir / "silver" / "customer.attempt-1.ipynb").is_file()  # the first attempt is kept too
    log = nbs["silver/customer"]["attempt_log"]
    assert [a["status"] for a in log] == ["failed", "failed"] and log[0]["output"].endswith("customer.attempt-1.ipynb")


def test_retry_then_success(project: Path) -> None:
    result, _, err = _run(project, FakeEngine(fail={"bronze/booking": 1}), retries=2)
    assert result.exit_code == 0
    nb = _by_key(result.manifest)["bronze/booking"]
    assert nb["status"] == "succeeded" and nb["attempts"] == 2
    assert nb["writes"] == {"bronze.booking": 202}  # the successful attempt's receipts
    assert "bronze/booking: attempt 1 failed" in err


def test_from_failure_reruns_failed_and_skipped(project: Path) -> None:
    first, _, _ = _run(project, FakeEngine(fail={"silver/booking": -1}), retries=0,
                       overrides={"extraction_date": "2024-12-31"})
    assert first.exit_code == 1
    engine = FakeEngine()
    again, _, _ = _run(project, engine, from_failure=True)
    assert again.exit_code == 0
    assert [t.key for t in engine.tasks] == ["silver/booking", "silver/ride", "gold/customer_analytics"]
    assert again.manifest["from_failure"] == first.run_id
    assert again.manifest["params"]["extraction_date"] == "2024-12-31"  # the failed run's parameters
    # nothing left to rerun in the latest run: an empty, successful run
    third, _, _ = _run(project, FakeEngine(), from_failure=True)
    assert third.exit_code == 0 and third.manifest["notebooks"] == []
    # an explicit run id
    engine = FakeEngine()
    fourth, _, _ = _run(project, engine, from_failure=True, from_run=first.run_id)
    assert len(engine.tasks) == 3 and fourth.manifest["from_failure"] == first.run_id
    with pytest.raises(SelectionError, match="do not combine"):
        _run(project, FakeEngine(), from_failure=True, stages=(Stage("x", ("silver",)),))


def test_run_json_is_written_while_running(project: Path) -> None:
    seen: dict = {}

    class Peek(FakeEngine):
        def execute(self, task: Task) -> Outcome:
            if task.key == "silver/booking":
                run_json = task.output_path.parents[1] / "run.json"
                seen.update(json.loads(run_json.read_text()))
            return super().execute(task)

    result, _, _ = _run(project, Peek())
    assert result.exit_code == 0
    assert seen["status"] == "running" and seen["finished_at"] is None
    mid = _by_key(seen)
    assert mid["bronze/prepare"]["status"] == "succeeded" and mid["gold/customer_analytics"]["status"] == "pending"


def test_killed_run_is_listed_as_killed_and_rerun(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket
    import subprocess
    import sys

    from ridelake.core.manifest import list_runs, update_latest, write_manifest
    from ridelake.core.progress import runs_table

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run_id = "20260101T000000Z-dead"
    notebooks = [{"name": n, "key": n, "status": st, "params": {}} for n, st in
                 [("bronze/prepare", "succeeded"), ("bronze/booking", "running"), ("bronze/customer", "pending")]]
    write_manifest(project / "outputs" / "runs" / run_id,
                   {"run_id": run_id, "status": "running", "host": socket.gethostname(), "pid": proc.pid,
                    "params": {"extraction_date": "2024-12-31"}, "notebooks": notebooks})
    update_latest(project / "outputs" / "runs", run_id)
    assert "killed" in runs_table(list_runs(project / "outputs" / "runs"))
    engine = FakeEngine()
    result, _, _ = _run(project, engine, from_failure=True)
    assert [t.key for t in engine.tasks] == ["bronze/booking", "bronze/customer"]
    assert result.exit_code == 0


def test_second_run_on_the_same_warehouse_refuses(project: Path) -> None:
    held = WarehouseLock(lock_path(str(project / "warehouse"), project), "other-run")
    held.acquire()
    try:
        with pytest.raises(LockError, match="in use by run other-run"):
            _run(project, FakeEngine())
    finally:
        held.release()
    assert not (project / "outputs" / "runs").exists()


def test_stale_lock_does_not_block(project: Path) -> None:
    path = lock_path(str(project / "warehouse"), project)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"run_id": "killed", "pid": 1, "host": "gone-host", "heartbeat": time.time() - 9999}))
    result, _, err = _run(project, FakeEngine(), stages=(Stage("one", ("bronze/prepare",)),))
    assert result.exit_code == 0 and "broke a stale lock of run killed" in err
    assert not path.exists()


def test_dry_run_prints_waves_and_runs_nothing(project: Path) -> None:
    engine = FakeEngine()
    result, out, _ = _run(project, engine, dry_run=True, stages=(Stage("x", ("silver/customer+",)),))
    assert result.exit_code == 0 and engine.tasks == []
    assert "wave 1:" in out and "silver/customer" in out and "wave 3:" in out
    assert [w for st in result.manifest["stages"] for w in st["waves"]] == [
        ["silver/customer"], ["silver/booking"], ["silver/ride", "gold/customer_analytics"]]
    assert not (project / "outputs").exists()


def test_incremental_runs_silver_facts_per_touched_month(project: Path) -> None:
    engine = FakeEngine(months=["2024-02", "2024-01"])
    stages = (Stage("bronze", ("bronze",)),
              Stage("silver+gold", ("silver", "gold"), {"target_date": None}, per_month=True))
    result, _, err = _run(project, engine, command="incremental", stages=stages,
                          overrides={"source_file": str(project / "data" / "x.csv"), "extraction_date": "2024-12-31"})
    assert result.exit_code == 0, err
    assert "delivery touched 2 month(s): 2024-01, 2024-02" in err
    keys = [nb["key"] for nb in result.manifest["notebooks"]]
    assert keys[:3] == ["bronze/prepare", "bronze/booking", "bronze/customer"]
    assert set(keys[3:]) == {"silver/customer", "silver/booking@2024-01", "silver/booking@2024-02",
                             "silver/ride@2024-01", "silver/ride@2024-02", "gold/customer_analytics"}
    nbs = _by_key(result.manifest)
    assert nbs["silver/booking@2024-02"]["name"] == "silver/booking"
    assert nbs["silver/booking@2024-02"]["params"] == {"extraction_month": "2024-02"}
    assert nbs["silver/booking@2024-02"]["output"].endswith("silver/booking@2024-02.ipynb")
    # one month after the other per table; a month's ride after that month's booking
    assert nbs["silver/booking@2024-02"]["started_at"] >= nbs["silver/booking@2024-01"]["finished_at"]
    assert nbs["silver/ride@2024-01"]["started_at"] >= nbs["silver/booking@2024-01"]["finished_at"]
    assert nbs["gold/customer_analytics"]["started_at"] >= nbs["silver/booking@2024-02"]["finished_at"]
    assert all(nb["started_at"] >= nbs["bronze/customer"]["finished_at"] for nb in nbs.values()
               if nb["stage"] == "silver+gold")


def test_incremental_with_many_months_rebuilds_facts_once(project: Path) -> None:
    engine = FakeEngine(months=[f"2024-{m:02d}" for m in range(1, 13)])
    stages = (Stage("bronze", ("bronze",)), Stage("silver+gold", ("silver", "gold"), per_month=True, max_months=3))
    result, _, err = _run(project, engine, stages=stages)
    assert result.exit_code == 0 and "more than 3" in err
    nbs = _by_key(result.manifest)
    assert "silver/booking" in nbs and nbs["silver/booking"]["params"] == {"extraction_month": None}


def test_incremental_skips_later_stage_when_bronze_fails(project: Path) -> None:
    stages = (Stage("bronze", ("bronze",)), Stage("silver+gold", ("silver", "gold"), per_month=True))
    result, _, _ = _run(project, FakeEngine(fail={"bronze/booking": -1}), retries=0, stages=stages)
    assert result.exit_code == 1
    later = [nb for nb in result.manifest["notebooks"] if nb["stage"] == "silver+gold"]
    assert later and all(nb["status"] == "skipped" for nb in later)


def test_staged_months_reads_the_staging_record(tmp_path: Path) -> None:
    staging = tmp_path / "_staging"
    staging.mkdir()
    (staging / "f.csv__2024-12-31__all.json").write_text(json.dumps({"months": ["2024-03", "2024-01"]}))
    assert staged_months("/x/f.csv", "2024-12-31", None, str(tmp_path)) == ["2024-01", "2024-03"]
    assert staged_months("/x/g.csv", "2024-12-31", None, str(tmp_path)) is None
    assert staged_months("/x/f.csv", "2024-12-31", None, "s3://bucket/wh") is None


# -- the real engine -------------------------------------------------------------------------

REAL_PIPELINE = """
notebooks:
  bronze/first: {reads: [], writes: [bronze.first]}
  silver/left: {reads: [bronze.first], writes: [silver.left]}
  silver/right: {reads: [bronze.first], writes: [silver.right]}
"""
REAL_BODY = """
import json, os, pathlib
receipt = os.environ["RIDELAKE_RECEIPT_FILE"]
with open(receipt, "a") as fh:
    fh.write(json.dumps({"op": "write", "table": "bronze.first", "rows_written": 3, "rows_deleted": 0,
                         "snapshot_id": 1, "operation": "append"}) + "\\n")
assert pathlib.Path.cwd().name == os.environ["RIDELAKE_NOTEBOOK"].split("/")[0], pathlib.Path.cwd()
print(os.environ["RIDELAKE_NOTEBOOK"], os.environ["RIDELAKE_RUN_ID"], extraction_date)
if explode:
    raise ValueError("exploded on purpose")
"""


@pytest.mark.slow
def test_real_papermill_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("ridelake")
    except NoSuchKernel:
        pytest.skip("the ridelake kernel is not installed (make venv)")
    root = tmp_path / "real"
    (root / "notebooks").mkdir(parents=True)
    (root / "notebooks" / "pipeline.yaml").write_text(REAL_PIPELINE)
    for name in ("bronze/first", "silver/left", "silver/right"):
        write_notebook(root / "notebooks" / f"{name}.ipynb", "extraction_date = None\nexplode = False\n", REAL_BODY)
    monkeypatch.setenv("RIDELAKE_WAREHOUSE", str(tmp_path / "wh"))
    monkeypatch.delenv("RIDELAKE_CATALOG_URI", raising=False)
    out, err = io.StringIO(), io.StringIO()
    result = execute(RunRequest(jobs=2, retries=0, overrides={"extraction_date": "2024-12-31"}),
                     fake(root), out=out, err=err, live=False)
    assert result.exit_code == 0, err.getvalue() + out.getvalue()
    runs = root / "outputs" / "runs"
    assert os.path.realpath(runs / "latest") == str(runs / result.run_id)
    data = read_manifest(runs / "latest")
    assert [nb["status"] for nb in data["notebooks"]] == ["succeeded"] * 3
    assert data["notebooks"][0]["rows_written"] == 3
    executed = json.loads((runs / result.run_id / "silver" / "left.ipynb").read_text())
    assert executed["metadata"]["papermill"]["parameters"] == {"extraction_date": "2024-12-31"}
    assert executed["metadata"]["ridelake"]["run_id"] == result.run_id
    printed = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert f"silver/left {result.run_id} 2024-12-31" in printed

    # a failing cell: papermill's banner in the kept notebook, "cell N: EName: evalue" recorded
    err = io.StringIO()
    failed = execute(RunRequest(stages=(Stage("x", ("silver/right",)),), retries=0, overrides={"explode": "true"}),
                     fake(root), out=io.StringIO(), err=err, live=False)
    assert failed.exit_code == 1
    nb = failed.manifest["notebooks"][0]
    # the body wrote its receipt before raising: the error says so, and it was not retried
    assert nb["status"] == "failed" and nb["attempts"] == 1
    assert nb["error"] == "cell 2: ValueError: exploded on purpose (after writing bronze.first; not retried)"
    kept = json.loads((runs / failed.run_id / "silver" / "right.ipynb").read_text())
    assert "papermill-error-cell-tag" in kept["cells"][0]["metadata"].get("tags", [])
    assert "silver/right failed after 1 attempt: cell 2: ValueError: exploded on purpose" in err.getvalue()


def test_resolve_run_by_prefix(tmp_path: Path) -> None:
    from ridelake.errors import ConfigError
    from ridelake.core.manifest import resolve_run, update_latest, write_manifest

    runs = tmp_path / "runs"
    for run_id in ("20260101T000000Z-aaaa", "20260101T000000Z-aabb", "20260102T000000Z-cccc"):
        write_manifest(runs / run_id, {"run_id": run_id})
    update_latest(runs, "20260102T000000Z-cccc")
    assert resolve_run(runs, None).name == "20260102T000000Z-cccc"
    assert resolve_run(runs, "20260101T000000Z-aab").name == "20260101T000000Z-aabb"
    with pytest.raises(ConfigError, match="ambiguous"):
        resolve_run(runs, "20260101")
    with pytest.raises(ConfigError, match="no run"):
        resolve_run(runs, "2030")


def test_kernels_get_the_project_process_env_unless_the_user_set_it(project: Path, monkeypatch) -> None:
    """FakeProject is a RideBookings: Arrow's jemalloc pool for every kernel process it starts."""
    import sys

    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    result, _, _ = _run(project, FakeEngine(), dry_run=True, stages=(Stage("x", ("silver/customer",)),))
    assert result.exit_code == 0
    assert os.environ.get("ARROW_DEFAULT_MEMORY_POOL") == (None if sys.platform == "win32" else "jemalloc")
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    _run(project, FakeEngine(), dry_run=True, stages=(Stage("x", ("silver/customer",)),))
    assert os.environ["ARROW_DEFAULT_MEMORY_POOL"] == "system"
