"""Unit tests of the silver transforms (docs/contract.md §4) on tiny inline frames."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import assert_checks_pass

from ridelake.errors import CheckError
from ridelake.tables.quality import validate
from ridelake.tables.schemas import DIMENSIONS, OTHER_MONTHS, TABLES, table_spec
from ridelake.tables.transforms import bronze
from ridelake.tables.transforms import silver as sv

T0 = pd.Timestamp("2025-01-01 08:00:00", tz="UTC")
T1 = pd.Timestamp("2025-02-01 09:30:00", tz="UTC")

_DEFAULTS: dict[str, Any] = {
    "booking_time": dt.time(10, 0, 0),
    "customer_id": "CID1",
    "vehicle_type": "Auto",
    "pickup_location": "AIIMS",
    "drop_location": "Jhilmil",
    "avg_vtat": 5.0,
    "avg_ctat": None,
    "cancelled_rides_by_customer": None,
    "reason_for_cancelling_by_customer": None,
    "cancelled_rides_by_driver": None,
    "driver_cancellation_reason": None,
    "incomplete_rides": None,
    "incomplete_rides_reason": None,
    "booking_value": None,
    "ride_distance": None,
    "driver_rating": None,
    "customer_rating": None,
    "payment_method": None,
}


def row(booking_id: str, date: str, status: str = "Completed", source_row: int = 1,
        source_file: str = "f1.csv", extraction_date: str = "2024-12-31", **kw: Any) -> dict[str, Any]:
    """One prepared (accepted) delivery row; Completed rows get a value, payment and ratings."""
    r = dict(_DEFAULTS)
    if status == "Completed":
        r.update(booking_value=100.0, ride_distance=10.0, driver_rating=4.5, customer_rating=4.8,
                 avg_ctat=20.0, payment_method="UPI")
    elif status == "Cancelled by Customer":
        r.update(cancelled_rides_by_customer=1, reason_for_cancelling_by_customer="Wrong Address")
    elif status == "Cancelled by Driver":
        r.update(cancelled_rides_by_driver=1, driver_cancellation_reason="Personal & Car related issues")
    elif status == "Incomplete":
        r.update(incomplete_rides=1, incomplete_rides_reason="Vehicle Breakdown", booking_value=50.0,
                 payment_method="Cash", avg_ctat=20.0)
    r.update(booking_id=booking_id, booking_date=date, booking_status=status, source_row=source_row,
             source_file=source_file, extraction_date=extraction_date)
    r.update(kw)
    return r


def delivery(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A frame shaped like ``PreparedDelivery.accepted``."""
    d = pd.DataFrame(rows)
    d["booking_date"] = pd.to_datetime(d["booking_date"])
    d["extraction_date"] = pd.to_datetime(d["extraction_date"])
    d["extraction_month"] = d["booking_date"].dt.strftime("%Y-%m")
    for c in ("booking_value", "ride_distance", "driver_rating", "customer_rating", "avg_vtat", "avg_ctat"):
        d[c] = pd.to_numeric(d[c]).astype("float64")
    for c in ("cancelled_rides_by_customer", "cancelled_rides_by_driver", "incomplete_rides"):
        d[c] = pd.to_numeric(d[c]).astype("Int64")
    for c in ("booking_id", "customer_id", "vehicle_type", "pickup_location", "drop_location", "booking_status",
              "payment_method", "reason_for_cancelling_by_customer", "driver_cancellation_reason",
              "incomplete_rides_reason"):
        d[c] = d[c].astype("string")
    d["source_row"] = d["source_row"].astype("int64")
    return d


