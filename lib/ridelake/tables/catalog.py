"""The Iceberg catalog: bootstrap, read and write. All table I/O of ridelake goes through here.

The catalog is a pyiceberg ``SqlCatalog`` named ``ridelake`` (docs/contract.md §7). Frames cross this
boundary in one convention: dates as ``datetime64`` at midnight, times as ``datetime.time``,
timestamps as UTC ``datetime64``. Writes cast to the table's Arrow schema (microsecond
timestamps), carry provenance snapshot properties and leave a receipt for the runner.

A notebook's write cell passes its ``write`` parameter to :func:`replace_rows`: ``False`` (the
default of a notebook opened by hand) shows what the write would change and writes nothing
(:mod:`ridelake.tables.writes`); ``True`` (what the runner passes) writes. A write with ``True``
outside the runner is tagged and recorded as an interactive run
(:mod:`ridelake.tables.interactive`).
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import pandas as pd

from ridelake.core.files import current_user
from ridelake.core.protocol import ENV
from ridelake.core.redact import redact, redact_text
from ridelake.tables import config, icebergfix, storage, writes
from ridelake.errors import CatalogError
from ridelake.tables.schemas import NAMESPACES, TABLES, TableSpec, table_spec

__all__ = [
    "RECEIPT_ENV",
    "check_declared",
    "WriteResult",
    "exists",
    "get_catalog",
    "bootstrap",
    "load_table",
    "read_table",
    "read_arrow",
    "read_snapshot",
    "read_batches",
    "month_filter",
    "FOLD_BUCKETS",
    "bucket_of",
    "fold",
    "aggregate",
    "count_rows",
    "to_arrow",
    "write_table",
    "preview_write",
    "replace_rows",
    "session_receipts",
    "snapshot_id",
    "eq_filter",
    "in_filter",
]

#: Environment variable naming a JSON-lines file where reads and writes are recorded.
RECEIPT_ENV = ENV.RECEIPT_FILE

_lock = threading.Lock()
_catalogs: dict[tuple[str, str], Any] = {}
#: Every receipt of this process, with its warehouse (an interactive write records the snapshots
#: its notebook read).
_session: list[tuple[str, dict[str, Any]]] = []


@dataclass(frozen=True)
class WriteResult:
    """What one write did.

    Attributes:
        table: Iceberg identifier.
        rows_written: rows in the frame that was written.
        rows_deleted: rows the write replaced (from the snapshot summary).
        snapshot_id: the table's snapshot after the write.
        operation: ``append`` or ``overwrite``.
    """

    table: str
    rows_written: int
    rows_deleted: int
    snapshot_id: int | None
    operation: str

    def summary(self) -> str:
        """One line for the notebook: rows written and replaced, the new snapshot."""
        return (f"{self.table}: wrote {self.rows_written:,} rows, replaced {self.rows_deleted:,}; "
                f"snapshot {self.snapshot_id}")


def _warehouse_uri(location: str) -> str:
    return Path(location).as_uri() if config.is_local_warehouse(location) else location


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for any other catalog)."""
    return Path(uri[len("sqlite:///"):].split("?")[0]) if uri.startswith("sqlite:///") else None


def exists(warehouse: str | None = None, uri: str | None = None) -> bool:
    """Tell whether the catalog is there, without creating anything.

    Args:
        warehouse: the warehouse (default the configured one).
        uri: the catalog URL (default :func:`ridelake.tables.config.catalog_uri` of ``warehouse``).

    Returns:
        False only for a SQLite catalog whose file does not exist yet; other catalogs are servers.
    """
    file = _sqlite_file(uri or config.catalog_uri(warehouse))
    return file is None or file.exists()


