"""Unit tests of the gold transforms (docs/contract.md §5), plus an end-to-end run on the real sample."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import assert_checks_pass

from ridelake.errors import CheckError
from ridelake.tables.quality import validate
from ridelake.tables.schemas import DIMENSIONS, OTHER_MONTHS, table_spec
from ridelake.tables.transforms import gold as gd
from ridelake.tables.transforms import silver as sv

T0 = pd.Timestamp("2025-01-01 08:00:00", tz="UTC")
T1 = pd.Timestamp("2025-02-01 09:30:00", tz="UTC")
SAMPLE = Path("/work/shared/fixtures/ncr_ride_bookings_real_sample.csv")
GOLD = ["gold.daily_booking_summary", "gold.customer_analytics", "gold.location_analytics"]


def dim(names: list[str], id_column: str) -> pd.DataFrame:
    return sv.build_dimension(pd.Series(names), None, id_column, T0)


VT = dim(["Auto", "Bike", "Uber XL"], "vehicle_type_id")  # 1, 2, 3
BS = dim(["Completed", "Cancelled by Driver", "No Driver Found"], "booking_status_id")
# Cancelled by Driver 1, Completed 2, No Driver Found 3
LOC = dim(["AIIMS", "Jhilmil", "Khandsa", "Palam Vihar", "Saket"], "location_id")
# AIIMS 1, Jhilmil 2, Khandsa 3, Palam Vihar 4 (only ever a drop), Saket 5 (never used)
PM = dim(["UPI"], "payment_method_id")


def bookings(rows: list[tuple]) -> pd.DataFrame:
    """silver.booking from (id, customer, vehicle_type_id, pickup, drop, status_id, value, date)."""
    f = pd.DataFrame(rows, columns=["booking_id", "customer_id", "vehicle_type_id", "pickup_location_id",
                                    "drop_location_id", "booking_status_id", "booking_value", "booking_date"])
    f["payment_method_id"] = np.where(f["booking_value"].notna(), 1, pd.NA)
    f["booking_date"] = pd.to_datetime(f["booking_date"])
    f["booking_time"] = dt.time(12, 0)
    f["extraction_month"] = f["booking_date"].dt.strftime("%Y-%m")
    f["created_at"] = T0
    f["updated_at"] = T0
    return sv.conform(f, "silver.booking")


def customers(booking: pd.DataFrame) -> pd.DataFrame:
    return sv.build_customer(booking[["booking_id", "customer_id", "booking_date"]], None, T0)


BOOKING = bookings([
    ("B1", "C1", 1, 1, 2, 2, 100.0, "2024-01-01"),
    ("B2", "C1", 1, 2, 1, 2, 300.0, "2024-01-01"),
    ("B3", "C1", 1, 1, 4, 1, None, "2024-01-01"),   # cancelled, no value
    ("B4", "C2", 2, 3, 3, 2, 50.0, "2024-01-02"),   # pickup == drop
    ("B5", "C2", 2, 3, 4, 3, None, "2024-01-05"),
    ("B6", "C3", 3, 1, 2, 1, None, "2024-01-02"),   # C3: only null values
])
CUSTOMER = customers(BOOKING)


def refs(**extra: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"silver.booking": BOOKING, "silver.customer": CUSTOMER, "silver.location": LOC,
            "silver.vehicle_type": VT, "silver.booking_status": BS, "silver.payment_method": PM, **extra}



# ----------------------------------------------------------------------------- daily summary

def test_daily_summary_groups_sums_and_null_values() -> None:
    out = gd.daily_booking_summary(BOOKING, VT, BS, None, T0, None)
    assert list(out.columns) == table_spec("gold.daily_booking_summary").column_names
    rows = {(r.booking_date.strftime("%Y-%m-%d"), r.vehicle_type_name, r.booking_status_name):
            (r.total_bookings, r.total_revenue, r.avg_booking_value) for r in out.itertuples()}
    assert rows[("2024-01-01", "Auto", "Completed")] == (2, 400.0, 200.0)
    n, revenue, avg = rows[("2024-01-01", "Auto", "Cancelled by Driver")]
    assert (n, revenue) == (1, 0.0) and np.isnan(avg)
    assert rows[("2024-01-02", "Bike", "Completed")] == (1, 50.0, 50.0)
    assert len(rows) == 5
    assert out["total_bookings"].sum() == len(BOOKING)
    assert out[["booking_date", "vehicle_type_name", "booking_status_name"]].equals(
        out[["booking_date", "vehicle_type_name", "booking_status_name"]].sort_values(
            ["booking_date", "vehicle_type_name", "booking_status_name"]).reset_index(drop=True))
    assert_checks_pass(refs(**{"gold.daily_booking_summary": out}), ["gold.daily_booking_summary"])


def test_daily_summary_target_date_recomputes_only_that_date() -> None:
    first = gd.daily_booking_summary(BOOKING, VT, BS, None, T0, None)
    # a later silver: one more booking on 01-02 and B1 became more expensive (01-01 is not recomputed)
    changed = BOOKING.copy()
    changed.loc[changed["booking_id"] == "B1", "booking_value"] = 999.0
    extra = bookings([("B7", "C9", 2, 1, 2, 2, 150.0, "2024-01-02")])
    later = pd.concat([changed, extra], ignore_index=True)
    out = gd.daily_booking_summary(later, VT, BS, first, T1, dt.date(2024, 1, 2))
    other = out[out["booking_date"] != pd.Timestamp("2024-01-02")].reset_index(drop=True)
    kept = first[first["booking_date"] != pd.Timestamp("2024-01-02")].reset_index(drop=True)
    pd.testing.assert_frame_equal(other, kept)
    day = out[out["booking_date"] == pd.Timestamp("2024-01-02")].set_index("vehicle_type_name")
    assert day.loc["Bike", "total_bookings"] == 2 and day.loc["Bike", "total_revenue"] == 200.0
    assert day.loc["Bike", "avg_booking_value"] == 100.0
    assert day.loc["Bike", "created_at"] == T0 and day.loc["Bike", "updated_at"] == T1  # existing group
    assert (day["updated_at"] == T1).all()


def test_daily_summary_target_date_without_bookings_removes_its_rows() -> None:
    first = gd.daily_booking_summary(BOOKING, VT, BS, None, T0, None)
    later = BOOKING[BOOKING["booking_date"] != pd.Timestamp("2024-01-05")]
    out = gd.daily_booking_summary(later, VT, BS, first, T1, pd.Timestamp("2024-01-05"))
    assert pd.Timestamp("2024-01-05") not in set(out["booking_date"])
    assert len(out) == len(first) - 1
    assert out["total_bookings"].sum() == len(later)


def test_daily_summary_rebuild_keeps_created_at() -> None:
    first = gd.daily_booking_summary(BOOKING, VT, BS, None, T0, None)
    second = gd.daily_booking_summary(BOOKING, VT, BS, first, T1, None)
    assert (second["created_at"] == T0).all() and (second["updated_at"] == T1).all()
    cols = [c for c in first.columns if c != "updated_at"]
    pd.testing.assert_frame_equal(first[cols], second[cols])


def test_daily_summary_unknown_vehicle_type_fails_loudly() -> None:
    bad = BOOKING.copy()
    bad.loc[0, "vehicle_type_id"] = 42
    out = gd.daily_booking_summary(bad, VT, BS, None, T0, None)
    assert out["total_bookings"].sum() == len(BOOKING)  # the row is not silently dropped
    with pytest.raises(CheckError) as err:
        validate("gold.daily_booking_summary", out, refs(), show=False)
    assert "gold.daily_booking_summary" in str(err.value) and "not_null(" in str(err.value)


# ----------------------------------------------------------------------------- customers

def test_customer_analytics_metrics() -> None:
    out = gd.customer_analytics(CUSTOMER, BOOKING, None, T0)
    assert list(out.columns) == table_spec("gold.customer_analytics").column_names
    c = out.set_index("customer_id")
    assert c.index.tolist() == ["C1", "C2", "C3"]
    assert c.loc["C1", ["total_bookings", "total_spent", "avg_booking_value"]].tolist() == [3, 400.0, 200.0]
    assert c.loc["C2", "lifetime_days"] == 3
    assert c.loc["C2", "first_booking_date"] == pd.Timestamp("2024-01-02")
    assert c.loc["C2", "last_booking_date"] == pd.Timestamp("2024-01-05")
    assert c.loc["C3", "total_spent"] == 0.0 and np.isnan(c.loc["C3", "avg_booking_value"])
    assert c.loc["C3", "lifetime_days"] == 0
    assert_checks_pass(refs(**{"gold.customer_analytics": out}), ["gold.customer_analytics"])


def test_customer_analytics_keeps_created_at_and_drops_nobody() -> None:
    first = gd.customer_analytics(CUSTOMER, BOOKING, None, T0)
    more = pd.concat([BOOKING, bookings([("B8", "C8", 1, 1, 2, 2, 70.0, "2024-02-01")])], ignore_index=True)
    second = gd.customer_analytics(customers(more), more, first, T1)
    c = second.set_index("customer_id")
    assert c.loc["C1", "created_at"] == T0 and c.loc["C8", "created_at"] == T1
    assert (c["updated_at"] == T1).all() and len(c) == 4


# ----------------------------------------------------------------------------- locations

def test_location_analytics_counts_and_averages() -> None:
    out = gd.location_analytics(LOC, BOOKING, None, T0)
    assert list(out.columns) == table_spec("gold.location_analytics").column_names
    loc = out.set_index("location_name")
    assert out["location_id"].tolist() == [1, 2, 3, 4, 5]
    # AIIMS: pickups B1 B3 B6, drop B2 -> avg over B1 100, B2 300 (B3, B6 null) = 200
    assert loc.loc["AIIMS", ["pickups", "dropoffs", "total_activity"]].tolist() == [3, 1, 4]
    assert loc.loc["AIIMS", "avg_booking_value"] == 200.0
    # Khandsa: B4 pickup == drop (50) and B5 pickup (null value)
    assert loc.loc["Khandsa", ["pickups", "dropoffs", "total_activity"]].tolist() == [2, 1, 3]
    assert loc.loc["Khandsa", "avg_booking_value"] == 50.0
    # Palam Vihar: only ever a drop (B3, B5 both null)
    assert loc.loc["Palam Vihar", ["pickups", "dropoffs", "total_activity"]].tolist() == [0, 2, 2]
    assert np.isnan(loc.loc["Palam Vihar", "avg_booking_value"])
    # Saket: never used
    assert loc.loc["Saket", ["pickups", "dropoffs", "total_activity"]].tolist() == [0, 0, 0]
    assert_checks_pass(refs(**{"gold.location_analytics": out}), ["gold.location_analytics"])


def test_location_pickup_equals_drop_counted_once_in_average() -> None:
    b = bookings([("X1", "C1", 1, 1, 1, 2, 100.0, "2024-01-01"),
                  ("X2", "C1", 1, 1, 2, 2, 400.0, "2024-01-01")])
    loc = gd.location_analytics(LOC, b, None, T0).set_index("location_name")
    # AIIMS touched by X1 (once, though both ends) and X2: (100 + 400) / 2, not (100 + 100 + 400) / 3
    assert loc.loc["AIIMS", "avg_booking_value"] == 250.0
    assert loc.loc["AIIMS", ["pickups", "dropoffs"]].tolist() == [2, 1]


def test_location_analytics_keeps_created_at() -> None:
    first = gd.location_analytics(LOC, BOOKING, None, T0)
    loc2 = sv.build_dimension(pd.Series(LOC["name"].tolist() + ["Vasant Kunj"]), LOC, "location_id", T1)
    second = gd.location_analytics(loc2, BOOKING, first, T1)
    assert second.set_index("location_name")["created_at"].to_dict()["AIIMS"] == T0
    assert second.set_index("location_name")["created_at"].to_dict()["Vasant Kunj"] == T1
    assert (second["updated_at"] == T1).all()


def test_gold_inputs_not_mutated() -> None:
    b, c, l, v, s = BOOKING.copy(), CUSTOMER.copy(), LOC.copy(), VT.copy(), BS.copy()
    first = gd.daily_booking_summary(BOOKING, VT, BS, None, T0, None)
    f2 = first.copy()
    gd.daily_booking_summary(BOOKING, VT, BS, first, T1, dt.date(2024, 1, 1))
    gd.customer_analytics(CUSTOMER, BOOKING, None, T0)
    gd.location_analytics(LOC, BOOKING, None, T0)
    for x, y in ((b, BOOKING), (c, CUSTOMER), (l, LOC), (v, VT), (s, BS), (f2, first)):
        pd.testing.assert_frame_equal(x, y)


# ----------------------------------------------------------------------------- the real sample

def _end_to_end(path: Path) -> dict[str, pd.DataFrame]:
    from ridelake.tables.source import prepare_file
    from ridelake.tables.transforms import bronze

    prepared = prepare_file(path, dt.date(2024, 12, 31))
    br = {t: f(prepared.accepted) for t, f in bronze.ENTITIES.items()}
    keys = br["bronze.booking"][["booking_id", "extraction_date", "source_file", "source_row", "extraction_month"]]
    won, dropped = sv.winners(keys)
    t: dict[str, pd.DataFrame] = {"winners": sv.winner_counts(won), "delivery": prepared.accepted}
    for d, (src, col) in DIMENSIONS.items():
        t[d] = sv.build_dimension(br[src][col], None, f"{d.split('.')[1]}_id", T0)
    w = {name: sv.winning_rows(frame, keys) for name, frame in br.items()}
    t["silver.customer"] = sv.build_customer(w["bronze.customer"], None, T0)
    t["silver.booking"] = sv.build_booking(w["bronze.booking"], {d: t[d] for d in DIMENSIONS}, None, T0, None)
    t["silver.ride"] = sv.build_ride(w["bronze.ride"], None, T0, None)
    t["silver.cancelled_ride"] = sv.build_cancelled_ride(w["bronze.cancelled_ride"], None, T0, None)
    t["silver.incompleted_ride"] = sv.build_incompleted_ride(w["bronze.incompleted_ride"], None, T0, None)
    for fact in ("silver.booking", "silver.ride", "silver.cancelled_ride", "silver.incompleted_ride"):
        t[OTHER_MONTHS.format(fact)] = t[fact].iloc[0:0]  # a whole build: no other months
    t["gold.daily_booking_summary"] = gd.daily_booking_summary(
        t["silver.booking"], t["silver.vehicle_type"], t["silver.booking_status"], None, T0, None)
    t["gold.customer_analytics"] = gd.customer_analytics(t["silver.customer"], t["silver.booking"], None, T0)
    t["gold.location_analytics"] = gd.location_analytics(t["silver.location"], t["silver.booking"], None, T0)
    t["_dropped"] = pd.DataFrame({"n": [dropped]})
    return t


def _independent(path: Path) -> pd.DataFrame:
    """The sample, deduplicated by the winner rule with plain pandas (one file: greatest row wins)."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    raw = raw.apply(lambda s: s.str.strip().str.strip('"').str.strip())
    raw = raw.replace({"null": None, "": None})
    raw["source_row"] = np.arange(1, len(raw) + 1)
    raw["value"] = pd.to_numeric(raw["Booking Value"])
    return raw.sort_values("source_row").drop_duplicates("Booking ID", keep="last")


