"""Interactive runs are safe and recorded (issue 9.2).

A notebook opened by hand runs with ``write = False``: its write cell shows what it would change
and writes nothing. With ``write = True`` outside the runner the write is tagged and recorded as
an ``interactive-…`` run (run.json, history, rollback) and leaves the freshness entry a run would,
so the next pipeline reruns only what reads its new snapshot.

The fast tests call the write functions directly on a throw-away warehouse and a copy of the
project's notebooks. The slow test does what JupyterLab does: it starts the ``ridelake`` kernel
in a notebook's folder and executes the code cells one by one through a KernelClient, on a small
generated sample warehouse, then runs the whole pipeline.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from ridelake import cli
from ridelake.core.dag import load_pipeline
from ridelake.core.lock import WarehouseLock, lock_path
from ridelake.core.manifest import latest_run_id, read_run, runs_dir
from ridelake.core.runner import plan_stage, resolve_params
from ridelake.core.runner import Stage
from ridelake.core.uptodate import StateStore, UpToDate, params_hash, record_success, state_path
from ridelake.errors import CatalogError, LockError, ParameterError
from ridelake.ops import lineage, maintenance
from ridelake.tables import catalog, config, interactive, writes
from ridelake.tables.adapter import RideBookings
from test_lineage import NOW, dim

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path, warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's notebooks and parameters beside a throw-away warehouse."""
    root = tmp_path / "project"
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copytree(ROOT / "params", root / "params")
    monkeypatch.setenv("RIDELAKE_HOME", str(root))
    monkeypatch.chdir(root / "notebooks" / "silver")  # where JupyterLab starts a notebook's kernel
    return root


def props(table: str) -> dict[str, str]:
    snap = catalog.load_table(table).current_snapshot()
    return dict(snap.summary.additional_properties)


# -- the preview ------------------------------------------------------------------------------

def test_compare_counts_added_replaced_changed_and_removed_by_key() -> None:
    old = pd.DataFrame({"id": [1, 2, 3, 4], "name": ["a", "b", "c", None], "updated_at": [NOW] * 4})
    new = pd.DataFrame({"id": [2, 3, 4, 5], "name": ["b", "C", None, "e"], "updated_at": [NOW + pd.Timedelta("1h")] * 4})

    added, replaced, changed, removed, sample = writes.compare(["id"], old, new)

    # 5 is new, 2/3/4 replace a row (only 3 has another value: updated_at does not count, None == None),
    # 1 is gone
    assert (added, replaced, changed, removed) == (1, 3, 1, 1)
    assert sample.to_dict("records") == [{"id": 3, "change": "changed", "columns": "name"},
                                         {"id": 5, "change": "added", "columns": ""},
                                         {"id": 1, "change": "removed", "columns": ""}]
    same = writes.compare(["id"], old, old.copy())
    assert same[:4] == (0, 4, 0, 0) and same[4].empty


