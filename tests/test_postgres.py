"""The whole pipeline against a real PostgreSQL catalog (tests/pg.py starts the server).

The same generated delivery runs once with the default SQLite catalog and once with
``RIDELAKE_CATALOG_URI=postgresql+psycopg://…`` (notebooks in parallel, each process with its own
connection pool); every table must hold the same rows. Several processes committing to one
table at once all land (pyiceberg retries a commit that lost the race). The catalog's password
must appear in no file the runs leave (run records, executed notebooks, logs, reports, the
warehouse's data and metadata files, snapshot properties) and in nothing the commands print.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ridelake.tables import catalog
from ridelake.tables.generate import write_csv
from ridelake.tables.schemas import TABLES

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

#: Columns that hold the time of the run that wrote the row: they differ between any two runs.
RUN_TIME_COLUMNS = ("created_at", "updated_at")


def _project(base: Path) -> Path:
    project = base / "project"
    shutil.copytree(ROOT / "notebooks", project / "notebooks")
    shutil.copytree(ROOT / "params", project / "params")
    return project


def _ridelake(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 1200) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ridelake", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _env(project: Path, warehouse: Path, catalog_uri: str | None) -> dict[str, str]:
    env = {**os.environ, "RIDELAKE_HOME": str(project), "RIDELAKE_WAREHOUSE": str(warehouse)}
    env.pop("RIDELAKE_CATALOG_URI", None)
    if catalog_uri:
        env["RIDELAKE_CATALOG_URI"] = catalog_uri
    return env


@pytest.fixture(scope="module")
def runs(tmp_path_factory, postgres):
    """One delivery (2,000 rows + 12 bad ones) through the runner on SQLite and on PostgreSQL."""
    tmp = tmp_path_factory.mktemp("pg")
    csv = tmp / "delivery" / "ncr_ride_bookings.csv"
    write_csv(csv, rows=2000, seed=23, bad_rows=12)
    uri = postgres.create_database("pipeline")
    out = {"password": postgres.password, "uri": uri, "csv": csv}
    for name, catalog_uri in (("sqlite", None), ("postgres", uri)):
        project = _project(tmp / name)
        warehouse = tmp / name / "warehouse"
        env = _env(project, warehouse, catalog_uri)
        proc = _ridelake(["run", "-p", f"source_file={csv}", "-p", "extraction_date=2024-12-31"], project, env)
        out[name] = {"project": project, "warehouse": warehouse, "env": env, "proc": proc}
    return out


def _read_all(run: dict) -> dict[str, pd.DataFrame]:
    with pytest.MonkeyPatch.context() as mp:
        for var in ("RIDELAKE_WAREHOUSE", "RIDELAKE_CATALOG_URI"):
            if var in run["env"]:
                mp.setenv(var, run["env"][var])
            else:
                mp.delenv(var, raising=False)
        mp.delenv("RIDELAKE_RECEIPT_FILE", raising=False)
        return {table: catalog.read_table(table) for table in TABLES}


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    rows = frame.drop(columns=[c for c in RUN_TIME_COLUMNS if c in frame.columns])
    return rows.sort_values(list(rows.columns), na_position="first").reset_index(drop=True)


def test_both_runs_succeed(runs):
    for name in ("sqlite", "postgres"):
        proc = runs[name]["proc"]
        assert proc.returncode == 0, f"{name}: " + proc.stdout[-3000:] + proc.stderr[-3000:]
        record = json.loads((runs[name]["project"] / "outputs/runs/latest/run.json").read_text())
        assert record["status"] == "succeeded"
        assert len(record["notebooks"]) == 22 and record["peak_parallelism"] >= 2, record.get("peak_parallelism")


def test_the_postgres_run_used_the_server(runs, postgres):
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=postgres.port, user=postgres.user, password=postgres.password,
                         dbname="pipeline") as conn:
        names = {f"{ns}.{t}" for ns, t in conn.execute(
            "SELECT table_namespace, table_name FROM iceberg_tables WHERE catalog_name = 'ridelake'")}
    assert names == set(TABLES)
    assert not (runs["postgres"]["warehouse"] / "catalog.db").exists()
    assert (runs["sqlite"]["warehouse"] / "catalog.db").is_file()


def test_every_table_holds_the_same_rows_as_on_sqlite(runs):
    on_sqlite, on_postgres = _read_all(runs["sqlite"]), _read_all(runs["postgres"])
    for table in TABLES:
        a, b = on_sqlite[table], on_postgres[table]
        assert len(a) > 0, table
        assert list(a.columns) == list(b.columns), table
        for col in RUN_TIME_COLUMNS:
            if col in b.columns:
                assert b[col].notna().all(), (table, col)
        pd.testing.assert_frame_equal(_comparable(a), _comparable(b), check_exact=True, obj=table)


def test_the_record_and_report_show_the_catalog_masked(runs, postgres):
    project = runs["postgres"]["project"]
    record = json.loads((project / "outputs/runs/latest/run.json").read_text())
    shown = f"postgresql+psycopg://{postgres.user}:***@127.0.0.1:{postgres.port}/pipeline"
    assert record["catalog_uri"] == shown
    index = (project / "outputs/runs/latest/index.html").read_text()
    assert shown in index
    assert "catalog_uri" not in json.loads((runs["sqlite"]["project"] / "outputs/runs/latest/run.json").read_text())


def test_the_password_is_in_no_file_and_no_output(runs):
    """grep every byte under outputs/ and the warehouse, after the commands that print settings."""
    pg_run = runs["postgres"]
    project, env, password = pg_run["project"], pg_run["env"], runs["password"].encode()
    printed = [pg_run["proc"]]
    printed.append(_ridelake(["init"], project, env, timeout=300))
    printed.append(_ridelake(["history", "gold.daily_booking_summary"], project, env, timeout=300))
    printed.append(_ridelake(["report"], project, env, timeout=300))
    printed.append(_ridelake(["show"], project, env, timeout=300))
    printed.append(_ridelake(["sql", "SELECT count(*) FROM gold.customer_analytics", "--as-of", "latest"], project, env,
                             timeout=300))
    for proc in printed:
        assert proc.returncode == 0, proc.args[3:]
        assert runs["password"] not in proc.stdout + proc.stderr, proc.args[3:]
    assert "***@127.0.0.1" in printed[1].stdout  # `init` names the catalog, masked
    files = [p for folder in (project / "outputs", pg_run["warehouse"]) for p in folder.rglob("*") if p.is_file()]
    kinds = {p.suffix for p in files}
    assert {".json", ".ipynb", ".html", ".parquet", ".avro"} <= kinds, kinds
    leaked = [str(p) for p in files if password in p.read_bytes()]
    assert leaked == []


def test_snapshot_properties_carry_no_catalog_settings(runs):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RIDELAKE_WAREHOUSE", runs["postgres"]["env"]["RIDELAKE_WAREHOUSE"])
        mp.setenv("RIDELAKE_CATALOG_URI", runs["uri"])
        for table in TABLES:
            for snap in catalog.load_table(table).snapshots():
                props = json.dumps(snap.summary.additional_properties if snap.summary else {})
                assert runs["password"] not in props and "postgresql" not in props, table


def test_a_wrong_password_is_a_clear_error_without_it(runs, postgres, tmp_path):
    wrong = "wrong-" + postgres.password[::-1]
    uri = runs["uri"].replace(postgres.password, wrong)
    env = _env(runs["postgres"]["project"], tmp_path / "wh", uri)
    proc = _ridelake(["init"], runs["postgres"]["project"], env, timeout=300)
    assert proc.returncode == 2
    assert f"cannot open the catalog postgresql+psycopg://{postgres.user}:***@127.0.0.1" in proc.stderr
    assert "password authentication failed" in proc.stderr
    assert wrong not in proc.stdout + proc.stderr and postgres.password not in proc.stdout + proc.stderr


_WRITER = """
import sys, time
import pandas as pd
from ridelake.tables import catalog