def bronze_frames(d: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {t: f(d) for t, f in bronze.ENTITIES.items()}


FACTS = ("silver.booking", "silver.ride", "silver.cancelled_ride", "silver.incompleted_ride")


def build_silver(br: dict[str, pd.DataFrame], prev: dict[str, pd.DataFrame] | None = None,
                 now: pd.Timestamp = T0, month: str | None = None) -> dict[str, pd.DataFrame]:
    """Every silver table as the catalog holds it after the writes (a month's write replaces that
    partition), the ``winners`` counts and the refs the checks need, like the notebooks do."""
    prev = prev or {}
    keys = br["bronze.booking"][["booking_id", "extraction_date", "source_file", "source_row", "extraction_month"]]
    won, _ = sv.winners(keys)
    out: dict[str, pd.DataFrame] = {"winners": sv.winner_counts(won)}
    for dim, (src, col) in DIMENSIONS.items():
        out[dim] = sv.build_dimension(br[src][col], prev.get(dim), f"{dim.split('.')[1]}_id", now)
    w = {t: sv.winning_rows(f, keys) for t, f in br.items()}
    out["silver.customer"] = sv.build_customer(w["bronze.customer"], prev.get("silver.customer"), now)
    dims = {d: out[d] for d in DIMENSIONS}
    parts = {}
    others = {t: _other_months(prev.get(t), month) for t in FACTS}
    parts["silver.booking"] = sv.build_booking(w["bronze.booking"], dims, prev.get("silver.booking"), now, month)
    parts["silver.ride"] = sv.build_ride(w["bronze.ride"], prev.get("silver.ride"), now, month)
    parts["silver.cancelled_ride"] = sv.build_cancelled_ride(
        w["bronze.cancelled_ride"], prev.get("silver.cancelled_ride"), now, month, others["silver.cancelled_ride"])
    parts["silver.incompleted_ride"] = sv.build_incompleted_ride(
        w["bronze.incompleted_ride"], prev.get("silver.incompleted_ride"), now, month, others["silver.incompleted_ride"])
    for t, part in parts.items():
        kept = [f for f in (others[t], part) if f is not None and len(f)]
        whole = sv.conform(pd.concat(kept, ignore_index=True), t) if kept else part
        out[t] = whole.sort_values(list(table_spec(t).key), kind="stable").reset_index(drop=True)
        out[OTHER_MONTHS.format(t)] = whole.iloc[0:0]  # checks on the whole table: nothing outside it
    return out


def _other_months(frame: pd.DataFrame | None, month: str | None) -> pd.DataFrame | None:
    if frame is None or month is None:
        return None
    return frame[frame["extraction_month"] != month].reset_index(drop=True)


SILVER = ["silver.vehicle_type", "silver.location", "silver.booking_status", "silver.payment_method",
          "silver.customer", "silver.booking", "silver.ride", "silver.cancelled_ride", "silver.incompleted_ride"]



@pytest.fixture
def sample() -> pd.DataFrame:
    return delivery([
        row("B1", "2024-01-05", source_row=1, customer_id="C1", vehicle_type="Go Mini"),
        row("B2", "2024-01-06", "Cancelled by Driver", source_row=2, customer_id="C2", vehicle_type="eBike"),
        row("B3", "2024-02-01", "Cancelled by Customer", source_row=3, customer_id="C1", vehicle_type="Bike"),
        row("B4", "2024-02-02", "Incomplete", source_row=4, customer_id="C3", pickup_location="Khandsa",
            drop_location="AIIMS"),
        row("B5", "2024-02-03", "No Driver Found", source_row=5, customer_id="C3"),
        # B1 again, later in the file: this row wins, its status and customer count
        row("B1", "2024-01-07", "Cancelled by Customer", source_row=6, customer_id="C2", vehicle_type="Auto"),
    ])


# ----------------------------------------------------------------------------- winner rule

def test_winners_pick_greatest_extraction_date_file_row_and_count_dropped() -> None:
    keys = pd.DataFrame({
        "booking_id": ["A", "A", "A", "B", "C", "C"],
        "extraction_date": pd.to_datetime(["2024-12-31", "2025-01-15", "2025-01-15", "2024-12-31",
                                           "2025-01-01", "2025-01-01"]),
        "source_file": ["f1.csv", "f0.csv", "f2.csv", "f1.csv", "f1.csv", "f1.csv"],
        "source_row": [9, 99, 1, 2, 7, 3],
        "payload": ["a-old", "a-mid", "a-win", "b", "c-win", "c-lose"],
    })
    won, dropped = sv.winners(keys)
    assert dropped == 3
    assert won["booking_id"].tolist() == ["A", "B", "C"]
    assert won["payload"].tolist() == ["a-win", "b", "c-win"]
    assert list(won.columns) == list(keys.columns)
    # deterministic: the input order does not matter
    shuffled, dropped2 = sv.winners(keys.sample(frac=1, random_state=3))
    pd.testing.assert_frame_equal(won, shuffled)
    assert dropped2 == 3


def test_winners_empty_and_no_duplicates() -> None:
    keys = pd.DataFrame({"booking_id": ["X", "Y"], "extraction_date": pd.to_datetime(["2024-01-01"] * 2),
                         "source_file": ["f", "f"], "source_row": [1, 2]})
    won, dropped = sv.winners(keys)
    assert dropped == 0 and len(won) == 2
    won, dropped = sv.winners(keys.iloc[0:0])
    assert dropped == 0 and won.empty


def test_winning_rows_follow_the_booking_winner(sample: pd.DataFrame) -> None:
    br = bronze_frames(sample)
    keys = br["bronze.booking"]
    pay = sv.winning_rows(br["bronze.payment_method"], keys)
    # B1's winning row (source_row 6) has no payment method: the losing row's UPI is not used
    assert "B1" not in set(pay["booking_id"])
    assert set(pay["booking_id"]) == {"B4"}
    loc = sv.winning_rows(br["bronze.location"], keys)
    assert len(loc) == 2 * 5
    assert loc.loc[loc["booking_id"] == "B1", "source_row"].tolist() == [6, 6]
    ride = sv.winning_rows(br["bronze.ride"], keys)
    assert ride.empty  # B1 completed only in its losing row
    cancelled = sv.winning_rows(br["bronze.cancelled_ride"], keys)
    assert sorted(cancelled["booking_id"]) == ["B1", "B2", "B3"]


def test_winning_rows_tolerate_datetime_units(sample: pd.DataFrame) -> None:
    br = bronze_frames(sample)
    keys = br["bronze.booking"].copy()
    keys["extraction_date"] = keys["extraction_date"].astype("datetime64[s]")
    other = br["bronze.customer"].copy()
    other["extraction_date"] = other["extraction_date"].astype("datetime64[ms]")
    assert len(sv.winning_rows(other, keys)) == 5


def test_later_extraction_date_beats_a_greater_source_row() -> None:
    d = delivery([
        row("B1", "2024-03-01", "Completed", source_row=50, source_file="z.csv", extraction_date="2024-12-31"),
        row("B1", "2024-03-02", "Incomplete", source_row=1, source_file="a.csv", extraction_date="2025-01-31"),
    ])
    s = build_silver(bronze_frames(d))
    assert s["silver.ride"].empty
    assert s["silver.incompleted_ride"]["booking_id"].tolist() == ["B1"]
    assert s["silver.booking"]["booking_date"].tolist() == [pd.Timestamp("2024-03-02")]


# ----------------------------------------------------------------------------- dimensions

def test_dimension_first_build_numbers_names_in_ascending_order() -> None:
    names = pd.Series(["eBike", "Auto", "Go Mini", None, "Bike", "Auto"], dtype="string")
    dim = sv.build_dimension(names, sv.empty("silver.vehicle_type"), "vehicle_type_id", T0)
    assert list(dim.columns) == table_spec("silver.vehicle_type").column_names
    # code-point order: upper case before lower case
    assert dim["name"].tolist() == ["Auto", "Bike", "Go Mini", "eBike"]
    assert dim["vehicle_type_id"].tolist() == [1, 2, 3, 4]
    assert (dim["created_at"] == T0).all() and (dim["updated_at"] == T0).all()
    assert str(dim["created_at"].dtype) == "datetime64[us, UTC]"
    none = sv.build_dimension(names, None, "vehicle_type_id", T0)
    pd.testing.assert_frame_equal(dim, none)


def test_dimension_second_load_keeps_ids_and_created_at() -> None:
    first = sv.build_dimension(pd.Series(["Bike", "Auto", "eBike"]), None, "vehicle_type_id", T0)
    second = sv.build_dimension(pd.Series(["Uber XL", "Auto", "Bike", "eBike", "Premier Sedan"]), first,
                                "vehicle_type_id", T1)
    ids = dict(zip(second["name"], second["vehicle_type_id"]))
    assert ids == {"Auto": 1, "Bike": 2, "eBike": 3, "Premier Sedan": 4, "Uber XL": 5}
    created = dict(zip(second["name"], second["created_at"]))
    assert created["Auto"] == T0 and created["eBike"] == T0 and created["Uber XL"] == T1
    assert (second["updated_at"] == T1).all()
    assert_checks_pass({"silver.vehicle_type": second}, ["silver.vehicle_type"])


def test_dimension_drops_absent_names_and_never_reuses_ids() -> None:
    first = sv.build_dimension(pd.Series(["A", "B", "C"]), None, "location_id", T0)
    second = sv.build_dimension(pd.Series(["A", "D"]), first, "location_id", T1)
    assert second[["location_id", "name"]].values.tolist() == [[1, "A"], [4, "D"]]


def test_dimension_accepts_catalog_shaped_existing() -> None:
    existing = pd.DataFrame({
        "payment_method_id": np.array([2, 1], dtype="int32"),
        "name": pd.Series(["UPI", "Cash"], dtype="str"),
        "created_at": pd.to_datetime(["2024-06-01 00:00:00"] * 2).tz_localize("UTC").astype("datetime64[us, UTC]"),
        "updated_at": pd.to_datetime(["2024-06-01 00:00:00"] * 2).tz_localize("UTC"),
    })
    dim = sv.build_dimension(pd.Series(["UPI", "Cash", "Debit Card"]), existing, "payment_method_id",
                             pd.Timestamp("2025-01-01 10:00"))  # naive now means UTC
    assert dict(zip(dim["name"], dim["payment_method_id"])) == {"Cash": 1, "UPI": 2, "Debit Card": 3}
    assert dim["updated_at"].iloc[0] == pd.Timestamp("2025-01-01 10:00", tz="UTC")
    assert dim.loc[dim["name"] == "UPI", "created_at"].iloc[0] == pd.Timestamp("2024-06-01", tz="UTC")


# ----------------------------------------------------------------------------- customer

def test_customer_over_winning_bookings(sample: pd.DataFrame) -> None:
    s = build_silver(bronze_frames(sample))
    c = s["silver.customer"].set_index("customer_id")
    assert c["total_bookings"].to_dict() == {"C1": 1, "C2": 2, "C3": 2}
    assert c.loc["C2", "first_seen_date"] == pd.Timestamp("2024-01-06")
    assert c.loc["C2", "last_seen_date"] == pd.Timestamp("2024-01-07")
    assert c.loc["C1", "first_seen_date"] == pd.Timestamp("2024-02-01")  # B1's losing row not counted
    assert int(c["total_bookings"].sum()) == len(s["silver.booking"]) == 5


def test_customer_created_at_survives_rebuild(sample: pd.DataFrame) -> None:
    first = build_silver(bronze_frames(sample), now=T0)
    more = delivery([row("B9", "2024-03-01", source_row=1, source_file="f2.csv", customer_id="C9"),
                     row("B8", "2024-03-02", source_row=2, source_file="f2.csv", customer_id="C1")])
    br = bronze_frames(pd.concat([sample, more], ignore_index=True))
    second = build_silver(br, prev=first, now=T1)
    c = second["silver.customer"].set_index("customer_id")
    assert c.loc["C1", "created_at"] == T0 and c.loc["C9", "created_at"] == T1
    assert (c["updated_at"] == T1).all()
    assert c.loc["C1", "total_bookings"] == 2 and c.loc["C1", "last_seen_date"] == pd.Timestamp("2024-03-02")


# ----------------------------------------------------------------------------- booking

def test_booking_ids_resolve_and_payment_null(sample: pd.DataFrame) -> None:
    s = build_silver(bronze_frames(sample))
    b = s["silver.booking"]
    assert list(b.columns) == table_spec("silver.booking").column_names
    assert b["booking_id"].tolist() == ["B1", "B2", "B3", "B4", "B5"]
    vt = dict(zip(s["silver.vehicle_type"]["name"], s["silver.vehicle_type"]["vehicle_type_id"]))
    assert b.set_index("booking_id").loc["B1", "vehicle_type_id"] == vt["Auto"]  # the winning row's type
    pm = b.set_index("booking_id")["payment_method_id"]
    assert pm.isna().tolist() == [True, True, True, False, True]
    assert b["booking_time"].map(type).eq(dt.time).all()
    assert b["extraction_month"].tolist() == ["2024-01", "2024-01", "2024-02", "2024-02", "2024-02"]
    assert_checks_pass(s, SILVER)


def test_unknown_name_leaves_null_id_and_checks_fail(sample: pd.DataFrame) -> None:
    br = bronze_frames(sample)
    s = build_silver(br)
    dims = {d: s[d] for d in DIMENSIONS}
    dims["silver.vehicle_type"] = dims["silver.vehicle_type"][dims["silver.vehicle_type"]["name"] != "Auto"]
    won = sv.winning_rows(br["bronze.booking"], br["bronze.booking"])
    b = sv.build_booking(won, dims, None, T0, None)
    assert len(b) == 5  # no row silently dropped
    assert b["vehicle_type_id"].isna().sum() == 3  # B1 (winning row), B4, B5 are Auto
    with pytest.raises(CheckError) as err:
        validate("silver.booking", b, {**s, **dims}, show=False)
    assert "silver.booking" in str(err.value) and "not_null(" in str(err.value)


def test_bad_vehicle_type_id_raises_check_error(sample: pd.DataFrame) -> None:
    s = build_silver(bronze_frames(sample))
    bad = s["silver.booking"].copy()
    bad.loc[0, "vehicle_type_id"] = 999
    with pytest.raises(CheckError) as err:
        validate("silver.booking", bad, s, show=False)
    msg = str(err.value)
    assert err.value.table == "silver.booking"
    assert "silver.booking" in msg
    assert "relationships(vehicle_type_id -> silver.vehicle_type.vehicle_type_id)" in msg
    assert "B1" in msg


def test_created_at_survives_rebuild_updated_at_changes(sample: pd.DataFrame) -> None:
    br = bronze_frames(sample)
    first = build_silver(br, now=T0)
    second = build_silver(br, prev=first, now=T1)
    for t in ("silver.booking", "silver.cancelled_ride", "silver.incompleted_ride", "silver.customer",
              "silver.location"):
        assert (second[t]["created_at"] == T0).all(), t
        assert (second[t]["updated_at"] == T1).all(), t
        cols = [c for c in second[t].columns if c != "updated_at"]
        pd.testing.assert_frame_equal(first[t][cols], second[t][cols])


def test_month_rebuild_leaves_other_months_exactly(sample: pd.DataFrame) -> None:
    first = build_silver(bronze_frames(sample), now=T0)
    # a second file corrects B3 (February) and adds a February booking
    more = delivery([
        row("B3", "2024-02-01", "Completed", source_row=1, source_file="f2.csv", extraction_date="2025-01-10",
            customer_id="C1", booking_value=300.0),
        row("B7", "2024-02-09", "Cancelled by Driver", source_row=2, source_file="f2.csv",
            extraction_date="2025-01-10", customer_id="C7"),
    ])
    br = bronze_frames(pd.concat([sample, more], ignore_index=True))
    second = build_silver(br, prev=first, now=T1, month="2024-02")
    for t in ("silver.booking", "silver.ride", "silver.cancelled_ride", "silver.incompleted_ride"):
        before = sv.month_slice(first[t], None)
        before = before[before["extraction_month"] != "2024-02"].reset_index(drop=True)
        after = second[t][second[t]["extraction_month"] != "2024-02"].reset_index(drop=True)
        pd.testing.assert_frame_equal(before, after, obj=t)
    feb = sv.month_slice(second["silver.booking"], "2024-02")
    assert sorted(feb["booking_id"]) == ["B3", "B4", "B5", "B7"]
    assert (feb["updated_at"] == T1).all()
    b3 = feb.set_index("booking_id").loc["B3"]
    assert b3["booking_value"] == 300.0 and b3["created_at"] == T0
    assert feb.set_index("booking_id").loc["B7", "created_at"] == T1
    assert sv.month_slice(second["silver.ride"], "2024-02")["booking_id"].tolist() == ["B3"]
    cancelled = second["silver.cancelled_ride"].set_index("booking_id")["cancellation_id"].to_dict()
    # first build by booking_date: B2 (01-06), B1 (01-07), B3 (02-01); B3 is no longer cancelled
    assert cancelled == {"B2": 1, "B1": 2, "B7": 4}  # id 3 is not reused; B7 is new: max + 1
    assert_checks_pass(second, SILVER)


def test_month_rebuild_over_catalog_shaped_existing(sample: pd.DataFrame) -> None:
    """``existing`` as the catalog returns it (date64[ms], float ids with NaN, str) still works."""
    from ridelake.tables.catalog import to_arrow

    first = build_silver(bronze_frames(sample), now=T0)
    read_back = {t: (to_arrow(t, f).to_pandas(date_as_object=False) if t in TABLES else f)
                 for t, f in first.items()}
    assert read_back["silver.booking"]["payment_method_id"].dtype.kind == "f"  # ints with nulls -> float
    second = build_silver(bronze_frames(sample), prev=read_back, now=T1, month="2024-02")
    for t in ("silver.booking", "silver.cancelled_ride"):
        jan_before = sv.conform(first[t][first[t]["extraction_month"] == "2024-01"], t)
        jan_after = second[t][second[t]["extraction_month"] == "2024-01"].reset_index(drop=True)
        pd.testing.assert_frame_equal(jan_before, jan_after, obj=t)
        assert (sv.month_slice(second[t], "2024-02")["created_at"] == T0).all()
    assert_checks_pass(second, SILVER)


def test_month_rebuild_with_a_booking_that_moved_month_fails_loudly(sample: pd.DataFrame) -> None:
    """A winner that moved to another month leaves a stale row in the month not rebuilt:
    the declared unique check stops the write (the caller must rebuild both months or all)."""
    first = build_silver(bronze_frames(sample), now=T0)
    moved = delivery([row("B2", "2024-02-20", "Cancelled by Driver", source_row=1, source_file="f2.csv",
                          extraction_date="2025-01-10", customer_id="C2")])
    br = bronze_frames(pd.concat([sample, moved], ignore_index=True))
    second = build_silver(br, prev=first, now=T1, month="2024-02")
    assert second["silver.booking"]["booking_id"].tolist().count("B2") == 2
    with pytest.raises(CheckError, match=r"(?s)silver.booking.*unique\(booking_id\)"):
        validate("silver.booking", second["silver.booking"], second, show=False)
    full = build_silver(br, prev=first, now=T1)
    assert full["silver.booking"]["booking_id"].tolist().count("B2") == 1
    assert full["silver.cancelled_ride"].set_index("booking_id").loc["B2", "cancellation_id"] == 1
    assert_checks_pass(full, SILVER)


def test_month_slice() -> None:
    f = pd.DataFrame({"x": [1, 2, 3], "extraction_month": ["2024-01", "2024-02", "2024-01"]}, index=[5, 6, 7])
    assert sv.month_slice(f, "2024-01")["x"].tolist() == [1, 3]
    assert sv.month_slice(f, "2024-01").index.tolist() == [0, 1]
    assert len(sv.month_slice(f, None)) == 3
    assert sv.month_slice(f, "2023-12").empty


# ----------------------------------------------------------------------------- facts

def test_ride_columns_and_values() -> None:
    d = delivery([row("R1", "2024-05-01", source_row=1, ride_distance=12.5, driver_rating=4.1),
                  row("R2", "2024-05-02", "No Driver Found", source_row=2)])
    s = build_silver(bronze_frames(d))
    r = s["silver.ride"]
    assert list(r.columns) == table_spec("silver.ride").column_names
    assert r["booking_id"].tolist() == ["R1"]
    assert r[["ride_distance", "driver_rating", "customer_rating", "booking_value"]].iloc[0].tolist() == \
        [12.5, 4.1, 4.8, 100.0]
    assert_checks_pass(s, SILVER)


def test_cancellation_id_first_build_order_and_stability() -> None:
    d = delivery([
        row("C9", "2024-01-02", "Cancelled by Driver", source_row=1),
        row("C1", "2024-01-03", "Cancelled by Customer", source_row=2),
        row("C5", "2024-01-02", "Cancelled by Customer", source_row=3),
        row("I2", "2024-01-04", "Incomplete", source_row=4),
        row("I1", "2024-01-04", "Incomplete", source_row=5),
    ])
    first = build_silver(bronze_frames(d), now=T0)
    c = first["silver.cancelled_ride"]
    # ascending (booking_date, booking_id): C5 and C9 on the 2nd, then C1
    assert c[["cancellation_id", "booking_id", "cancelled_by"]].values.tolist() == [
        [1, "C5", "customer"], [2, "C9", "driver"], [3, "C1", "customer"]]
    assert c.set_index("booking_id").loc["C5", "reason"] == "Wrong Address"
    assert first["silver.incompleted_ride"][["incompleted_id", "booking_id"]].values.tolist() == [[1, "I1"], [2, "I2"]]
    # rebuild with a new, earlier cancellation: old ids kept, the new one gets max + 1
    more = delivery([row("C0", "2024-01-01", "Cancelled by Driver", source_row=1, source_file="f2.csv"),
                     row("I0", "2024-01-01", "Incomplete", source_row=2, source_file="f2.csv")])
    second = build_silver(bronze_frames(pd.concat([d, more], ignore_index=True)), prev=first, now=T1)
    ids = second["silver.cancelled_ride"].set_index("booking_id")["cancellation_id"].to_dict()
    assert ids == {"C5": 1, "C9": 2, "C1": 3, "C0": 4}
    inc = second["silver.incompleted_ride"].set_index("booking_id")["incompleted_id"].to_dict()
    assert inc == {"I1": 1, "I2": 2, "I0": 3}
    # and a plain rebuild gives the same ids again
    third = build_silver(bronze_frames(pd.concat([d, more], ignore_index=True)), prev=second, now=T1)
    pd.testing.assert_frame_equal(second["silver.cancelled_ride"], third["silver.cancelled_ride"])
    assert_checks_pass(third, SILVER)


def test_fact_counts_agree_with_booking_statuses(sample: pd.DataFrame) -> None:
    s = build_silver(bronze_frames(sample))
    status = s["silver.booking_status"].set_index("booking_status_id")["name"]
    counts = s["silver.booking"]["booking_status_id"].map(status).value_counts().to_dict()
    assert counts == {"Cancelled by Customer": 2, "Cancelled by Driver": 1, "Incomplete": 1, "No Driver Found": 1}
    assert len(s["silver.cancelled_ride"]) == 3 and len(s["silver.incompleted_ride"]) == 1
    assert_checks_pass(s, SILVER)


def test_empty_bronze_gives_empty_tables() -> None:
    d = delivery([row("X", "2024-01-01")]).iloc[0:0]
    s = build_silver(bronze_frames(d))
    for t in SILVER:
        assert s[t].empty and list(s[t].columns) == table_spec(t).column_names, t


def test_inputs_are_not_mutated(sample: pd.DataFrame) -> None:
    br = bronze_frames(sample)
    copies = {t: f.copy() for t, f in br.items()}
    first = build_silver(br)
    prev = {t: f.copy() for t, f in first.items()}
    build_silver(br, prev=first, now=T1, month="2024-01")
    for t in br:
        pd.testing.assert_frame_equal(br[t], copies[t])
    for t in first:
        pd.testing.assert_frame_equal(first[t], prev[t])


def test_booking_transform_on_many_rows_keeps_one_row_per_booking() -> None:
    # speed is measured by `make bench`, never asserted here
    n = 20_000
    rng = np.random.default_rng(7)
    d = pd.DataFrame({
        "booking_id": pd.Series([f"CNR{i:07d}" for i in rng.integers(0, 10**7, n)], dtype="string"),
        "source_row": np.arange(1, n + 1), "source_file": "big.csv",
        "extraction_date": pd.Timestamp("2024-12-31"),
        "booking_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
        "booking_time": dt.time(10, 0), "customer_id": pd.Series([f"CID{i}" for i in rng.integers(0, 10**5, n)]),
        "vehicle_type": rng.choice(["Auto", "Bike"], n), "pickup_location": rng.choice(["A", "B", "C"], n),
        "drop_location": rng.choice(["D", "E"], n), "booking_status": "Completed",
        "payment_method": rng.choice(["UPI", "Cash"], n), "booking_value": rng.integers(50, 4000, n).astype(float),
    })
    d["extraction_month"] = d["booking_date"].dt.strftime("%Y-%m")
    keys = d[["booking_id", "extraction_date", "source_file", "source_row", "extraction_month"]]
    won = sv.winning_rows(d, keys)
    dims = {dim: sv.build_dimension(pd.concat([d["pickup_location"], d["drop_location"]])
                                    if dim == "silver.location" else d[col.replace("_name", "")],
                                    None, f"{dim.split('.')[1]}_id", T0)
            for dim, (_, col) in DIMENSIONS.items()}
    b = sv.build_booking(won, dims, None, T0, None)
    assert len(b) == d["booking_id"].nunique()


# ----------------------------------------------------------------------------- the winner rule in Arrow, month by month


def _random_keys(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "booking_id": [f"B{i}" for i in rng.integers(0, n // 3, n)],
        "extraction_date": pd.to_datetime("2025-01-01") + pd.to_timedelta(rng.integers(0, 3, n), unit="D"),
        "source_file": rng.choice(["a.csv", "b.csv", "é.csv"], n),
        "source_row": rng.integers(1, 50, n),
        "extraction_month": rng.choice(["2024-01", "2024-02"], n),
    })


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_decide_winners_in_arrow_agrees_with_the_pandas_rule(seed: int) -> None:
    import pyarrow as pa

    keys = _random_keys(600, seed)
    won, dropped = sv.winners(keys)
    table = pa.Table.from_pandas(keys, preserve_index=False)
    table = table.set_column(2, "source_file", table["source_file"].dictionary_encode())
    arrow = sv.decide_winners(table).to_pandas()
    arrow["source_file"] = arrow["source_file"].astype(str)
    cols = list(keys.columns)
    got = arrow[cols].sort_values("booking_id").reset_index(drop=True)
    want = won[cols].sort_values("booking_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got.astype(str), want.astype(str))
    assert len(table) - len(arrow) == dropped > 0


def test_customer_partials_add_up_to_the_totals(sample: pd.DataFrame) -> None:
    import pyarrow as pa

    rows = bronze_frames(sample)["bronze.customer"]
    parts = [sv.customer_partials(pa.Table.from_pandas(rows.iloc[a:b][["customer_id", "booking_date"]],
                                                       preserve_index=False)) for a, b in ((0, 2), (2, 4), (4, 6))]
    merged = sv.merge_customer_partials(parts).to_pandas().sort_values("customer_id").reset_index(drop=True)
    totals = sv.customer_totals(rows)
    pd.testing.assert_frame_equal(sv.build_customer_totals(merged, None, T0), sv.build_customer_totals(totals, None, T0))
    assert merged["total_bookings"].sum() == len(rows)


def test_a_month_slice_is_checked_against_the_other_months(sample: pd.DataFrame) -> None:
    first = build_silver(bronze_frames(sample), now=T0)
    moved = delivery([row("B2", "2024-02-20", "Cancelled by Driver", source_row=1, source_file="f2.csv",
                          extraction_date="2025-01-10", customer_id="C2")])
    br = bronze_frames(pd.concat([sample, moved], ignore_index=True))
    keys = br["bronze.booking"][["booking_id", "extraction_date", "source_file", "source_row", "extraction_month"]]
    winning = sv.winning_rows(br["bronze.booking"], keys)
    dims = {d: first[d] for d in DIMENSIONS}
    feb = sv.build_booking(winning, dims, first["silver.booking"], T1, "2024-02")
    assert set(feb["extraction_month"]) == {"2024-02"} and "B2" in set(feb["booking_id"])
    customers = sv.build_customer(sv.winning_rows(br["bronze.customer"], keys), None, T1)
    others = first["silver.booking"][first["silver.booking"]["extraction_month"] != "2024-02"][["booking_id"]]
    counts = sv.winner_counts(sv.winners(keys)[0])
    refs = {**dims, "silver.customer": customers, "winners": counts[counts["extraction_month"] == "2024-02"],
            OTHER_MONTHS.format("silver.booking"): others}
    with pytest.raises(CheckError, match=r"1 of \d+ checks failed(?s:.*)booking_id unique across months: .*'B2'"):
        validate("silver.booking", feb, refs, show=False)
    refs[OTHER_MONTHS.format("silver.booking")] = others[others["booking_id"] != "B2"]  # B2 rebuilt in both
    validate("silver.booking", feb, refs, show=False)


def test_a_month_rebuild_numbers_new_ids_after_every_month(sample: pd.DataFrame) -> None:
    first = build_silver(bronze_frames(sample), now=T0)
    jan = first["silver.cancelled_ride"][first["silver.cancelled_ride"]["extraction_month"] == "2024-01"]
    feb_only = first["silver.cancelled_ride"][first["silver.cancelled_ride"]["extraction_month"] == "2024-02"]
    more = delivery([row("B8", "2024-02-10", "Cancelled by Customer", source_row=9, customer_id="C8")])
    br = bronze_frames(pd.concat([sample, more], ignore_index=True))
    keys = br["bronze.booking"][["booking_id", "extraction_date", "source_file", "source_row", "extraction_month"]]
    w = sv.winning_rows(br["bronze.cancelled_ride"], keys)
    # only February's rows as existing (what a month run reads); January's ids come as `others`
    part = sv.build_cancelled_ride(w, feb_only, T1, "2024-02", jan[["booking_id", "cancellation_id"]])
    top = int(first["silver.cancelled_ride"]["cancellation_id"].max())
    assert part.set_index("booking_id").loc["B8", "cancellation_id"] == top + 1
    assert set(part["cancellation_id"]).isdisjoint(set(jan["cancellation_id"]))


def test_name_dimension_from_winning_names() -> None:
    counts = pd.Series({"Auto": 3, "Bike": 1})
    dim = sv.name_dimension("silver.vehicle_type", counts.index, None, T0)
    assert dim[["vehicle_type_id", "name"]].values.tolist() == [[1, "Auto"], [2, "Bike"]]


def test_created_at_is_the_earliest_of_existing_rows_of_the_same_booking(sample: pd.DataFrame) -> None:
    first = build_silver(bronze_frames(sample), now=T0)["silver.booking"]
    twice = pd.concat([first, first.assign(created_at=T1)], ignore_index=True)  # a stale copy, created later
    twice.loc[twice["booking_id"] == "B3", "created_at"] = pd.Timestamp("2023-06-01", tz="UTC")
    keys = bronze_frames(sample)["bronze.booking"][["booking_id", "extraction_date", "source_file", "source_row",
                                                    "extraction_month"]]
    dims = {d: build_silver(bronze_frames(sample), now=T0)[d] for d in DIMENSIONS}
    out = sv.build_booking(sv.winning_rows(bronze_frames(sample)["bronze.booking"], keys), dims, twice, T1, None)
    created = out.set_index("booking_id")["created_at"]
    assert created["B3"] == pd.Timestamp("2023-06-01", tz="UTC") and created["B1"] == T0


def test_earliest_by_key_takes_each_keys_earliest_stamp_in_any_row_order() -> None:
    ts = pd.Timestamp
    keys = pd.Series(["b", "a", "b", "c", "a", None, "d"], dtype="str")
    created = pd.Series([ts("2024-03-01"), ts("2024-05-01"), ts("2024-01-01"), pd.NaT, ts("2024-02-01"),
                         ts("2024-04-01"), ts("2024-06-01")], dtype="datetime64[us]")
    wanted = pd.Series(["a", "b", "c", "x", None, "d"], dtype="str")
    got = sv._earliest_by_key(wanted, keys, created)
    # a group-by minimum (NaT skipped) joined on the key, a null key matching a null key
    assert got.tolist()[:3] == [ts("2024-02-01"), ts("2024-01-01"), pd.NaT] and pd.isna(got[2]) and pd.isna(got[3])
    assert got[4] == ts("2024-04-01") and got[5] == ts("2024-06-01")
    in_order = sv._earliest_by_key(wanted, keys.iloc[[2, 0, 4, 1, 3, 5, 6]].reset_index(drop=True),
                                   created.iloc[[2, 0, 4, 1, 3, 5, 6]].reset_index(drop=True))
    assert in_order.equals(got)
    assert sv._earliest_by_key(wanted, keys.iloc[:0], created.iloc[:0]).isna().all()


@pytest.mark.parametrize("columns", [["m", "k"], ["k"], ["n", "k"]])
def test_sort_rows_is_pandas_stable_sort(columns) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"m": pd.Series(rng.choice(["2024-02", "2024-01", None], 200), dtype="str"),
                          "k": pd.Series([f"B{v}" for v in rng.integers(0, 50, 200)], dtype="str"),
                          "n": pd.Series(rng.integers(0, 4, 200), dtype="Int64").mask(rng.random(200) < 0.1),
                          "row": np.arange(200)}, index=rng.permutation(200))
    got = sv.sort_rows(frame, columns)
    want = frame.sort_values(columns, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
