"""Silver transforms: winners, stable dimensions and the fact tables (docs/contract.md §4).

Every function is pure: it takes bronze frames, the silver table as it stands (``existing``,
possibly empty) and the refresh time ``now``, and returns the silver table as it will be after
the write. The notebooks read and write; nothing here does I/O.

Conventions (see :mod:`ridelake.tables.catalog`): dates are ``datetime64`` at midnight, times are
``datetime.time`` objects, audit timestamps are UTC ``datetime64[us, UTC]``. Output frames have
exactly the columns of the table's spec (:func:`ridelake.tables.schemas.table_spec`), in that order,
sorted by the table's key.

Decisions the contract leaves open (documented here, tested in ``tests/test_silver.py``):

* Ties on the full winner key (``extraction_date``, ``source_file``, ``source_row``) cannot occur
  in bronze; ``extraction_month`` is used as a last tie-breaker so the choice stays deterministic.
* New dimension ids start after the largest id of the *whole* existing table, including names
  that are no longer present, so an id is never reused for another name.
* New ``cancellation_id`` / ``incompleted_id`` values likewise start after the largest existing
  id. With ``extraction_month`` only the rows of that month are (re)numbered.
* ``created_at`` of a fact row is taken from any existing row with the same ``booking_id``
  (whatever its month), so a booking keeps its creation time if its winning row moves month.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ridelake.tables.schemas import table_spec
from ridelake.tables.schemas import DIMENSIONS

__all__ = [
    "as_day",
    "existing_or_empty",
    "sort_rows",
    "with_audit",
    "WINNER_KEY",
    "FACT_NAMES",
    "INPUT_COLUMNS",
    "empty",
    "utc_now",
    "winners",
    "winning_rows",
    "decide_winners",
    "winner_counts",
    "build_dimension",
    "name_dimension",
    "customer_totals",
    "customer_partials",
    "merge_customer_partials",
    "build_customer_totals",
    "build_customer",
    "build_booking",
    "build_ride",
    "build_cancelled_ride",
    "build_incompleted_ride",
    "month_slice",
    "month_scope",
    "dimension",
    "conform",
]

#: The winner rule's ordering (docs/contract.md §4): the greatest tuple wins.
WINNER_KEY: tuple[str, ...] = ("extraction_date", "source_file", "source_row")

#: silver.booking id column -> (dimension table, bronze.booking name column).
FACT_NAMES: dict[str, tuple[str, str]] = {
    "vehicle_type_id": ("silver.vehicle_type", "vehicle_type"),
    "pickup_location_id": ("silver.location", "pickup_location"),
    "drop_location_id": ("silver.location", "drop_location"),
    "booking_status_id": ("silver.booking_status", "booking_status"),
    "payment_method_id": ("silver.payment_method", "payment_method"),
}

#: Silver fact -> the columns of its winning bronze rows its transform reads.
INPUT_COLUMNS: dict[str, list[str]] = {
    "silver.booking": ["booking_id", "customer_id", "vehicle_type", "pickup_location", "drop_location",
                       "booking_status", "payment_method", "booking_value", "booking_date", "booking_time",
                       "extraction_month"],
    "silver.ride": ["booking_id", "booking_date", "ride_distance", "driver_rating", "customer_rating", "avg_vtat",
                    "avg_ctat", "booking_value", "extraction_month"],
    "silver.cancelled_ride": ["booking_id", "booking_date", "cancelled_by", "reason", "extraction_month"],
    "silver.incompleted_ride": ["booking_id", "booking_date", "reason", "extraction_month"],
}

_TS = "datetime64[us, UTC]"
_DAY = "datetime64[us]"


# ----------------------------------------------------------------------------- helpers

def utc_now(now: pd.Timestamp | str | None = None) -> pd.Timestamp:
    """Normalise a refresh time to a UTC, microsecond-precision timestamp.

    Args:
        now: a timestamp (naive means UTC), an ISO string, or None for the current time.

    Returns:
        A tz-aware UTC :class:`pandas.Timestamp` truncated to microseconds.
    """
    ts = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.floor("us")


def as_day(values: pd.Series) -> pd.Series:
    """Dates (date objects, strings or datetime64 of any unit) as ``datetime64[us]`` at midnight."""
    out = pd.to_datetime(values)
    if isinstance(out.dtype, pd.DatetimeTZDtype):
        out = out.dt.tz_localize(None)
    return out.dt.normalize().astype(_DAY)


def _ts(values: pd.Series) -> pd.Series:
    """Timestamps as ``datetime64[us, UTC]`` (naive values are taken as UTC)."""
    return pd.to_datetime(values, utc=True).astype(_TS)


def _pandas_dtype(kind: str, nullable: bool) -> str | None:
    return {
        "int": "Int32" if nullable else "int32",
        "long": "Int64" if nullable else "int64",
        "double": "float64",
        "string": "str",
    }.get(kind)


def conform(frame: pd.DataFrame, identifier: str) -> pd.DataFrame:
    """Select a table's columns in spec order and give them the ridelake in-memory dtypes.

    Integer columns become ``int32``/``int64`` (nullable ``Int32``/``Int64`` when they hold
    nulls or the column is optional), doubles ``float64``, strings ``str``, dates
    ``datetime64[us]`` at midnight, timestamps ``datetime64[us, UTC]``; times stay
    ``datetime.time`` objects.

    Args:
        frame: holds at least every column of the table.
        identifier: ``<namespace>.<table>``.

    Returns:
        A new frame with exactly the spec's columns, index reset.
    """
    spec = table_spec(identifier)
    out = pd.DataFrame(index=frame.index)
    for col in spec.columns:
        s = frame[col.name]
        if col.type in ("int", "long"):
            nullable = s.isna().any() or not col.required
            dtype = _pandas_dtype(col.type, bool(nullable))
            s = pd.to_numeric(s).astype(dtype)  # type: ignore[arg-type]
        elif col.type == "double":
            s = pd.to_numeric(s).astype("float64")
        elif col.type == "string":
            s = s.astype("str")
        elif col.type == "date":
            s = as_day(s)
        elif col.type == "timestamptz":
            s = _ts(s)
        elif col.type == "time":
            s = s.astype(object)
        out[col.name] = s
    return out.reset_index(drop=True)


def empty(identifier: str) -> pd.DataFrame:
    """An empty frame with a table's columns and in-memory dtypes (a table never written).

    Args:
        identifier: ``<namespace>.<table>``.

    Returns:
        A zero-row frame with exactly the spec's columns.
    """
    spec = table_spec(identifier)
    return conform(pd.DataFrame({c: pd.Series([], dtype=object) for c in spec.column_names}), identifier)


def existing_or_empty(existing: pd.DataFrame | None, identifier: str) -> pd.DataFrame:
    if existing is None or len(existing) == 0:
        return empty(identifier)
    return existing


def _created_at(keys: pd.DataFrame, existing: pd.DataFrame, on: list[str], now: pd.Timestamp) -> pd.Series:
    """``created_at`` per row of ``keys``: the earliest existing value for the same key, else ``now``."""
    if len(existing) == 0 or len(keys) == 0:
        return pd.Series(now, index=keys.index, dtype=_TS)
    left = pd.DataFrame({c: keys[c] for c in on}).reset_index(drop=True)
    prior = pd.DataFrame({c: existing[c] for c in on}).reset_index(drop=True)
    for c in on:
        if pd.api.types.is_datetime64_any_dtype(left[c]):
            left[c], prior[c] = as_day(left[c]), as_day(prior[c])
        elif pd.api.types.is_numeric_dtype(left[c]):
            left[c] = pd.to_numeric(left[c]).astype("float64")
            prior[c] = pd.to_numeric(prior[c]).astype("float64")
        else:
            left[c], prior[c] = left[c].astype("str"), prior[c].astype("str")
    created = _ts(existing["created_at"]).reset_index(drop=True)
    if len(on) == 1:  # one key (a booking, a customer, a location): Arrow's hash lookup
        got = _earliest_by_key(left[on[0]], prior[on[0]], created)
    else:
        prior["created_at"] = created
        prior = prior.groupby(on, dropna=False, sort=False)["created_at"].min().reset_index()
        got = left.merge(prior, on=on, how="left")["created_at"]
    got.index = keys.index
    return _ts(got).fillna(now).astype(_TS)


def _earliest_by_key(wanted: pd.Series, keys: pd.Series, created: pd.Series) -> pd.Series:
    """For each of ``wanted``, the earliest ``created`` among the rows of ``keys`` equal to it
    (NaT when none, or when all of them are NaT): one hash lookup instead of a group-by and a
    join over millions of strings. Arrow's ``index_in`` finds a repeated key's first row, so the
    rows are put in order of their stamps first (a no-op when they already are)."""
    have = pa.array(keys, from_pandas=True)
    if isinstance(have, pa.ChunkedArray):
        have = have.combine_chunks()
    stamps = created.to_numpy(dtype="datetime64[us]")
    order_by = stamps.astype("int64")
    order_by = np.where(np.isnat(stamps), np.iinfo(np.int64).max, order_by)  # NaT last, as min() skips it
    if len(order_by) > 1 and bool((order_by[1:] < order_by[:-1]).any()):
        order = np.argsort(order_by, kind="stable")
        have, stamps = have.take(pa.array(order)), stamps[order]
    where = pc.index_in(pa.array(wanted, from_pandas=True), value_set=have)  # an Array or a ChunkedArray
    found = ~np.asarray(where.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    out = np.full(len(wanted), np.datetime64("NaT"), dtype="datetime64[us]")
    out[found] = stamps[where.to_numpy(zero_copy_only=False)[found].astype("int64")]
    return pd.Series(out)


def with_audit(frame: pd.DataFrame, existing: pd.DataFrame, on: list[str], now: pd.Timestamp) -> pd.DataFrame:
    out = frame.copy(deep=False)  # copy-on-write: the new columns never reach ``frame``
    out["created_at"] = _created_at(frame, existing, on, now)
    out["updated_at"] = pd.Series(now, index=frame.index, dtype=_TS)
    return out


def month_slice(frame: pd.DataFrame, extraction_month: str | None) -> pd.DataFrame:
    """The rows of a partitioned table that one run writes.

    Args:
        frame: a silver fact table (with ``extraction_month``).
        extraction_month: ``YYYY-MM``, or None for every row.

    Returns:
        The rows of that month (all rows when None), index reset.
    """
    if extraction_month is None:
        return frame.reset_index(drop=True)
    return frame[frame["extraction_month"] == extraction_month].reset_index(drop=True)


def _combine(rebuilt: pd.DataFrame, existing: pd.DataFrame, extraction_month: str | None,
             identifier: str) -> pd.DataFrame:
    """The rows one write replaces: every rebuilt row, or that month's (``existing`` is not kept:
    a month's write replaces its partition only, so the other months need not be in memory),
    ordered by partition, then key (each data file holds its rows in key order)."""
    out = conform(rebuilt if extraction_month is None else month_slice(rebuilt, extraction_month), identifier)
    spec = table_spec(identifier)  # partition first: the write splits the rows by slicing, not copying
    return sort_rows(out, [*spec.partition_by, *(c for c in spec.key if c not in spec.partition_by)])


def sort_rows(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame.sort_values(columns, kind="stable")`` (nulls last), index reset, ordered by Arrow's
    sort: a multi-column sort of millions of strings costs pandas half as much again."""
    try:
        keys = pa.table({c: pa.array(frame[c], from_pandas=True) for c in columns})
        order = pc.sort_indices(keys, sort_keys=[(c, "ascending") for c in columns])  # nulls last
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return frame.sort_values(columns, kind="stable").reset_index(drop=True)
    return frame.take(order.to_numpy()).reset_index(drop=True)


