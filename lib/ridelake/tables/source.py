"""Delivery files: checking and streaming a source CSV, and the staging hand-off from prepare to bronze.

The prepare notebook reads a delivery once, in blocks of whole lines (never the whole file),
prepares each block with column operations (:func:`ridelake.tables.transforms.bronze.prepare_rows`)
and stages the accepted rows as one Parquet file per booking month under
``<warehouse>/_staging/<file>__<date>__<month or all>.<token>/``, recorded by a JSON file beside
it. Each bronze notebook loads the months it needs from there (a one-month run reads one month,
also from a whole-file staging), or, when the staging is missing or stale (the source file
changed), prepares the delivery itself into a private folder, so any bronze notebook can be
rerun on its own.

On an object-store warehouse (``s3://...``) the staging is on the object store too, written and
read through ``pyarrow.fs`` (:mod:`ridelake.tables.storage`), so bronze notebooks running on other
machines read what prepare staged.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import posixpath
import stat
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ridelake.errors import SourceError
from ridelake.tables import config, csvlines, storage
from ridelake.tables.transforms import bronze
from ridelake.tables.transforms.bronze import PreparedDelivery, write_scope

__all__ = [
    "SourceInfo",
    "Delivery",
    "check_source",
    "read_lines",
    "prepare",
    "prepare_file",
    "stage",
    "staged_months",
    "moved_bookings",
    "load_delivery",
]

#: Rows buffered per month before they are written as one Parquet row group.
ROW_GROUP = 65_536
#: Rows buffered over all months before every buffer is written.
BUFFERED_ROWS = 262_144
_FORMAT = 2
#: Threads splitting blocks into fields and checking them while the reading thread writes the
#: previous ones (numpy and Arrow release the GIL): the cores, at most 2
#: (``RIDELAKE_SPLIT_THREADS`` overrides).
SPLIT_THREADS = max(1, int(os.environ.get("RIDELAKE_SPLIT_THREADS") or min(2, os.cpu_count() or 1)))
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class SourceInfo:
    """A delivery file that can be read, and its header.

    Attributes:
        path: the file.
        header: the header's column names (stripped).
        positions: contract column -> its 0-based position in the header.
        ignored_columns: header columns the contract does not know; read past, not loaded.
        compression: ``gzip`` etc. for a compressed delivery, else None.
    """

    path: Path
    header: list[str]
    positions: dict[str, int]
    ignored_columns: list[str]
    compression: str | None = None

    @property
    def source_file(self) -> str:
        """The file's base name (the ``source_file`` column of every bronze row)."""
        return self.path.name


@dataclass
class Delivery:
    """The accepted rows of one delivery, as the bronze notebooks consume them.

    Attributes:
        rows: the prepared, accepted rows, month by month (each month in file order).
        source_file: base name of the file.
        extraction_date: the delivery's extraction date.
        extraction_month: the month filter, or None.
        months: the booking months the load covers.
        staged: True when read from staging, False when prepared in this process.
    """

    rows: pd.DataFrame
    source_file: str
    extraction_date: dt.date
    extraction_month: str | None
    months: list[str]
    staged: bool

    @property
    def scope(self) -> dict[str, Any]:
        """What a bronze write replaces: this file's rows in the covered months (docs/contract.md §3)."""
        return write_scope(self.source_file, self.months)