def test_write_false_writes_nothing_and_shows_what_it_would_change(project, capsys) -> None:
    catalog.write_table("silver.vehicle_type", dim(["Auto", "Bike", "Cab"]), replace_all=True)
    before = catalog.snapshot_id("silver.vehicle_type")
    frame = dim(["Auto", "Bike", "eBike", "Van"])   # ids 1-4: Cab (3) renamed eBike, Van (4) new

    result = catalog.replace_rows("silver.vehicle_type", frame, {}, write=False)

    assert isinstance(result, writes.WritePreview)
    assert catalog.snapshot_id("silver.vehicle_type") == before
    assert sorted(catalog.read_table("silver.vehicle_type")["name"]) == ["Auto", "Bike", "Cab"]
    assert (result.rows_before, result.rows_in_scope, result.rows_written, result.rows_after) == (3, 3, 4, 4)
    assert (result.added, result.replaced, result.changed, result.removed) == (1, 3, 1, 0)
    assert result.sample[["vehicle_type_id", "change", "columns"]].values.tolist() == [
        [3, "changed", "name"], [4, "added", ""]]
    out = capsys.readouterr().out
    assert "silver.vehicle_type: nothing written (write = False)" in out
    assert ("The write would replace every row with 4: 1 added, 3 replaced (1 with other values), 0 removed; "
            "the table would hold 4 rows (now 3)") in out
    assert "set write = True in the parameters cell" in out
    assert not runs_dir(project).exists()  # and nothing recorded

    # a write scoped to some rows compares only with those
    catalog.write_table("silver.booking_status", dim(["Completed", "Cancelled"], "booking_status_id"),
                        replace_all=True)
    scoped = catalog.replace_rows("silver.booking_status", dim(["Completed"], "booking_status_id"),
                                  {"name": ["Completed", "Cancelled"]}, write=False)
    assert (scoped.rows_in_scope, scoped.added, scoped.replaced, scoped.removed) == (2, 0, 1, 1)
    assert "replace 2 of its 2 rows" not in scoped.summary() and "replace every row with 1" in scoped.summary()
    catalog.write_table("silver.booking_status", dim(["Completed", "Cancelled", "No Driver Found"],
                                                     "booking_status_id"), replace_all=True)
    scoped = catalog.replace_rows("silver.booking_status", dim(["Completed"], "booking_status_id"),
                                  {"name": ["Completed", "Cancelled"]}, write=False)
    assert "The write would replace 2 of its 3 rows with 1" in scoped.summary()
    assert "the table would hold 2 rows (now 3)" in scoped.summary()
    empty = catalog.replace_rows("silver.payment_method", dim(["x"], "payment_method_id").iloc[0:0], {"name": ["x"]},
                                 write=False)
    assert "has no rows to write and none to replace: the table would stay as it is (0 rows)" in empty.summary()
    appended = catalog.preview_write("silver.payment_method", dim(["UPI"], "payment_method_id"))
    assert (appended.added, appended.rows_after) == (1, 1)
    assert "The write would add 1 row(s): no row replaced; the table would hold 1 rows" in appended.summary()
    with pytest.raises(CatalogError, match="write must be True or False"):
        catalog.replace_rows("silver.vehicle_type", frame, {}, write="yes")


def test_write_true_in_a_run_is_a_plain_tagged_write(project, monkeypatch, capsys) -> None:
    monkeypatch.setenv("RIDELAKE_RUN_ID", "20260101T000000Z-0000")
    monkeypatch.setenv("RIDELAKE_NOTEBOOK", "silver/vehicle_type")
    monkeypatch.setenv("RIDELAKE_PARAMS_HASH", "p" * 64)

    result = catalog.replace_rows("silver.vehicle_type", dim(["Auto"]), {}, write=True)

    assert isinstance(result, catalog.WriteResult) and result.rows_written == 1
    p = props("silver.vehicle_type")
    assert (p[config.PROP_RUN_ID], p[config.PROP_NOTEBOOK], p[config.PROP_PARAMS_HASH]) == (
        "20260101T000000Z-0000", "silver/vehicle_type", "p" * 64)
    assert p[config.PROP_HOST] and p[config.PROP_USER]
    assert "silver.vehicle_type: wrote 1 rows, replaced 0" in capsys.readouterr().out
    assert not runs_dir(project).exists()  # the runner keeps its own record


# -- interactive writes -----------------------------------------------------------------------

def _nodes(pipe, names):
    params = resolve_params(RideBookings(), overrides={"extraction_date": "2024-12-31"})
    return [n for n in plan_stage(pipe, Stage("run"), params) if n.spec.name in names]


