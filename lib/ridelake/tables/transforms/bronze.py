"""Bronze transforms: clean and validate a delivery's rows (docs/contract.md §2), split them per entity (§3).

The prepare step turns the raw text fields of a delivery into typed, cleaned rows and sets the
bad ones aside with a reason a person can act on. Each bronze entity is then a projection of
the accepted rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ridelake.errors import CheckError, SourceError
from ridelake.tables.schemas import STATUSES

__all__ = [
    "SOURCE_COLUMNS",
    "COLUMN_MAP",
    "REQUIRED_FIELDS",
    "STATUSES",
    "PreparedDelivery",
    "check_header",
    "clean_text",
    "prepare_delivery",
    "write_scope",
    "rejected_scope",
    "customer",
    "vehicle_type",
    "location",
    "booking_status",
    "payment_method",
    "booking",
    "ride",
    "cancelled_ride",
    "incompleted_ride",
    "ENTITIES",
]

#: The source header, in file order (docs/contract.md §1).
SOURCE_COLUMNS: tuple[str, ...] = (
    "Date", "Time", "Booking ID", "Booking Status", "Customer ID", "Vehicle Type", "Pickup Location",
    "Drop Location", "Avg VTAT", "Avg CTAT", "Cancelled Rides by Customer",
    "Reason for cancelling by Customer", "Cancelled Rides by Driver", "Driver Cancellation Reason",
    "Incomplete Rides", "Incomplete Rides Reason", "Booking Value", "Ride Distance", "Driver Ratings",
    "Customer Rating", "Payment Method",
)

#: Source column -> snake_case name in the prepared delivery. ``Date``/``Time`` become
#: ``booking_date``/``booking_time``, the names the bronze tables use.
COLUMN_MAP: dict[str, str] = {
    "Date": "booking_date",
    "Time": "booking_time",
    "Booking ID": "booking_id",
    "Booking Status": "booking_status",
    "Customer ID": "customer_id",
    "Vehicle Type": "vehicle_type",
    "Pickup Location": "pickup_location",
    "Drop Location": "drop_location",
    "Avg VTAT": "avg_vtat",
    "Avg CTAT": "avg_ctat",
    "Cancelled Rides by Customer": "cancelled_rides_by_customer",
    "Reason for cancelling by Customer": "reason_for_cancelling_by_customer",
    "Cancelled Rides by Driver": "cancelled_rides_by_driver",
    "Driver Cancellation Reason": "driver_cancellation_reason",
    "Incomplete Rides": "incomplete_rides",
    "Incomplete Rides Reason": "incomplete_rides_reason",
    "Booking Value": "booking_value",
    "Ride Distance": "ride_distance",
    "Driver Ratings": "driver_rating",
    "Customer Rating": "customer_rating",
    "Payment Method": "payment_method",
}

REQUIRED_FIELDS: tuple[str, ...] = (
    "Date", "Time", "Booking ID", "Booking Status", "Customer ID", "Vehicle Type", "Pickup Location",
    "Drop Location",
)
_DOUBLES = ("Avg VTAT", "Avg CTAT", "Booking Value", "Ride Distance", "Driver Ratings", "Customer Rating")
_FLAGS = ("Cancelled Rides by Customer", "Cancelled Rides by Driver", "Incomplete Rides")
_RATINGS = ("Driver Ratings", "Customer Rating")
_NON_NEGATIVE = ("Booking Value", "Ride Distance", "Avg VTAT", "Avg CTAT")
_NUMBER_RE = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_META = ["booking_id", "source_row", "source_file", "extraction_date", "extraction_month"]


def check_header(header: Sequence[str], source_file: str = "") -> None:
    """Refuse a file whose header lacks a required column.

    Args:
        header: the header's column names (stripped).
        source_file: the file's name, for the message.

    Raises:
        SourceError: naming every missing column; nothing must be written then.
    """
    missing = [c for c in SOURCE_COLUMNS if c not in set(header)]
    if missing:
        where = f"{source_file}: " if source_file else ""
        raise SourceError(
            f"{where}header lacks required column(s): {', '.join(missing)} "
            f"(found: {', '.join(header) or 'nothing'})"
        )


def clean_text(values: pd.Series) -> pd.Series:
    """Strip whitespace and double quotes; the literal ``null`` and empty strings become null.

    Args:
        values: raw text fields (may hold None).

    Returns:
        A string Series with missing values as NA.
    """
    s = values.astype("string")
    s = s.str.strip().str.strip('"').str.strip()
    return s.mask(s.isna() | (s == "") | (s.str.lower() == "null"))


@dataclass
class PreparedDelivery:
    """The outcome of preparing one delivery.

    Attributes:
        accepted: typed, cleaned rows with the bronze metadata columns.
        rejected: the ``bronze.rejected_row`` rows.
        rows_in_file: data rows in the file.
        out_of_scope: rows of other months skipped because of ``extraction_month``.
        months: the booking months this load covers (the write scope).
    """

    accepted: pd.DataFrame
    rejected: pd.DataFrame
    rows_in_file: int
    out_of_scope: int
    months: list[str] = field(default_factory=list)

    def check_reconciled(self) -> None:
        """Raise unless file rows = accepted + rejected (+ rows of other months when filtered).

        Raises:
            CheckError: with the counts.
        """
        total = len(self.accepted) + len(self.rejected) + self.out_of_scope
        if total != self.rows_in_file:
            raise CheckError(
                f"reconciliation failed: {self.rows_in_file} data rows in the file but "
                f"{len(self.accepted)} accepted + {len(self.rejected)} rejected + {self.out_of_scope} "
                f"of other months = {total}",
                table="bronze.rejected_row",
            )

    @property
    def summary(self) -> pd.DataFrame:
        """Reconciliation: file rows = accepted + rejected (+ rows of other months when filtered)."""
        return pd.DataFrame(
            {
                "rows_in_file": [self.rows_in_file],
                "accepted": [len(self.accepted)],
                "rejected": [len(self.rejected)],
                "other_months": [self.out_of_scope],
                "reconciled": [self.rows_in_file == len(self.accepted) + len(self.rejected) + self.out_of_scope],
            }
        )


def _append(reason: pd.Series, mask: pd.Series, message: pd.Series | str) -> pd.Series:
    mask = mask.fillna(False).astype(bool)
    if not mask.any():
        return reason
    msg = message if isinstance(message, pd.Series) else pd.Series(message, index=reason.index)
    joined = (reason + "; " + msg).where(reason != "", msg)
    return joined.where(mask, reason)


def _quoted(values: pd.Series) -> pd.Series:
    return "'" + values.fillna("").astype(str) + "'"


def prepare_delivery(
    raw: pd.DataFrame,
    source_file: str,
    extraction_date: dt.date,
    extraction_month: str | None = None,
    expected_fields: int = len(SOURCE_COLUMNS),
) -> PreparedDelivery:
    """Parse, clean, type and validate a delivery's rows (docs/contract.md §2).

    Args:
        raw: one row per data row of the file with ``source_row`` (1-based), ``raw_line``,
            ``n_fields`` and one text column per source header name.
        source_file: the file's base name.
        extraction_date: the delivery's extraction date.
        extraction_month: ``YYYY-MM`` to keep only that booking month, or None.
        expected_fields: number of columns in the file's header.

    Returns:
        A :class:`PreparedDelivery` whose counts reconcile with the file.
    """
    check_header([c for c in raw.columns if c not in ("source_row", "raw_line", "n_fields")], source_file)
    raw = raw.reset_index(drop=True)
    n = len(raw)
    text = {c: clean_text(raw[c]) if n else raw[c].astype("string") for c in SOURCE_COLUMNS}
    reason = pd.Series("", index=raw.index, dtype="string")

    wrong = raw["n_fields"] != expected_fields
    reason = _append(reason, wrong, "expected " + str(expected_fields) + " fields, found "
                     + raw["n_fields"].astype(str))
    ok = ~wrong
    for col in REQUIRED_FIELDS:
        reason = _append(reason, ok & text[col].isna(), f"{col}: missing value")

    date_text = text["Date"]
    dates = pd.to_datetime(date_text.where(date_text.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False)),
                           format="%Y-%m-%d", errors="coerce")
    reason = _append(reason, ok & date_text.notna() & dates.isna(),
                     "Date: not a date (YYYY-MM-DD): " + _quoted(date_text))
    time_text = text["Time"]
    times = pd.to_datetime(time_text.where(time_text.str.fullmatch(r"\d{2}:\d{2}:\d{2}").fillna(False)),
                           format="%H:%M:%S", errors="coerce")
    reason = _append(reason, ok & time_text.notna() & times.isna(),
                     "Time: not a time (HH:MM:SS): " + _quoted(time_text))

    status = text["Booking Status"]
    reason = _append(reason, ok & status.notna() & ~status.isin(STATUSES),
                     "Booking Status: unknown value " + _quoted(status))

    numbers: dict[str, pd.Series] = {}
    for col in _DOUBLES + _FLAGS:
        t = text[col]
        is_num = t.str.fullmatch(_NUMBER_RE).fillna(False).astype(bool)
        reason = _append(reason, ok & t.notna() & ~is_num, f"{col}: not a number: " + _quoted(t))
        numbers[col] = pd.to_numeric(t.where(is_num), errors="coerce").astype("float64")
    for col in _RATINGS:
        v = numbers[col]
        reason = _append(reason, ok & ((v < 1) | (v > 5)), f"{col}: outside 1..5: " + _quoted(text[col]))
    for col in _NON_NEGATIVE:
        v = numbers[col]
        reason = _append(reason, ok & (v < 0), f"{col}: negative: " + _quoted(text[col]))
    for col in _FLAGS:
        v = numbers[col]
        reason = _append(reason, ok & v.notna() & (v != np.floor(v)), f"{col}: not a whole number: "
                         + _quoted(text[col]))

    month = dates.dt.strftime("%Y-%m").astype("string")
    in_scope = pd.Series(True, index=raw.index)
    if extraction_month is not None:
        # rows of other months are outside this load; rows whose month is unknown stay (rejected)
        in_scope = month.isna() | (month == extraction_month)
    bad = (reason != "") & in_scope
    good = (reason == "") & in_scope

    rejected = pd.DataFrame(
        {
            "source_file": source_file,
            "source_row": raw["source_row"].astype("int64"),
            "extraction_date": pd.Timestamp(extraction_date),
            "extraction_month": month,
            "booking_id": text["Booking ID"].where(ok),
            "reason": reason,
            "raw_line": raw["raw_line"].astype("string"),
        }
    )[bad].reset_index(drop=True)

    acc = pd.DataFrame({COLUMN_MAP[c]: text[c] for c in SOURCE_COLUMNS})[good]
    acc["booking_date"] = dates[good].dt.normalize()
    acc["booking_time"] = times[good].dt.time
    for col in _DOUBLES:
        acc[COLUMN_MAP[col]] = numbers[col][good]
    for col in _FLAGS:
        acc[COLUMN_MAP[col]] = numbers[col][good].astype("Int64")
    acc.insert(0, "source_row", raw["source_row"][good].astype("int64"))
    acc["source_file"] = source_file
    acc["extraction_date"] = pd.Timestamp(extraction_date)
    acc["extraction_month"] = month[good]
    acc = acc.reset_index(drop=True)

    covered = set(month[in_scope].dropna().unique())
    if extraction_month is not None:
        covered.add(extraction_month)
    return PreparedDelivery(
        accepted=acc,
        rejected=rejected,
        rows_in_file=n,
        out_of_scope=int((~in_scope).sum()),
        months=sorted(covered),
    )


def rejected_scope(source_file: str, extraction_month: str | None) -> dict[str, Any]:
    """The ``bronze.rejected_row`` rows a load replaces.

    A whole-file load replaces every rejected row of the file; a one-month load replaces that
    month's and the rows whose month could not be read (they are rejected again by every load).

    Args:
        source_file: base name of the delivery.
        extraction_month: the load's month filter, or None.

    Returns:
        A ``where`` mapping for :func:`ridelake.tables.catalog.replace_rows`.
    """
    if extraction_month is None:
        return {"source_file": source_file}
    return {"source_file": source_file, "extraction_month": [extraction_month, None]}


def write_scope(source_file: str, months: Sequence[str]) -> dict[str, Any]:
    """The rows a bronze load replaces (docs/contract.md §3): this file's rows in the months it covers.

    Args:
        source_file: base name of the delivery.
        months: the months the load covers.

    Returns:
        A ``where`` mapping for :func:`ridelake.tables.catalog.replace_rows`.
    """
    return {"source_file": source_file, "extraction_month": list(months)}


def _meta(delivery: pd.DataFrame) -> pd.DataFrame:
    return delivery[_META].copy()


def _with(delivery: pd.DataFrame, mask: pd.Series | None, columns: dict[str, str]) -> pd.DataFrame:
    rows = delivery if mask is None else delivery[mask]
    out = rows[_META].copy()
    for target, source in columns.items():
        out[target] = rows[source]
    return out.reset_index(drop=True)


def customer(delivery: pd.DataFrame) -> pd.DataFrame:
    """``bronze.customer``: every accepted row's customer and booking date."""
    return _with(delivery, None, {"customer_id": "customer_id", "booking_date": "booking_date"})


