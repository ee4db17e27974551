"""Delivery files: reading a source CSV, and the staging hand-off from prepare to bronze.

The prepare notebook reads and validates a delivery once and stages the accepted rows as a
Parquet file under ``<warehouse>/_staging/``. Each bronze notebook loads the staged rows, or,
when they are missing or stale (the source file changed), prepares the delivery itself, so any
bronze notebook can be rerun on its own.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from ridelake.tables import config
from ridelake.errors import SourceError
from ridelake.tables.transforms.bronze import PreparedDelivery, check_header, prepare_delivery, write_scope

__all__ = ["RawDelivery", "Delivery", "read_source", "prepare", "stage", "staged_months", "moved_bookings", "load_delivery"]


@dataclass
class RawDelivery:
    """A source file's rows as text.

    Attributes:
        path: the file.
        header: the header's column names.
        rows: ``source_row``, ``raw_line``, ``n_fields`` and one text column per header name.
    """

    path: Path
    header: list[str]
    rows: pd.DataFrame

    @property
    def source_file(self) -> str:
        """The file's base name (the ``source_file`` column of every bronze row)."""
        return self.path.name


@dataclass
class Delivery:
    """The accepted rows of one delivery, as the bronze notebooks consume them.

    Attributes:
        rows: the prepared, accepted rows.
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


def _records(path: Path) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(raw text, fields)`` per CSV record, keeping the exact text for rejected rows."""
    buffer: list[str] = []

    def lines(fh: Any) -> Iterator[str]:
        for line in fh:
            buffer.append(line)
            yield line

    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        for fields in csv.reader(lines(fh)):
            raw = "".join(buffer).rstrip("\r\n")
            buffer.clear()
            yield raw, fields


def read_source(path: str | os.PathLike[str]) -> RawDelivery:
    """Read a delivery's rows as text, checking the header first.

    Args:
        path: the CSV file.

    Returns:
        A :class:`RawDelivery`. Blank lines are not data rows and are skipped.

    Raises:
        SourceError: the file is missing, empty, or its header lacks required columns.
    """
    file = Path(path)
    if not file.is_file():
        raise SourceError(f"source file not found: {file}")
    records = _records(file)
    try:
        _, header = next(records)
    except StopIteration:
        raise SourceError(f"{file.name}: the file is empty (no header)") from None
    header = [h.strip() for h in header]
    check_header(header, file.name)
    width = len(header)
    source_rows, raws, counts, values = [], [], [], []
    n = 0
    for raw, fields in records:
        if not fields:
            continue
        n += 1
        source_rows.append(n)
        raws.append(raw)
        counts.append(len(fields))
        values.append(fields if len(fields) == width else (fields + [None] * width)[:width])
    rows = pd.DataFrame(values, columns=header, dtype="string") if values else pd.DataFrame(
        {h: pd.Series(dtype="string") for h in header})
    rows.insert(0, "n_fields", pd.Series(counts, dtype="int64"))
    rows.insert(0, "raw_line", pd.Series(raws, dtype="string"))
    rows.insert(0, "source_row", pd.Series(source_rows, dtype="int64"))
    return RawDelivery(file, header, rows)


def prepare(params: config.RunParams) -> tuple[RawDelivery, PreparedDelivery]:
    """Read and prepare the delivery named by the run parameters.

    Args:
        params: the notebook's validated parameters (``source_file`` is required).

    Returns:
        The raw delivery and its :class:`~ridelake.tables.transforms.bronze.PreparedDelivery`.
    """
    if params.source_file is None:
        raise SourceError("no source_file given: pass -p source_file=PATH")
    raw = read_source(params.source_file)
    prepared = prepare_delivery(
        raw.rows, raw.source_file, params.extraction_date, params.extraction_month, len(raw.header)
    )
    return raw, prepared


