"""End to end: the runner on a generated sample, and gold recomputed independently from the CSV.

The independent side reads the CSV with plain pandas and follows docs/contract.md §4-§5 directly
(winner rule, metrics); it shares no code with the pipeline's transforms.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ridelake.tables import catalog
from ridelake.tables.generate import write_csv

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    """Run every notebook through the runner on a generated 2,000-row file (+ 12 bad rows)."""
    tmp = tmp_path_factory.mktemp("e2e")
    project = tmp / "project"
    shutil.copytree(ROOT / "notebooks", project / "notebooks")
    shutil.copytree(ROOT / "params", project / "params")
    csv = project / "data" / "ncr_ride_bookings.csv"
    summary = write_csv(csv, rows=2000, seed=11, bad_rows=12)
    env = {**os.environ, "RIDELAKE_HOME": str(project), "RIDELAKE_WAREHOUSE": str(tmp / "warehouse")}
    env.pop("RIDELAKE_CATALOG_URI", None)
    proc = subprocess.run([sys.executable, "-m", "ridelake", "run", "-p", "extraction_date=2024-12-31"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=1200)
    return {"project": project, "csv": csv, "env": env, "proc": proc, "summary": summary,
            "warehouse": tmp / "warehouse"}


def _read(run, table: str) -> pd.DataFrame:
    """Read a table of the run's warehouse in this process."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RIDELAKE_WAREHOUSE", str(run["warehouse"]))
        mp.delenv("RIDELAKE_RECEIPT_FILE", raising=False)
        return catalog.read_table(table)


def _truth(run) -> pd.DataFrame:
    """The winning bookings, straight from the CSV with plain pandas (every physical line a row:
    the bad rows may hold a byte that is not UTF-8 or an unclosed quote)."""
    lines = run["csv"].read_bytes().decode("utf-8", "replace").split("\r\n")
    header = lines[0].split(",")
    rejected = set(_read(run, "bronze.rejected_row")["source_row"])
    kept = [(i, next(csv.reader([line]))) for i, line in enumerate(lines[1:-1], start=1) if i not in rejected]
    raw = pd.DataFrame([f for _, f in kept], columns=header)
    raw["source_row"] = [i for i, _ in kept]
    raw = raw.replace({"null": np.nan, "": np.nan})
    raw["booking_id"] = raw["Booking ID"].str.strip('"')
    raw["customer_id"] = raw["Customer ID"].str.strip('"')
    raw["value"] = raw["Booking Value"].astype(float)
    raw["date"] = pd.to_datetime(raw["Date"])
    # one file, one extraction date: the winner is the row with the greatest source_row
    return raw.sort_values("source_row").groupby("booking_id").tail(1)


def test_run_succeeds_and_keeps_the_record(pipeline_run):
    proc = pipeline_run["proc"]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    latest = pipeline_run["project"] / "outputs" / "runs" / "latest"
    manifest = json.loads((latest / "run.json").read_text())
    assert manifest["status"] == "succeeded"
    assert len(manifest["notebooks"]) == 22
    for nb in manifest["notebooks"]:
        assert nb["status"] == "succeeded" and nb["attempts"] == 1, nb
        layer, table = nb["name"].split("/")
        assert (latest / layer / f"{table}.ipynb").is_file()
    by_name = {nb["name"]: nb for nb in manifest["notebooks"]}
    assert by_name["bronze/booking"]["rows_written"] == 2000
    assert by_name["bronze/location"]["rows_written"] == 4000
    assert by_name["bronze/prepare"]["rows_written"] == 12


def test_rejected_rows_reconcile(pipeline_run):
    rejected = _read(pipeline_run, "bronze.rejected_row")
    assert len(rejected) == 12 and rejected["reason"].str.len().gt(0).all()
    assert len(_read(pipeline_run, "bronze.booking")) + len(rejected) == 2012