def vehicle_type(delivery: pd.DataFrame) -> pd.DataFrame:
    """``bronze.vehicle_type``: every accepted row's vehicle type."""
    return _with(delivery, None, {"vehicle_type_name": "vehicle_type"})


def location(delivery: pd.DataFrame) -> pd.DataFrame:
    """``bronze.location``: two rows per accepted row, its pickup and its drop."""
    pickup = _with(delivery, None, {"location_name": "pickup_location"}).assign(location_type="pickup")
    drop = _with(delivery, None, {"location_name": "drop_location"}).assign(location_type="drop")
    both = pd.concat([pickup, drop], ignore_index=True)
    order = both["location_type"].map({"pickup": 0, "drop": 1})
    return both.assign(_o=order).sort_values(["source_row", "_o"], kind="stable").drop(columns="_o").reset_index(drop=True)


def booking_status(delivery: pd.DataFrame) -> pd.DataFrame:
    """``bronze.booking_status``: every accepted row's status."""
    return _with(delivery, None, {"booking_status_name": "booking_status"})


def payment_method(delivery: pd.DataFrame) -> pd.DataFrame:
    """``bronze.payment_method``: the accepted rows that have a payment method."""
    return _with(delivery, delivery["payment_method"].notna(), {"payment_method_name": "payment_method"})


