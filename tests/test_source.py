"""Checking and streaming delivery files, the input edges (issue 12) and the staging hand-off."""

from __future__ import annotations

import gzip
import json
import os

import pandas as pd
import pytest

from conftest import HEADER, completed_row, write_csv
from ridelake.errors import SourceError
from ridelake.tables import config, csvlines, source


def _line(booking_id: str, **overrides: str) -> str:
    row = completed_row(booking_id, **overrides)
    return ",".join('"""' + v[1:-1] + '"""' if v.startswith('"') else v for v in (row[c] for c in HEADER.split(",")))


def _file(tmp_path, lines: list[str], name: str = "d.csv", header: str = HEADER) -> os.PathLike:
    path = tmp_path / name
    path.write_bytes(("\r\n".join([header, *lines]) + "\r\n").encode("utf-8"))
    return path


def test_lines_keep_their_raw_text_and_field_count_and_blank_lines_are_not_rows(tmp_path):
    path = write_csv(tmp_path / "d.csv", [completed_row("CNR1"), completed_row("CNR2")])
    path.write_bytes(path.read_bytes() + b"\r\n2024-01-01,10:00:00,too,few\r\n")
    p = source.prepare_file(path)
    assert p.rows_in_file == 3
    assert p.accepted["booking_id"].tolist() == ["CNR1", "CNR2"]
    rej = p.rejected.iloc[0]
    assert (rej["source_row"], rej["reason"]) == (3, "expected 21 fields, found 4")
    assert rej["raw_line"] == "2024-01-01,10:00:00,too,few"


