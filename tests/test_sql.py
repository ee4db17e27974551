"""``ridelake sql``: DuckDB SQL over the catalog's tables, checked against plain pandas.

The fast tests write small gold tables straight into a temporary warehouse; the slow one runs
the pipeline twice and reads the first run's snapshots back with ``--as-of``.
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
import pyarrow.parquet as pq
import pytest

from ridelake import cli
from ridelake.core.files import iso
from ridelake.core.manifest import NotebookEntry, RunManifest, runs_dir, update_latest
from ridelake.ops import sql
from ridelake.tables import catalog

ROOT = Path(__file__).resolve().parents[1]
NOW = pd.Timestamp("2025-01-01 00:00:00", tz="UTC")


def _daily(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["booking_date", "vehicle_type_name", "booking_status_name",
                                        "total_bookings", "total_revenue", "avg_booking_value"])
    frame["booking_date"] = pd.to_datetime(frame["booking_date"])
    frame["created_at"] = frame["updated_at"] = NOW
    return frame


DAILY = _daily([
    ("2024-03-01", "Auto", "Completed", 3, 900.0, 300.0),
    ("2024-03-01", "Bike", "Completed", 2, 250.0, 125.0),
    ("2024-03-01", "Auto", "Cancelled by Driver", 1, 0.0, None),
    ("2024-03-02", "Auto", "Completed", 4, 1000.0, 250.0),
    ("2024-03-02", "eBike", "Incomplete", 1, 80.0, 80.0),
])


def _customers() -> pd.DataFrame:
    frame = pd.DataFrame({
        "customer_id": ["CID1", "CID2", "CID3"], "total_bookings": [2, 1, 5],
        "total_spent": [500.0, 0.0, 1200.5], "avg_booking_value": [250.0, None, 240.1],
        "first_booking_date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-15"]),
        "last_booking_date": pd.to_datetime(["2024-03-01", "2024-02-01", "2024-04-15"]),
    })
    frame["lifetime_days"] = (frame["last_booking_date"] - frame["first_booking_date"]).dt.days.astype("int32")
    frame["created_at"] = frame["updated_at"] = NOW
    return frame


@pytest.fixture
def gold(warehouse, tmp_path, monkeypatch):
    """Two gold tables written into a temporary warehouse, and a project root for run records."""
    monkeypatch.setenv("RIDELAKE_HOME", str(tmp_path / "project"))
    (tmp_path / "project").mkdir()
    catalog.bootstrap()
    first = catalog.write_table("gold.daily_booking_summary", DAILY, replace_all=True)
    catalog.write_table("gold.customer_analytics", _customers(), replace_all=True)
    return {"first": first, "project": tmp_path / "project"}


def _record(project: Path, run_id: str, writes: dict[str, int], started: float, finished: float | None,
            warehouse: str | None = None, status: str = "succeeded") -> None:
    """A run record as the runner writes it (one notebook per written table)."""
    notebooks = [NotebookEntry(name=t.replace(".", "/"), key=t.replace(".", "/"), status="succeeded", attempts=1,
                               table=t, writes={t: s}) for t, s in writes.items()]
    manifest = RunManifest(run_id=run_id, status=status, started_at=iso(started),
                           finished_at=iso(finished) if finished else None, notebooks=notebooks,
                           warehouse=warehouse or os.environ["RIDELAKE_WAREHOUSE"])
    folder = runs_dir(project) / run_id
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(manifest.to_json()))
    update_latest(runs_dir(project), run_id)


def test_referenced_tables_are_the_catalogs_by_iceberg_name():
    known = ["gold.daily_booking_summary", "silver.booking", "bronze.booking", "silver.vehicle_type"]
    q = ("WITH b AS (SELECT * FROM silver.booking) SELECT v.name FROM b JOIN \"Silver\".\"Vehicle_Type\" v "
         "ON b.vehicle_type_id = v.vehicle_type_id WHERE b.booking_id IN (SELECT booking_id FROM bronze.booking)")
    assert sql.referenced_tables(q, known) == ["bronze.booking", "silver.booking", "silver.vehicle_type"]
    assert sql.referenced_tables("SELECT v.name FROM silver.booking b JOIN silver.vehicle_type v USING (vehicle_type_id)",
                                 known) == ["silver.booking", "silver.vehicle_type"]
    assert sql.referenced_tables("SUMMARIZE gold.daily_booking_summary", known) == ["gold.daily_booking_summary"]
    assert sql.referenced_tables("SELECT 1", known) == []
    with pytest.raises(sql.QueryError, match="no table gold.daily_booking_sumary. Did you mean gold.daily_booking_summary"):
        sql.referenced_tables("SELECT * FROM gold.daily_booking_sumary", known)
    with pytest.raises(sql.QueryError, match="cannot parse"):
        sql.referenced_tables("SELEC 1 FROM", known)


def test_referenced_columns_or_none_when_the_query_may_use_unnamed_ones():
    cols = sql.referenced_columns("SELECT vehicle_type_name, sum(total_revenue) AS r FROM gold.daily_booking_summary "
                                  "d JOIN gold.x USING (booking_date) WHERE d.total_bookings > 1 GROUP BY 1")
    assert {"vehicle_type_name", "total_revenue", "total_bookings", "booking_date"} <= cols
    assert "avg_booking_value" not in cols
    assert sql.referenced_columns("SELECT count(*) FROM gold.daily_booking_summary") == set()
    for q in ("SELECT * FROM gold.x", "SELECT d.* FROM gold.x d", "FROM gold.x", "SELECT COLUMNS('total_.*') FROM gold.x",
              "SELECT a FROM gold.x NATURAL JOIN gold.y", "PIVOT gold.x ON vehicle_type_name USING sum(total_revenue)"):
        assert sql.referenced_columns(q) is None, q


def test_a_gold_aggregate_matches_pandas(gold):
    result = sql.run_query("SELECT vehicle_type_name, sum(total_bookings) AS bookings, sum(total_revenue) AS revenue "
                           "FROM gold.daily_booking_summary WHERE booking_status_name = 'Completed' "
                           "GROUP BY vehicle_type_name ORDER BY vehicle_type_name")
    got = result.table.to_pandas()
    done = DAILY[DAILY["booking_status_name"] == "Completed"]
    expected = done.groupby("vehicle_type_name", as_index=False).agg(
        bookings=("total_bookings", "sum"), revenue=("total_revenue", "sum"))
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    # only the table and the columns the query names were read
    assert [r.identifier for r in result.tables] == ["gold.daily_booking_summary"]
    assert set(result.tables[0].columns) == {"vehicle_type_name", "total_bookings", "total_revenue",
                                             "booking_status_name"}


def test_a_join_of_two_gold_tables_and_select_star_match_pandas(gold):
    result = sql.run_query("SELECT d.*, c.customer_id FROM gold.daily_booking_summary d "
                           "CROSS JOIN gold.customer_analytics c WHERE c.total_spent > 1000 ORDER BY d.booking_date, "
                           "d.vehicle_type_name, d.booking_status_name")
    got = result.table.to_pandas()
    assert all(r.columns is None for r in result.tables)  # `d.*`: every column is read
    expected = DAILY.sort_values(["booking_date", "vehicle_type_name", "booking_status_name"]).reset_index(drop=True)
    expected["customer_id"] = "CID3"
    got["booking_date"] = pd.to_datetime(got["booking_date"])
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_count_star_reads_one_column_and_counts_every_row(gold):
    result = sql.run_query("SELECT count(*) AS n FROM gold.customer_analytics")
    assert result.table.to_pylist() == [{"n": 3}]
    assert len(result.tables[0].columns) == 1


def test_unknown_tables_and_sql_errors_are_clear(gold):
    with pytest.raises(sql.QueryError, match="no table gold.customer_analytic.*Did you mean gold.customer_analytics"):
        sql.run_query("SELECT * FROM gold.customer_analytic")
    with pytest.raises(sql.QueryError, match="(?s)daily_booking_summary.*<namespace>.<table>: bronze"):
        sql.run_query("SELECT * FROM daily_booking_summary")
    with pytest.raises(sql.QueryError, match="nope"):
        sql.run_query("SELECT nope FROM gold.customer_analytics")


def test_the_command_prints_a_table(gold, capsys):
    assert cli.main(["sql", "SELECT customer_id, total_spent FROM gold.customer_analytics ORDER BY total_spent DESC"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["customer_id", "total_spent"]
    assert [ln.split()[0] for ln in out[2:5]] == ["CID3", "CID1", "CID2"]
    assert out[-1] == "(3 rows)"
    assert cli.main(["sql", "SELECT * FROM gold.daily_booking_summary", "--max-rows", "2"]) == 0
    assert "(5 rows, first 2 shown" in capsys.readouterr().out


def test_out_csv_and_parquet(gold, tmp_path, capsys):
    q = "SELECT booking_date, vehicle_type_name, total_revenue FROM gold.daily_booking_summary ORDER BY 1, 2, 3"
    expected = DAILY.sort_values(["booking_date", "vehicle_type_name", "total_revenue"])[
        ["booking_date", "vehicle_type_name", "total_revenue"]].reset_index(drop=True)
    assert cli.main(["sql", q, "--out", str(tmp_path / "a.csv")]) == 0
    got = pd.read_csv(tmp_path / "a.csv", parse_dates=["booking_date"])
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert cli.main(["sql", q, "--out", str(tmp_path / "out" / "a.parquet")]) == 0
    got = pq.read_table(tmp_path / "out" / "a.parquet").to_pandas()
    got["booking_date"] = pd.to_datetime(got["booking_date"])
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert "wrote 5 rows" in capsys.readouterr().err
    assert cli.main(["sql", q, "--out", str(tmp_path / "a.xlsx")]) == 2
    assert "use .csv or .parquet" in capsys.readouterr().err


def test_as_of_reads_the_snapshots_a_run_wrote_and_those_current_at_its_end(gold):
    project, first = gold["project"], gold["first"]
    _record(project, "20250101T000000Z-aaaa", {"gold.daily_booking_summary": first.snapshot_id},
            time.time() - 5, time.time())
    time.sleep(0.05)
    later = _daily([("2024-04-01", "Auto", "Completed", 10, 10.0, 1.0)])
    catalog.write_table("gold.daily_booking_summary", later, replace_all=True)
    catalog.write_table("gold.customer_analytics", _customers().iloc[:1], replace_all=True)
    q = "SELECT count(*) AS n, sum(total_bookings) AS b FROM gold.daily_booking_summary"
    assert sql.run_query(q).table.to_pylist() == [{"n": 1, "b": 10}]
    as_of = sql.run_query(q, as_of="20250101T000000Z-aaaa")
    assert as_of.table.to_pylist() == [{"n": 5, "b": int(DAILY["total_bookings"].sum())}]
    assert as_of.tables[0].snapshot_id == first.snapshot_id and as_of.as_of == "20250101T000000Z-aaaa"
    assert sql.run_query(q, as_of="latest").as_of == "20250101T000000Z-aaaa"  # resolved, as the footer says
    # a table the run did not write: as it was when the run finished (3 rows, not today's 1)
    assert sql.run_query("SELECT count(*) AS n FROM gold.customer_analytics",
                         as_of="20250101T000000Z-aaaa").table.to_pylist() == [{"n": 3}]
    assert sql.run_query("SELECT count(*) AS n FROM gold.customer_analytics").table.to_pylist() == [{"n": 1}]


def test_as_of_a_run_before_a_table_existed_reads_no_rows(gold):
    _record(gold["project"], "20200101T000000Z-bbbb", {}, 1_577_836_800.0, 1_577_836_801.0)
    result = sql.run_query("SELECT count(*) AS n FROM gold.customer_analytics", as_of="20200101T000000Z-bbbb")
    assert result.table.to_pylist() == [{"n": 0}]


def test_as_of_refuses_a_run_of_another_warehouse_a_running_one_and_an_unknown_one(gold):
    project = gold["project"]
    _record(project, "20250101T000000Z-cccc", {}, time.time(), time.time(), warehouse="/elsewhere")
    with pytest.raises(sql.QueryError, match="ran on the warehouse /elsewhere.*--warehouse /elsewhere"):
        sql.run_query("SELECT 1 FROM gold.customer_analytics", as_of="20250101T000000Z-cccc")
    _record(project, "20250101T000000Z-dddd", {}, time.time(), None, status="running")
    with pytest.raises(sql.QueryError, match="still running"):
        sql.run_query("SELECT 1 FROM gold.customer_analytics", as_of="20250101T000000Z-dddd")
    with pytest.raises(sql.QueryError, match="--as-of nosuchrun"):
        sql.run_query("SELECT 1 FROM gold.customer_analytics", as_of="nosuchrun")


def test_as_of_says_when_the_runs_snapshot_was_expired(gold):
    _record(gold["project"], "20250101T000000Z-eeee", {"gold.customer_analytics": 123456789},
            time.time(), time.time())
    with pytest.raises(sql.QueryError, match="123456789 that run 20250101T000000Z-eeee wrote to gold.customer_analytics are gone"):
        sql.run_query("SELECT 1 FROM gold.customer_analytics", as_of="20250101T000000Z-eeee")


@pytest.mark.slow
def test_as_of_after_a_second_run_changed_the_tables(tmp_path):
    """Two real runs; ``--as-of`` the first gives the first run's rows, read back through the CLI."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "notebooks", project / "notebooks")
    shutil.copytree(ROOT / "params", project / "params")
    from ridelake.tables.generate import write_csv

    first_csv, second_csv = tmp_path / "first.csv", tmp_path / "second.csv"
    write_csv(first_csv, rows=600, seed=5)
    write_csv(second_csv, rows=300, seed=6)
    env = {**os.environ, "RIDELAKE_HOME": str(project), "RIDELAKE_WAREHOUSE": str(tmp_path / "warehouse")}
    env.pop("RIDELAKE_CATALOG_URI", None)

    def ridelake(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "ridelake", *args], cwd=project, env=env, capture_output=True,
                              text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc

    q = ("SELECT vehicle_type_name, sum(total_bookings) AS bookings FROM gold.daily_booking_summary "
         "GROUP BY 1 ORDER BY 1")
    ridelake("run", "-p", f"source_file={first_csv}", "-p", "extraction_date=2024-12-31")
    first_id = json.loads((project / "outputs/runs/latest/run.json").read_text())["run_id"]
    ridelake("sql", q, "--out", str(tmp_path / "first.csv.out.csv"))
    ridelake("incremental", "--source-file", str(second_csv), "--extraction-date", "2025-01-31")
    ridelake("sql", q, "--out", str(tmp_path / "now.csv"))
    ridelake("sql", q, "--as-of", first_id, "--out", str(tmp_path / "as_of.csv"))
    before = pd.read_csv(tmp_path / "first.csv.out.csv")
    now = pd.read_csv(tmp_path / "now.csv")
    as_of = pd.read_csv(tmp_path / "as_of.csv")
    pd.testing.assert_frame_equal(as_of, before)
    assert now["bookings"].sum() > before["bookings"].sum()
    # and against pandas on the first delivery itself: one winning row per booking, per vehicle type
    raw = pd.read_csv(first_csv, dtype=str).drop_duplicates("Booking ID", keep="last")
    expected = raw.groupby("Vehicle Type").size()
    assert as_of.set_index("vehicle_type_name")["bookings"].to_dict() == expected.to_dict()