def test_an_interactive_write_is_tagged_recorded_up_to_date_and_undone_by_rollback(project, warehouse, capsys):
    pipe = load_pipeline(project)
    rb = RideBookings()
    store_path = state_path(str(warehouse), project)
    # a run wrote vehicle_type and then booking, which read it (what a run leaves in the state)
    catalog.write_table("silver.vehicle_type", dim(["Auto", "Bike"]), replace_all=True)
    runner_snap = catalog.snapshot_id("silver.vehicle_type")
    for node in _nodes(pipe, {"silver/vehicle_type", "silver/booking"}):
        wrote = [{"op": "write", "table": node.spec.table, "snapshot_id": catalog.snapshot_id(node.spec.table)}]
        assert record_success(pipe, StateStore(store_path, str(warehouse)), rb.snapshots(), key=node.key,
                              params=node.params, run_id="20260101T000000Z-0001", file_params=rb.file_params,
                              receipts=[{"op": "read", "table": "silver.vehicle_type", "snapshot_id": runner_snap},
                                        *wrote]) is not None
    catalog.read_table("silver.vehicle_type")  # the notebook reads its own table (not an input)

    result = catalog.replace_rows("silver.vehicle_type", dim(["Auto", "Bike", "eBike"]), {}, write=True)

    # tagged like a runner write, plus who and where
    p = props("silver.vehicle_type")
    run_id = p[config.PROP_RUN_ID]
    assert run_id.startswith("interactive-") and len(run_id) == len("interactive-20260101T000000Z-ab12")
    assert p[config.PROP_NOTEBOOK] == "silver/vehicle_type"
    assert p[config.PROP_PARAMS_HASH] == params_hash({"write": True})
    assert p[config.PROP_USER] and p[config.PROP_HOST]
    out = capsys.readouterr().out
    assert "silver.vehicle_type: wrote 3 rows, replaced 2" in out
    assert f"recorded as run {run_id}" in out and f"ridelake rollback {run_id}" in out

    # recorded as a run
    assert latest_run_id(runs_dir(project)) == run_id
    assert (runs_dir(project) / run_id / "index.html").is_file()  # `latest` opens on it
    run = read_run(runs_dir(project) / run_id)
    assert (run.command, run.status, run.params, run.user) == ("interactive", "succeeded", {"write": True},
                                                              p[config.PROP_USER])
    [nb] = run.notebooks
    assert (nb.name, nb.key, nb.status, nb.table, nb.rows_written) == (
        "silver/vehicle_type", "silver/vehicle_type", "succeeded", "silver.vehicle_type", 3)
    assert nb.writes == {"silver.vehicle_type": result.snapshot_id}
    assert [(t.table, t.from_snapshot, t.to_snapshot, t.rows_before, t.rows_after) for t in run.tables] == [
        ("silver.vehicle_type", runner_snap, result.snapshot_id, 2, 3)]

    # the next run keeps the notebook (up-to-date) and reruns what reads its new snapshot
    fresh = UpToDate(pipe, StateStore(store_path, str(warehouse)), rb.snapshots(), "next",
                     file_params=rb.file_params)
    fresh.add(_nodes(pipe, {"silver/vehicle_type", "silver/booking"}))
    writer, reader = fresh.evaluate("silver/vehicle_type"), fresh.evaluate("silver/booking")
    assert (writer.run, writer.reason, writer.since) == (False, "up-to-date", run_id), writer.reason
    assert (reader.run, reader.reason) == (True, "silver.vehicle_type changed")

    # history shows it; rollback undoes it
    hist = lineage.history("silver.vehicle_type")
    assert hist.loc[hist["current"], "run_id"].tolist() == [run_id]
    assert hist.loc[hist["current"], "notebook"].tolist() == ["silver/vehicle_type"]
    assert cli.main(["rollback", run_id]) == 0
    assert catalog.snapshot_id("silver.vehicle_type") == runner_snap
    assert sorted(catalog.read_table("silver.vehicle_type")["name"]) == ["Auto", "Bike"]