def _fingerprint(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _staging_paths(source_file: str | os.PathLike[str], extraction_date: dt.date | str,
                   extraction_month: str | None, warehouse: str | None = None) -> tuple[Path, Path]:
    """The staged Parquet file and its JSON record for one delivery (file, date, month)."""
    date = extraction_date.isoformat() if isinstance(extraction_date, dt.date) else str(extraction_date)
    base = Path(warehouse or config.warehouse_location()) / "_staging"
    key = f"{Path(source_file).name}__{date}__{extraction_month or 'all'}"
    return base / f"{key}.parquet", base / f"{key}.json"


def staged_months(source_file: str | os.PathLike[str], extraction_date: dt.date | str,
                  extraction_month: str | None = None, warehouse: str | None = None) -> list[str] | None:
    """The booking months a prepared delivery covers, from its staging record.

    Args:
        source_file: the delivery file.
        extraction_date: its extraction date.
        extraction_month: the month filter it was loaded with, or None.
        warehouse: the warehouse (default the configured one).

    Returns:
        The months, sorted; None when there is no record (not prepared, or an object store).
    """
    location = warehouse or config.warehouse_location()
    if not config.is_local_warehouse(location):
        return None
    _, meta = _staging_paths(source_file, extraction_date, extraction_month, location)
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    months = info.get("months") if isinstance(info, dict) else None
    return sorted({str(m) for m in months}) if isinstance(months, list) else None


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
    from ridelake.tables import catalog

    location = warehouse or config.warehouse_location()
    if not config.is_local_warehouse(location):
        return None
    data, _ = _staging_paths(source_file, extraction_date, extraction_month, location)
    if not data.is_file():
        return None
    delivered = pd.read_parquet(data, columns=["booking_id", "extraction_month"]).drop_duplicates()
    current = catalog.read_table("silver.booking", columns=["booking_id", "extraction_month"])
    both = delivered.merge(current, on="booking_id", suffixes=("", "_silver"))
    return int(both.loc[both["extraction_month"] != both["extraction_month_silver"], "booking_id"].nunique())


def stage(params: config.RunParams, prepared: PreparedDelivery) -> Path:
    """Stage a prepared delivery's accepted rows for the bronze notebooks.

    Args:
        params: the parameters the delivery was prepared with.
        prepared: the prepared delivery.

    Returns:
        The Parquet file written.
    """
    if not config.is_local_warehouse():
        raise SourceError("staging needs a local warehouse folder; object-store staging is not supported yet")
    assert params.source_file is not None
    data, meta = _staging_paths(params.source_file, params.extraction_date, params.extraction_month)
    data.parent.mkdir(parents=True, exist_ok=True)
    tmp = data.with_suffix(".parquet.tmp")
    prepared.accepted.to_parquet(tmp, index=False)
    os.replace(tmp, data)
    assert params.source_file is not None
    meta.write_text(json.dumps({"source": _fingerprint(params.source_file), "months": prepared.months,
                                "rows": len(prepared.accepted)}), encoding="utf-8")
    return data


def load_delivery(params: config.RunParams) -> Delivery:
    """The accepted rows of the delivery named by ``params``: staged if fresh, else prepared now.

    Args:
        params: the notebook's validated parameters.

    Returns:
        A :class:`Delivery`.
    """
    if params.source_file is None:
        raise SourceError("no source_file given: pass -p source_file=PATH")
    if not params.source_file.is_file():
        raise SourceError(f"source file not found: {params.source_file}")
    common = dict(source_file=params.source_file.name, extraction_date=params.extraction_date,
                  extraction_month=params.extraction_month)
    if config.is_local_warehouse():
        data, meta = _staging_paths(params.source_file, params.extraction_date, params.extraction_month)
        if data.is_file() and meta.is_file():
            info = json.loads(meta.read_text(encoding="utf-8"))
            if info.get("source") == _fingerprint(params.source_file):
                rows = pd.read_parquet(data)
                if len(rows) == info.get("rows"):
                    return Delivery(rows=rows, months=list(info["months"]), staged=True, **common)
    _, prepared = prepare(params)
    return Delivery(rows=prepared.accepted, months=prepared.months, staged=False, **common)