# ----------------------------------------------------------------------------- winner rule

def _winner_order(keys: pd.DataFrame) -> list[str]:
    order = ["booking_id", *WINNER_KEY]
    if "extraction_month" in keys.columns:
        order.append("extraction_month")
    return order


def winners(keys: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Apply the winner rule: per ``booking_id`` keep the row with the greatest
    (``extraction_date``, ``source_file``, ``source_row``).

    Args:
        keys: at least ``booking_id``, ``extraction_date``, ``source_file``, ``source_row``;
            other columns are kept.

    Returns:
        ``(winning rows sorted by booking_id with index reset, number of rows dropped)``.
    """
    if len(keys) == 0:
        return keys.reset_index(drop=True), 0
    order = _winner_order(keys)
    sortable = pd.DataFrame({c: keys[c] for c in order}, index=keys.index)
    sortable["extraction_date"] = as_day(sortable["extraction_date"])
    sortable["source_file"] = sortable["source_file"].astype("str")
    sortable["booking_id"] = sortable["booking_id"].astype("str")
    ranked = sortable.sort_values(order, kind="stable", na_position="first")
    last = ~ranked["booking_id"].duplicated(keep="last")
    index = ranked.index[last.to_numpy()]
    won = keys.loc[index].reset_index(drop=True)
    return won, int(len(keys) - len(won))


def winning_rows(bronze: pd.DataFrame, booking_keys: pd.DataFrame) -> pd.DataFrame:
    """Restrict a bronze entity frame to the rows of winning bookings.

    Winners are decided on ``booking_keys`` (every accepted row, i.e. the key columns of
    ``bronze.booking``), so every silver table agrees: a booking whose winning row has, say, no
    payment method contributes no ``bronze.payment_method`` row even if a losing row had one.

    Args:
        bronze: any bronze entity frame (``booking_id``, ``source_file``, ``source_row``,
            ``extraction_date``, ``extraction_month`` plus its own columns).
        booking_keys: ``booking_id``, ``extraction_date``, ``source_file``, ``source_row``
            (and ``extraction_month``) of every accepted row.

    Returns:
        The rows of ``bronze`` that belong to a winning source row, in their original order,
        index reset.
    """
    on = ["booking_id", *WINNER_KEY]
    if "extraction_month" in bronze.columns and "extraction_month" in booking_keys.columns:
        on.append("extraction_month")
    won, _ = winners(booking_keys[on])

    def norm(frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame({c: frame[c] for c in on}).reset_index(drop=True)
        out["extraction_date"] = as_day(out["extraction_date"])
        for c in ("booking_id", "source_file", "extraction_month"):
            if c in out.columns:
                out[c] = out[c].astype("str")
        out["source_row"] = out["source_row"].astype("int64")
        return out

    flagged = norm(bronze).merge(norm(won).assign(_won=True), on=on, how="left")
    mask = flagged["_won"].notna().to_numpy()
    return bronze[mask].reset_index(drop=True)


def winner_counts(won: pd.DataFrame) -> pd.DataFrame:
    """Winning bookings per month (``extraction_month``, ``bookings``): the ``winners`` ref of
    ``silver.customer``'s checks."""
    counts = won.groupby(won["extraction_month"].astype("str")).size() if len(won) else pd.Series([], dtype="int64")
    return pd.DataFrame({"extraction_month": counts.index.astype("str"), "bookings": counts.to_numpy(dtype="int64")})


def decide_winners(keys: pa.Table) -> pa.Table:
    """The winner rule on Arrow keys, for any number of rows: per ``booking_id`` the row with the
    greatest (``extraction_date``, ``source_file``, ``source_row``, then ``extraction_month``).

    Only the rows of repeated booking ids (about 1% of a delivery) are sorted; the others win
    by themselves.

    Args:
        keys: ``booking_id``, ``extraction_date``, ``source_file``, ``source_row``,
            ``extraction_month`` of every accepted row (dictionary-encoded strings are fine).

    Returns:
        The winning rows' keys (same columns and types), in no particular order.
    """
    if keys.num_rows == 0:
        return keys
    counts = pa.table({"booking_id": keys["booking_id"]}).group_by("booking_id").aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts["count_all"], 1))["booking_id"]
    if len(repeated) == 0:
        return keys
    is_repeated = pc.is_in(keys["booking_id"], value_set=repeated.combine_chunks())
    single = keys.filter(pc.invert(is_repeated))
    multi = keys.filter(is_repeated)
    plain = pa.table({c: _decoded(multi[c]) for c in multi.column_names})
    order = pc.sort_indices(plain, sort_keys=[("booking_id", "ascending")] + [
        (c, "descending") for c in (*WINNER_KEY, "extraction_month") if c in plain.column_names])
    ranked = multi.take(order)
    ids = _decoded(ranked["booking_id"]).combine_chunks()
    first = np.ones(len(ids), dtype=bool)
    if len(ids) > 1:
        first[1:] = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1)).to_numpy(zero_copy_only=False)
    return pa.concat_tables([single, ranked.filter(pa.array(first))])


