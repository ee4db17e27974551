"""Winning rows: the winner rule (docs/contract.md §4) decided once per state of ``bronze.booking``.

The first silver notebook that needs the winners reads the key columns of ``bronze.booking``
(projected, in batches), decides every booking's winner with
:func:`ridelake.tables.transforms.silver.decide_winners` and stages the winning rows' keys as
one Parquet file per booking month under ``<warehouse>/_staging/winners/<snapshot id>/``. Every
other silver notebook of that state of ``bronze.booking`` reads them from there (a file lock
keeps two notebooks from deciding at once), and each read is recorded as a read of
``bronze.booking`` at that snapshot. The dimensions, the customers and the facts then take the
winning rows of their bronze table with a semi-join on the key, one month (one Parquet batch)
at a time, so they all agree and no notebook holds a whole bronze table.
"""

from __future__ import annotations

import fcntl
import json
from collections import OrderedDict
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ridelake.tables import catalog, config
from ridelake.tables.schemas import table_spec
from ridelake.tables.transforms import silver

__all__ = ["KEY", "Decided", "Winning", "decided", "keys", "rows", "name_counts", "customer_totals",
           "other_months"]

#: The key of a bronze row that the winner rule orders on (plus the booking it belongs to).
KEY: tuple[str, ...] = ("booking_id", "extraction_date", "source_file", "source_row", "extraction_month")
_SOURCE = "bronze.booking"
_memory: dict[int | None, tuple["Decided", dict[str, pa.Table]]] = {}


@dataclass(frozen=True, eq=False)
class Decided:
    """The winner rule's outcome for one state of ``bronze.booking``.

    Attributes:
        snapshot_id: the ``bronze.booking`` snapshot it was decided on (None: the table is empty).
        per_month: ``extraction_month``, ``rows`` (accepted bronze rows) and ``bookings``
            (winning rows), one row per month; the ``winners`` ref of ``silver.customer``'s checks.
    """

    snapshot_id: int | None
    per_month: pd.DataFrame

    @property
    def rows(self) -> int:
        """Bronze rows the rule looked at."""
        return int(self.per_month["rows"].sum())

    @property
    def bookings(self) -> int:
        """Winning rows (one per booking)."""
        return int(self.per_month["bookings"].sum())

    @property
    def dropped(self) -> int:
        """Rows that lost to a later row of the same booking."""
        return self.rows - self.bookings

    def of_month(self, month: str | None) -> pd.DataFrame:
        """:attr:`per_month` of one month (every month when None): the ``winners`` ref of a write."""
        rows = self.per_month if month is None else self.per_month[self.per_month["extraction_month"] == month]
        return rows.reset_index(drop=True)

    @property
    def months(self) -> list[str]:
        """Months with winning rows."""
        return [str(m) for m, n in zip(self.per_month["extraction_month"], self.per_month["bookings"]) if n]


@dataclass
class Winning:
    """The winning rows of a bronze table.

    Attributes:
        rows: the winning rows.
        read: bronze rows read (winning or not).
    """

    rows: pd.DataFrame

    read: int

    @property
    def dropped(self) -> int:
        """Rows read that were not winners."""
        return self.read - len(self.rows)


def _cache_base() -> Path | None:
    location = config.warehouse_location()
    return Path(location) / "_staging" / "winners" if config.is_local_warehouse(location) else None


_KEY_TYPES = {"booking_id": pa.string(), "extraction_date": pa.date32(), "source_file": pa.string(),
              "source_row": pa.int64(), "extraction_month": pa.string()}


def _empty_keys() -> pa.Table:
    return pa.table({k: pa.array([], t) for k, t in _KEY_TYPES.items()})


def _read_keys() -> pa.Table:
    """The key columns of every ``bronze.booking`` row, strings of few values dictionary-encoded."""
    parts = []
    for batch in catalog.read_batches(_SOURCE, columns=list(KEY)):
        table = pa.Table.from_batches([batch])
        for name in ("source_file", "extraction_month"):
            table = table.set_column(table.schema.get_field_index(name), name, table[name].dictionary_encode())
        parts.append(table)
    if not parts:
        return _empty_keys()
    return pa.concat_tables(parts, promote_options="permissive").unify_dictionaries().combine_chunks()


def _plain(table: pa.Table) -> pa.Table:
    return pa.table({c: silver._decoded(table[c]) for c in table.column_names})


