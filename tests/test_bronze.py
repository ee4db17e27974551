"""Unit tests of the prepare step and the bronze entity transforms, on tiny inline frames."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from conftest import completed_row, raw_frame
from ridelake.errors import CheckError, SourceError
from ridelake.tables.transforms import bronze

D = dt.date(2024, 12, 31)


def prepare(rows, n_fields=None, month=None):
    return bronze.prepare_delivery(raw_frame(rows, n_fields), "f.csv", D, month)


def test_clean_text_strips_quotes_whitespace_and_nulls():
    s = pd.Series(['"CNR5349165"', "  Auto ", "null", "", None, "NULL", '" x "'])
    out = bronze.clean_text(s)
    assert out.tolist()[:2] == ["CNR5349165", "Auto"]
    assert out.isna().tolist() == [False, False, True, True, True, True, False]
    assert out.iloc[6] == "x"


def test_quoted_ids_and_null_become_clean_values():
    p = prepare([completed_row("CNR5349165")])
    row = p.accepted.iloc[0]
    assert row["booking_id"] == "CNR5349165"
    assert row["customer_id"] == "CID0000001"
    assert pd.isna(row["cancelled_rides_by_customer"]) and pd.isna(row["driver_cancellation_reason"])
    assert row["booking_value"] == 414.0 and row["ride_distance"] == 12.25
    assert row["booking_date"] == pd.Timestamp("2024-03-05")
    assert row["booking_time"] == dt.time(10, 15)
    assert row["extraction_month"] == "2024-03"
    assert row["source_file"] == "f.csv" and row["source_row"] == 1
    assert row["extraction_date"] == pd.Timestamp(D)
    assert p.rejected.empty


def test_empty_field_counts_as_null():
    p = prepare([completed_row(**{"Payment Method": "", "Booking Value": ""})])
    assert p.rejected.empty
    assert pd.isna(p.accepted.iloc[0]["payment_method"]) and pd.isna(p.accepted.iloc[0]["booking_value"])


@pytest.mark.parametrize(
    "override, reason",
    [
        ({"Booking Value": "abc"}, "Booking Value: not a number: 'abc'"),
        ({"Ride Distance": "-3"}, "Ride Distance: negative: '-3'"),
        ({"Avg VTAT": "-1.0"}, "Avg VTAT: negative: '-1.0'"),
        ({"Avg CTAT": "-2"}, "Avg CTAT: negative: '-2'"),
        ({"Booking Value": "-5"}, "Booking Value: negative: '-5'"),
        ({"Driver Ratings": "7.5"}, "Driver Ratings: outside 1..5: '7.5'"),
        ({"Customer Rating": "0.5"}, "Customer Rating: outside 1..5: '0.5'"),
        ({"Date": "2024-13-45"}, "Date: not a date (YYYY-MM-DD): '2024-13-45'"),
        ({"Date": "05/03/2024"}, "Date: not a date (YYYY-MM-DD): '05/03/2024'"),
        ({"Time": "25:61:00"}, "Time: not a time (HH:MM:SS): '25:61:00'"),
        ({"Booking ID": "null"}, "Booking ID: missing value"),
        ({"Pickup Location": ""}, "Pickup Location: missing value"),
        ({"Booking Status": "Lost"}, "Booking Status: unknown value 'Lost'"),
        ({"Booking Value": "nan"}, "Booking Value: not a number: 'nan'"),
        ({"Incomplete Rides": "0.5"}, "Incomplete Rides: not a whole number: '0.5'"),
    ],
)
def test_bad_values_are_rejected_with_a_reason_naming_the_field(override, reason):
    p = prepare([completed_row("CNR1"), completed_row("CNR2", **override)])
    assert len(p.accepted) == 1 and p.accepted.iloc[0]["booking_id"] == "CNR1"
    assert len(p.rejected) == 1
    rej = p.rejected.iloc[0]
    assert rej["reason"] == reason
    assert rej["source_row"] == 2 and rej["source_file"] == "f.csv"
    assert rej["extraction_date"] == pd.Timestamp(D)
    assert "CNR2" in rej["raw_line"] or override.get("Booking ID") == "null"
    p.check_reconciled()


def test_several_problems_are_all_named():
    p = prepare([completed_row(**{"Booking Value": "x", "Driver Ratings": "9"})])
    assert p.rejected.iloc[0]["reason"] == "Booking Value: not a number: 'x'; Driver Ratings: outside 1..5: '9'"


def test_wrong_field_count_is_rejected_and_keeps_the_raw_line():
    p = prepare([completed_row("CNR1"), completed_row("CNR2")], n_fields=[21, 19])
    assert p.rejected.iloc[0]["reason"] == "expected 21 fields, found 19"
    assert pd.isna(p.rejected.iloc[0]["booking_id"])
    assert len(p.accepted) == 1
    assert p.summary.iloc[0].to_dict() == {"rows_in_file": 2, "accepted": 1, "rejected": 1, "other_months": 0,
                                           "reconciled": True, "ignored_columns": "none"}


def test_missing_header_columns_are_named():
    raw = raw_frame([completed_row()]).drop(columns=["Booking Value", "Payment Method"])
    with pytest.raises(SourceError, match="Booking Value, Payment Method"):
        bronze.prepare_delivery(raw, "f.csv", D)
    with pytest.raises(SourceError, match="f.csv: header lacks required column"):
        bronze.check_header(["Date"], "f.csv")


def test_extraction_month_keeps_that_month_and_unknown_months_are_still_rejected():
    rows = [completed_row("CNR1", "2024-01-02"), completed_row("CNR2", "2024-02-03"),
            completed_row("CNR3", "2024-02-04", **{"Booking Value": "bad"}),
            completed_row("CNR4", "2024-03-01", **{"Booking Value": "bad"}),
            completed_row("CNR5", "not-a-date")]
    p = prepare(rows, month="2024-02")
    assert p.accepted["booking_id"].tolist() == ["CNR2"]
    assert sorted(p.rejected["booking_id"]) == ["CNR3", "CNR5"]
    assert p.out_of_scope == 2
    assert p.months == ["2024-02"]
    p.check_reconciled()


def test_reconciliation_failure_raises():
    p = prepare([completed_row()])
    p.rows_in_file = 5
    with pytest.raises(CheckError, match="reconciliation failed: 5 data rows"):
        p.check_reconciled()


def _statuses():
    return [
        completed_row("CNR1", **{"Payment Method": "UPI"}),
        completed_row("CNR2", **{"Booking Status": "Cancelled by Customer", "Reason for cancelling by Customer":
                                 "Wrong Address", "Cancelled Rides by Customer": "1", "Payment Method": "null",
                                 "Booking Value": "null", "Driver Ratings": "null", "Customer Rating": "null"}),
        completed_row("CNR3", **{"Booking Status": "Cancelled by Driver", "Driver Cancellation Reason":
                                 "Personal & Car related issues", "Cancelled Rides by Driver": "1",
                                 "Payment Method": "null"}),
        completed_row("CNR4", **{"Booking Status": "Incomplete", "Incomplete Rides": "1",
                                 "Incomplete Rides Reason": "Vehicle Breakdown"}),
        completed_row("CNR5", **{"Booking Status": "No Driver Found", "Payment Method": "null"}),
    ]


def test_entity_splits():
    d = prepare(_statuses()).accepted
    common = ["booking_id", "source_row", "source_file", "extraction_date", "extraction_month"]
    assert len(bronze.customer(d)) == 5 and list(bronze.customer(d).columns) == common + ["customer_id", "booking_date"]
    assert bronze.vehicle_type(d)["vehicle_type_name"].tolist() == ["Auto"] * 5
    loc = bronze.location(d)
    assert len(loc) == 10 and loc["location_type"].tolist()[:2] == ["pickup", "drop"]
    assert loc["location_name"].tolist()[:2] == ["AIIMS", "Akshardham"]
    assert bronze.booking_status(d)["booking_status_name"].tolist()[1] == "Cancelled by Customer"
    assert bronze.payment_method(d)["booking_id"].tolist() == ["CNR1", "CNR4"]
    assert bronze.ride(d)["booking_id"].tolist() == ["CNR1"]
    c = bronze.cancelled_ride(d)
    assert c[["booking_id", "cancelled_by", "reason"]].values.tolist() == [
        ["CNR2", "customer", "Wrong Address"], ["CNR3", "driver", "Personal & Car related issues"]]
    inc = bronze.incompleted_ride(d)
    assert inc[["booking_id", "reason"]].values.tolist() == [["CNR4", "Vehicle Breakdown"]]
    b = bronze.booking(d)
    assert b["payment_method"].isna().tolist() == [False, True, True, False, True]


def test_entity_frames_pass_their_declared_checks():
    from ridelake.tables import quality

    d = prepare(_statuses()).accepted
    for table, fn in bronze.ENTITIES.items():
        quality.validate(table, fn(d), {"delivery": d}, show=False)


def test_write_scope_and_rejected_scope():
    assert bronze.write_scope("f.csv", ["2024-01"]) == {"source_file": "f.csv", "extraction_month": ["2024-01"]}
    assert bronze.rejected_scope("f.csv", None) == {"source_file": "f.csv"}
    assert bronze.rejected_scope("f.csv", "2024-01") == {"source_file": "f.csv", "extraction_month": ["2024-01", None]}


def _location_by_concat_and_sort(delivery: pd.DataFrame) -> pd.DataFrame:
    """The first implementation of ``bronze.location`` (ordered by delivery row, then pickup
    first): the oracle for the take-based one."""
    meta = ["booking_id", "source_row", "source_file", "extraction_date", "extraction_month"]
    pos = np.arange(len(delivery))
    pickup = delivery[meta].assign(location_name=delivery["pickup_location"], location_type="pickup", _p=pos)
    drop = delivery[meta].assign(location_name=delivery["drop_location"], location_type="drop", _p=pos)
    both = pd.concat([pickup, drop], ignore_index=True)
    order = both["location_type"].map({"pickup": 0, "drop": 1})
    return (both.assign(_o=order).sort_values(["_p", "_o"], kind="stable").drop(columns=["_o", "_p"])
            .reset_index(drop=True))


@pytest.mark.parametrize("shuffle", [False, True])
def test_location_equals_the_concat_and_sort_path(shuffle) -> None:
    rng = np.random.default_rng(11)
    n = 60
    delivery = pd.DataFrame({
        "booking_id": pd.Series([f"CNR{i:07d}" for i in range(n)], dtype="str"),
        "source_row": np.arange(1, n + 1, dtype="int64"),
        "source_file": pd.Series(["f.csv"] * n, dtype="str"),
        "extraction_date": pd.Series(pd.Timestamp("2024-12-31"), index=range(n)).astype("datetime64[us]"),
        "extraction_month": pd.Series(rng.choice(["2024-01", "2024-02"], n), dtype="str"),
        "pickup_location": pd.Series(rng.choice(["AIIMS", "Saket", None], n), dtype="str"),
        "drop_location": pd.Series(rng.choice(["Akshardham", "Rohini", None], n), dtype="str"),
    })
    if shuffle:  # rows out of file order (months loaded one after another), one source_row repeated
        delivery = delivery.sample(frac=1, random_state=3).reset_index(drop=True)
        delivery.loc[5, "source_row"] = delivery.loc[9, "source_row"]
    got = bronze.location(delivery)
    pd.testing.assert_frame_equal(got, _location_by_concat_and_sort(delivery))
    assert bronze.location(delivery.iloc[:0]).empty and list(bronze.location(delivery.iloc[:1])["location_type"]) == ["pickup", "drop"]
