"""Delivery files for the fault suite: a valid generated file, and copies of it with known defects.

A defective delivery is the valid file with extra lines inserted at known places, each a real row
of the file with one field broken (and a booking id of its own, ``CNR9......``, so a defect that
got in would show as an extra booking). Every inserted line carries the reason the prepare step
must give, as a regular expression, and the ``source_row`` it must be rejected under (the
1-based position among the file's non-empty data lines). Lines are counted here independently of
the pipeline (:func:`count_lines`).
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

from ridelake.tables.csvlines import FIELD_LIMIT
from ridelake.tables.generate import HEADER

__all__ = ["Defect", "Delivery", "LineCount", "count_lines", "DEFECTS", "field_index"]

_COL = {name: i for i, name in enumerate(HEADER)}


def field_index(name: str) -> int:
    """The 0-based position of a source column in the generated header."""
    return _COL[name]


@dataclass(frozen=True)
class Defect:
    """One broken line: how to break a template row, and what prepare must say.

    Attributes:
        name: short label (``1e309``).
        status: the booking status of the template row (value fields are only filled for some).
        edit: takes the template's fields (bytes, 21 of them) and returns the broken line's fields.
        reason: regular expression the ``bronze.rejected_row`` reason must match.
    """

    name: str
    status: str
    edit: Callable[[list[bytes]], list[bytes]]
    reason: str


def _set(column: str, value: bytes) -> Callable[[list[bytes]], list[bytes]]:
    def edit(fields: list[bytes]) -> list[bytes]:
        out = list(fields)
        out[_COL[column]] = value
        return out
    return edit


def _drop_last(fields: list[bytes]) -> list[bytes]:
    return fields[:-1]


def _twice(fields: list[bytes]) -> list[bytes]:
    i = _COL["Drop Location"]
    return fields[: i + 1] + [fields[i]] + fields[i + 1:]


def _prefix(column: str, prefix: bytes) -> Callable[[list[bytes]], list[bytes]]:
    def edit(fields: list[bytes]) -> list[bytes]:
        out = list(fields)
        out[_COL[column]] = prefix + out[_COL[column]]
        return out
    return edit


#: Every defect the suite injects, by scenario group.
DEFECTS: dict[str, tuple[Defect, ...]] = {
    "not_finite": (
        Defect("1e309", "Completed", _set("Booking Value", b"1e309"), r"Booking Value: not a finite number"),
        Defect("-1e999", "Completed", _set("Booking Value", b"-1e999"), r"Booking Value: not a finite number"),
    ),
    "not_utf8": (
        Defect("latin-1 byte", "Completed", _set("Pickup Location", b"Caf\xe9 Row"), r"not UTF-8 at byte \d+"),
    ),
    "unclosed_quote": (
        Defect("unclosed quote", "Completed", _prefix("Drop Location", b'"'), r"unclosed double quote"),
        Defect("unclosed quote", "No Driver Found", _prefix("Pickup Location", b'"'), r"unclosed double quote"),
    ),
    "oversized_field": (
        Defect("field over 128 KB", "Completed", _set("Pickup Location", b"x" * (FIELD_LIMIT + 64)),
               rf"field over {FIELD_LIMIT} bytes"),
    ),
    "field_count": (
        Defect("20 fields", "Completed", _drop_last, r"expected 21 fields, found 20"),
        Defect("22 fields", "Cancelled by Driver", _twice, r"expected 21 fields, found 22"),
    ),
    "bad_values": (
        Defect("bad date", "Completed", _set("Date", b"2024-13-45"), r"Date: not a date"),
        Defect("bad time", "Completed", _set("Time", b"25:61:00"), r"Time: not a time"),
        Defect("not a number", "Completed", _set("Booking Value", b"abc"), r"Booking Value: not a number"),
        Defect("rating 7.5", "Completed", _set("Driver Ratings", b"7.5"), r"Driver Ratings: outside 1\.\.5"),
        Defect("negative distance", "Completed", _prefix("Ride Distance", b"-"), r"Ride Distance: negative"),
        Defect("negative value", "Completed", _set("Booking Value", b"-120"), r"Booking Value: negative"),
        Defect("no booking id", "Completed", _set("Booking ID", b"null"), r"Booking ID: missing"),
        Defect("unknown status", "Completed", _set("Booking Status", b"Lost"), r"Booking Status: unknown value"),
    ),
}


class LineCount(NamedTuple):
    """Physical lines after the header: ``data`` non-empty ones and ``blank`` empty ones."""

    data: int
    blank: int

    @property
    def total(self) -> int:
        """Every line after the header."""
        return self.data + self.blank


def _content(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def count_lines(path: Path) -> LineCount:
    """Count a delivery's lines after the header as the contract defines them (CRLF, LF or a lone
    CR end a line; no line spans another), decompressing a gzip file whatever its name."""
    text = _content(path)
    if not text:
        return LineCount(0, 0)
    lines = re.split(rb"\r\n|\r|\n", text)
    if lines and lines[-1] == b"":
        lines.pop()  # the terminator of the last line
    body = lines[1:]
    blank = sum(1 for ln in body if not ln)
    return LineCount(len(body) - blank, blank)


@dataclass
class Delivery:
    """A valid delivery as lines, and the defective copies made from it.

    Attributes:
        header: the header line.
        rows: the data lines (no terminators).
    """

    header: bytes
    rows: list[bytes]

    @classmethod
    def read(cls, path: Path) -> "Delivery":
        """Read a generated (CRLF) delivery."""
        lines = path.read_bytes().split(b"\r\n")
        if lines and lines[-1] == b"":
            lines.pop()
        return cls(lines[0], lines[1:])

    def template(self, status: str) -> list[bytes]:
        """The fields of the first row with that booking status."""
        for line in self.rows:
            fields = line.split(b",")
            if len(fields) == len(HEADER) and fields[_COL["Booking Status"]] == status.encode():
                return fields
        raise LookupError(f"no {status} row in the delivery")

    def with_defects(self, defects: Sequence[Defect], blank_lines: int = 0) -> tuple[bytes, dict[int, str]]:
        """The file with each defect inserted once, spread evenly, plus ``blank_lines`` empty lines.

        Returns:
            ``(the file's bytes, source_row -> reason regex of each inserted line)``.
        """
        inserts: list[tuple[int, bytes | None, str]] = []
        for k, defect in enumerate(defects):
            fields = self.template(defect.status)
            fields[_COL["Booking ID"]] = f'"""CNR9{k:06d}"""'.encode()
            inserts.append(((k + 1) * len(self.rows) // (len(defects) + 1), b",".join(defect.edit(fields)),
                            defect.reason))
        for b in range(blank_lines):  # between rows, never before the first or after the last
            inserts.append((max(1, (2 * b + 1) * len(self.rows) // (2 * blank_lines + 1)), None, ""))
        inserts.sort(key=lambda item: item[0])
        out, expected, row, pending = [self.header], {}, 0, list(inserts)
        for i, line in enumerate(self.rows):
            while pending and pending[0][0] == i:
                _, extra, reason = pending.pop(0)
                if extra is None:
                    out.append(b"")
                else:
                    row += 1
                    out.append(extra)
                    expected[row] = reason
            row += 1
            out.append(line)
        return b"\r\n".join(out) + b"\r\n", expected

    def with_column(self, name: str, value: str) -> bytes:
        """The file with one more column at the end (a header the contract does not know)."""
        lines = [self.header + b"," + name.encode()] + [r + b"," + value.encode() for r in self.rows]
        return b"\r\n".join(lines) + b"\r\n"

    def without_column(self, name: str) -> bytes:
        """The file with one contract column removed from the header and every row."""
        i = _COL[name]
        lines = [self.header] + self.rows
        cut = [b",".join(f for j, f in enumerate(ln.split(b",")) if j != i) for ln in lines]
        return b"\r\n".join(cut) + b"\r\n"

    def header_only(self) -> bytes:
        """Just the header line."""
        return self.header + b"\r\n"

    def whole(self) -> bytes:
        """The valid file as it is."""
        return b"\r\n".join([self.header] + self.rows) + b"\r\n"
