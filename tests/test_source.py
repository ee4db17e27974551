"""Reading delivery files and the staging hand-off."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from conftest import HEADER, completed_row, write_csv
from ridelake.tables import config, source
from ridelake.errors import SourceError


def test_read_source_keeps_raw_lines_counts_fields_and_skips_blank_lines(tmp_path):
    path = write_csv(tmp_path / "d.csv", [completed_row("CNR1"), completed_row("CNR2")])
    text = path.read_bytes().decode()
    text += "\r\n2024-01-01,10:00:00,too,few\r\n"
    path.write_bytes(text.encode())
    raw = source.read_source(path)
    assert raw.source_file == "d.csv"
    assert raw.header == HEADER.split(",")
    assert raw.rows["source_row"].tolist() == [1, 2, 3]
    assert raw.rows["n_fields"].tolist() == [21, 21, 4]
    assert raw.rows["raw_line"].iloc[2] == "2024-01-01,10:00:00,too,few"
    assert raw.rows["Booking ID"].iloc[0] == '"CNR1"'
    assert raw.rows["raw_line"].iloc[0].startswith('2024-03-05,10:15:00,"""CNR1""",Completed')


def test_read_source_refuses_a_header_without_required_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("Date,Time,Booking ID\r\n2024-01-01,10:00:00,x\r\n")
    with pytest.raises(SourceError) as err:
        source.read_source(path)
    assert "bad.csv" in str(err.value) and "Booking Status" in str(err.value) and "Payment Method" in str(err.value)


def test_read_source_missing_and_empty_files(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        source.read_source(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SourceError, match="empty"):
        source.read_source(tmp_path / "empty.csv")


def test_header_only_file_has_no_rows(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text(HEADER + "\r\n")
    raw = source.read_source(path)
    assert len(raw.rows) == 0


def test_staging_round_trip_and_staleness(tmp_path, warehouse):
    path = write_csv(tmp_path / "d.csv", [completed_row("CNR1"), completed_row("CNR2", "2024-04-01")])
    params = config.run_parameters(str(path), "2024-12-31")
    _, prepared = source.prepare(params)
    staged = source.stage(params, prepared)
    assert staged.is_file() and str(staged).startswith(str(warehouse))
    d = source.load_delivery(params)
    assert d.staged and d.months == ["2024-03", "2024-04"] and len(d.rows) == 2
    assert d.scope == {"source_file": "d.csv", "extraction_month": ["2024-03", "2024-04"]}
    pd.testing.assert_frame_equal(d.rows, prepared.accepted, check_dtype=False)
    # the file changes: the stale staging is ignored and the delivery is prepared again
    write_csv(path, [completed_row("CNR9")])
    os.utime(path, ns=(1, 1))
    d2 = source.load_delivery(params)
    assert not d2.staged and d2.rows["booking_id"].tolist() == ["CNR9"]


def test_load_delivery_without_staging_prepares(tmp_path, warehouse):
    path = write_csv(tmp_path / "d.csv", [completed_row("CNR1")])
    d = source.load_delivery(config.run_parameters(str(path), "2024-12-31"))
    assert not d.staged and len(d.rows) == 1
    with pytest.raises(SourceError, match="not found"):
        source.load_delivery(config.run_parameters(str(tmp_path / "x.csv"), "2024-12-31"))


def test_moved_bookings_counts_deliveries_that_move_a_booking_to_another_month(tmp_path, warehouse):
    import datetime as dt

    from ridelake.tables import catalog

    path = write_csv(tmp_path / "d.csv", [completed_row("CNR1", "2024-03-05"), completed_row("CNR2", "2024-04-01")])
    params = config.run_parameters(str(path), "2024-12-31")
    assert source.moved_bookings(path, "2024-12-31") is None  # not staged yet
    source.stage(params, source.prepare(params)[1])
    now = pd.Timestamp("2024-12-31", tz="UTC")
    silver = pd.DataFrame({
        "booking_id": ["CNR1", "CNR2"], "customer_id": ["C", "C"], "vehicle_type_id": [1, 1],
        "pickup_location_id": [1, 1], "drop_location_id": [2, 2], "booking_status_id": [1, 1],
        "payment_method_id": [1, 1], "booking_value": [1.0, 2.0],
        "booking_date": pd.to_datetime(["2024-03-05", "2024-02-01"]), "booking_time": [dt.time(10)] * 2,
        "extraction_month": ["2024-03", "2024-02"], "created_at": now, "updated_at": now,
    })
    catalog.write_table("silver.booking", silver, replace_all=True)
    assert source.moved_bookings(path, "2024-12-31") == 1  # CNR2 moves from February to April
