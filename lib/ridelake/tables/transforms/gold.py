"""Gold transforms: analytics rebuilt from silver (docs/contract.md §5).

Pure functions: each takes silver frames, the gold table as it stands (``existing``, possibly
empty) and the refresh time ``now``, and returns the gold table as it will be after the write,
with exactly the spec's columns, sorted by the table's key. ``created_at`` survives for rows
(groups, customers, locations) that already existed; ``updated_at`` is ``now``.

Metric rules (docs/contract.md §5):

* ``total_revenue`` / ``total_spent`` = sum of non-null ``booking_value`` (0.0 when all null).
* ``avg_booking_value`` = mean of non-null ``booking_value`` (NaN, i.e. null, when none).
* ``lifetime_days`` = ``last_booking_date - first_booking_date`` in days.
* ``total_activity`` = ``pickups + dropoffs``; a location's average is over the bookings that
  start or end there, each booking once (a booking with pickup == drop counts once).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ridelake.tables.schemas import table_spec
# the audit columns and the clock are the silver helpers' (one definition; gold re-exports utc_now
# so its notebooks need not import the silver transforms)
from ridelake.tables.transforms.silver import as_day, conform, existing_or_empty, utc_now, with_audit

__all__ = [
    "utc_now",
    "COLUMNS",
    "date_slice",
    "date_scope",
    "daily_booking_summary",
    "customer_analytics",
    "customer_analytics_from_totals",
    "customer_partials",
    "merge_customer_partials",
    "location_analytics",
]


#: The columns each gold table reads of its inputs (projection: nothing else is scanned).
COLUMNS: dict[str, dict[str, list[str]]] = {
    "gold.daily_booking_summary": {
        "silver.booking": ["booking_date", "vehicle_type_id", "booking_status_id", "booking_value"],
        "silver.vehicle_type": ["vehicle_type_id", "name"],
        "silver.booking_status": ["booking_status_id", "name"],
    },
    "gold.customer_analytics": {
        "silver.customer": ["customer_id", "first_seen_date", "last_seen_date"],
        "silver.booking": ["customer_id", "booking_value", "booking_date"],
    },
    "gold.location_analytics": {
        "silver.location": ["location_id", "name"],
        "silver.booking": ["pickup_location_id", "drop_location_id", "booking_value"],
    },
}


def _names(ids: pd.Series, dim: pd.DataFrame, id_column: str) -> pd.Series:
    """Map ids to names; an id missing from ``dim`` gives a null name (checks then fail loudly)."""
    mapping = pd.Series(dim["name"].astype("str").to_numpy(), index=pd.to_numeric(dim[id_column]).astype("int64"))
    mapping = mapping[~mapping.index.duplicated()]
    keys = pd.to_numeric(ids).astype("Int64")
    return keys.map(mapping).astype("str").where(keys.notna() & keys.isin(mapping.index))


def _finish(frame: pd.DataFrame, identifier: str) -> pd.DataFrame:
    spec = table_spec(identifier)
    out = conform(frame, identifier)
    return out.sort_values(list(spec.key), kind="stable").reset_index(drop=True)


def daily_booking_summary(
    booking: pd.DataFrame,
    vehicle_type: pd.DataFrame,
    booking_status: pd.DataFrame,
    existing: pd.DataFrame | None,
    now: pd.Timestamp,
    target_date: dt.date | None = None,
) -> pd.DataFrame:
    """``gold.daily_booking_summary``: bookings per date × vehicle type × status.

    Args:
        booking: ``silver.booking``.
        vehicle_type: ``silver.vehicle_type`` (``vehicle_type_id``, ``name``).
        booking_status: ``silver.booking_status`` (``booking_status_id``, ``name``).
        existing: the gold table as it stands (None or empty on the first build).
        now: the refresh time.
        target_date: recompute only this date's groups and keep every other date's rows exactly
            as they are in ``existing`` (a date without bookings loses its rows); None rebuilds
            every date.

    Returns:
        The whole table after the write: one row per group with at least one booking,
        ``total_bookings``, ``total_revenue`` (0.0 when no value), ``avg_booking_value`` (NaN
        when no value), sorted by (``booking_date``, ``vehicle_type_name``,
        ``booking_status_name``).
    """
    ident = "gold.daily_booking_summary"
    now = utc_now(now)
    prior = existing_or_empty(existing, ident)
    rows = pd.DataFrame({
        "booking_date": as_day(booking["booking_date"]).to_numpy(),
        "vehicle_type_name": _names(booking["vehicle_type_id"], vehicle_type, "vehicle_type_id").to_numpy(),
        "booking_status_name": _names(booking["booking_status_id"], booking_status, "booking_status_id").to_numpy(),
        "booking_value": pd.to_numeric(booking["booking_value"]).astype("float64").to_numpy(),
    })
    day = None if target_date is None else pd.Timestamp(target_date).normalize().tz_localize(None)
    if day is not None:
        rows = rows[rows["booking_date"] == day]
    key = ["booking_date", "vehicle_type_name", "booking_status_name"]
    groups = rows.groupby(key, dropna=False, sort=True)["booking_value"]
    agg = pd.DataFrame({
        "total_bookings": groups.size(),
        "total_revenue": groups.sum(min_count=0),
        "avg_booking_value": groups.mean(),
    }).reset_index()
    fresh = conform(with_audit(agg, prior, key, now), ident)
    if day is None:
        return _finish(fresh, ident)
    kept = prior[as_day(prior["booking_date"]) != day]
    parts = [p for p in (conform(kept, ident), fresh) if len(p)]
    return _finish(pd.concat(parts, ignore_index=True) if parts else fresh, ident)


def customer_partials(booking: pa.Table) -> pa.Table:
    """Per customer over a batch of ``silver.booking`` rows (``customer_id``, ``booking_value``,
    ``booking_date``): bookings, sum and count of values, first and last date. Add batches up with
    :func:`merge_customer_partials`."""
    grouped = booking.group_by("customer_id").aggregate([
        ([], "count_all"), ("booking_value", "sum"), ("booking_value", "count"),
        ("booking_date", "min"), ("booking_date", "max")])
    return grouped.rename_columns(["customer_id", *_PARTIALS])


_PARTIALS = ("total_bookings", "total_spent", "values", "first_booking_date", "last_booking_date")


def merge_customer_partials(parts: list[pa.Table]) -> pa.Table:
    """Add up :func:`customer_partials` tables (counts and sums added, earliest and latest dates)."""
    if not parts:
        return pa.table({"customer_id": pa.array([], pa.string()), "total_bookings": pa.array([], pa.int64()),
                         "total_spent": pa.array([], pa.float64()), "values": pa.array([], pa.int64()),
                         "first_booking_date": pa.array([], pa.date32()),
                         "last_booking_date": pa.array([], pa.date32())})
    merged = pa.concat_tables(parts).group_by("customer_id").aggregate([
        ("total_bookings", "sum"), ("total_spent", "sum"), ("values", "sum"),
        ("first_booking_date", "min"), ("last_booking_date", "max")])
    return merged.rename_columns(["customer_id", *_PARTIALS])


def customer_analytics(
    customer: pd.DataFrame,
    booking: pd.DataFrame,
    existing: pd.DataFrame | None,
    now: pd.Timestamp,
) -> pd.DataFrame:
    """``gold.customer_analytics``: one row per silver customer.

    Args:
        customer: ``silver.customer``.
        booking: ``silver.booking`` (at least ``customer_id``, ``booking_value``, ``booking_date``).
        existing: the gold table as it stands (None or empty on the first build).
        now: the refresh time.

    Returns:
        ``total_bookings``, ``total_spent`` (0.0 when no value), ``avg_booking_value`` (NaN when
        no value), first/last booking date (from the customer's bookings; from
        ``silver.customer`` for a customer without bookings) and ``lifetime_days``; sorted by
        ``customer_id``.
    """
    rows = pa.table({
        "customer_id": pa.array(booking["customer_id"].astype("str"), pa.string()),
        "booking_value": pa.array(pd.to_numeric(booking["booking_value"]).astype("float64"), from_pandas=True),
        "booking_date": pa.array(as_day(booking["booking_date"]).dt.date, pa.date32()),
    })
    totals = merge_customer_partials([customer_partials(rows)]).to_pandas(date_as_object=False)
    return customer_analytics_from_totals(customer, totals, existing, now)


def customer_analytics_from_totals(
    customer: pd.DataFrame,
    totals: pd.DataFrame,
    existing: pd.DataFrame | None,
    now: pd.Timestamp,
) -> pd.DataFrame:
    """``gold.customer_analytics`` from per-customer totals of ``silver.booking`` (added up batch by
    batch with :func:`customer_partials` and :func:`merge_customer_partials`).

    Args:
        customer: ``silver.customer`` (``customer_id``, ``first_seen_date``, ``last_seen_date``).
        totals: ``customer_id``, ``total_bookings``, ``total_spent``, ``values`` (bookings with a
            value), ``first_booking_date``, ``last_booking_date``.
        existing: the gold table as it stands, at least ``customer_id`` and ``created_at``.
        now: the refresh time.

    Returns:
        As :func:`customer_analytics`.
    """
    ident = "gold.customer_analytics"
    now = utc_now(now)
    prior = existing_or_empty(existing, ident)
    customer = customer.reset_index(drop=True)
    out = pd.DataFrame({  # Series, not .to_numpy(): a str column as NumPy is one Python object per row
        "customer_id": customer["customer_id"].astype("str"),
        "first_seen_date": as_day(customer["first_seen_date"]),
        "last_seen_date": as_day(customer["last_seen_date"]),
    })
    # each customer's totals row (one per customer): a hash lookup, not a join of two string columns
    ids = pa.array(out["customer_id"], from_pandas=True)
    have = pa.array(totals["customer_id"].astype("str"), from_pandas=True)
    at = pc.fill_null(pc.index_in(ids, value_set=have), -1).to_numpy(zero_copy_only=False).astype("int64")
    found = at >= 0
    at = np.where(found, at, 0)

    def column(name: str, dtype: str) -> np.ndarray:
        return pd.to_numeric(totals[name]).to_numpy(dtype=dtype)[at] if len(totals) else np.zeros(len(at), dtype)

    values = np.where(found, column("values", "int64"), 0)
    spent = np.where(found & (values > 0), column("total_spent", "float64"), 0.0)
    out["total_bookings"] = np.where(found, column("total_bookings", "int64"), 0)
    out["total_spent"] = spent
    out["avg_booking_value"] = np.where(values > 0, spent / np.maximum(values, 1), np.nan)
    for name, seen in (("first_booking_date", "first_seen_date"), ("last_booking_date", "last_seen_date")):
        days = as_day(totals[name]).to_numpy() if len(totals) else np.full(1, np.datetime64("NaT"), "datetime64[us]")
        got = days[at]
        out[name] = np.where(found & ~np.isnat(got), got, out[seen].to_numpy())
    out["lifetime_days"] = (out["last_booking_date"] - out["first_booking_date"]).dt.days.astype("int32")
    return _finish(with_audit(out, prior, ["customer_id"], now), ident)


def location_analytics(
    location: pd.DataFrame,
    booking: pd.DataFrame,
    existing: pd.DataFrame | None,
    now: pd.Timestamp,
) -> pd.DataFrame:
    """``gold.location_analytics``: one row per silver location.

    Args:
        location: ``silver.location`` (``location_id``, ``name``).
        booking: ``silver.booking``.
        existing: the gold table as it stands (None or empty on the first build).
        now: the refresh time.

    Returns:
        ``pickups``, ``dropoffs`` (0 for a location never used that way), ``total_activity``
        and ``avg_booking_value`` over the bookings starting or ending there, each booking once
        (NaN when none has a value); sorted by ``location_id``.
    """
    ident = "gold.location_analytics"
    now = utc_now(now)
    prior = existing_or_empty(existing, ident)
    pickup = pd.to_numeric(booking["pickup_location_id"]).astype("Int64")
    drop = pd.to_numeric(booking["drop_location_id"]).astype("Int64")
    value = pd.to_numeric(booking["booking_value"]).astype("float64")
    # each booking once per location: pickups + drops - the bookings that start and end there
    same = (pickup == drop).fillna(False).to_numpy(dtype=bool)
    frame = pd.DataFrame({"pickup": pickup, "drop": drop, "value": value})
    sums = (frame.groupby("pickup")["value"].sum().add(frame.groupby("drop")["value"].sum(), fill_value=0)
            .sub(frame[same].groupby("pickup")["value"].sum(), fill_value=0))
    counts = (frame.groupby("pickup")["value"].count().add(frame.groupby("drop")["value"].count(), fill_value=0)
              .sub(frame[same].groupby("pickup")["value"].count(), fill_value=0))
    avg = (sums / counts.where(counts > 0)).astype("float64")
    out = pd.DataFrame({
        "location_id": pd.to_numeric(location["location_id"]).astype("int64").to_numpy(),
        "location_name": location["name"].astype("str").to_numpy(),
    })
    out["pickups"] = out["location_id"].map(pickup.value_counts()).fillna(0).astype("int64")
    out["dropoffs"] = out["location_id"].map(drop.value_counts()).fillna(0).astype("int64")
    out["total_activity"] = out["pickups"] + out["dropoffs"]
    out["avg_booking_value"] = out["location_id"].map(avg).astype("float64")
    return _finish(with_audit(out, prior, ["location_id"], now), ident)


def date_slice(frame: pd.DataFrame, target_date: dt.date | None) -> pd.DataFrame:
    """The rows of ``gold.daily_booking_summary`` one run writes: that date's, or all (None).

    Args:
        frame: the summary as it will be after the write.
        target_date: the recomputed date, or None.

    Returns:
        The rows to write, index reset.
    """
    if target_date is None:
        return frame.reset_index(drop=True)
    return frame[as_day(frame["booking_date"]) == pd.Timestamp(target_date)].reset_index(drop=True)


def date_scope(target_date: dt.date | None) -> dict[str, dt.date]:
    """The rows a daily-summary write replaces: that date's, or (None) the whole table.

    Args:
        target_date: the recomputed date, or None.

    Returns:
        A ``where`` mapping for :func:`ridelake.tables.catalog.replace_rows` (empty = every row).
    """
    return {} if target_date is None else {"booking_date": target_date}