def test_interactive_parameters_hash_like_the_runners_for_the_defaults(project) -> None:
    pipe = load_pipeline(project)
    rb = RideBookings()
    run_params = resolve_params(rb)  # params/default.yaml, as `make pipeline` resolves it
    for name in ("bronze/customer", "silver/booking", "gold/daily_booking_summary", "gold/customer_analytics"):
        spec = pipe.spec(name)
        [node] = [n for n in plan_stage(pipe, Stage("run"), run_params) if n.key == name]
        mine = interactive.runner_params(rb, spec, interactive.notebook_values(spec, {}))  # the cell's defaults
        assert mine == dict(node.params) and params_hash(mine) == params_hash(node.params), name
    spec = pipe.spec("bronze/customer")
    assert interactive.notebook_values(spec, {"extraction_month": "2024-03"})["extraction_month"] == "2024-03"
    month = interactive.runner_params(rb, spec, {"source_file": "data/ncr_ride_bookings.csv",
                                                 "extraction_date": "2024-12-31", "extraction_month": "2024-03"})
    assert month == {"source_file": str(project / "data" / "ncr_ride_bookings.csv"),
                     "extraction_date": "2024-12-31", "extraction_month": "2024-03", "write": True}


def test_the_runner_always_passes_write_true(project) -> None:
    rb = RideBookings()
    assert rb.resolve_params({}, {})["write"] is True
    assert resolve_params(rb, overrides={"write": "true"})["write"] is True
    with pytest.raises(ParameterError, match="a run always writes its tables"):
        resolve_params(rb, overrides={"write": "false"})
    with pytest.raises(ParameterError, match="parameters file"):
        rb.resolve_params({"write": False}, {})
    # a parameters file's dates are read by YAML as dates: they reach the notebooks as text
    assert rb.resolve_params({"extraction_date": dt.date(2024, 12, 31)}, {})["extraction_date"] == "2024-12-31"
    with pytest.raises(ParameterError, match="extraction_month"):
        rb.resolve_params({"extraction_month": "March"}, {})


def test_an_interactive_write_refuses_while_a_run_holds_the_lock(project, warehouse) -> None:
    catalog.bootstrap()
    before = catalog.snapshot_id("silver.vehicle_type")
    lock = WarehouseLock(lock_path(str(warehouse), project), "20260101T000000Z-busy", warehouse=str(warehouse))
    lock.acquire()
    try:
        with pytest.raises(LockError, match="20260101T000000Z-busy"):
            catalog.replace_rows("silver.vehicle_type", dim(["Auto"]), {}, write=True)
    finally:
        lock.release()
    assert catalog.snapshot_id("silver.vehicle_type") == before
    assert not runs_dir(project).exists()


def test_a_table_no_notebook_writes_cannot_be_written_interactively() -> None:
    pipe = types.SimpleNamespace(writers=lambda table: [], source="pipeline.yaml")
    with pytest.raises(CatalogError, match="no notebook"):
        interactive.notebook_for(pipe, "silver.nothing")


# -- through a kernel, the way JupyterLab runs a notebook ---------------------------------------

def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no ridelake variables (no run, the default warehouse)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIDELAKE_")}
    env["RIDELAKE_KERNEL_IDLE"] = "0"  # no kernels left idling after the test (conftest)
    return {**env, **extra}


def _ridelake(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "ridelake", *args], cwd=project, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def _run_cells(notebook: Path, env: dict[str, str], parameters: str | None = None) -> str:
    """Start the ridelake kernel in the notebook's folder and execute its code cells one by one
    (as JupyterLab's Run All does), the parameters cell edited in the browser (not saved) when
    ``parameters`` is given. Returns the text the cells showed."""
    from jupyter_client.manager import start_new_kernel

    nb = json.loads(notebook.read_text(encoding="utf-8"))
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            if parameters is not None and "parameters" in (cell["metadata"].get("tags") or []):
                source = parameters
            cells.append(source)
    km, kc = start_new_kernel(kernel_name="ridelake", cwd=str(notebook.parent), env=env, startup_timeout=120)
    shown: list[str] = []

    def collect(msg: dict) -> None:
        content = msg["content"]
        if msg["msg_type"] == "stream":
            shown.append(content["text"])
        elif msg["msg_type"] in ("display_data", "execute_result"):
            shown.append(content["data"].get("text/plain", "") + "\n")
        elif msg["msg_type"] == "error":
            shown.append("\n".join(content["traceback"]))

    try:
        for source in cells:
            reply = kc.execute_interactive(source, timeout=300, output_hook=collect)
            assert reply["content"]["status"] == "ok", "".join(shown)[-3000:]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return "".join(shown)