def _decoded(values: pa.ChunkedArray) -> pa.ChunkedArray:
    return values.cast(values.type.value_type) if pa.types.is_dictionary(values.type) else values


# ----------------------------------------------------------------------------- dimensions

def build_dimension(names: pd.Series, existing: pd.DataFrame | None, id_column: str,
                    now: pd.Timestamp) -> pd.DataFrame:
    """A name dimension with stable ids (docs/contract.md §4).

    One row per distinct non-null name. Names already in ``existing`` keep their id and
    ``created_at``; new names get ``max(existing id) + 1, + 2, ...`` in ascending name order
    (so a first build numbers them 1..N); names no longer present are dropped; every row's
    ``updated_at`` is ``now``.

    Args:
        names: every name seen in bronze (nulls and repeats allowed).
        existing: the dimension as it stands (``<id_column>``, ``name``, ``created_at``,
            ``updated_at``); None or empty on the first build.
        id_column: e.g. ``vehicle_type_id``.
        now: the refresh time.

    Returns:
        The dimension, columns ``<id_column>, name, created_at, updated_at``, sorted by id.
    """
    now = utc_now(now)
    current = sorted(set(pd.Series(names).dropna().astype("str").tolist()))
    frame = pd.DataFrame({"name": pd.Series(current, dtype="str")})
    prior = existing if existing is not None else pd.DataFrame(columns=[id_column, "name", "created_at"])
    prior = prior[prior["name"].notna()] if len(prior) else prior
    ids = pd.to_numeric(prior[id_column]) if len(prior) else pd.Series([], dtype="float64")
    start = int(ids.max()) if len(ids) and ids.notna().any() else 0
    if len(prior):
        lookup = pd.DataFrame({
            "name": prior["name"].astype("str").reset_index(drop=True),
            id_column: ids.reset_index(drop=True),
            "created_at": _ts(prior["created_at"]).reset_index(drop=True),
        }).drop_duplicates("name")
        frame = frame.merge(lookup, on="name", how="left")
    else:
        frame[id_column] = np.nan
        frame["created_at"] = pd.Series(pd.NaT, index=frame.index, dtype=_TS)
    new = frame[id_column].isna().to_numpy()
    assigned = frame[id_column].to_numpy(dtype="float64", na_value=np.nan).copy()
    assigned[new] = start + np.arange(1, int(new.sum()) + 1)
    frame[id_column] = assigned.astype("int32")
    frame["created_at"] = _ts(frame["created_at"]).fillna(now).astype(_TS)
    frame["updated_at"] = pd.Series(now, index=frame.index, dtype=_TS)
    out = frame[[id_column, "name", "created_at", "updated_at"]]
    return out.sort_values(id_column, kind="stable").reset_index(drop=True)