def test_silver_counts_agree(pipeline_run):
    truth = _truth(pipeline_run)
    booking = _read(pipeline_run, "silver.booking")
    assert len(booking) == len(truth) == truth["booking_id"].nunique()
    status = truth["Booking Status"].value_counts()
    assert len(_read(pipeline_run, "silver.ride")) == status["Completed"]
    assert len(_read(pipeline_run, "silver.incompleted_ride")) == status["Incomplete"]
    assert len(_read(pipeline_run, "silver.cancelled_ride")) == status["Cancelled by Customer"] + status[
        "Cancelled by Driver"]
    assert _read(pipeline_run, "silver.customer")["total_bookings"].sum() == len(booking)
    assert sorted(_read(pipeline_run, "silver.location")["name"]) == sorted(
        set(truth["Pickup Location"]) | set(truth["Drop Location"]))
    assert _read(pipeline_run, "silver.vehicle_type")["vehicle_type_id"].tolist() == list(
        range(1, truth["Vehicle Type"].nunique() + 1))


def test_gold_daily_booking_summary_matches_plain_pandas(pipeline_run):
    truth = _truth(pipeline_run)
    expected = truth.groupby(["date", "Vehicle Type", "Booking Status"]).agg(
        total_bookings=("booking_id", "size"), total_revenue=("value", lambda v: float(v.sum())),
        avg_booking_value=("value", "mean")).reset_index()
    expected.columns = ["booking_date", "vehicle_type_name", "booking_status_name", "total_bookings",
                        "total_revenue", "avg_booking_value"]
    got = _read(pipeline_run, "gold.daily_booking_summary")
    got["booking_date"] = pd.to_datetime(got["booking_date"])
    key = ["booking_date", "vehicle_type_name", "booking_status_name"]
    got = got[expected.columns].sort_values(key).reset_index(drop=True)
    expected = expected.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_exact=True)


def test_gold_customer_analytics_matches_plain_pandas(pipeline_run):
    truth = _truth(pipeline_run)
    expected = truth.groupby("customer_id").agg(
        total_bookings=("booking_id", "size"), total_spent=("value", lambda v: float(v.sum())),
        avg_booking_value=("value", "mean"), first_booking_date=("date", "min"),
        last_booking_date=("date", "max")).reset_index()
    expected["lifetime_days"] = (expected["last_booking_date"] - expected["first_booking_date"]).dt.days
    got = _read(pipeline_run, "gold.customer_analytics")
    for col in ("first_booking_date", "last_booking_date"):
        got[col] = pd.to_datetime(got[col])
    got = got[expected.columns].sort_values("customer_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected.sort_values("customer_id").reset_index(drop=True),
                                  check_dtype=False, check_exact=True)


def test_gold_location_analytics_matches_plain_pandas(pipeline_run):
    truth = _truth(pipeline_run)
    pickups = truth["Pickup Location"].value_counts()
    drops = truth["Drop Location"].value_counts()
    touching = pd.concat([truth[["booking_id", "Pickup Location", "value"]].set_axis(["b", "loc", "v"], axis=1),
                          truth[["booking_id", "Drop Location", "value"]].set_axis(["b", "loc", "v"], axis=1)])
    avg = touching.drop_duplicates(["b", "loc"]).groupby("loc")["v"].mean()
    names = sorted(set(pickups.index) | set(drops.index))
    expected = pd.DataFrame({"location_name": names})
    expected["pickups"] = expected["location_name"].map(pickups).fillna(0).astype(int)
    expected["dropoffs"] = expected["location_name"].map(drops).fillna(0).astype(int)
    expected["total_activity"] = expected["pickups"] + expected["dropoffs"]
    expected["avg_booking_value"] = expected["location_name"].map(avg)
    got = _read(pipeline_run, "gold.location_analytics")
    got = got[expected.columns].sort_values("location_name").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_exact=True)
    ids = _read(pipeline_run, "silver.location").set_index("name")["location_id"]
    assert (_read(pipeline_run, "gold.location_analytics").set_index("location_name")["location_id"]
            == ids.reindex(names).to_numpy()).all()


