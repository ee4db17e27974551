"""An object-store warehouse: ``RIDELAKE_WAREHOUSE=s3://bucket/prefix`` with the catalog on PostgreSQL.

Everything talks to 127.0.0.1 only: the S3 endpoint is moto's standalone server (tests/s3.py,
session fixture ``s3_server``), the catalog the PostgreSQL server of tests/pg.py.

- fast: ``ridelake.tables.storage`` on S3 and on a folder; the staging hand-off (prepare ->
  bronze) on S3; an object-store warehouse with a SQLite catalog, or none, is refused;
- slow (notebooks): the whole pipeline on a generated sample with the warehouse on S3 and the
  catalog on PostgreSQL gives the same rows in every table as on SQLite and a local folder;
  nothing of it is kept on the machine that ran it (no catalog file, lock file or state file), the
  bronze notebooks read the staging from S3, the credentials are in no record and no object; a
  second working copy finds every notebook up-to-date (the state is in the catalog database);
  two runs from two working copies exclude each other (exit 3 naming the holder; ``--wait``
  waits for it); ``maintain`` deletes the unreferenced files from S3 and the tables read the same.
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

from ridelake.errors import ConfigError
from ridelake.tables import catalog, config, coordination, source, storage
from ridelake.tables.generate import write_csv
from ridelake.tables.schemas import TABLES

from conftest import completed_row, write_csv as write_rows

ROOT = Path(__file__).resolve().parents[1]

#: Columns that hold the time of the run that wrote the row: they differ between any two runs.
RUN_TIME_COLUMNS = ("created_at", "updated_at")
_RUN_VARS = ("RIDELAKE_RUN_ID", "RIDELAKE_NOTEBOOK", "RIDELAKE_PARAMS_HASH", "RIDELAKE_RECEIPT_FILE",
             "RIDELAKE_READS", "RIDELAKE_WRITES")


@pytest.fixture(autouse=True)
def _only_the_test_server(s3_server, monkeypatch):
    """Every test of this module (and what it starts) talks to the test server, never to Amazon:
    the endpoint, made-up credentials, no instance metadata."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)


def _use_s3(monkeypatch: pytest.MonkeyPatch, server, prefix: str, catalog_uri: str | None = None) -> str:
    """Point this process at a warehouse on the test server (and a catalog)."""
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    warehouse = server.url(prefix)
    monkeypatch.setenv("RIDELAKE_WAREHOUSE", warehouse)
    if catalog_uri:
        monkeypatch.setenv("RIDELAKE_CATALOG_URI", catalog_uri)
    else:
        monkeypatch.delenv("RIDELAKE_CATALOG_URI", raising=False)
    for var in _RUN_VARS:
        monkeypatch.delenv(var, raising=False)
    return warehouse


# -- storage -------------------------------------------------------------------------------------


def test_storage_reads_writes_lists_moves_and_deletes_on_s3(s3_server, monkeypatch):
    base = _use_s3(monkeypatch, s3_server, "storage")
    record = storage.join(base, "a", "record.json")
    assert storage.read_text(record) is None and not storage.exists(record)
    storage.write_text(record, '{"v": 1}')
    storage.write_text(record, '{"v": 2}')  # replaced
    assert storage.read_text(record) == '{"v": 2}' and storage.is_file(record) and not storage.is_dir(record)
    storage.write_text(storage.join(base, "a", "sub", "x.txt"), "xx")
    assert storage.is_dir(storage.join(base, "a")) and not storage.exists(storage.join(base, "b"))
    files = {f.location: f for f in storage.list_files(base)}
    assert sorted(files) == [f"{base}/a/record.json", f"{base}/a/sub/x.txt"]
    assert files[f"{base}/a/sub/x.txt"].size == 2 and abs(files[f"{base}/a/record.json"].mtime - time.time()) < 120
    assert sorted(storage.list_children(storage.join(base, "a"))) == [("record.json", False), ("sub", True)]
    storage.move_dir(storage.join(base, "a"), storage.join(base, "moved"))
    assert sorted(f.location for f in storage.list_files(base)) == [f"{base}/moved/record.json",
                                                                  f"{base}/moved/sub/x.txt"]
    assert storage.list_children(base) == [("moved", True)]  # no marker of the old folder left
    assert storage.delete_file(f"{base}/moved/record.json") and not storage.delete_file(f"{base}/moved/record.json")
    storage.write_text(f"{base}/moved/keep.txt", "k")
    assert storage.delete_file(f"{base}/moved/sub/x.txt")
    assert sorted(storage.list_children(f"{base}/moved")) == [("keep.txt", False), ("sub", True)]  # pyarrow's marker
    storage.prune_empty_dirs(base)
    assert storage.list_children(base) == [("moved", True)]
    assert storage.list_children(f"{base}/moved") == [("keep.txt", False)]
    storage.delete_dir(storage.join(base, "moved"))
    storage.delete_dir(storage.join(base, "never-there"))
    assert storage.list_files(base) == []