def test_the_header_must_name_every_contract_column_once(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("Date,Time,Booking ID\r\n2024-01-01,10:00:00,x\r\n")
    with pytest.raises(SourceError) as err:
        source.check_source(path)
    assert "bad.csv" in str(err.value) and "Booking Status" in str(err.value) and "Payment Method" in str(err.value)
    twice = _file(tmp_path, [], "twice.csv", HEADER + ",Date")
    with pytest.raises(SourceError, match="twice.csv: header names column.s. more than once: Date"):
        source.check_source(twice)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        source.check_source(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SourceError, match="empty"):
        source.check_source(tmp_path / "empty.csv")
    with pytest.raises(SourceError, match="no source_file"):
        source.check_source(None)


def test_header_only_file_has_no_rows(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text(HEADER + "\r\n")
    p = source.prepare_file(path)
    assert p.rows_in_file == 0 and len(p.accepted) == 0 and p.rejected.empty
    p.check_reconciled()


# --- the input edges of issue 12: each fails on the old reader ------------------------------------


def test_a_number_too_large_for_a_double_is_rejected_not_infinite(tmp_path):
    path = _file(tmp_path, [_line("CNR1"), _line("CNR2", **{"Booking Value": "1e309"}),
                            _line("CNR3", **{"Ride Distance": "1e-400"}), _line("CNR4", **{"Avg VTAT": "-1e400"})])
    p = source.prepare_file(path)
    assert p.accepted["booking_id"].tolist() == ["CNR1", "CNR3"]
    assert p.rejected["reason"].tolist() == ["Booking Value: not a finite number: '1e309'",
                                             "Avg VTAT: not a finite number: '-1e400'"]
    assert p.accepted.loc[1, "ride_distance"] == 0.0  # 1e-400 underflows to zero, which is fine


def test_a_byte_that_is_not_utf8_rejects_its_row_only_and_is_never_replaced(tmp_path):
    good = _line("CNR1").encode()
    bad = _line("CNR2", **{"Pickup Location": "Caf\x00 Row"}).encode().replace(b"\x00", b"\xe9")
    path = tmp_path / "latin.csv"
    path.write_bytes(HEADER.encode() + b"\r\n" + good + b"\r\n" + bad + b"\r\n" + good.replace(b"CNR1", b"CNR3") + b"\r\n")
    p = source.prepare_file(path)
    assert p.accepted["booking_id"].tolist() == ["CNR1", "CNR3"]
    assert "\ufffd" not in "".join(p.accepted["pickup_location"])
    rej = p.rejected.iloc[0]
    at = bad.index(b"\xe9") + 1
    assert rej["source_row"] == 2
    assert rej["reason"] == f"Pickup Location: not UTF-8 at byte {at} of the line (0xE9)"
    assert "Caf\\xe9 Row" in rej["raw_line"]  # the byte kept, readable
    assert rej["extraction_month"] == "2024-03"
    p.check_reconciled()


def test_an_unclosed_quote_spoils_only_its_own_line(tmp_path):
    lines = [_line(f"CNR{i}") for i in range(1, 12)]
    lines[4] = _line("CNR5").replace(",Akshardham,", ',"Akshardham,')
    path = _file(tmp_path, lines)
    p = source.prepare_file(path)
    assert p.rows_in_file == 11  # physical data lines
    assert len(p.accepted) == 10 and "CNR6" in set(p.accepted["booking_id"])
    rej = p.rejected.iloc[0]
    assert rej["source_row"] == 5
    assert rej["reason"].startswith("Drop Location: unclosed double quote")
    assert rej["raw_line"] == lines[4]
    p.check_reconciled()


def test_a_field_over_the_limit_rejects_its_row_and_the_rest_loads(tmp_path):
    huge = "x" * (csvlines.FIELD_LIMIT + 10)
    path = _file(tmp_path, [_line("CNR1"), _line("CNR2", **{"Driver Cancellation Reason": huge}), _line("CNR3")])
    p = source.prepare_file(path)
    assert p.accepted["booking_id"].tolist() == ["CNR1", "CNR3"]
    assert p.rejected["reason"].tolist() == [
        f"Driver Cancellation Reason: field over {csvlines.FIELD_LIMIT} bytes ({len(huge)} bytes)"]
    assert len(p.rejected.iloc[0]["raw_line"]) > csvlines.FIELD_LIMIT  # nothing lost


def test_a_gzip_file_named_csv_is_refused_and_a_csv_gz_is_read_directly(tmp_path):
    plain = _file(tmp_path, [_line("CNR1"), _line("CNR2")])
    body = plain.read_bytes()
    disguised = tmp_path / "disguised.csv"
    disguised.write_bytes(gzip.compress(body))
    with pytest.raises(SourceError, match="disguised.csv is gzip-compressed: name it disguised.csv.gz"):
        source.check_source(disguised)
    packed = tmp_path / "d.csv.gz"
    packed.write_bytes(gzip.compress(body))
    info = source.check_source(packed)
    assert info.compression == "gzip" and info.source_file == "d.csv.gz"
    p = source.prepare_file(packed, block_size=64)
    assert p.accepted["booking_id"].tolist() == ["CNR1", "CNR2"]
    assert (p.accepted["source_file"] == "d.csv.gz").all()
    fake = tmp_path / "fake.csv.gz"
    fake.write_bytes(body)
    with pytest.raises(SourceError, match="fake.csv.gz is named .gz but is not gzip-compressed"):
        source.check_source(fake)


def test_a_directory_is_refused_before_anything_runs(tmp_path):
    folder = tmp_path / "deliveries.csv"
    folder.mkdir()
    with pytest.raises(SourceError, match="is a directory"):
        source.check_source(folder)


def test_an_extra_column_is_accepted_and_named_as_ignored(tmp_path, warehouse):
    path = _file(tmp_path, [_line("CNR1") + ",extra1", _line("CNR2") + ",extra2"], header=HEADER + ",Tip")
    params = config.run_parameters(str(path), "2024-12-31")
    info, p = source.prepare(params)
    assert info.ignored_columns == ["Tip"]
    assert p.ignored_columns == ["Tip"] and p.summary.loc[0, "ignored_columns"] == "Tip"
    assert p.accepted_rows == 2 and p.rejected.empty
    staged = source.stage(params, p)
    record = json.loads((staged.parent / f"{path.name}__2024-12-31__all.json").read_text())
    assert record["ignored_columns"] == ["Tip"]
    assert "Tip" not in source.load_delivery(params).rows.columns


# --- reading in blocks -----------------------------------------------------------------------------


def test_tiny_blocks_give_the_same_rows_as_one_block(tmp_path):
    lines = [_line(f"CNR{i}", date=f"2024-{i % 12 + 1:02d}-05") for i in range(40)]
    lines[7] = _line("CNR7", **{"Booking Value": "abc"})
    path = _file(tmp_path, lines)
    big = source.prepare_file(path)
    small = source.prepare_file(path, block_size=37)
    pd.testing.assert_frame_equal(big.accepted, small.accepted)
    pd.testing.assert_frame_equal(big.rejected, small.rejected)
    assert big.accepted_counts.equals(small.accepted_counts)


# --- staging -----------------------------------------------------------------------------------------


def test_staging_round_trip_and_staleness(tmp_path, warehouse):
    path = write_csv(tmp_path / "d.csv", [completed_row("CNR1"), completed_row("CNR2", "2024-04-01")])
    params = config.run_parameters(str(path), "2024-12-31")
    _, prepared = source.prepare(params)
    staged = source.stage(params, prepared)
    assert staged.is_dir() and str(staged).startswith(str(warehouse))
    assert sorted(f.name for f in staged.iterdir()) == ["2024-03.parquet", "2024-04.parquet"]
    d = source.load_delivery(params)
    assert d.staged and d.months == ["2024-03", "2024-04"] and len(d.rows) == 2
    assert d.scope == {"source_file": "d.csv", "extraction_month": ["2024-03", "2024-04"]}
    assert d.rows["booking_id"].tolist() == ["CNR1", "CNR2"]  # file order
    assert source.staged_months(path, "2024-12-31") == ["2024-03", "2024-04"]
    # the file changes: the stale staging is ignored and the delivery is prepared again
    write_csv(path, [completed_row("CNR9")])
    os.utime(path, ns=(1, 1))
    d2 = source.load_delivery(params)
    assert not d2.staged and d2.rows["booking_id"].tolist() == ["CNR9"]


def test_a_one_month_run_reads_its_month_from_the_whole_file_staging(tmp_path, warehouse):
    path = write_csv(tmp_path / "d.csv", [completed_row("CNR1"), completed_row("CNR2", "2024-04-01"),
                                          completed_row("CNR3", "2024-04-02")])
    whole = config.run_parameters(str(path), "2024-12-31")
    source.stage(whole, source.prepare(whole)[1])
    april = source.load_delivery(config.run_parameters(str(path), "2024-12-31", "2024-04"))
    assert april.staged and april.months == ["2024-04"]
    assert april.rows["booking_id"].tolist() == ["CNR2", "CNR3"]
    may = source.load_delivery(config.run_parameters(str(path), "2024-12-31", "2024-05"))
    assert may.staged and may.months == ["2024-05"] and may.rows.empty


def test_load_delivery_without_staging_prepares(tmp_path, warehouse):
    path = write_csv(tmp_path / "d.csv", [completed_row("CNR1")])
    d = source.load_delivery(config.run_parameters(str(path), "2024-12-31"))
    assert not d.staged and len(d.rows) == 1
    assert not list((warehouse / "_staging").glob("*")) if (warehouse / "_staging").exists() else True
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