def test_every_table_was_written_with_provenance(pipeline_run):
    from ridelake.tables.schemas import TABLES

    run_id = json.loads((pipeline_run["project"] / "outputs/runs/latest/run.json").read_text())["run_id"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RIDELAKE_WAREHOUSE", str(pipeline_run["warehouse"]))
        for table in TABLES:
            props = catalog.load_table(table).current_snapshot().summary.additional_properties
            assert props.get("ridelake.run-id") == run_id, table
            expected = "bronze/prepare" if table == "bronze.rejected_row" else table.replace(".", "/")
            assert props.get("ridelake.notebook") == expected


def test_incremental_delivery_that_moves_a_booking_to_another_month(pipeline_run):
    """A second delivery re-delivers one booking with a date in another month, plus new bookings."""
    project, env = pipeline_run["project"], pipeline_run["env"]
    lines = pipeline_run["csv"].read_bytes().decode("utf-8", "surrogateescape").split("\r\n")  # bad rows: any byte
    header, rows = lines[0], [ln for ln in lines[1:] if ln]
    rejected = set(_read(pipeline_run, "bronze.rejected_row")["source_row"])  # a row that was loaded
    moved = next(r for i, r in enumerate(rows, 1) if i not in rejected and r.startswith("2024-03-") and ",Completed," in r)
    moved_id = moved.split(",")[2].strip('"')
    extra = project / "data" / "extra.csv"
    write_csv(extra, rows=200, seed=99)
    # new bookings of July only, so the delivery touches one month (a per-month rebuild)
    new_rows = [ln for ln in extra.read_bytes().decode().split("\r\n")[1:] if ln.startswith("2024-07-")][:8]
    second = project / "data" / "second.csv"
    second.write_bytes(("\r\n".join([header, "2024-07-15" + moved[len("2024-03-15"):], *new_rows]) + "\r\n")
                       .encode("utf-8", "surrogateescape"))
    before = len(_read(pipeline_run, "silver.booking"))
    proc = subprocess.run([sys.executable, "-m", "ridelake", "incremental", "--source-file", str(second),
                           "--extraction-date", "2025-01-05"], cwd=project, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "moves bookings to another month" in proc.stderr
    booking = _read(pipeline_run, "silver.booking")
    new_ids = {ln.split(",")[2].strip('"') for ln in new_rows}
    assert len(booking) == before + len(new_ids - set(_truth(pipeline_run)["booking_id"]))
    row = booking[booking["booking_id"] == moved_id]
    assert len(row) == 1 and row["extraction_month"].iloc[0] == "2024-07"
    assert _read(pipeline_run, "silver.customer")["total_bookings"].sum() == len(booking)
    assert _read(pipeline_run, "gold.daily_booking_summary")["total_bookings"].sum() == len(booking)


def test_a_failed_check_stops_the_notebook_before_the_write(pipeline_run):
    """Break a dimension behind the pipeline's back: silver/booking must refuse to write."""
    before = None
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RIDELAKE_WAREHOUSE", str(pipeline_run["warehouse"]))
        mp.delenv("RIDELAKE_RECEIPT_FILE", raising=False)
        dim = catalog.read_table("silver.vehicle_type")
        catalog.write_table("silver.vehicle_type", dim[dim["name"] != "Auto"], replace_all=True)
        before = catalog.snapshot_id("silver.booking")
    proc = subprocess.run([sys.executable, "-m", "ridelake", "run", "silver/booking", "--retries", "2"],
                          cwd=pipeline_run["project"], env=pipeline_run["env"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 1
    assert "silver/booking" in proc.stdout + proc.stderr and "CheckError" in proc.stdout + proc.stderr
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RIDELAKE_WAREHOUSE", str(pipeline_run["warehouse"]))
        assert catalog.snapshot_id("silver.booking") == before
    manifest = json.loads((pipeline_run["project"] / "outputs/runs/latest/run.json").read_text())
    assert manifest["notebooks"][0]["attempts"] == 1  # a failed check is final: no retry
    executed = json.loads((pipeline_run["project"] / "outputs/runs/latest/silver/booking.ipynb").read_text())
    text = json.dumps(executed)
    assert "relationships(vehicle_type_id -> silver.vehicle_type.vehicle_type_id)" in text
    assert "Checks on silver.booking" in text  # the pass/fail table is shown before the error