def customer_totals(bookings: pd.DataFrame) -> pd.DataFrame:
    """Per customer: first and last booking date and the number of bookings.

    Args:
        bookings: winning ``bronze.customer`` rows (``customer_id``, ``booking_date``).

    Returns:
        ``customer_id``, ``first_seen_date``, ``last_seen_date``, ``total_bookings``.
    """
    rows = pd.DataFrame({
        "customer_id": bookings["customer_id"].astype("str").to_numpy(),
        "booking_date": as_day(bookings["booking_date"]).to_numpy(),
    })
    return rows.groupby("customer_id", sort=True, dropna=False).agg(
        first_seen_date=("booking_date", "min"),
        last_seen_date=("booking_date", "max"),
        total_bookings=("booking_date", "size"),
    ).reset_index()


def customer_partials(rows: pa.Table) -> pa.Table:
    """:func:`customer_totals` of a batch of winning rows, in Arrow (to add up with
    :func:`merge_customer_partials`, so the customers are counted month by month)."""
    grouped = rows.select(["customer_id", "booking_date"]).group_by("customer_id").aggregate(
        [("booking_date", "min"), ("booking_date", "max"), ([], "count_all")])
    return grouped.rename_columns(["customer_id", "first_seen_date", "last_seen_date", "total_bookings"])