def test_storage_on_a_local_folder_does_the_same(tmp_path):
    base = str(tmp_path / "wh")
    storage.write_text(storage.join(base, "a", "r.json"), "1")
    assert storage.read_text(storage.join(base, "a", "r.json")) == "1" and storage.is_dir(storage.join(base, "a"))
    storage.move_dir(storage.join(base, "a"), storage.join(base, "b"))
    assert [f.location for f in storage.list_files(base)] == [str(tmp_path / "wh" / "b" / "r.json")]
    assert [p.name for p in (tmp_path / "wh" / "b").iterdir()] == ["r.json"]  # no temporary left


def test_settings_reach_pyiceberg_without_credentials(monkeypatch):
    monkeypatch.setenv("RIDELAKE_S3_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "never-a-property")
    props = storage.catalog_properties("s3://bucket/wh")
    assert props == {"s3.endpoint": "http://127.0.0.1:9", "s3.region": "eu-west-3"}
    monkeypatch.delenv("RIDELAKE_S3_ENDPOINT")
    assert storage.catalog_properties("s3://bucket/wh")["s3.endpoint"] == "http://127.0.0.1:8"
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert storage.catalog_properties("s3://bucket/wh") == {"s3.region": "us-east-1"}  # never looked up
    assert storage.catalog_properties("/some/folder") == {}
    assert storage.normalize("S3://bucket//wh/./x/") == "s3://bucket/wh/x"
    with pytest.raises(ConfigError, match="other than S3"):
        storage.filesystem("gs://bucket/wh")


def test_an_object_store_warehouse_needs_a_server_catalog(tmp_path):
    env = {**os.environ, "RIDELAKE_HOME": str(ROOT), "RIDELAKE_WAREHOUSE": "s3://bucket/wh",
           "RIDELAKE_CATALOG_URI": f"sqlite:///{tmp_path / 'catalog.db'}"}
    proc = subprocess.run([sys.executable, "-m", "ridelake", "init"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2
    assert "the warehouse s3://bucket/wh is on an object store but the catalog is a SQLite file" in proc.stderr
    assert "postgresql+psycopg://" in proc.stderr and not (tmp_path / "catalog.db").exists()
    env.pop("RIDELAKE_CATALOG_URI")
    delivery = write_rows(tmp_path / "d.csv", [completed_row("CNR1")])
    proc = subprocess.run([sys.executable, "-m", "ridelake", "run", "-p", f"source_file={delivery}"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "the warehouse s3://bucket/wh is not a local folder: set RIDELAKE_CATALOG_URI" in proc.stderr
    assert not (ROOT / "outputs" / "locks").exists() or not any((ROOT / "outputs" / "locks").iterdir())


# -- staging -------------------------------------------------------------------------------------


def test_staging_on_s3_round_trip(s3_server, postgres, monkeypatch, tmp_path):
    """prepare writes the month files to S3, stage publishes them under _staging with the record,
    a bronze notebook's load reads them back (a one-month load only its month), a new staging
    replaces the old one, and moved_bookings reads the staged keys against silver.booking."""
    import datetime as dt

    uri = postgres.create_database("staging")
    wh = _use_s3(monkeypatch, s3_server, "staging", uri)
    path = write_rows(tmp_path / "d.csv", [completed_row("CNR1", "2024-03-05"), completed_row("CNR2", "2024-04-01"),
                                           completed_row("CNR3", "2024-04-02")])
    params = config.run_parameters(str(path), "2024-12-31")
    _, prepared = source.prepare(params)
    assert prepared.staging.startswith(f"{wh}/_staging/.d.csv__2024-12-31__all.")
    staged = source.stage(params, prepared)
    assert isinstance(staged, str) and staged.startswith(f"{wh}/_staging/d.csv__2024-12-31__all.")
    names = sorted(f.location[len(wh) + 1:] for f in storage.list_files(wh))
    folder = staged[len(wh) + 1:]
    assert names == sorted(["_staging/d.csv__2024-12-31__all.json", f"{folder}/2024-03.parquet",
                            f"{folder}/2024-04.parquet"])  # and no temporary folder left
    record = json.loads(storage.read_text(f"{wh}/_staging/d.csv__2024-12-31__all.json"))
    assert record["month_rows"] == {"2024-03": 1, "2024-04": 2} and record["data"] == staged.rsplit("/", 1)[1]
    delivery = source.load_delivery(params)
    assert delivery.staged and delivery.rows["booking_id"].tolist() == ["CNR1", "CNR2", "CNR3"]
    april = source.load_delivery(config.run_parameters(str(path), "2024-12-31", "2024-04"))
    assert april.staged and april.rows["booking_id"].tolist() == ["CNR2", "CNR3"]
    assert source.staged_months(path, "2024-12-31") == ["2024-03", "2024-04"]

    again = source.stage(params, source.prepare(params)[1])  # the old staged folder goes
    folders = {f.location.rsplit("/", 1)[0] for f in storage.list_files(f"{wh}/_staging") if f.location.endswith(".parquet")}
    assert folders == {again}

    now = pd.Timestamp("2024-12-31", tz="UTC")
    catalog.bootstrap(["silver.booking"])
    catalog.write_table("silver.booking", pd.DataFrame({
        "booking_id": ["CNR1", "CNR2"], "customer_id": ["C", "C"], "vehicle_type_id": [1, 1],
        "pickup_location_id": [1, 1], "drop_location_id": [2, 2], "booking_status_id": [1, 1],
        "payment_method_id": [1, 1], "booking_value": [1.0, 2.0],
        "booking_date": pd.to_datetime(["2024-03-05", "2024-02-01"]), "booking_time": [dt.time(10)] * 2,
        "extraction_month": ["2024-03", "2024-02"], "created_at": now, "updated_at": now,
    }), replace_all=True)
    assert source.moved_bookings(path, "2024-12-31") == 1  # CNR2 moves from February to April
    assert any(f.location.startswith(f"{wh}/silver/booking/data/") for f in storage.list_files(wh))


# -- the pipeline (notebooks) --------------------------------------------------------------------


def _project(base: Path) -> Path:
    project = base / "project"
    shutil.copytree(ROOT / "notebooks", project / "notebooks")
    shutil.copytree(ROOT / "params", project / "params")
    return project


def _env(project: Path, warehouse: str, catalog_uri: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "RIDELAKE_HOME": str(project), "RIDELAKE_WAREHOUSE": warehouse}
    for var in ("RIDELAKE_CATALOG_URI", *_RUN_VARS):
        env.pop(var, None)
    if catalog_uri:
        env["RIDELAKE_CATALOG_URI"] = catalog_uri
    env.update(extra or {})
    return env


def _ridelake(args: list[str], run: dict, timeout: float = 1500) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ridelake", *args], cwd=run["project"], env=run["env"],
                          capture_output=True, text=True, timeout=timeout)


def _start(args: list[str], run: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ridelake", *args], cwd=run["project"], env=run["env"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, postgres, s3_server):
    """One delivery (2,000 rows + 12 bad ones) through the runner: on SQLite and a local folder, and
    from working copy ``a`` with the warehouse on S3 and the catalog on PostgreSQL; working copy
    ``b`` is a second checkout pointed at the same warehouse and catalog (not run yet)."""
    tmp = tmp_path_factory.mktemp("s3")
    csv = tmp / "delivery" / "ncr_ride_bookings.csv"
    write_csv(csv, rows=2000, seed=23, bad_rows=12)
    uri = postgres.create_database("s3pipeline")
    warehouse = s3_server.url("pipeline")
    args = ["run", "-p", f"source_file={csv}", "-p", "extraction_date=2024-12-31"]
    out = {"uri": uri, "warehouse": warehouse, "args": args, "csv": csv}
    local = tmp / "local"
    out["local"] = {"project": _project(local)}
    out["local"]["env"] = _env(out["local"]["project"], str(local / "warehouse"), None)
    for name in ("a", "b"):
        project = _project(tmp / name)
        out[name] = {"project": project, "env": _env(project, warehouse, uri, s3_server.env())}
    for name in ("local", "a"):
        out[name]["proc"] = _ridelake(args, out[name])
    return out


def _settings(run: dict) -> list[str]:
    """The names of the settings a run's environment has or lacks (warehouse, catalog, S3)."""
    names = {"RIDELAKE_WAREHOUSE", "RIDELAKE_CATALOG_URI", "RIDELAKE_S3_ENDPOINT", *_RUN_VARS}
    return sorted(names | {k for k in run["env"] if k.startswith("AWS_")})


def _read_all(run: dict) -> dict[str, pd.DataFrame]:
    with pytest.MonkeyPatch.context() as mp:
        for var in _settings(run):
            if var in run["env"]:
                mp.setenv(var, run["env"][var])
            else:
                mp.delenv(var, raising=False)
        return {table: catalog.read_table(table) for table in TABLES}


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    rows = frame.drop(columns=[c for c in RUN_TIME_COLUMNS if c in frame.columns])
    return rows.sort_values(list(rows.columns), na_position="first").reset_index(drop=True)


def _record(run: dict) -> dict:
    return json.loads((run["project"] / "outputs/runs/latest/run.json").read_text())


@pytest.mark.slow
def test_both_runs_succeed(runs):
    for name in ("local", "a"):
        proc = runs[name]["proc"]
        assert proc.returncode == 0, f"{name}: " + proc.stdout[-3000:] + proc.stderr[-3000:]
        record = _record(runs[name])
        assert record["status"] == "succeeded" and len(record["notebooks"]) == 22
    assert _record(runs["a"])["warehouse"] == runs["warehouse"]


@pytest.mark.slow
def test_every_table_holds_the_same_rows_as_on_sqlite_and_a_folder(runs):
    local, remote = _read_all(runs["local"]), _read_all(runs["a"])
    for table in TABLES:
        a, b = local[table], remote[table]
        assert len(a) > 0, table
        assert list(a.columns) == list(b.columns), table
        pd.testing.assert_frame_equal(_comparable(a), _comparable(b), check_exact=True, obj=table)


@pytest.mark.slow
def test_the_warehouse_staging_lock_and_state_are_shared_not_local(runs, s3_server):
    a = runs["a"]
    wh = runs["warehouse"]
    files = [f.location[len(wh) + 1:] for f in storage.list_files(wh)]
    assert any(f.startswith("gold/daily_booking_summary/data/") and f.endswith(".parquet") for f in files)
    staged = [f for f in files if f.startswith("_staging/ncr_ride_bookings.csv__2024-12-31__all.")]
    assert any(f.endswith(".parquet") for f in staged), files
    assert "_staging/ncr_ride_bookings.csv__2024-12-31__all.json" in files
    executed = (a["project"] / "outputs/runs/latest/bronze/booking.ipynb").read_text()
    assert "staged by bronze/prepare" in executed  # the bronze notebook read the staging from S3
    for local in ("catalog.db", "outputs/locks", "outputs/state", "warehouse"):
        assert not (a["project"] / local).exists(), local
    assert coordination.lock_holder(runs["uri"], wh) is None  # released
    state = coordination.CatalogStateStore(runs["uri"], wh)
    assert len(state.entries) == 22 and {e["run_id"] for e in state.entries.values()} == {_record(a)["run_id"]}


@pytest.mark.slow
def test_no_credential_is_in_a_record_or_an_object(runs, postgres, s3_server):
    a = runs["a"]
    secrets_ = [s3_server.secret_key.encode(), postgres.password.encode()]
    files = [p for p in (a["project"] / "outputs").rglob("*") if p.is_file()]
    assert {".json", ".ipynb", ".html"} <= {p.suffix for p in files}
    assert [str(p) for p in files if any(s in p.read_bytes() for s in secrets_)] == []
    fs = s3_server.filesystem()
    objects = [f.location for f in storage.list_files(runs["warehouse"])]
    assert len(objects) > 50
    for location in objects:
        with fs.open_input_stream(location[len("s3://"):]) as stream:
            data = stream.read()
        assert not any(s in data for s in secrets_), location
    assert not any(s.decode() in runs["a"]["proc"].stdout + runs["a"]["proc"].stderr for s in secrets_)


@pytest.mark.slow
def test_a_second_working_copy_finds_everything_up_to_date(runs):
    proc = _ridelake(runs["args"], runs["b"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = _record(runs["b"])
    assert {n["status"] for n in record["notebooks"]} == {"up-to-date"}, [n["status"] for n in record["notebooks"]]
    assert {n["up_to_date_since"] for n in record["notebooks"]} == {_record(runs["a"])["run_id"]}


@pytest.mark.slow
def test_runs_from_two_working_copies_exclude_each_other(runs):
    """Copy a runs (forced: every notebook executes); copy b is refused while it holds the lock,
    naming it; b with --wait runs once a has finished."""
    a, b, uri, wh = runs["a"], runs["b"], runs["uri"], runs["warehouse"]
    first = _start([*runs["args"], "--force"], a)
    try:
        holder, deadline = None, time.monotonic() + 300
        while holder is None and time.monotonic() < deadline and first.poll() is None:
            holder = coordination.lock_holder(uri, wh)
            time.sleep(0.1)
        assert holder is not None, first.communicate()[1][-3000:]
        refused = _ridelake(runs["args"], b, timeout=300)
        assert refused.returncode == 3, refused.stderr[-3000:]
        assert f"the warehouse {wh} is in use by run {holder['run_id']} (pid {first.pid} on " in refused.stderr
        assert "DELETE FROM ridelake_locks" in refused.stderr
        waited = _ridelake([*runs["args"], "gold/daily_booking_summary", "--wait", "1200"], b, timeout=1500)
        out, err = first.communicate(timeout=1500)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err[-3000:]
    assert waited.returncode == 0, waited.stderr[-3000:]
    started = _record(b)["started_at"]
    assert started >= json.loads((a["project"] / "outputs/runs" / holder["run_id"] / "run.json").read_text())["finished_at"]
    assert coordination.lock_holder(uri, wh) is None


@pytest.mark.slow
def test_maintain_deletes_unreferenced_files_from_s3_and_the_tables_read_the_same(runs, s3_server):
    a, wh = runs["a"], runs["warehouse"]
    rerun = _ridelake([*runs["args"], "silver/vehicle_type", "silver/payment_method"], a)  # superseded files
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    before_files = {f.location for f in storage.list_files(wh)}
    before = _read_all(a)
    dry = _ridelake(["maintain", "--older-than", "0s", "--grace", "0s", "--dry-run"], a, timeout=600)
    assert dry.returncode == 0, dry.stderr[-3000:]
    proc = _ridelake(["maintain", "--older-than", "0s", "--grace", "0s"], a, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"warehouse {wh}" in proc.stdout
    after_files = {f.location for f in storage.list_files(wh)}
    deleted = before_files - after_files
    added = after_files - before_files
    assert added and all(f.endswith(".metadata.json") for f in added)  # the expiry commits' metadata
    assert any("/data/" in f and f.endswith(".parquet") for f in deleted), sorted(deleted)[:5]
    assert any(f.endswith(".metadata.json") for f in deleted) and any(f.endswith(".avro") for f in deleted)
    assert not any(f.startswith(f"{wh}/_staging/") for f in after_files)  # older than the cutoff
    assert f"would delete {len(deleted)} file(s), would free" in dry.stdout.splitlines()[-1 - _warnings(dry)]
    assert f"deleted {len(deleted)} file(s), freed" in proc.stdout
    after = _read_all(a)
    for table in TABLES:
        pd.testing.assert_frame_equal(_comparable(before[table]), _comparable(after[table]), check_exact=True,
                                      obj=table)
    with pytest.MonkeyPatch.context() as mp:
        for var in _settings(a):
            if var in a["env"]:
                mp.setenv(var, a["env"][var])
        for table in TABLES:
            assert len(catalog.load_table(table).snapshots()) == 1, table
    again = _ridelake(["maintain", "--older-than", "0s", "--grace", "0s"], a, timeout=600)
    assert again.returncode == 0 and "deleted 0 file(s), freed" in again.stdout


def _warnings(proc: subprocess.CompletedProcess) -> int:
    """How many lines after maintain's summary line (kept-young note and warnings)."""
    lines = proc.stdout.rstrip("\n").splitlines()
    return next(i for i, line in enumerate(reversed(lines)) if "file(s)," in line)