def _statuses(project: Path) -> dict[str, str]:
    run = read_run(runs_dir(project) / latest_run_id(runs_dir(project)))
    return {nb.key: nb.status for nb in run.notebooks}


@pytest.mark.slow
def test_a_notebook_run_in_a_kernel_previews_then_writes_a_recorded_run(tmp_path: Path, monkeypatch) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    from ridelake.tables.generate import write_csv

    try:
        KernelSpecManager().get_kernel_spec("ridelake")
    except NoSuchKernel:
        pytest.skip("the ridelake kernel is not installed (make venv)")
    project = tmp_path / "project"
    shutil.copytree(ROOT / "notebooks", project / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(ROOT / "params", project / "params")
    # a copy of lib/ imported first (runner and kernels): its hash cannot change under the test
    shutil.copytree(ROOT / "lib", project / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    params = project / "params" / "default.yaml"  # a fixed extraction date: the test may cross midnight
    params.write_text(params.read_text().replace("extraction_date: null", "extraction_date: 2024-12-31"))
    write_csv(project / "data" / "ncr_ride_bookings.csv", rows=300, seed=11)
    env = _clean_env(PYTHONPATH=os.pathsep.join([str(project / "lib"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    notebook = project / "notebooks" / "silver" / "customer.ipynb"

    _ridelake(project, env, "run")  # make pipeline
    assert set(_statuses(project).values()) == {"succeeded"}
    monkeypatch.setenv("RIDELAKE_HOME", str(project))  # this process reads the same warehouse
    monkeypatch.setenv("RIDELAKE_WAREHOUSE", str(project / "warehouse"))
    before = catalog.snapshot_id("silver.customer")
    state = state_path(str(project / "warehouse"), project)
    state_before = state.read_bytes()
    runs_before = sorted(p.name for p in runs_dir(project).iterdir())

    # opened and run as it is: it computes, checks and shows what it would write; writes nothing
    shown = _run_cells(notebook, env)
    assert "silver.customer: nothing written (write = False)" in shown, shown[-3000:]
    assert "no row would change" in shown  # the same input gives the same customers
    assert "set write = True in the parameters cell" in shown
    assert catalog.snapshot_id("silver.customer") == before
    assert state.read_bytes() == state_before
    assert sorted(p.name for p in runs_dir(project).iterdir()) == runs_before

    # write = True in the parameters cell: a tagged, recorded interactive run
    [parameters] = ["".join(c["source"]) for c in json.loads(notebook.read_text())["cells"]
                    if "parameters" in (c["metadata"].get("tags") or [])]
    shown = _run_cells(notebook, env, parameters.replace("write = False", "write = True"))
    after = catalog.snapshot_id("silver.customer")
    assert after != before
    run_id = props("silver.customer")[config.PROP_RUN_ID]
    assert run_id.startswith("interactive-") and f"recorded as run {run_id}" in shown, shown[-3000:]
    assert "silver.customer: wrote" in shown
    run = read_run(runs_dir(project) / run_id)
    assert (run.command, run.notebooks[0].name, run.notebooks[0].writes) == (
        "interactive", "silver/customer", {"silver.customer": after})
    history = _ridelake(project, env, "history", "silver.customer").stdout
    assert any(run_id in line and "silver/customer" in line for line in history.splitlines()), history

    # the next `make pipeline` keeps silver/customer and reruns only what reads its new snapshot
    _ridelake(project, env, "run")
    statuses = _statuses(project)
    ran = {key for key, status in statuses.items() if status == "succeeded"}
    assert ran == load_pipeline(project).downstream("silver/customer"), statuses
    assert statuses["silver/customer"] == "up-to-date"
    assert {s for key, s in statuses.items() if key not in ran} == {"up-to-date"}
    assert catalog.snapshot_id("silver.customer") == after

    # and rollback undoes the interactive write
    _ridelake(project, env, "rollback", run_id)
    assert catalog.snapshot_id("silver.customer") == before