@pytest.mark.skipif(not SAMPLE.is_file(), reason=f"real sample {SAMPLE} is absent")
def test_real_sample_end_to_end() -> None:
    t = _end_to_end(SAMPLE)
    silver = ["silver.vehicle_type", "silver.location", "silver.booking_status", "silver.payment_method",
              "silver.customer", "silver.booking", "silver.ride", "silver.cancelled_ride",
              "silver.incompleted_ride"]
    assert_checks_pass(t, silver + GOLD)
    for name in silver + GOLD:  # and through the raising entry point the notebooks use
        validate(name, t[name], t, show=False)

    src = _independent(SAMPLE)
    raw_rows = len(pd.read_csv(SAMPLE, dtype=str))
    assert len(t["silver.booking"]) == len(src) == raw_rows - int(t["_dropped"]["n"].iloc[0])
    assert len(t["silver.vehicle_type"]) == 7 and len(t["silver.location"]) == 176
    assert len(t["silver.ride"]) == int((src["Booking Status"] == "Completed").sum())

    # customer totals
    ca = t["gold.customer_analytics"].set_index("customer_id")
    g = src.groupby("Customer ID")
    expected = pd.DataFrame({"n": g.size(), "spent": g["value"].sum(), "avg": g["value"].mean()})
    assert ca["total_bookings"].sort_index().tolist() == expected["n"].sort_index().tolist()
    assert ca["total_spent"].sort_index().tolist() == expected["spent"].sort_index().tolist()
    assert np.array_equal(ca["avg_booking_value"].sort_index().to_numpy(),
                          expected["avg"].sort_index().to_numpy(), equal_nan=True)

    # daily revenue by vehicle type and status
    ds = t["gold.daily_booking_summary"]
    mine = ds.assign(d=ds["booking_date"].dt.strftime("%Y-%m-%d")).set_index(
        ["d", "vehicle_type_name", "booking_status_name"])[["total_bookings", "total_revenue"]].sort_index()
    g = src.groupby(["Date", "Vehicle Type", "Booking Status"])
    theirs = pd.DataFrame({"total_bookings": g.size(), "total_revenue": g["value"].sum()}).sort_index()
    assert mine.index.tolist() == theirs.index.tolist()
    assert mine["total_bookings"].tolist() == theirs["total_bookings"].tolist()
    assert mine["total_revenue"].tolist() == theirs["total_revenue"].tolist()

    # locations: pickups, dropoffs and the each-booking-once average
    la = t["gold.location_analytics"].set_index("location_name")
    pickups = src["Pickup Location"].value_counts()
    drops = src["Drop Location"].value_counts()
    assert la["pickups"].to_dict() == pickups.reindex(la.index, fill_value=0).to_dict()
    assert la["dropoffs"].to_dict() == drops.reindex(la.index, fill_value=0).to_dict()
    for name in la.index:
        touching = src[(src["Pickup Location"] == name) | (src["Drop Location"] == name)]
        exp = touching["value"].mean()
        got = la.loc[name, "avg_booking_value"]
        assert (np.isnan(exp) and np.isnan(got)) or got == exp, name


def test_customer_totals_added_up_in_batches_give_the_same_analytics() -> None:
    import pyarrow as pa

    booking = BOOKING
    rows = pa.table({"customer_id": pa.array(booking["customer_id"].astype(str)),
                     "booking_value": pa.array(booking["booking_value"], from_pandas=True),
                     "booking_date": pa.array(pd.to_datetime(booking["booking_date"]).dt.date, pa.date32())})
    parts = [gd.customer_partials(rows.slice(i, 2)) for i in range(0, rows.num_rows, 2)]
    totals = gd.merge_customer_partials(parts).to_pandas(date_as_object=False)
    pd.testing.assert_frame_equal(gd.customer_analytics_from_totals(CUSTOMER, totals, None, T0),
                                  gd.customer_analytics(CUSTOMER, BOOKING, None, T0))