def get_catalog(warehouse: str | None = None, uri: str | None = None) -> Any:
    """Open (once per process and location) the SQL catalog, creating a SQLite one if absent.

    Args:
        warehouse: the warehouse (default the one the environment names).
        uri: the catalog URL (default :func:`ridelake.tables.config.catalog_uri` of ``warehouse``).

    Returns:
        A pyiceberg ``SqlCatalog``.
    """
    from pyiceberg.catalog.sql import SqlCatalog  # heavy (pyiceberg): only where used
    from sqlalchemy.exc import SQLAlchemyError  # heavy: only where the catalog is opened

    location = warehouse or config.warehouse_location()
    uri = uri or config.catalog_uri(location)
    key = (uri, location)
    with _lock:
        if key not in _catalogs:
            icebergfix.install()  # every commit through it: one-pass month splits, history not re-copied
            if config.is_local_warehouse(location):
                Path(location).mkdir(parents=True, exist_ok=True)
            fresh = not exists(location, uri)
            server = not uri.startswith("sqlite")
            try:
                _catalogs[key] = SqlCatalog(
                    config.CATALOG_NAME,
                    uri=uri,
                    warehouse=_warehouse_uri(location),
                    init_catalog_tables="true" if fresh or server else "false",
                    # a server may drop a connection while a warm kernel idles: check it before use
                    pool_pre_ping="true" if server else "false",
                    **storage.catalog_properties(location),  # S3 endpoint and region (no credentials)
                )
            except (ImportError, SQLAlchemyError) as exc:  # no driver, no server, wrong password...
                # never the password: the URL and the driver's message are shown masked
                raise CatalogError(f"cannot open the catalog {redact(uri)}: "
                                   f"{redact_text(str(exc).splitlines()[0] if str(exc) else repr(exc))}") from None
        return _catalogs[key]


def bootstrap(tables: Iterable[str] | None = None) -> list[str]:
    """Create the namespaces and every table that does not exist yet. Safe to repeat.

    Run once before any parallel wave: concurrent creation races in the catalog.

    Args:
        tables: identifiers to create (default: all of :data:`ridelake.tables.schemas.TABLES`).

    Returns:
        The identifiers that were created now.
    """
    from pyiceberg.catalog.sql import SqlCatalog  # heavy (pyiceberg): only where used

    cat = get_catalog()
    if isinstance(cat, SqlCatalog):
        cat.create_tables()  # idempotent: CREATE TABLE IF NOT EXISTS for the catalog's own tables
    existing_ns = {ns[0] for ns in cat.list_namespaces()}
    for ns in NAMESPACES:
        if ns not in existing_ns:
            cat.create_namespace_if_not_exists(ns)
    created = []
    for ident in tables or TABLES:
        spec = table_spec(ident)
        if cat.table_exists(ident):
            table = cat.load_table(ident)
            _check_compatible(spec, table)
            missing = {k: v for k, v in spec.properties().items() if table.properties.get(k) != v}
            if missing:  # a table made before the property existed
                with table.transaction() as tx:
                    tx.set_properties(missing)
            continue
        cat.create_table_if_not_exists(
            ident,
            schema=spec.iceberg_schema(),
            partition_spec=spec.partition_spec(),
            properties={"format-version": "2", "comment": spec.doc, **spec.properties()},
        )
        created.append(ident)
    return created


def _check_compatible(spec: TableSpec, table: Any) -> None:
    have = [f.name for f in table.schema().fields]
    if have != spec.column_names:
        raise CatalogError(
            f"{spec.identifier} exists with columns {have}, expected {spec.column_names}; "
            "drop the warehouse (make clean-warehouse) or migrate the table"
        )


def load_table(identifier: str) -> Any:
    """Load a table, bootstrapping the catalog first if the table does not exist.

    Args:
        identifier: ``<namespace>.<table>``.

    Returns:
        The pyiceberg ``Table``.
    """
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError  # heavy (pyiceberg): only where used

    table_spec(identifier)
    cat = get_catalog()
    try:
        return cat.load_table(identifier)
    except (NoSuchTableError, NoSuchNamespaceError):
        bootstrap([identifier])
        return cat.load_table(identifier)