def merge_customer_partials(parts: list[pa.Table]) -> pa.Table:
    """Add up :func:`customer_partials` tables: earliest first date, latest last date, summed counts."""
    if not parts:
        return pa.table({"customer_id": pa.array([], pa.string()), "first_seen_date": pa.array([], pa.date32()),
                         "last_seen_date": pa.array([], pa.date32()), "total_bookings": pa.array([], pa.int64())})
    merged = pa.concat_tables(parts).group_by("customer_id").aggregate(
        [("first_seen_date", "min"), ("last_seen_date", "max"), ("total_bookings", "sum")])
    return merged.rename_columns(["customer_id", "first_seen_date", "last_seen_date", "total_bookings"])


def build_customer_totals(totals: pd.DataFrame, existing: pd.DataFrame | None, now: pd.Timestamp) -> pd.DataFrame:
    """``silver.customer`` from per-customer totals (:func:`customer_totals`).

    Args:
        totals: ``customer_id``, ``first_seen_date``, ``last_seen_date``, ``total_bookings``.
        existing: ``silver.customer`` as it stands (None or empty on the first build).
        now: the refresh time.

    Returns:
        One row per customer, ``created_at`` kept for known customers, ``updated_at = now``;
        sorted by ``customer_id``.
    """
    now = utc_now(now)
    prior = existing_or_empty(existing, "silver.customer")
    totals = totals.reset_index(drop=True)
    agg = pd.DataFrame({  # Series, not .to_numpy(): a str column as NumPy is one Python object per row
        "customer_id": totals["customer_id"].astype("str"),
        "first_seen_date": as_day(totals["first_seen_date"]),
        "last_seen_date": as_day(totals["last_seen_date"]),
        "total_bookings": pd.to_numeric(totals["total_bookings"]).astype("int64"),
    })
    out = with_audit(agg, prior, ["customer_id"], now)
    return conform(out, "silver.customer").sort_values("customer_id", kind="stable").reset_index(drop=True)


