"""The row-by-row prepare step as it was before the streamed, vectorised one (a test oracle).

Kept verbatim (csv.reader over the whole file, then pandas string checks) so that
``tests/test_prepare_oracle.py`` can show that the new path rejects the same rows for the same
reasons and accepts the same values, on a file full of defects the old path already handled.
It is not used by the pipeline.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from ridelake.errors import SourceError
from ridelake.tables.transforms.bronze import REQUIRED_FIELDS, SOURCE_COLUMNS, COLUMN_MAP, STATUSES, check_header

_DOUBLES = ("Avg VTAT", "Avg CTAT", "Booking Value", "Ride Distance", "Driver Ratings", "Customer Rating")
_FLAGS = ("Cancelled Rides by Customer", "Cancelled Rides by Driver", "Incomplete Rides")
_RATINGS = ("Driver Ratings", "Customer Rating")
_NON_NEGATIVE = ("Booking Value", "Ride Distance", "Avg VTAT", "Avg CTAT")
_NUMBER_RE = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"


@dataclass
class RawDelivery:
    """A source file's rows as text (header, and one text column per header name)."""

    path: Path
    header: list[str]
    rows: pd.DataFrame

    @property
    def source_file(self) -> str:
        return self.path.name


@dataclass
class PreparedDelivery:
    """What the old prepare step returned."""

    accepted: pd.DataFrame
    rejected: pd.DataFrame
    rows_in_file: int
    out_of_scope: int
    months: list[str]


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


