"""Shared fixtures: a throw-away warehouse per test, the real sample (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

import pg
import s3

ROOT = Path(__file__).resolve().parents[1]

# Warm kernels never outlive a test's command (tests/test_kernel_pool.py turns the pool on for
# itself): dozens of test projects would otherwise each leave kernels idling for minutes.
os.environ["RIDELAKE_KERNEL_IDLE"] = "0"
REAL_SAMPLE = ROOT.parent / "shared" / "fixtures" / "ncr_ride_bookings_real_sample.csv"

HEADER = (
    "Date,Time,Booking ID,Booking Status,Customer ID,Vehicle Type,Pickup Location,Drop Location,"
    "Avg VTAT,Avg CTAT,Cancelled Rides by Customer,Reason for cancelling by Customer,"
    "Cancelled Rides by Driver,Driver Cancellation Reason,Incomplete Rides,Incomplete Rides Reason,"
    "Booking Value,Ride Distance,Driver Ratings,Customer Rating,Payment Method"
)


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point RIDELAKE_WAREHOUSE at an empty temporary folder (the catalog lives inside)."""
    wh = tmp_path / "warehouse"
    monkeypatch.setenv("RIDELAKE_WAREHOUSE", str(wh))
    monkeypatch.delenv("RIDELAKE_CATALOG_URI", raising=False)
    for var in ("RIDELAKE_RUN_ID", "RIDELAKE_NOTEBOOK", "RIDELAKE_PARAMS_HASH", "RIDELAKE_RECEIPT_FILE"):
        monkeypatch.delenv(var, raising=False)
    return wh


@pytest.fixture
def real_sample() -> Path:
    """The 2,648 real rows in ../shared/fixtures (a user's clone has no ../shared)."""
    if not REAL_SAMPLE.is_file():
        pytest.skip(f"real sample not available at {REAL_SAMPLE} (only present beside the project checkout)")
    return REAL_SAMPLE


def completed_row(booking_id: str = "CNR0000001", date: str = "2024-03-05", **overrides: str) -> dict[str, str]:
    """One valid Completed source row as raw text fields, with the real file's quoting."""
    row = {
        "Date": date, "Time": "10:15:00", "Booking ID": f'"{booking_id}"', "Booking Status": "Completed",
        "Customer ID": '"CID0000001"', "Vehicle Type": "Auto", "Pickup Location": "AIIMS",
        "Drop Location": "Akshardham", "Avg VTAT": "8.5", "Avg CTAT": "29.1",
        "Cancelled Rides by Customer": "null", "Reason for cancelling by Customer": "null",
        "Cancelled Rides by Driver": "null", "Driver Cancellation Reason": "null", "Incomplete Rides": "null",
        "Incomplete Rides Reason": "null", "Booking Value": "414", "Ride Distance": "12.25",
        "Driver Ratings": "4.2", "Customer Rating": "4.6", "Payment Method": "UPI",
    }
    row.update(overrides)
    return row


def raw_frame(rows: list[dict[str, str]], n_fields: list[int] | None = None) -> pd.DataFrame:
    """A raw delivery frame, the input of :func:`ridelake.tables.transforms.bronze.prepare_delivery`."""
    columns = HEADER.split(",")
    frame = pd.DataFrame([[r.get(c) for c in columns] for r in rows], columns=columns, dtype="string")
    frame.insert(0, "n_fields", pd.Series(n_fields or [len(columns)] * len(rows), dtype="int64"))
    frame.insert(0, "raw_line", pd.Series([",".join(str(r.get(c)) for c in columns) for r in rows], dtype="string"))
    frame.insert(0, "source_row", pd.Series(range(1, len(rows) + 1), dtype="int64"))
    return frame


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    """Write rows (raw text fields) as a source CSV with CRLF line endings; fields are written verbatim."""
    columns = HEADER.split(",")
    lines = [HEADER] + [",".join('"""' + r[c][1:-1] + '"""' if r[c].startswith('"') else r[c] for c in columns)
                        for r in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return path


def assert_checks_pass(tables: dict[str, pd.DataFrame], names: list[str]) -> None:
    """Assert that each named frame has its table's columns and passes every declared check."""
    from ridelake.tables.quality import run_checks
    from ridelake.tables.schemas import table_spec

    for name in names:
        spec = table_spec(name)
        frame = tables[name]
        assert list(frame.columns) == spec.column_names, name
        report = run_checks(spec.checks, frame, tables, spec.key)
        failed = report[~report["passed"]]
        assert failed.empty, f"{name}: {failed.to_dict('records')}"


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server on 127.0.0.1 with a password for the whole session (tests/pg.py), stopped
    at the end; skipped with the reason when the server cannot be installed or started."""
    try:
        server = pg.start()
    except pg.Unavailable as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server():
    """An S3 endpoint on 127.0.0.1 for the whole session (tests/s3.py: moto's standalone server) with
    a bucket, stopped at the end; skipped with the reason when moto[server] is missing or does not start."""
    try:
        server = s3.start()
    except s3.Unavailable as exc:
        pytest.skip(f"no S3 test server: {exc}")
    yield server
    server.stop()
