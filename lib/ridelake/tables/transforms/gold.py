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

import pandas as pd

from ridelake.tables.schemas import table_spec
from ridelake.tables.transforms.silver import _day, _existing, _with_audit, conform, utc_now

__all__ = [
    "COLUMNS",
    "date_slice",
    "date_scope",
    "daily_booking_summary",
    "customer_analytics",
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
    prior = _existing(existing, ident)
    rows = pd.DataFrame({
        "booking_date": _day(booking["booking_date"]).to_numpy(),
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
    fresh = conform(_with_audit(agg, prior, key, now), ident)
    if day is None:
        return _finish(fresh, ident)
    kept = prior[_day(prior["booking_date"]) != day]
    parts = [p for p in (conform(kept, ident), fresh) if len(p)]
    return _finish(pd.concat(parts, ignore_index=True) if parts else fresh, ident)


def customer_analytics(
    customer: pd.DataFrame,
    booking: pd.DataFrame,
    existing: pd.DataFrame | None,
    now: pd.Timestamp,
) -> pd.DataFrame:
    """``gold.customer_analytics``: one row per silver customer.

    Args:
        customer: ``silver.customer``.
        booking: ``silver.booking``.
        existing: the gold table as it stands (None or empty on the first build).
        now: the refresh time.

    Returns:
        ``total_bookings``, ``total_spent`` (0.0 when no value), ``avg_booking_value`` (NaN when
        no value), first/last booking date (from the customer's bookings; from
        ``silver.customer`` for a customer without bookings) and ``lifetime_days``; sorted by
        ``customer_id``.
    """
    ident = "gold.customer_analytics"
    now = utc_now(now)
    prior = _existing(existing, ident)
    rows = pd.DataFrame({
        "customer_id": booking["customer_id"].astype("str").to_numpy(),
        "booking_value": pd.to_numeric(booking["booking_value"]).astype("float64").to_numpy(),
        "booking_date": _day(booking["booking_date"]).to_numpy(),
    })
    groups = rows.groupby("customer_id", sort=False)
    agg = pd.DataFrame({
        "total_bookings": groups.size(),
        "total_spent": groups["booking_value"].sum(min_count=0),
        "avg_booking_value": groups["booking_value"].mean(),
        "first_booking_date": groups["booking_date"].min(),
        "last_booking_date": groups["booking_date"].max(),
    })
    base = pd.DataFrame({
        "customer_id": customer["customer_id"].astype("str").to_numpy(),
        "first_seen_date": _day(customer["first_seen_date"]).to_numpy(),
        "last_seen_date": _day(customer["last_seen_date"]).to_numpy(),
    })
    out = base.join(agg, on="customer_id", how="left")
    out["total_bookings"] = out["total_bookings"].fillna(0).astype("int64")
    out["total_spent"] = out["total_spent"].fillna(0.0)
    out["first_booking_date"] = out["first_booking_date"].fillna(out["first_seen_date"])
    out["last_booking_date"] = out["last_booking_date"].fillna(out["last_seen_date"])
    out["lifetime_days"] = (out["last_booking_date"] - out["first_booking_date"]).dt.days.astype("int32")
    return _finish(_with_audit(out, prior, ["customer_id"], now), ident)


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
    prior = _existing(existing, ident)
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
    return _finish(_with_audit(out, prior, ["location_id"], now), ident)


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
    return frame[_day(frame["booking_date"]) == pd.Timestamp(target_date)].reset_index(drop=True)


def date_scope(target_date: dt.date | None) -> dict[str, dt.date]:
    """The rows a daily-summary write replaces: that date's, or (None) the whole table.

    Args:
        target_date: the recomputed date, or None.

    Returns:
        A ``where`` mapping for :func:`ridelake.tables.catalog.replace_rows` (empty = every row).
    """
    return {} if target_date is None else {"booking_date": target_date}