def build_customer(bookings: pd.DataFrame, existing: pd.DataFrame | None, now: pd.Timestamp) -> pd.DataFrame:
    """``silver.customer`` over the winning bookings.

    Args:
        bookings: winning ``bronze.customer`` rows (``customer_id``, ``booking_date``,
            ``booking_id``), one per winning booking.
        existing: ``silver.customer`` as it stands (None or empty on the first build).
        now: the refresh time.

    Returns:
        One row per customer: ``first_seen_date``/``last_seen_date`` (min/max booking date),
        ``total_bookings`` (rows), ``created_at`` kept for known customers, ``updated_at = now``;
        sorted by ``customer_id``.
    """
    return build_customer_totals(customer_totals(bookings), existing, now)


# ----------------------------------------------------------------------------- facts

def _lookup(names: pd.Series, dim: pd.DataFrame, id_column: str) -> pd.Series:
    """Map names to ids; a name missing from ``dim`` (or a null name) gives a null id."""
    first = ~dim["name"].astype("str").duplicated().to_numpy()
    keys = pa.array(dim["name"].astype("str").to_numpy()[first].tolist(), pa.string())
    values = pa.array(pd.to_numeric(dim[id_column]).to_numpy(dtype="float64")[first])
    text = pa.array(names.astype(object).where(names.notna(), None).tolist() if names.dtype == object
                    else names, from_pandas=True).cast(pa.string())
    ids = values.take(pc.index_in(text, value_set=keys))  # a missing or null name: a null id
    return pd.Series(ids.to_numpy(zero_copy_only=False), index=names.index).astype("Int32")