def booking(delivery: pd.DataFrame) -> pd.DataFrame:
    """``bronze.booking``: every accepted row with its booking attributes."""
    cols = ["customer_id", "vehicle_type", "pickup_location", "drop_location", "booking_status",
            "payment_method", "booking_value", "booking_date", "booking_time"]
    return _with(delivery, None, {c: c for c in cols})


def ride(delivery: pd.DataFrame) -> pd.DataFrame:
    """``bronze.ride``: the accepted rows with status ``Completed``."""
    cols = ["ride_distance", "driver_rating", "customer_rating", "avg_vtat", "avg_ctat", "booking_value",
            "booking_date"]
    return _with(delivery, delivery["booking_status"] == "Completed", {c: c for c in cols})


def cancelled_ride(delivery: pd.DataFrame) -> pd.DataFrame:
    """``bronze.cancelled_ride``: rows cancelled by the customer or the driver, with who and why."""
    by_customer = delivery["booking_status"] == "Cancelled by Customer"
    by_driver = delivery["booking_status"] == "Cancelled by Driver"
    rows = delivery[by_customer | by_driver]
    out = _meta(rows)
    is_customer = rows["booking_status"] == "Cancelled by Customer"
    out["cancelled_by"] = np.where(is_customer, "customer", "driver")
    out["cancelled_by"] = out["cancelled_by"].astype("string")
    out["reason"] = rows["reason_for_cancelling_by_customer"].where(is_customer, rows["driver_cancellation_reason"])
    out["booking_date"] = rows["booking_date"]
    return out.reset_index(drop=True)


def incompleted_ride(delivery: pd.DataFrame) -> pd.DataFrame:
    """``bronze.incompleted_ride``: rows with status ``Incomplete`` and their reason."""
    return _with(delivery, delivery["booking_status"] == "Incomplete",
                 {"reason": "incomplete_rides_reason", "booking_date": "booking_date"})


#: Bronze entity table -> its transform.
ENTITIES = {
    "bronze.customer": customer,
    "bronze.vehicle_type": vehicle_type,
    "bronze.location": location,
    "bronze.booking_status": booking_status,
    "bronze.payment_method": payment_method,
    "bronze.booking": booking,
    "bronze.ride": ride,
    "bronze.cancelled_ride": cancelled_ride,
    "bronze.incompleted_ride": incompleted_ride,
}