start, who, commits = float(sys.argv[1]), sys.argv[2], int(sys.argv[3])
time.sleep(max(0.0, start - time.time()))  # every writer commits at the same moments
for i in range(commits):
    frame = pd.DataFrame({"source_file": [f"{who}.csv"], "source_row": [i], "extraction_date": [pd.Timestamp("2024-12-31")],
                          "extraction_month": ["2024-12"], "booking_id": [f"{who}-{i}"], "reason": ["test"],
                          "raw_line": ["x"]})
    catalog.write_table("bronze.rejected_row", frame)
"""


def test_concurrent_commits_to_one_table_all_land(postgres, tmp_path):
    """Three processes, five appends each, to the same table at the same moments: 15 rows, 15
    snapshots in one line of ancestry (each loser of a race retried on top of the winner)."""
    uri = postgres.create_database("concurrent")
    env = {**os.environ, "RIDELAKE_WAREHOUSE": str(tmp_path / "warehouse"), "RIDELAKE_CATALOG_URI": uri,
           "RIDELAKE_HOME": str(ROOT)}
    for var in ("RIDELAKE_RUN_ID", "RIDELAKE_NOTEBOOK", "RIDELAKE_RECEIPT_FILE", "RIDELAKE_READS", "RIDELAKE_WRITES"):
        env.pop(var, None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RIDELAKE_WAREHOUSE", env["RIDELAKE_WAREHOUSE"])
        mp.setenv("RIDELAKE_CATALOG_URI", uri)
        catalog.bootstrap(["bronze.rejected_row"])
        start = time.time() + 8  # after the three interpreters have imported pyiceberg
        procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(start), f"w{n}", "5"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(3)]
        retries = 0
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-3000:]
            retries += err.count("Commit failed due to a concurrent update, retrying")
        frame = catalog.read_table("bronze.rejected_row")
        table = catalog.load_table("bronze.rejected_row")
    assert sorted(frame["booking_id"]) == sorted(f"w{n}-{i}" for n in range(3) for i in range(5))
    snaps = table.snapshots()
    assert len(snaps) == 15
    by_id = {s.snapshot_id: s for s in snaps}
    chain, snap = [], table.current_snapshot()
    while snap is not None:
        chain.append(snap.snapshot_id)
        snap = by_id.get(snap.parent_snapshot_id) if snap.parent_snapshot_id else None
    assert len(chain) == 15  # no commit was lost by overwriting another's metadata pointer
    assert retries >= 1  # the writers did collide (and pyiceberg retried on the winner's snapshot)


def test_sql_reads_the_postgres_catalog_as_the_sqlite_one(runs):
    q = ("SELECT vehicle_type_name, booking_status_name, sum(total_bookings) AS bookings, round(sum(total_revenue), 2) "
         "AS revenue FROM gold.daily_booking_summary GROUP BY ALL ORDER BY ALL")
    out = {}
    for name in ("sqlite", "postgres"):
        run = runs[name]
        proc = _ridelake(["sql", q, "--max-rows", "0"], run["project"], run["env"], timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[name] = proc.stdout
    assert out["sqlite"] == out["postgres"] and "Completed" in out["postgres"]