def build_booking(winning: pd.DataFrame, dims: Mapping[str, pd.DataFrame], existing: pd.DataFrame | None,
                  now: pd.Timestamp, extraction_month: str | None) -> pd.DataFrame:
    """``silver.booking``: one row per winning booking, names replaced by dimension ids.

    Args:
        winning: winning ``bronze.booking`` rows.
        dims: ``{"silver.vehicle_type": ..., "silver.location": ..., "silver.booking_status": ...,
            "silver.payment_method": ...}``, each with ``<x>_id`` and ``name``.
        existing: ``silver.booking`` rows as they stand, at least those of the partition(s) being
            rebuilt (their ``created_at`` survives); None or empty on the first build.
        now: the refresh time.
        extraction_month: rebuild only this month (the write replaces that partition and leaves
            the others exactly as they are), or None to rebuild every winner.

    Returns:
        The rows the write replaces the partition(s) with (that month's, or every winner),
        sorted by ``booking_id``. A name missing from its dimension leaves a null id, so the
        declared checks fail loudly; a booking without payment method has a null
        ``payment_method_id``.
    """
    now = utc_now(now)
    prior = existing_or_empty(existing, "silver.booking")
    rows = winning.reset_index(drop=True)
    out = pd.DataFrame({
        "booking_id": rows["booking_id"].astype("str"),
        "customer_id": rows["customer_id"].astype("str").where(rows["customer_id"].notna()),
    })
    for id_column, (dim_table, name_column) in FACT_NAMES.items():
        dim = dims[dim_table]
        out[id_column] = _lookup(rows[name_column], dim, _dim_id(dim_table))
    out["booking_value"] = pd.to_numeric(rows["booking_value"]).astype("float64")
    out["booking_date"] = as_day(rows["booking_date"])
    out["booking_time"] = rows["booking_time"].astype(object)
    out["extraction_month"] = rows["extraction_month"].astype("str")
    if extraction_month is not None:
        out = month_slice(out, extraction_month)
    out = with_audit(out, prior, ["booking_id"], now)
    return _combine(out, prior, extraction_month, "silver.booking")


def _dim_id(dim_table: str) -> str:
    return f"{dim_table.split('.', 1)[1]}_id"


def build_ride(winning: pd.DataFrame, existing: pd.DataFrame | None, now: pd.Timestamp,
               extraction_month: str | None) -> pd.DataFrame:
    """``silver.ride``: one row per winning booking with status Completed.

    Args:
        winning: winning ``bronze.ride`` rows.
        existing: ``silver.ride`` rows as they stand, at least the partition(s) being rebuilt.
        now: the refresh time.
        extraction_month: rebuild only this month, or None for all.

    Returns:
        The rows of the partition(s) being rebuilt, sorted by ``booking_id``.
    """
    now = utc_now(now)
    prior = existing_or_empty(existing, "silver.ride")
    out = winning.reset_index(drop=True)
    if extraction_month is not None:
        out = month_slice(out, extraction_month)
    out = conform(with_audit(out, prior, ["booking_id"], now), "silver.ride")
    return _combine(out, prior, extraction_month, "silver.ride")


def _stable_ids(rows: pd.DataFrame, existing: pd.DataFrame, id_column: str,
                others: pd.DataFrame | None = None) -> pd.Series:
    """Keep the id of every booking already in ``existing``; number the others after the max of
    ``existing`` and ``others`` (the other partitions' ids), in ascending (``booking_date``,
    ``booking_id``) order."""
    ids_seen = [pd.to_numeric(f[id_column]) for f in (existing, others) if f is not None and len(f)]
    every = pd.concat(ids_seen, ignore_index=True) if ids_seen else pd.Series([], dtype="float64")
    start = int(np.nanmax(every.to_numpy(dtype="float64"))) if every.notna().any() else 0
    if len(existing):
        known = pd.DataFrame({
            "booking_id": existing["booking_id"].astype("str").to_numpy(),
            id_column: pd.to_numeric(existing[id_column]).to_numpy(),
        }).groupby("booking_id")[id_column].min()
    else:
        known = pd.Series([], dtype="float64")
    ids = rows["booking_id"].astype("str").map(known).astype("float64")
    new = ids.isna()
    if new.any():
        order = pd.DataFrame({
            "booking_date": as_day(rows.loc[new, "booking_date"]),
            "booking_id": rows.loc[new, "booking_id"].astype("str"),
        }).sort_values(["booking_date", "booking_id"], kind="stable")
        ids.loc[order.index] = start + np.arange(1, len(order) + 1)
    return ids.astype("int64")


def _build_numbered(winning: pd.DataFrame, existing: pd.DataFrame | None, now: pd.Timestamp,
                    extraction_month: str | None, identifier: str, id_column: str,
                    others: pd.DataFrame | None = None) -> pd.DataFrame:
    now = utc_now(now)
    prior = existing_or_empty(existing, identifier)
    out = winning.reset_index(drop=True)
    if extraction_month is not None:
        out = month_slice(out, extraction_month)
    out = out.copy()
    out[id_column] = _stable_ids(out, prior, id_column, others)
    out = conform(with_audit(out, prior, ["booking_id"], now), identifier)
    return _combine(out, prior, extraction_month, identifier)