def check_declared(identifier: str, op: str = "read") -> None:
    """Refuse a read or write that ``notebooks/pipeline.yaml`` does not declare for the running
    notebook (the runner passes the declarations; outside a run nothing is checked). A notebook
    may read the tables it writes.

    Raises:
        CatalogError: naming the notebook, the table and what it declares.
    """
    reads, writes = os.environ.get(ENV.READS), os.environ.get(ENV.WRITES)
    if reads is None and writes is None:
        return
    declared_writes = {d for d in (writes or "").split(",") if d}
    allowed = declared_writes | ({d for d in (reads or "").split(",") if d} if op == "read" else set())
    if identifier not in allowed:
        notebook = os.environ.get(ENV.NOTEBOOK, "this notebook")
        verb, key = ("reads", "reads") if op == "read" else ("writes", "writes")
        raise CatalogError(
            f"{notebook} {verb} {identifier}, which notebooks/pipeline.yaml does not declare "
            f"(its {key}: {', '.join(sorted(allowed)) or 'none'}); add it there so the runner orders it correctly"
        )


def read_snapshot(identifier: str) -> int | None:
    """The table's current snapshot, recorded as read: for data derived from the table and staged
    (e.g. the winning rows' keys of ``bronze.booking``), so the read is checked and traced like a scan.

    Returns:
        The snapshot id (None for a table never written).
    """
    check_declared(identifier, "read")
    snap = load_table(identifier).current_snapshot()
    sid = snap.snapshot_id if snap else None
    _receipt({"op": "read", "table": identifier, "snapshot_id": sid, "rows": None})
    return sid


def snapshot_id(identifier: str) -> int | None:
    """The table's current snapshot id (None for a table never written)."""
    snap = load_table(identifier).current_snapshot()
    return snap.snapshot_id if snap else None


def note(text: str) -> None:
    """Tell the run something worth its summary (kept in ``run.json`` as the notebook's ``notes``
    and printed when it finishes); outside a run it only prints."""
    print(f"note: {text}")
    _receipt({"op": "note", "text": text})


def _receipt(record: dict[str, Any]) -> None:
    _session.append((config.warehouse_location(), dict(record)))
    path = os.environ.get(RECEIPT_ENV)
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, default=str) + "\n")


def eq_filter(column: str, value: Any) -> Any:
    """An Iceberg ``column == value`` row filter."""
    from pyiceberg.expressions import EqualTo  # heavy (pyiceberg): only where used

    return EqualTo(column, _literal(value))


def in_filter(column: str, values: Iterable[Any]) -> Any:
    """An Iceberg ``column IN values`` row filter; a None among the values also matches nulls.

    An empty collection matches nothing.
    """
    from pyiceberg.expressions import AlwaysFalse, In, IsNull, Or  # heavy (pyiceberg): only where used

    values = list(values)
    vals = {_literal(v) for v in values if v is not None}
    expr: Any = In(column, vals) if vals else AlwaysFalse()
    if any(v is None for v in values):
        expr = IsNull(column) if isinstance(expr, AlwaysFalse) else Or(expr, IsNull(column))
    return expr


