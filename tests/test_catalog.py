"""The catalog: bootstrap, type round trips, provenance, and the bronze write rule (docs/contract.md §3)."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from conftest import completed_row, write_csv
from ridelake.tables import catalog, config, quality, source
from ridelake.errors import CatalogError, SourceError
from ridelake.tables.schemas import TABLES
from ridelake.tables.transforms import bronze


def load(path, extraction_date="2024-12-31", month=None):
    """What bronze/prepare and the nine bronze notebooks do, without kernels."""
    params = config.run_parameters(str(path), extraction_date, month)
    raw, prepared = source.prepare(params)
    prepared.check_reconciled()
    quality.validate("bronze.rejected_row", prepared.rejected, show=False)
    catalog.replace_rows("bronze.rejected_row", prepared.rejected, bronze.rejected_scope(raw.source_file, month))
    source.stage(params, prepared)
    delivery = source.load_delivery(params)
    for table, fn in bronze.ENTITIES.items():
        frame = fn(delivery.rows)
        quality.validate(table, frame, {"delivery": delivery.rows}, show=False)
        catalog.replace_rows(table, frame, delivery.scope)
    return prepared


def rows(table):
    frame = catalog.read_table(table)
    return frame.sort_values(list(frame.columns[:3])).reset_index(drop=True)


def test_bootstrap_creates_everything_once(warehouse):
    assert sorted(catalog.bootstrap()) == sorted(TABLES)
    assert catalog.bootstrap() == []
    cat = catalog.get_catalog()
    assert {ns[0] for ns in cat.list_namespaces()} >= {"bronze", "silver", "gold"}
    spec = cat.load_table("bronze.booking").spec()
    assert [f.name for f in spec.fields] == ["extraction_month"]
    assert (warehouse / "catalog.db").is_file()


def test_round_trip_types(warehouse):
    frame = pd.DataFrame({
        "booking_id": ["B1"], "source_row": [1], "source_file": ["f.csv"],
        "extraction_date": [pd.Timestamp("2024-12-31")], "extraction_month": ["2024-03"],
        "customer_id": ["C1"], "vehicle_type": ["Auto"], "pickup_location": ["A"], "drop_location": ["B"],
        "booking_status": ["Completed"], "payment_method": [None], "booking_value": [12.5],
        "booking_date": [pd.Timestamp("2024-03-05")], "booking_time": [dt.time(10, 15, 1)],
    })
    catalog.write_table("bronze.booking", frame)
    back = catalog.read_table("bronze.booking")
    assert back.loc[0, "booking_date"] == pd.Timestamp("2024-03-05")
    assert back.loc[0, "booking_time"] == dt.time(10, 15, 1)
    assert pd.isna(back.loc[0, "payment_method"]) and back.loc[0, "booking_value"] == 12.5


def test_nanosecond_timestamps_are_written_as_microseconds(warehouse):
    now = pd.Timestamp("2024-05-01 10:00:00.123456789", tz="UTC")
    frame = pd.DataFrame({"vehicle_type_id": [1], "name": ["Auto"], "created_at": [now], "updated_at": [now]})
    catalog.write_table("silver.vehicle_type", frame, replace_all=True)
    back = catalog.read_table("silver.vehicle_type")
    assert back.loc[0, "created_at"] == pd.Timestamp("2024-05-01 10:00:00.123456", tz="UTC")


def test_frame_missing_a_column_is_refused(warehouse):
    with pytest.raises(CatalogError, match="lacks column"):
        catalog.write_table("silver.vehicle_type", pd.DataFrame({"name": ["x"]}))


def test_loading_the_same_file_twice_leaves_the_same_rows(tmp_path, warehouse):
    path = write_csv(tmp_path / "d1.csv", [completed_row(f"CNR{i}", f"2024-0{1 + i % 3}-05") for i in range(6)]
                     + [completed_row("CNRBAD", **{"Booking Value": "abc"})])
    load(path)
    first = {t: rows(t) for t in bronze.ENTITIES} | {"bronze.rejected_row": rows("bronze.rejected_row")}
    load(path)
    for table, frame in first.items():
        pd.testing.assert_frame_equal(rows(table), frame, obj=table)
    assert len(first["bronze.booking"]) == 6 and len(first["bronze.location"]) == 12
    assert first["bronze.rejected_row"]["reason"].tolist() == ["Booking Value: not a number: 'abc'"]


def test_a_second_file_for_the_same_month_adds_its_rows(tmp_path, warehouse):
    load(write_csv(tmp_path / "a.csv", [completed_row("CNR1"), completed_row("CNR2")]))
    load(write_csv(tmp_path / "b.csv", [completed_row("CNR3")]))
    b = rows("bronze.booking")
    assert sorted(b["booking_id"]) == ["CNR1", "CNR2", "CNR3"]
    assert b.groupby("source_file").size().to_dict() == {"a.csv": 2, "b.csv": 1}
    # reloading a.csv with a different extraction date replaces a.csv's rows only
    load(tmp_path / "a.csv", extraction_date="2025-01-02")
    b = rows("bronze.booking")
    assert len(b) == 3
    assert b.set_index("booking_id")["extraction_date"].dt.date.astype(str).to_dict() == {
        "CNR1": "2025-01-02", "CNR2": "2025-01-02", "CNR3": "2024-12-31"}


def test_a_month_load_replaces_only_that_month(tmp_path, warehouse):
    path = write_csv(tmp_path / "a.csv", [completed_row("CNR1", "2024-01-05"), completed_row("CNR2", "2024-02-05")])
    load(path)
    jan_before = rows("bronze.booking").query("extraction_month == '2024-01'")
    load(path, extraction_date="2025-01-01", month="2024-02")
    after = rows("bronze.booking")
    pd.testing.assert_frame_equal(after.query("extraction_month == '2024-01'"), jan_before)
    assert after.query("extraction_month == '2024-02'")["extraction_date"].iloc[0] == pd.Timestamp("2025-01-01")


def test_reconciliation_holds_for_a_delivery(tmp_path, warehouse):
    good = [completed_row(f"CNR{i}") for i in range(5)]
    bad = [completed_row("CNRX", **{"Ride Distance": "-1"}), completed_row("CNRY", Date="2024-02-30")]
    path = write_csv(tmp_path / "r.csv", good + bad)
    prepared = load(path)
    in_file = len(path.read_text().strip().splitlines()) - 1
    accepted = len(catalog.read_table("bronze.booking"))
    rejected = len(catalog.read_table("bronze.rejected_row"))
    assert in_file == accepted + rejected == prepared.rows_in_file == 7
    assert rejected == 2


def test_a_file_missing_header_columns_writes_nothing(tmp_path, warehouse):
    path = tmp_path / "bad.csv"
    path.write_text("Date,Time,Booking ID\r\n2024-01-01,10:00:00,x\r\n")
    catalog.bootstrap()
    with pytest.raises(SourceError, match="Booking Status"):
        load(path)
    assert all(catalog.snapshot_id(t) is None for t in TABLES)


def test_writes_carry_provenance_and_leave_receipts(tmp_path, warehouse, monkeypatch):
    receipts = tmp_path / "receipts.jsonl"
    monkeypatch.setenv("RIDELAKE_RUN_ID", "run-1")
    monkeypatch.setenv("RIDELAKE_NOTEBOOK", "bronze/booking")
    monkeypatch.setenv("RIDELAKE_PARAMS_HASH", "abc")
    monkeypatch.setenv(catalog.RECEIPT_ENV, str(receipts))
    load(write_csv(tmp_path / "a.csv", [completed_row("CNR1")]))
    snap = catalog.load_table("bronze.booking").current_snapshot()
    props = snap.summary.additional_properties
    assert props["ridelake.run-id"] == "run-1" and props["ridelake.notebook"] == "bronze/booking"
    assert props["ridelake.params-hash"] == "abc" and props["ridelake.table"] == "bronze.booking"
    records = [json.loads(line) for line in receipts.read_text().splitlines()]
    writes = [r for r in records if r["op"] == "write" and r["table"] == "bronze.booking"]
    assert writes and writes[-1]["rows_written"] == 1 and writes[-1]["snapshot_id"] == snap.snapshot_id