def build_cancelled_ride(winning: pd.DataFrame, existing: pd.DataFrame | None, now: pd.Timestamp,
                         extraction_month: str | None, others: pd.DataFrame | None = None) -> pd.DataFrame:
    """``silver.cancelled_ride``: winning bookings cancelled by the customer or the driver.

    ``cancellation_id`` is stable: a booking already in ``existing`` keeps its id; new bookings
    get ``max + 1, ...`` in ascending (``booking_date``, ``booking_id``) order, the max taken over
    ``existing`` and ``others``, so an id is never handed out twice.

    Args:
        winning: winning ``bronze.cancelled_ride`` rows.
        existing: ``silver.cancelled_ride`` rows as they stand, at least the partition(s) being
            rebuilt (None or empty on the first build).
        now: the refresh time.
        extraction_month: rebuild only this month, or None for all.
        others: ``booking_id`` and ``cancellation_id`` of the other partitions (a month rebuild).

    Returns:
        The rows of the partition(s) being rebuilt, sorted by ``cancellation_id``.
    """
    return _build_numbered(winning, existing, now, extraction_month, "silver.cancelled_ride", "cancellation_id",
                           others)


def build_incompleted_ride(winning: pd.DataFrame, existing: pd.DataFrame | None, now: pd.Timestamp,
                           extraction_month: str | None, others: pd.DataFrame | None = None) -> pd.DataFrame:
    """``silver.incompleted_ride``: winning bookings with status Incomplete.

    ``incompleted_id`` is stable, numbered like ``cancellation_id``
    (see :func:`build_cancelled_ride`).

    Args:
        winning: winning ``bronze.incompleted_ride`` rows.
        existing: ``silver.incompleted_ride`` rows as they stand, at least the partition(s) being
            rebuilt (None or empty on the first build).
        now: the refresh time.
        extraction_month: rebuild only this month, or None for all.
        others: ``booking_id`` and ``incompleted_id`` of the other partitions (a month rebuild).

    Returns:
        The rows of the partition(s) being rebuilt, sorted by ``incompleted_id``.
    """
    return _build_numbered(winning, existing, now, extraction_month, "silver.incompleted_ride", "incompleted_id",
                           others)


# ----------------------------------------------------------------------------- notebook entry points

def dimension(identifier: str, bronze: pd.DataFrame, booking_keys: pd.DataFrame,
              existing: pd.DataFrame | None, now: pd.Timestamp) -> pd.DataFrame:
    """A silver name dimension from its bronze table, over the winning rows only.

    Args:
        identifier: ``silver.vehicle_type``, ``silver.location``, ``silver.booking_status`` or
            ``silver.payment_method``.
        bronze: the matching bronze table (see :data:`ridelake.tables.schemas.DIMENSIONS`).
        booking_keys: the key columns of ``bronze.booking`` (every accepted row), to decide winners.
        existing: the dimension as it stands.
        now: the refresh time.

    Returns:
        The dimension as it will be after the write (see :func:`build_dimension`).
    """

    _, name_column = DIMENSIONS[identifier]
    won = winning_rows(bronze, booking_keys)
    return build_dimension(won[name_column], existing, _dim_id(identifier), now)


def name_dimension(identifier: str, names: pd.Series | pd.Index, existing: pd.DataFrame | None,
                   now: pd.Timestamp) -> pd.DataFrame:
    """A silver name dimension from the names of its winning bronze rows (e.g. the index of
    :func:`ridelake.tables.winning.name_counts`).

    Args:
        identifier: ``silver.vehicle_type``, ``silver.location``, ``silver.booking_status`` or
            ``silver.payment_method``.
        names: the names (repeats and nulls allowed).
        existing: the dimension as it stands.
        now: the refresh time.

    Returns:
        The dimension as it will be after the write (see :func:`build_dimension`).
    """
    return build_dimension(pd.Series(names, dtype=object), existing, _dim_id(identifier), now)


def month_scope(extraction_month: str | None) -> dict[str, str]:
    """The rows a silver fact write replaces: one month's partition, or (None) the whole table.

    Args:
        extraction_month: ``YYYY-MM`` or None.

    Returns:
        A ``where`` mapping for :func:`ridelake.tables.catalog.replace_rows` (empty = every row).
    """
    return {} if extraction_month is None else {"extraction_month": extraction_month}