#: Rows of keys the winner rule decides at once: more are split into buckets of ``booking_id``
#: (the rule is per booking id), each decided on its own, so the sort and hash tables it builds
#: stay this size (at 15M rows one whole decision took 3.8 GB).
DECIDE_ROWS = 2_000_000


def _decide(snapshot_id: int | None) -> tuple[Decided, dict[str, pa.Table]]:
    """Decide the winners of the current ``bronze.booking`` in memory: the decision and the keys per month."""
    all_keys = _read_keys()
    months_all = pc.value_counts(silver._decoded(all_keys["extraction_month"])).to_pylist()
    buckets = -(-all_keys.num_rows // DECIDE_ROWS)
    if buckets <= 1:
        won = silver.decide_winners(all_keys)
    else:
        which = catalog.bucket_of(all_keys["booking_id"], buckets)
        won = pa.concat_tables([silver.decide_winners(all_keys.filter(pa.array(which == b))) for b in range(buckets)])
    del all_keys
    won_month = silver._decoded(won["extraction_month"])
    per: dict[str, pa.Table] = {}
    for item in pc.value_counts(won_month).to_pylist():
        per[item["values"]] = _plain(won.filter(pc.equal(won_month, item["values"])))
    counts = {m["values"]: m["counts"] for m in months_all}
    months = sorted(counts)
    frame = pd.DataFrame({"extraction_month": months, "rows": [int(counts[m]) for m in months],
                          "bookings": [per[m].num_rows if m in per else 0 for m in months]})
    return Decided(snapshot_id, frame.astype({"rows": "int64", "bookings": "int64"})), per


def decided() -> Decided:
    """The winner rule for the current ``bronze.booking``, decided now or read from its staging.

    Returns:
        The :class:`Decided` outcome (rows, winning bookings and dropped rows per month).
    """
    return _ensure()[0]


def _ensure() -> tuple[Decided, Path | None]:
    snapshot_id = catalog.read_snapshot(_SOURCE)
    base = _cache_base()
    if base is None:
        if snapshot_id not in _memory:
            _memory.clear()
            _memory[snapshot_id] = _decide(snapshot_id)
        return _memory[snapshot_id][0], None
    folder = base / str(snapshot_id)
    record = folder / "decided.json"
    if not record.is_file():
        base.mkdir(parents=True, exist_ok=True)
        with open(base / f"{snapshot_id}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another notebook may be deciding the same state
            if not record.is_file():
                _stage(base, folder, _decide(snapshot_id))
    info = json.loads(record.read_text(encoding="utf-8"))
    frame = pd.DataFrame(info["per_month"], columns=["extraction_month", "rows", "bookings"])
    return Decided(snapshot_id, frame.astype({"rows": "int64", "bookings": "int64"})), folder


def _stage(base: Path, folder: Path, outcome: tuple[Decided, dict[str, pa.Table]]) -> None:
    decision, per = outcome
    tmp = base / f".{folder.name}.{uuid.uuid4().hex[:12]}.tmp"
    tmp.mkdir()
    for month, table in per.items():
        pq.write_table(table, tmp / f"{month}.parquet")
    (tmp / "decided.json").write_text(json.dumps({
        "snapshot_id": decision.snapshot_id,
        "per_month": decision.per_month.to_dict("records"),
    }, default=int), encoding="utf-8")
    os.replace(tmp, folder)
    for old in base.iterdir():  # earlier states, not touched for a while
        if old != folder and not old.name.endswith(".lock") and time.time() - old.stat().st_mtime > 3600:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)


def keys(month: str) -> pa.Table:
    """The winning rows' keys of one booking month (:data:`KEY` columns).

    Args:
        month: ``YYYY-MM``.

    Returns:
        A ``pyarrow.Table`` (empty when the month has no winners).
    """
    return _keys(month, *_ensure())


def _keys(month: str, decision: Decided, folder: Path | None) -> pa.Table:
    if folder is None:
        table = _memory[decision.snapshot_id][1].get(month)
    else:
        table = _staged_keys(folder / f"{month}.parquet")
    return _empty_keys() if table is None else table


#: Bytes of staged winners' keys a process keeps between notebooks (``RIDELAKE_WINNERS_CACHE_BYTES``):
#: every silver notebook of a run reads the same keys; beyond the budget they are read again.
CACHE_BYTES = int(os.environ.get("RIDELAKE_WINNERS_CACHE_BYTES") or 64 << 20)
_cached: "OrderedDict[str, pa.Table]" = OrderedDict()


def _staged_keys(path: Path) -> pa.Table | None:
    """One month's staged keys (files under a decision's folder never change once staged)."""
    key = str(path)
    if key in _cached:
        _cached.move_to_end(key)
        return _cached[key]
    if not path.is_file():
        return None
    table = pq.read_table(path)
    if table.nbytes <= CACHE_BYTES:
        _cached[key] = table
        while sum(t.nbytes for t in _cached.values()) > CACHE_BYTES:
            _cached.popitem(last=False)
    return table


class _Months:
    """The winners' keys of one month at a time (a scan yields its batches file by file), of
    the decision the scan started with (one catalog look-up per scan, not per month)."""

    def __init__(self, ensured: tuple[Decided, Path | None]) -> None:
        self.ensured = ensured
        self.month: str | None = None
        self.table: _Lookup | None = None

    def __call__(self, month: str) -> _Lookup:
        if month != self.month:
            self.month, self.table = month, _Lookup(_keys(month, *self.ensured))
        assert self.table is not None
        return self.table


def _winning(batch: pa.Table, months: _Months) -> pa.Table:
    """The rows of a batch of bronze rows that are winners: equal to a winner on every
    :data:`KEY` column (a semi-join), in batch order."""
    month_col = batch["extraction_month"]
    present = pc.unique(month_col).to_pylist()
    parts = []
    for month in present:
        part = batch if len(present) == 1 else batch.filter(pc.equal(month_col, month))
        parts.append(part.filter(_is_winner(part, months(month))))
    return pa.concat_tables(parts) if parts else batch.slice(0, 0)


class _Lookup:
    """The winners of one month, ready to look rows up in: per delivery (file and extraction
    date) their ``source_row`` sorted (for a binary search) and the ``booking_id`` at each."""

    def __init__(self, won: pa.Table) -> None:
        self.deliveries: list[tuple[Any, Any, np.ndarray, pa.Array]] = []
        if not won.num_rows:
            return
        files, dates = pc.unique(won["source_file"]), pc.unique(won["extraction_date"])
        if len(files) == 1 and len(dates) == 1:  # the usual month: one delivery
            groups = [(files[0].as_py(), dates[0].as_py(), won)]
        else:
            pairs = won.select(["source_file", "extraction_date"]).group_by(["source_file", "extraction_date"]).aggregate([])
            date_type = won["extraction_date"].type
            groups = [(f, d, won.filter(pc.and_(pc.equal(won["source_file"], f),
                                                pc.equal(won["extraction_date"], pa.scalar(d, date_type)))))
                      for f, d in zip(pairs["source_file"].to_pylist(), pairs["extraction_date"].to_pylist())]
        for source_file, extraction_date, mine in groups:
            rows = np.asarray(pc.fill_null(mine["source_row"], -1), dtype="int64")
            order = np.argsort(rows, kind="stable")
            ids = mine["booking_id"].combine_chunks() if isinstance(mine["booking_id"], pa.ChunkedArray) else mine["booking_id"]
            self.deliveries.append((source_file, extraction_date, rows[order], ids.take(pa.array(order))))


def _is_winner(part: pa.Table, won: "pa.Table | _Lookup") -> pa.Array:
    """Per row of ``part`` (one month), whether a row of ``won`` (the month's winners, or their
    :class:`_Lookup`) has the same key.

    A bronze row is one line of one delivery: ``(source_file, extraction_date, source_row)`` is
    unique among the winners of a month. So instead of a hash join on five columns (two of them
    strings), per delivery in the month: the row's ``source_row`` is searched among the winners'
    (sorted once per month and scan, not hashed again per batch), and the ``booking_id`` found
    there must be the row's.
    """
    lookup = won if isinstance(won, _Lookup) else _Lookup(won)
    mask = np.zeros(part.num_rows, dtype=bool)
    if not part.num_rows or not lookup.deliveries:
        return pa.array(mask)
    date_type = part["extraction_date"].type
    for source_file, extraction_date, won_rows, won_ids in lookup.deliveries:
        day = pa.scalar(extraction_date, date_type)
        in_part = np.asarray(pc.fill_null(pc.and_(pc.equal(part["source_file"], source_file),
                                                  pc.equal(part["extraction_date"], day)), False))
        rows = np.flatnonzero(in_part)
        if not len(rows):
            continue
        whole = len(rows) == part.num_rows
        source_row = part["source_row"] if whole else pc.take(part["source_row"], rows)
        booking_id = part["booking_id"] if whole else pc.take(part["booking_id"], rows)
        wanted = np.asarray(pc.fill_null(source_row, -2), dtype="int64")  # a null row number matches nothing
        at = np.minimum(np.searchsorted(won_rows, wanted), len(won_rows) - 1)
        found = won_rows[at] == wanted
        same = np.asarray(pc.fill_null(pc.equal(booking_id, won_ids.take(pa.array(at)).cast(booking_id.type)), False))
        mask[rows[found & same]] = True
    return pa.array(mask)


def _batches(table: str, columns: Sequence[str] | None, month: str | None) -> Iterator[pa.Table]:
    wanted = list(dict.fromkeys([*KEY, *(columns or table_spec(table).column_names)]))
    for batch in catalog.read_batches(table, columns=wanted, row_filter=catalog.month_filter(month)):
        yield pa.Table.from_batches([batch])


def rows(table: str, columns: Sequence[str] | None = None, month: str | None = None) -> Winning:
    """The winning rows of a bronze table: one month's, or every month's.

    Args:
        table: a bronze entity table (e.g. ``bronze.ride``).
        columns: the columns wanted (default all); the key columns are always read.
        month: ``YYYY-MM`` to read only that partition, or None.

    Returns:
        A :class:`Winning` with the rows as a frame (the columns asked for, or all).
    """
    months, parts, read = _Months(_ensure()), [], 0
    for batch in _batches(table, columns, month):
        read += batch.num_rows
        parts.append(_winning(batch, months))
    cols = list(columns or table_spec(table).column_names)
    if parts:
        result = pa.concat_tables(parts).select(cols)
    else:
        result = table_spec(table).arrow_schema().empty_table().select(cols)
    return Winning(result.to_pandas(date_as_object=False), read)


def name_counts(table: str, column: str) -> pd.Series:
    """Winning rows per name of a bronze dimension table, counted batch by batch.

    Args:
        table: e.g. ``bronze.location``.
        column: its name column, e.g. ``location_name``.

    Returns:
        Rows per name (nulls not counted), most frequent first.
    """
    months: _Months = _Months(_ensure())
    counts: dict[str, int] = {}
    for batch in _batches(table, [column], None):
        for item in pc.value_counts(_winning(batch, months)[column]).to_pylist():
            if item["values"] is not None:
                counts[item["values"]] = counts.get(item["values"], 0) + int(item["counts"])
    out = pd.Series(counts, dtype="int64", name="rows")
    out.index.name = column
    return out.sort_values(ascending=False, kind="stable")


def customer_totals(compact_at: int = 4_000_000) -> pd.DataFrame:
    """Per customer over the winning ``bronze.customer`` rows, batch by batch: first and last
    booking date and the number of bookings.

    Args:
        compact_at: partial totals held before they are added up (bounds memory).

    Returns:
        ``customer_id``, ``first_seen_date``, ``last_seen_date``, ``total_bookings``.
    """
    months: _Months = _Months(_ensure())
    winners = (_winning(batch, months) for batch in _batches("bronze.customer", ["customer_id", "booking_date"], None))
    totals = catalog.fold(winners, silver.customer_partials, silver.merge_customer_partials, compact_at, key="customer_id")
    return totals.to_pandas(date_as_object=False)


def other_months(table: str, columns: Sequence[str], month: str | None) -> pd.DataFrame:
    """Some columns of a partitioned table's rows outside one month (the ref its month's checks
    need to see across partitions); empty when the whole table is rebuilt (``month`` None).

    Args:
        table: a silver fact table.
        columns: e.g. ``["booking_id"]``.
        month: the month being rebuilt, or None.

    Returns:
        The rows, only those columns.
    """
    if month is None:
        return catalog.read_table(table, columns=list(columns), row_filter=_nothing())
    return catalog.read_table(table, columns=list(columns), row_filter=_not_month(month))


def _not_month(month: str) -> Any:
    from pyiceberg.expressions import NotEqualTo  # pyiceberg is heavy: only the catalog reads need it

    return NotEqualTo("extraction_month", month)


def _nothing() -> Any:
    from pyiceberg.expressions import AlwaysFalse  # as above

    return AlwaysFalse()