def _literal(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return value.isoformat()
    return value


def _scan(identifier: str, columns: Sequence[str] | None, row_filter: Any) -> tuple[Any, Any, tuple[str, ...]]:
    """The table's current snapshot and a scan with the row filter and projection pushed down."""
    from pyiceberg.expressions import AlwaysTrue  # heavy (pyiceberg): only where used

    check_declared(identifier, "read")
    table = load_table(identifier)
    snap = table.current_snapshot()
    cols = tuple(columns) if columns else tuple(table_spec(identifier).column_names)
    if snap is None:
        return None, None, cols
    scan = table.scan(row_filter=row_filter if row_filter is not None else AlwaysTrue(), selected_fields=cols)
    return snap, scan, cols


def read_arrow(identifier: str, columns: Sequence[str] | None = None, row_filter: Any = None) -> Any:
    """Read a table (or some columns and rows of it) as Arrow, the filter and the projection pushed
    into the scan (only the matching files, row groups and columns are read).

    Args:
        identifier: ``<namespace>.<table>``.
        columns: the columns to read (default all), in this order.
        row_filter: a pyiceberg expression (see :func:`eq_filter`, :func:`in_filter`, :func:`month_filter`).

    Returns:
        A ``pyarrow.Table`` with the table's Arrow types.
    """
    snap, scan, cols = _scan(identifier, columns, row_filter)
    table = table_spec(identifier).arrow_schema().empty_table() if scan is None else scan.to_arrow()
    table = _small_strings(table.select(list(cols)))
    _receipt({"op": "read", "table": identifier, "snapshot_id": snap.snapshot_id if snap else None,
              "rows": table.num_rows})
    return table


def read_batches(identifier: str, columns: Sequence[str] | None = None, row_filter: Any = None) -> Iterator[Any]:
    """Stream a table's rows as Arrow record batches (bounded memory; filter and projection pushed down).

    Args:
        identifier: ``<namespace>.<table>``.
        columns: the columns to read (default all).
        row_filter: a pyiceberg expression.

    Returns:
        An iterator of ``pyarrow.RecordBatch`` with the columns in the order asked for.
    """
    snap, scan, cols = _scan(identifier, columns, row_filter)
    rows = 0
    if scan is not None:
        for batch in _stream(scan):
            rows += batch.num_rows
            yield _small_strings(batch.select(list(cols)))
    _receipt({"op": "read", "table": identifier, "snapshot_id": snap.snapshot_id if snap else None, "rows": rows})


def _stream(scan: Any) -> Iterator[Any]:
    """A scan's record batches, one data file at a time and each file as it is decoded.

    pyiceberg 0.12's ``to_arrow_batch_reader`` reads every planned file at once on its thread
    pool and keeps each file's batches until they are taken (at 15M rows, 2 GB for a few
    columns of one table); this reads the planned files in order with the same per-file reader
    (projection, row filter, deletes and schema resolution are pyiceberg's own).
    """
    try:
        from pyiceberg.io.pyarrow import ArrowScan, _read_all_delete_files, schema_to_pyarrow
    except ImportError:  # another pyiceberg (requirements.txt pins 0.12): its own reader
        yield from scan.to_arrow_batch_reader()
        return
    projected = scan.projection()
    reader = ArrowScan(scan.table_metadata, scan.io, projected, scan.row_filter, scan.case_sensitive, scan.limit)
    per_file = getattr(reader, "_record_batches_from_scan_tasks_and_deletes", None)
    target = schema_to_pyarrow(projected)
    for task in scan.plan_files():
        if per_file is None:  # another pyiceberg: its public reader, one file per call
            batches = reader.to_record_batches([task])
        else:
            batches = per_file([task], _read_all_delete_files(scan.io, [task]))
        for batch in batches:
            yield batch if batch.schema == target else batch.cast(target)


def _small_strings(data: Any) -> Any:
    """Large string columns (pyiceberg reads them so) as plain strings, one convention for joins."""
    import pyarrow as pa  # only where Arrow is used

    fields = [pa.field(f.name, pa.string(), f.nullable) if pa.types.is_large_string(f.type) else f
              for f in data.schema]
    schema = pa.schema(fields)
    return data if schema.equals(data.schema) else data.cast(schema)


def read_table(
    identifier: str,
    columns: Sequence[str] | None = None,
    row_filter: Any = None,
) -> pd.DataFrame:
    """Read a table (or some columns and rows of it) into pandas (see :func:`read_arrow`).

    Args:
        identifier: ``<namespace>.<table>``.
        columns: the columns to read (default all).
        row_filter: a pyiceberg expression (see :func:`eq_filter`, :func:`in_filter`, :func:`month_filter`).

    Returns:
        The frame, with dates as ``datetime64`` and timestamps as UTC ``datetime64``.
    """
    table = read_arrow(identifier, columns, row_filter)
    return table.to_pandas(date_as_object=False)


#: Buckets a keyed :func:`fold` splits its partial results into: a merge then groups one bucket's
#: keys at a time (an eighth of the hash table a whole merge would build).
FOLD_BUCKETS = 8


def bucket_of(values: Any, buckets: int) -> Any:
    """A bucket number (``0 .. buckets-1``, NumPy ``int64``) per value of an Arrow string or
    integer array: equal values get equal buckets (strings by their last three bytes, which
    spreads ids that end in digits); nulls go to bucket 0.

    Raises:
        TypeError: another type.
    """
    import numpy as np  # only where Arrow is used
    import pyarrow as pa  # only where Arrow is used
    import pyarrow.compute as pc  # only where Arrow is used

    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_integer(arr.type):
        out = np.asarray(pc.fill_null(arr, 0).cast(pa.int64())) % buckets
    elif pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
        offsets = np.frombuffer(arr.buffers()[1], dtype=width)[arr.offset:arr.offset + len(arr) + 1].astype(np.int64)
        raw = arr.buffers()[2]
        data = np.frombuffer(raw, dtype=np.uint8) if raw is not None and raw.size else np.zeros(1, np.uint8)
        ends, lengths = offsets[1:], offsets[1:] - offsets[:-1]
        h = np.zeros(len(arr), dtype=np.int64)
        for back in (1, 2, 3):
            h = h * 31 + np.where(lengths >= back, data[np.maximum(ends - back, 0)], 0)
        out = h % buckets
    else:
        raise TypeError(f"bucket_of: {arr.type} keys are not supported")
    if arr.null_count:
        out[np.asarray(arr.is_null())] = 0
    return out


class _Folding:
    """Partial results of one bucket waiting to be merged (see :func:`fold`)."""

    def __init__(self) -> None:
        self.parts: list[Any] = []
        self.held = self.merged = 0

    def add(self, part: Any, merge: Callable[[list[Any]], Any], compact_at: int) -> None:
        self.parts.append(part)
        self.held += part.num_rows
        if self.held > max(compact_at, 2 * self.merged):
            self.parts = [merge(self.parts)]
            self.held = self.merged = self.parts[0].num_rows


def fold(tables: Iterable[Any], partial: Callable[[Any], Any], merge: Callable[[list[Any]], Any],
         compact_at: int = 4_000_000, key: str | None = None, buckets: int = FOLD_BUCKETS) -> Any:
    """Add up ``partial`` of each table, in bounded memory: the partial results are merged with
    ``merge`` once they hold more than ``compact_at`` rows and twice the rows of the last merge
    (so each row is merged a logarithmic number of times however large the result), and at the end.
    With a ``key`` (a column of the partial results that ``merge`` groups by), each partial
    result is split into ``buckets`` by :func:`bucket_of` its key and each bucket is merged on
    its own: the result is the buckets' results one after another.

    Args:
        tables: ``pyarrow.Table`` pieces (e.g. record batches of a scan).
        partial: piece -> partial result (a ``pyarrow.Table``).
        merge: partial results -> one (same shape).
        compact_at: partial rows held before they are merged.
        key: the grouping column, to merge bucket by bucket.
        buckets: how many buckets, with a key.

    Returns:
        The merged result.
    """
    import numpy as np  # only where Arrow is used
    import pyarrow as pa  # only where Arrow is used

    if key is None or buckets <= 1:
        whole = _Folding()
        for table in tables:
            whole.add(partial(table), merge, compact_at)
        return merge(whole.parts)
    states = [_Folding() for _ in range(buckets)]
    for table in tables:
        part = partial(table)
        which = bucket_of(part[key], buckets)
        counts = np.bincount(which, minlength=buckets)
        ordered = part.take(pa.array(np.argsort(which, kind="stable")))
        start = 0
        for state, count in zip(states, counts.tolist()):
            if count:
                state.add(ordered.slice(start, count), merge, max(1, compact_at // buckets))
            start += count
    results = [merge(state.parts) for state in states if state.parts]
    return pa.concat_tables(results) if results else merge([])


def aggregate(identifier: str, columns: Sequence[str], partial: Callable[[Any], Any],
              merge: Callable[[list[Any]], Any], compact_at: int = 4_000_000, row_filter: Any = None,
              key: str | None = None) -> Any:
    """:func:`fold` over a table's record batches (as ``pyarrow.Table``), reading only ``columns``
    (and the rows of ``row_filter``, a pyiceberg expression), bucket by bucket of ``key`` if given."""
    import pyarrow as pa  # only where Arrow is used

    return fold((pa.Table.from_batches([b]) for b in read_batches(identifier, columns, row_filter)),
                partial, merge, compact_at, key)


def count_rows(identifier: str, row_filter: Any = None) -> int:
    """Rows of a table (or of the rows matching a filter), counted batch by batch over its first
    column, without holding them."""
    first = table_spec(identifier).columns[0].name
    return sum(batch.num_rows for batch in read_batches(identifier, [first], row_filter))


def month_filter(extraction_month: str | None) -> Any:
    """The row filter of one ``extraction_month`` partition; None (every row) when no month is given."""
    return None if extraction_month is None else eq_filter("extraction_month", extraction_month)


def _empty_frame(spec: TableSpec, cols: Sequence[str]) -> pd.DataFrame:
    arrow = spec.arrow_schema()
    empty = arrow.empty_table().select(list(cols))
    return empty.to_pandas(date_as_object=False)


def to_arrow(identifier: str, frame: pd.DataFrame) -> Any:
    """Cast a frame to the table's Arrow schema (microsecond timestamps, date32, time64).

    Args:
        identifier: the target table.
        frame: must hold every column of the table (extra columns are ignored).

    Returns:
        A ``pyarrow.Table`` in the table's column order.
    """
    import pyarrow as pa  # only where Arrow is used
    import pyarrow.compute as pc  # only where Arrow is used

    spec = table_spec(identifier)
    missing = [c for c in spec.column_names if c not in frame.columns]
    if missing:
        raise CatalogError(f"{identifier}: frame lacks column(s) {', '.join(missing)}")
    schema = spec.arrow_schema()
    arrays = []
    for fld in schema:
        series = frame[fld.name]
        try:
            arr = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arr = pa.array(series.astype(object).where(series.notna(), None), from_pandas=True)
        if not arr.type.equals(fld.type):
            if pa.types.is_date(fld.type) and pa.types.is_timestamp(arr.type):
                arr = pc.cast(arr, pa.timestamp("us", tz=arr.type.tz), safe=False)
            arr = pc.cast(arr, options=pc.CastOptions(fld.type, allow_time_truncate=True))
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=schema)


def write_table(
    identifier: str,
    frame: pd.DataFrame,
    overwrite_filter: Any = None,
    replace_all: bool = False,
    provenance: dict[str, str] | None = None,
) -> WriteResult:
    """Write a frame: append, replace the rows matching a filter, or replace the whole table.

    Each call is one Iceberg commit, carrying the runner's provenance as snapshot properties
    (run id, notebook, parameters hash), the table, and the user and host that wrote it.

    Args:
        identifier: the target table.
        frame: the rows to add (every column of the table).
        overwrite_filter: delete the rows matching this expression in the same commit.
        replace_all: replace every row of the table (ignores ``overwrite_filter``).
        provenance: the run id, notebook and parameters hash properties to use instead of the
            runner's environment (an interactive write).

    Returns:
        A :class:`WriteResult`.
    """
    from pyiceberg.expressions import AlwaysTrue  # heavy (pyiceberg): only where used

    table = load_table(identifier)
    data = to_arrow(identifier, frame)
    before = table.current_snapshot()
    props = {config.PROP_TABLE: identifier, config.PROP_USER: current_user() or "?",
             config.PROP_HOST: socket.gethostname(),
             **(config.run_context() if provenance is None else provenance)}
    if replace_all or overwrite_filter is not None:
        flt = AlwaysTrue() if replace_all else overwrite_filter
        with warnings.catch_warnings():
            # replacing rows that are not there yet (a first load) is fine
            warnings.filterwarnings("ignore", message="Delete operation did not match any records")
            table.overwrite(data, overwrite_filter=flt, snapshot_properties=props)
        op = "overwrite"
    else:
        table.append(data, snapshot_properties=props)
        op = "append"
    snap = table.current_snapshot()  # the commit updated the table object: no reload
    deleted = _deleted_since(table, before.snapshot_id if before else None)
    result = WriteResult(identifier, len(frame), deleted, snap.snapshot_id if snap else None, op)
    _receipt({"op": "write", **asdict(result)})
    return result


def _deleted_since(table: Any, before: int | None) -> int:
    """Rows removed by the snapshots after ``before`` (an overwrite commits a delete and an append)."""
    total = 0
    snap = table.current_snapshot()
    while snap is not None and snap.snapshot_id != before:
        summary = snap.summary.additional_properties if snap.summary else {}
        total += int(summary.get("deleted-records", 0) or 0)
        snap = table.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id else None
    return total


def preview_write(identifier: str, frame: pd.DataFrame, overwrite_filter: Any = None,
                  replace_all: bool = False) -> writes.WritePreview:
    """What :func:`write_table` with these arguments would change, writing nothing.

    Args:
        identifier: the target table.
        frame: the rows the write would add.
        overwrite_filter: the rows it would delete (None: an append deletes nothing).
        replace_all: it would replace every row.

    Returns:
        A :class:`~ridelake.tables.writes.WritePreview`, comparing by the table's key.
    """
    from pyiceberg.expressions import AlwaysTrue  # heavy (pyiceberg): only where used

    spec = table_spec(identifier)
    new = to_arrow(identifier, frame).to_pandas(date_as_object=False)
    snap = load_table(identifier).current_snapshot()
    total = int((snap.summary.additional_properties if snap and snap.summary else {}).get("total-records", 0) or 0)
    if replace_all or overwrite_filter is not None:
        old = read_table(identifier, row_filter=AlwaysTrue() if replace_all else overwrite_filter)
    else:
        old = new.iloc[0:0]
    added, replaced, changed, removed, sample = writes.compare(spec.key, old, new)
    return writes.WritePreview(identifier, total, len(old), len(new), added, replaced, changed, removed, sample)


def session_receipts(warehouse: str | None = None) -> list[dict[str, Any]]:
    """Every read and write receipt this process made on a warehouse, oldest first (whether or
    not a receipt file is set).

    Args:
        warehouse: the warehouse (default the configured one).
    """
    location = warehouse or config.warehouse_location()
    return [dict(r) for wh, r in _session if wh == location]


def replace_rows(identifier: str, frame: pd.DataFrame, where: dict[str, Any],
                 write: bool | None = None) -> WriteResult | writes.WritePreview:
    """Replace the rows matching every ``column: value(s)`` condition with ``frame``, in one commit.

    Args:
        identifier: the target table.
        frame: the new rows.
        where: column to a value or a collection of values (IN); an empty collection matches nothing.
        write: a notebook's ``write`` parameter. ``False``: write nothing; show and return what
            the write would change (:func:`preview_write`). ``True``: write and show what was
            written; outside the runner (no ``RIDELAKE_RUN_ID``) the write is tagged and recorded
            as an interactive run (:func:`ridelake.tables.interactive.write`). None (code and
            tests): write, show nothing.

    Returns:
        A :class:`WriteResult`, or for ``write=False`` a :class:`~ridelake.tables.writes.WritePreview`.
    """
    from pyiceberg.expressions import And, AlwaysTrue  # heavy (pyiceberg): only where used

    if write is not None and not isinstance(write, bool):
        raise CatalogError(f"{identifier}: write must be True or False, got {write!r}")
    expr: Any = AlwaysTrue()
    for column, value in where.items():
        part = in_filter(column, value) if isinstance(value, (list, tuple, set, frozenset)) else eq_filter(column, value)
        expr = part if isinstance(expr, AlwaysTrue) else And(expr, part)
    if write is None:
        return write_table(identifier, frame, overwrite_filter=expr)
    if write and not os.environ.get(ENV.RUN_ID):
        # Imported by name, only here: the recorder brings the run core (freshness, run records,
        # the lock) that a runner's kernel never needs, and it records a write without changing
        # what the notebook computes, so it is not part of the notebooks' code fingerprint.
        recorder = importlib.import_module("ridelake.tables.interactive")
        return recorder.write(identifier, lambda props: write_table(identifier, frame, overwrite_filter=expr,
                                                                    provenance=props))
    result = write_table(identifier, frame, overwrite_filter=expr) if write else preview_write(identifier, frame, expr)
    writes.show(result)
    return result