def check_source(path: str | os.PathLike[str] | None) -> SourceInfo:
    """Check that a delivery can be read, before any notebook runs: a regular, readable file,
    compressed only under a name that says so, with a UTF-8 header holding every contract column.

    Only the header is read.

    Args:
        path: the delivery file.

    Returns:
        The :class:`SourceInfo`.

    Raises:
        SourceError: with a message naming the file and what is wrong (missing, a directory,
            gzip-compressed under a plain name, empty, header without required columns, ...).
    """
    if path is None or str(path) == "":
        raise SourceError("no source_file given: pass -p source_file=PATH")
    file = Path(path)
    try:
        mode = file.stat().st_mode
    except FileNotFoundError:
        raise SourceError(f"source file not found: {file}") from None
    except OSError as exc:
        raise SourceError(f"cannot read the source file {file}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise SourceError(f"source_file {file} is a directory, not a delivery file")
    if not stat.S_ISREG(mode):
        raise SourceError(f"source_file {file} is not a regular file")
    try:
        with _open(file) as fh:
            header, _ = csvlines.read_header(fh, file.name)
        compression = csvlines.compression_of(file)
    except PermissionError:
        raise SourceError(f"cannot read the source file {file}: permission denied") from None
    positions, ignored = bronze.header_columns(header, file.name)
    return SourceInfo(file, header, positions, ignored, compression)


@contextmanager
def _open(file: Path) -> Iterator[Any]:
    fh = csvlines.open_delivery(file)
    try:
        yield fh
    except (OSError, EOFError) as exc:  # a truncated or corrupt compressed file
        raise SourceError(f"{file.name}: cannot be read to the end: {exc}") from None
    finally:
        fh.close()


def _ordered_map(fn: Callable[[T], R], items: Iterable[T], threads: int) -> Iterator[R]:
    """``map(fn, items)`` on ``threads`` threads, in order, with at most ``threads + 1`` items in
    flight (memory stays a few blocks). For numpy/Arrow work, which runs without the GIL."""
    if threads <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ridelake-split") as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def read_lines(info: SourceInfo, block_size: int | None = None) -> Iterator[bronze.RawRows]:
    """Stream a delivery's data lines in blocks of about ``block_size`` bytes.

    Args:
        info: from :func:`check_source`.
        block_size: bytes per block (default :data:`ridelake.tables.csvlines.BLOCK_SIZE`).

    Returns:
        An iterator of :class:`~ridelake.tables.transforms.bronze.RawRows`, in file order; blocks
        are split into fields on :data:`SPLIT_THREADS` threads, ahead of the caller.
    """
    return _blocks(info, block_size, lambda raw: raw)


def _blocks(info: SourceInfo, block_size: int | None, then: Callable[[bronze.RawRows], R]) -> Iterator[R]:
    """``then(raw)`` for each block's lines, in file order, computed on :data:`SPLIT_THREADS`
    threads: the reading thread only numbers the lines (``source_row``) and hands blocks out."""
    size = block_size or csvlines.BLOCK_SIZE

    def numbered(fh: Any) -> Iterator[tuple[bytes, int | None, int]]:
        row = 1
        for block, truncated in csvlines.iter_blocks(fh, rest, size):
            yield block, truncated, row
            row += csvlines.count_lines(block)

    def work(item: tuple[bytes, int | None, int]) -> R | None:
        block, truncated, first = item
        lines = csvlines.split_lines(block, info.header, first, truncated)
        if not len(lines):
            return None
        return then(bronze.RawRows(
            source_row=lines.source_row,
            n_fields=lines.n_fields,
            text={c: lines.column(j) for c, j in info.positions.items()},
            raw_line=lines.raw,
            problems=lines.problems if lines.problems.null_count < len(lines) else None,
        ))

    with _open(info.path) as fh:
        _, rest = csvlines.read_header(fh, info.source_file, size)
        for out in _ordered_map(work, numbered(fh), SPLIT_THREADS):
            if out is not None:
                yield out


class _MonthFiles:
    """Accepted rows written as one Parquet file per booking month, a row group at a time."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = str(folder)  # a local folder or an object-store URL
        storage.make_dir(self.folder)
        self._buffers: dict[str, list[pa.Table]] = {}
        self._buffered: dict[str, int] = {}
        self._writers: dict[str, pq.ParquetWriter] = {}
        self.rows: dict[str, int] = {}

    def add(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        table = table.take(pc.sort_indices(table["extraction_month"]))
        start = 0
        for item in pc.value_counts(table["extraction_month"]).to_pylist():  # in order of appearance
            month, count = item["values"], item["counts"]
            part = table.slice(start, count)
            start += count
            self._buffers.setdefault(month, []).append(part)
            self._buffered[month] = self._buffered.get(month, 0) + count
            self.rows[month] = self.rows.get(month, 0) + count
            if self._buffered[month] >= ROW_GROUP:
                self._flush(month)
        if sum(self._buffered.values()) >= BUFFERED_ROWS:
            for month in list(self._buffers):
                self._flush(month)

    def _flush(self, month: str) -> None:
        parts = self._buffers.pop(month, [])
        self._buffered.pop(month, None)
        if not parts:
            return
        writer = self._writers.get(month)
        if writer is None:
            fs, path = storage.filesystem(storage.join(self.folder, f"{month}.parquet"))
            writer = self._writers[month] = pq.ParquetWriter(path, bronze.ACCEPTED_SCHEMA, filesystem=fs)
        writer.write_table(pa.concat_tables(parts))

    def close(self) -> dict[str, int]:
        for month in list(self._buffers):
            self._flush(month)
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        return dict(sorted(self.rows.items()))


def _staging_base(warehouse: str | None = None) -> str:
    """``<warehouse>/_staging``: a local folder or an object-store URL."""
    return storage.join(warehouse or config.warehouse_location(), "_staging")


def _key(source_file: str | os.PathLike[str], extraction_date: dt.date | str, extraction_month: str | None) -> str:
    date = extraction_date.isoformat() if isinstance(extraction_date, dt.date) else str(extraction_date)
    return f"{Path(source_file).name}__{date}__{extraction_month or 'all'}"


def _meta_path(source_file: str | os.PathLike[str], extraction_date: dt.date | str,
               extraction_month: str | None, warehouse: str | None = None) -> str:
    return storage.join(_staging_base(warehouse), f"{_key(source_file, extraction_date, extraction_month)}.json")


def _read_parquet(location: str, columns: list[str] | None = None) -> pa.Table:
    fs, path = storage.filesystem(location)
    return pq.read_table(path, columns=columns, filesystem=fs)


def _fingerprint(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def prepare(params: config.RunParams, block_size: int | None = None,
            folder: str | os.PathLike[str] | None = None) -> tuple[SourceInfo, PreparedDelivery]:
    """Read and prepare the delivery named by the run parameters, block by block.

    The accepted rows are written to a private staging folder as they come (one Parquet file per
    booking month); :func:`stage` publishes them for the bronze notebooks. Memory holds one block,
    the rows buffered per month and the rejected rows, never the whole file.

    Args:
        params: the notebook's validated parameters (``source_file`` is required).
        block_size: bytes read per block (default :data:`ridelake.tables.csvlines.BLOCK_SIZE`).
        folder: where to write the accepted rows (default a new folder under the warehouse's
            ``_staging``).

    Returns:
        ``(the file's SourceInfo, its PreparedDelivery)``; ``rows_in_file`` counts physical data lines.
    """
    info = check_source(params.source_file)
    key = _key(info.path, params.extraction_date, params.extraction_month)
    target = str(folder) if folder is not None else storage.join(_staging_base(), f".{key}.{uuid.uuid4().hex[:12]}.tmp")
    files = _MonthFiles(target)
    rejected: list[pa.Table] = []
    counts: list[pa.Table] = []
    rows = out_of_scope = 0
    months: set[str] = set()
    try:
        def prepare_block(raw: bronze.RawRows) -> bronze.PreparedBatch:
            return bronze.prepare_rows(raw, info.source_file, params.extraction_date, params.extraction_month,
                                       len(info.header))

        for batch in _blocks(info, block_size, prepare_block):  # split and checked on threads, in order
            files.add(batch.accepted)
            if batch.rejected.num_rows:
                rejected.append(batch.rejected)
            if batch.accepted.num_rows:
                counts.append(bronze.counts_of(batch.accepted))
            rows += batch.rows
            out_of_scope += batch.out_of_scope
            months |= batch.months
        files.close()
    except BaseException:
        files.close()
        storage.delete_dir(target)
        raise
    if params.extraction_month is not None:
        months.add(params.extraction_month)
    table = pa.concat_tables(rejected) if rejected else bronze.REJECTED_SCHEMA.empty_table()
    prepared = PreparedDelivery(
        rejected=bronze.rejected_frame(table),
        rows_in_file=rows,
        accepted_rows=sum(files.rows.values()),
        out_of_scope=out_of_scope,
        months=sorted(months),
        accepted_counts=bronze.sum_counts(counts),
        ignored_columns=list(info.ignored_columns),
    )
    prepared.staging = str(target)
    if info.ignored_columns:
        from ridelake.tables import catalog  # catalog imports pyiceberg: only an extra column needs it here

        catalog.note(f"{info.path.name}: ignored column(s) the contract does not know: "
                     f"{', '.join(info.ignored_columns)}")
    return info, prepared


def prepare_file(path: str | os.PathLike[str], extraction_date: dt.date | str = "2024-12-31",
                 extraction_month: str | None = None, block_size: int | None = None) -> PreparedDelivery:
    """Prepare a (small) delivery and return it with its accepted rows in memory (tests, exploring).

    Args:
        path: the delivery file.
        extraction_date: ``YYYY-MM-DD`` or a date.
        extraction_month: ``YYYY-MM`` or None.
        block_size: bytes per block.

    Returns:
        A :class:`PreparedDelivery` whose ``accepted`` holds the accepted rows in file order.
    """
    params = config.run_parameters(str(path), str(extraction_date), extraction_month)
    with tempfile.TemporaryDirectory(prefix="ridelake-prepare-") as tmp:
        _, prepared = prepare(params, block_size, folder=Path(tmp) / "rows")
        prepared.accepted = _read_months(Path(tmp) / "rows", _month_rows(prepared))
        prepared.staging = None
    return prepared


def _month_rows(prepared: PreparedDelivery) -> dict[str, int]:
    counts = prepared.accepted_counts.groupby("extraction_month")["rows"].sum()
    return {str(m): int(n) for m, n in counts.items() if n}


def _read_months(folder: str | Path, months: Iterable[str], columns: Sequence[str] | None = None,
                 file_order: bool = True) -> pd.DataFrame:
    """The staged rows of some months (only ``columns``, default all), in file order; with
    ``file_order=False`` month by month, each month in file order (what a notebook writing month
    partitions needs, without sorting the whole delivery)."""
    cols = list(columns) if columns is not None else None
    wanted = None if cols is None or not file_order else list(dict.fromkeys([*cols, "source_row"]))
    files = [storage.join(str(folder), f"{m}.parquet") for m in months]
    tables = [_read_parquet(f, wanted or cols) for f in files if storage.is_file(f)]
    table = pa.concat_tables(tables) if tables else bronze.ACCEPTED_SCHEMA.empty_table().select(
        wanted or cols or bronze.ACCEPTED_SCHEMA.names)
    if file_order and len(tables) > 1:
        table = table.take(pc.sort_indices(table["source_row"]))
    return bronze.accepted_frame(table if cols is None else table.select(cols))


def stage(params: config.RunParams, prepared: PreparedDelivery) -> Path:
    """Publish a prepared delivery's accepted rows for the bronze notebooks.

    The folder :func:`prepare` wrote is renamed into place and the JSON record (source file
    fingerprint, months, rows per month, ignored columns) is replaced atomically after it, so a
    reader sees the old staging or the new one, never half of one. A delivery prepared in memory
    (:func:`~ridelake.tables.transforms.bronze.prepare_delivery`) is written out first.

    Args:
        params: the parameters the delivery was prepared with.
        prepared: the prepared delivery.

    On an object store, which has no rename, the folder's files are moved one by one
    (:func:`ridelake.tables.storage.move_dir`) before the record that names them is written (one
    ``PUT``): readers still see the old staging or the new one.

    Returns:
        The staged folder (its URL on an object store).
    """
    if params.source_file is None:
        raise SourceError("no source_file given: pass -p source_file=PATH")
    base = _staging_base()
    key = _key(params.source_file, params.extraction_date, params.extraction_month)
    if prepared.staging is None:
        if prepared.accepted is None:
            raise SourceError("this delivery was already staged (or was not prepared)")
        folder = storage.join(base, f".{key}.{uuid.uuid4().hex[:12]}.tmp")
        files = _MonthFiles(folder)
        files.add(pa.Table.from_pandas(prepared.accepted, schema=bronze.ACCEPTED_SCHEMA, preserve_index=False))
        files.close()
        prepared.staging = folder
    name = f"{key}.{uuid.uuid4().hex[:12]}"
    final = storage.join(base, name)
    storage.move_dir(prepared.staging, final)
    prepared.staging = None
    meta = storage.join(base, f"{key}.json")
    record = {
        "format": _FORMAT,
        "source": _fingerprint(Path(params.source_file)),
        "data": name,
        "months": prepared.months,
        "rows": prepared.accepted_rows,
        "month_rows": _month_rows(prepared),
        "rows_in_file": prepared.rows_in_file,
        "rejected": len(prepared.rejected),
        "out_of_scope": prepared.out_of_scope,
        "ignored_columns": prepared.ignored_columns,
    }
    storage.write_text(meta, json.dumps(record, indent=1))
    for child, is_dir in storage.list_children(base):
        stale = storage.join(base, child)
        if not is_dir or child == name:
            continue
        if child.startswith(f"{key}."):
            storage.delete_dir(stale)
        elif child.startswith(f".{key}.") and child.endswith(".tmp"):  # a prepare that was never staged
            newest = max((f.mtime for f in storage.list_files(stale)), default=0.0)
            if time.time() - newest > 86_400:
                storage.delete_dir(stale)
    return final if storage.is_object_store(final) else Path(final)


def _record(meta: str) -> dict[str, Any] | None:
    try:
        info = json.loads(storage.read_text(meta) or "null")
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def staged_months(source_file: str | os.PathLike[str], extraction_date: dt.date | str,
                  extraction_month: str | None = None, warehouse: str | None = None) -> list[str] | None:
    """The booking months a prepared delivery covers, from its staging record.

    Args:
        source_file: the delivery file.
        extraction_date: its extraction date.
        extraction_month: the month filter it was loaded with, or None.
        warehouse: the warehouse (default the configured one).

    Returns:
        The months, sorted; None when there is no record (not prepared).
    """
    location = warehouse or config.warehouse_location()
    info = _record(_meta_path(source_file, extraction_date, extraction_month, location))
    months = info.get("months") if info else None
    return sorted({str(m) for m in months}) if isinstance(months, list) else None


def _fresh(source_file: Path, extraction_date: dt.date | str, extraction_month: str | None,
           warehouse: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """The staged folder and record of a delivery when they match the file as it is now."""
    base = _staging_base(warehouse)
    info = _record(storage.join(base, f"{_key(source_file, extraction_date, extraction_month)}.json"))
    if not info or info.get("format") != _FORMAT or not isinstance(info.get("data"), str):
        return None
    try:
        if info.get("source") != _fingerprint(source_file):
            return None
    except OSError:
        return None
    folder = storage.join(base, posixpath.basename(info["data"]))
    return (folder, info) if storage.is_dir(folder) else None


def moved_bookings(source_file: str | os.PathLike[str], extraction_date: dt.date | str,
                   extraction_month: str | None = None, warehouse: str | None = None) -> int | None:
    """How many bookings of a staged delivery sit in ``silver.booking`` under another month.

    Rebuilding the facts month by month cannot move a booking between months consistently (the
    old month would drop it before the new month adds it), so ``incremental`` rebuilds the facts
    whole when this is not zero.

    Args:
        source_file: the delivery file.
        extraction_date: its extraction date.
        extraction_month: the month filter it was loaded with, or None.
        warehouse: the warehouse (default the configured one).

    Returns:
        The count, or None when the delivery's staging is not there.
    """
    from ridelake.tables import catalog  # catalog imports pyiceberg: only this function needs it

    location = warehouse or config.warehouse_location()
    found = _fresh(Path(source_file), extraction_date, extraction_month, location)
    if found is None:
        return None
    folder, info = found
    files = [storage.join(folder, f"{m}.parquet") for m in info.get("month_rows", {})]
    tables = [_read_parquet(f, ["booking_id", "extraction_month"]) for f in files if storage.is_file(f)]
    if not tables:
        return 0
    delivered = pa.concat_tables(tables).group_by(["booking_id", "extraction_month"]).aggregate([])
    current = catalog.read_arrow("silver.booking", columns=["booking_id", "extraction_month"])
    both = delivered.join(current.rename_columns(["booking_id", "silver_month"]), keys="booking_id")
    moved = both.filter(pc.not_equal(both["extraction_month"], both["silver_month"]))
    return len(pc.unique(moved["booking_id"]))


def load_delivery(params: config.RunParams, columns: Sequence[str] | None = None) -> Delivery:
    """The accepted rows of the delivery named by ``params``: staged if fresh, else prepared now.

    A one-month run (``extraction_month``) reads only that month: from its own staging, or from
    the whole-file staging of the same file and extraction date.

    Args:
        params: the notebook's validated parameters.
        columns: the prepared columns to read (default all; see
            :data:`ridelake.tables.transforms.bronze.INPUT_COLUMNS`).

    Returns:
        A :class:`Delivery`.
    """
    info = check_source(params.source_file)
    month = params.extraction_month
    common = dict(source_file=info.source_file, extraction_date=params.extraction_date, extraction_month=month)
    if storage.is_dir(_staging_base()):  # anything staged at all (locally or on the object store)
        for staged_as in ([month, None] if month is not None else [None]):
            found = _fresh(info.path, params.extraction_date, staged_as)
            if found is None:
                continue
            folder, record = found
            months = [month] if month is not None else [str(m) for m in record.get("months", [])]
            month_rows = record.get("month_rows", {})
            rows = _read_months(folder, [m for m in months if month_rows.get(m)], columns, file_order=False)
            if len(rows) == sum(int(month_rows.get(m, 0)) for m in months):
                return Delivery(rows=rows, months=months, staged=True, **common)
    with tempfile.TemporaryDirectory(prefix="ridelake-prepare-") as tmp:
        _, prepared = prepare(params, folder=Path(tmp) / "rows")
        rows = _read_months(Path(tmp) / "rows", _month_rows(prepared), columns, file_order=False)
    return Delivery(rows=rows, months=prepared.months, staged=False, **common)
