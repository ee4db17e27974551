"""A delivery file as physical lines, split into CSV fields with column operations.

The prepare step reads a delivery in bounded blocks of whole lines (:func:`iter_blocks`) and
turns each block into :class:`Lines` (:func:`split_lines`) with numpy and pyarrow, never a
Python loop per row. The rules, which every physical data line follows on its own:

- **Lines.** A data line is a run of bytes that are neither CR nor LF, so CRLF, LF and a lone
  CR all end a line (as the universal-newline reading of the old reader did) and empty lines
  are not data lines. No field of this format spans lines: a double quote still open at the end
  of a line is that line's problem ("unclosed double quote") and the next line is read on its own.
- **Fields** follow Python's ``csv`` excel dialect (comma, double quote, ``""`` for a quote inside
  a quoted field, ``strict=False``). A line whose quoting is regular (each field either has no
  quote at all, or is wholly quoted with doubled inner quotes) is split with numpy; the rare
  irregular line (a stray quote) goes through :func:`split_csv_line`, a small copy of the csv
  module's state machine, so both give exactly what ``csv.reader`` gives for one line.
- **Bytes** must be UTF-8. A line with an invalid byte is rejected ("not UTF-8 at byte N"):
  its raw text keeps the byte as ``\\xNN`` and nothing is silently replaced.
- **Sizes.** A field over :data:`FIELD_LIMIT` bytes rejects its line; a line over
  :data:`LINE_LIMIT` bytes is rejected with only its first bytes kept, so a file without line
  ends never has to fit in memory.
- **Compression.** ``.gz`` deliveries are read directly; a compressed file under a plain name is
  refused with a message saying so (:func:`open_delivery`).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ridelake.errors import SourceError

__all__ = [
    "BLOCK_SIZE",
    "FIELD_LIMIT",
    "LINE_LIMIT",
    "Lines",
    "compression_of",
    "open_delivery",
    "read_header",
    "iter_blocks",
    "split_lines",
    "count_lines",
    "split_csv_line",
]

#: Bytes read per block (whole lines are handed on; the rest waits for the next block).
BLOCK_SIZE = 2 << 20
#: A field longer than this (in bytes, as in the file) rejects its line: the old csv reader's limit.
FIELD_LIMIT = 128 << 10
#: A line longer than this is rejected and only its first :data:`FIELD_LIMIT` bytes are kept.
LINE_LIMIT = 64 << 20

_CR, _LF, _COMMA, _QUOTE = 13, 10, 44, 34
_BOM = b"\xef\xbb\xbf"
#: Leading bytes of compressed files -> (format, the suffix that reads it, or None when unsupported).
_MAGIC = {
    b"\x1f\x8b": ("gzip", ".gz"),
    b"BZh": ("bzip2", ".bz2"),
    b"\xfd7zXZ\x00": ("xz", ".xz"),
    b"\x28\xb5\x2f\xfd": ("zstd", None),
    b"PK\x03\x04": ("zip", None),
}
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def compression_of(path: Path) -> str | None:
    """The compression format a file's first bytes show (``gzip``, ``zip``, ...), or None."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    for magic, (name, _) in _MAGIC.items():
        if head.startswith(magic):
            return name
    return None


def open_delivery(path: Path) -> BinaryIO:
    """Open a delivery for reading bytes, decompressing ``.gz``, ``.bz2`` and ``.xz`` files.

    Args:
        path: an existing regular file.

    Returns:
        A binary stream of the (decompressed) text.

    Raises:
        SourceError: the file is compressed under a plain name, or named ``.gz`` (etc.) but not
            compressed that way.
    """
    found = compression_of(path)
    suffix = path.suffix.lower()
    if suffix in _OPENERS:
        wanted = next(name for name, sfx in _MAGIC.values() if sfx == suffix)
        if found != wanted:
            raise SourceError(f"{path.name} is named {suffix} but is not {wanted}-compressed"
                              + (f" (it is {found}-compressed)" if found else ""))
        return _OPENERS[suffix](path, "rb")  # type: ignore[no-any-return]
    if found is not None:
        readable = next(sfx for name, sfx in _MAGIC.values() if name == found)
        hint = (f"name it {path.name}{readable} to load it as it is, or decompress it" if readable
                else "decompress it first")
        raise SourceError(f"{path.name} is {found}-compressed: {hint}")
    return open(path, "rb")


def _read_until_line_end(fh: BinaryIO, block_size: int, limit: int) -> tuple[bytes, bytes]:
    """Read the first line (without its terminator) and the bytes read after it."""
    buf = b""
    while True:
        cut = _first_terminator(buf)
        if cut >= 0:
            return buf[:cut], buf[cut + 1:]
        if len(buf) > limit:
            raise SourceError(f"the header line is over {limit} bytes: is this a CSV file?")
        chunk = fh.read(block_size)
        if not chunk:
            return buf, b""
        buf += chunk


def _first_terminator(buf: bytes) -> int:
    cuts = [i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0]
    return min(cuts) if cuts else -1


def read_header(fh: BinaryIO, name: str, block_size: int = BLOCK_SIZE) -> tuple[list[str], bytes]:
    """Read and parse the header line (a UTF-8 byte-order mark is dropped).

    Args:
        fh: the delivery's byte stream, at its start.
        name: the file's name, for messages.
        block_size: bytes per read.

    Returns:
        ``(column names stripped of whitespace, the bytes read after the header line)``.

    Raises:
        SourceError: the file is empty, or the header is not UTF-8.
    """
    line, rest = _read_until_line_end(fh, block_size, LINE_LIMIT)
    if not line and not rest:
        raise SourceError(f"{name}: the file is empty (no header)")
    if line.startswith(_BOM):
        line = line[len(_BOM):]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{name}: the header is not UTF-8 at byte {exc.start + 1} "
                          f"(0x{line[exc.start]:02X}): is this a CSV file in another encoding?") from None
    fields, _ = split_csv_line(text) if text else ([], None)
    return [f.strip() for f in fields], rest


def iter_blocks(fh: BinaryIO, first: bytes = b"", block_size: int = BLOCK_SIZE,
                line_limit: int = LINE_LIMIT) -> Iterator[tuple[bytes, int | None]]:
    """Yield blocks of whole lines, about ``block_size`` bytes each.

    Args:
        fh: the byte stream, after the header.
        first: bytes already read after the header.
        block_size: bytes per read.
        line_limit: a line longer than this is cut (see below).

    Returns:
        An iterator of ``(block, None)``, or ``(first bytes of one overlong line, its length)``
        for a line over ``line_limit`` bytes, whose remaining bytes are skipped.
    """
    carry = first
    while True:
        chunk = fh.read(block_size)
        buf = carry + chunk if carry else chunk
        if not chunk:
            if buf:
                yield buf, None
            return
        cut = max(buf.rfind(b"\n"), buf.rfind(b"\r"))
        if cut >= 0:
            yield buf[:cut + 1], None
            carry = buf[cut + 1:]
            continue
        if len(buf) <= line_limit:
            carry = buf
            continue
        head, total = _whole_characters(buf[:FIELD_LIMIT]), len(buf)
        carry = b""
        while True:  # skip the rest of the overlong line
            chunk = fh.read(block_size)
            if not chunk:
                break
            end = _first_terminator(chunk)
            if end >= 0:
                total += end
                carry = chunk[end:]
                break
            total += len(chunk)
        yield head, total


def _whole_characters(head: bytes) -> bytes:
    """Drop a UTF-8 sequence cut at the end of ``head`` (at most 3 bytes)."""
    for cut in range(4):
        try:
            (head[:len(head) - cut] if cut else head).decode("utf-8")
            return head[:len(head) - cut] if cut else head
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:
                return head  # invalid earlier on: the line is reported as it is
    return head


@dataclass
class Lines:
    """One block's data lines, split into fields.

    Attributes:
        first_row: ``source_row`` of the first line (1-based among the file's data lines).
        n_fields: fields per line.
        field_base: index in ``values`` of each line's first field.
        values: every field's text, CSV quoting removed.
        problems: per line, why it cannot be read (null when it can): bad UTF-8, an unclosed
            quote, a field or line over the limits.
        raw: per line, the line as it stands in the file (invalid bytes as ``\\xNN``).
    """

    first_row: int
    n_fields: np.ndarray
    field_base: np.ndarray
    values: pa.Array
    problems: pa.Array
    raw: pa.Array
    _columns: dict[int, pa.Array] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.n_fields)

    @property
    def source_row(self) -> np.ndarray:
        """``source_row`` of every line."""
        return np.arange(self.first_row, self.first_row + len(self), dtype=np.int64)

    def column(self, j: int) -> pa.Array:
        """Field ``j`` (0-based) of every line; null where a line has fewer fields."""
        if j not in self._columns:
            index = self.field_base + j
            missing = self.n_fields <= j
            self._columns[j] = self.values.take(pa.array(np.where(missing, 0, index), mask=missing))
        return self._columns[j]


def split_csv_line(text: str) -> tuple[list[str], int | None]:
    """Split one line the way Python's ``csv.reader`` (excel dialect, non-strict) would.

    Args:
        text: the line, without its line end.

    Returns:
        ``(fields, index of the field whose opening quote is never closed, or None)``.
    """
    fields: list[str] = []
    buf: list[str] = []
    state = 0  # 0 start of field, 1 unquoted, 2 quoted, 3 quote seen inside a quoted field
    for ch in text:
        if state == 0:
            if ch == '"':
                state = 2
            elif ch == ",":
                fields.append("")
            else:
                buf.append(ch)
                state = 1
        elif state == 1:
            if ch == ",":
                fields.append("".join(buf))
                buf, state = [], 0
            else:
                buf.append(ch)
        elif state == 2:
            if ch == '"':
                state = 3
            else:
                buf.append(ch)
        elif ch == '"':
            buf.append('"')
            state = 2
        elif ch == ",":
            fields.append("".join(buf))
            buf, state = [], 0
        else:
            buf.append(ch)
            state = 1
    unclosed = len(fields) if state == 2 else None
    fields.append("".join(buf))
    return fields, unclosed


def _column_name(names: Sequence[str], j: int) -> str:
    return names[j] if j < len(names) else f"field {j + 1}"


def _invalid_utf8(data: bytes, starts: np.ndarray, ends: np.ndarray) -> dict[int, list[tuple[int, int]]]:
    """Invalid UTF-8 byte ranges (absolute ``[start, end)``) per line index; empty when all is valid."""
    try:
        data.decode("utf-8")
        return {}
    except UnicodeDecodeError:
        pass
    b = np.frombuffer(data, dtype=np.uint8)
    high = np.flatnonzero(b >= 0x80)
    lines = np.unique(np.searchsorted(starts, high, side="right") - 1)
    bad: dict[int, list[tuple[int, int]]] = {}
    for i in lines.tolist():  # only lines with non-ASCII bytes, in a block that has an invalid one
        lo, hi = int(starts[i]), int(ends[i])
        pos = lo
        while pos < hi:
            try:
                data[pos:hi].decode("utf-8")
                break
            except UnicodeDecodeError as exc:
                bad.setdefault(i, []).append((pos + exc.start, pos + exc.end))
                pos += exc.end
    return bad


def count_lines(data: bytes) -> int:
    """How many data lines :func:`split_lines` finds in ``data`` (runs of line ends are one
    break; an empty line is no line), counted without splitting."""
    b = np.frombuffer(data, dtype=np.uint8)
    term = np.flatnonzero((b == _LF) | (b == _CR))
    bounds = np.concatenate(([-1], term, [len(b)]))
    return int(np.count_nonzero(np.diff(bounds) > 1))


def split_lines(data: bytes, names: Sequence[str], first_row: int = 1, truncated: int | None = None,
                field_limit: int = FIELD_LIMIT, line_limit: int = LINE_LIMIT) -> Lines:
    """Split a block of whole lines into fields with column operations.

    Args:
        data: whole lines (as :func:`iter_blocks` yields them).
        names: the header's column names, to name fields in problems.
        first_row: ``source_row`` of the block's first data line.
        truncated: the real length when ``data`` is the cut start of one overlong line.
        field_limit: longest field accepted, in bytes.
        line_limit: the line limit quoted for an overlong line.

    Returns:
        The block's :class:`Lines`.
    """
    b = np.frombuffer(data, dtype=np.uint8)
    size = len(b)
    term = np.flatnonzero((b == _LF) | (b == _CR))
    bounds = np.concatenate(([-1], term, [size]))
    gap = np.diff(bounds) > 1
    starts, ends = bounds[:-1][gap] + 1, bounds[1:][gap]
    n = len(starts)
    notes: dict[int, list[str]] = {}
    raw_fix: dict[int, str] = {}

    original = data
    bad_utf8 = _invalid_utf8(data, starts, ends)
    if bad_utf8:
        clean = bytearray(data)
        for i, ranges in bad_utf8.items():
            raw_fix[i] = data[int(starts[i]):int(ends[i])].decode("utf-8", "backslashreplace")
            for lo, hi in ranges:
                clean[lo:hi] = b"?" * (hi - lo)
        data = bytes(clean)
        b = np.frombuffer(data, dtype=np.uint8)

    # separators: commas with an even number of quotes before them on their line
    commas = np.flatnonzero(b == _COMMA)
    quotes = np.flatnonzero(b == _QUOTE)
    q_lo, q_hi = np.searchsorted(quotes, starts), np.searchsorted(quotes, ends)
    comma_line = np.searchsorted(starts, commas, side="right") - 1
    even = ((np.searchsorted(quotes, commas) - q_lo[comma_line]) & 1) == 0
    seps, sep_line = commas[even], comma_line[even]
    n_sep = np.bincount(sep_line, minlength=n).astype(np.int64)
    n_fields = n_sep + 1
    base = np.cumsum(n_fields) - n_fields
    total = int(n_fields.sum())
    sep_first = np.cumsum(n_sep) - n_sep
    rank = np.arange(len(seps)) - sep_first[sep_line]
    fstart = np.empty(total, np.int64)
    fend = np.empty(total, np.int64)
    fstart[base] = starts
    fstart[base[sep_line] + rank + 1] = seps + 1
    fend[base[sep_line] + rank] = seps
    fend[base + n_fields - 1] = ends
    field_line = np.repeat(np.arange(n), n_fields)
    field_j = np.arange(total) - base[field_line]

    # regular quoting: no quote, or "..." with only doubled quotes inside
    fq_lo = np.searchsorted(quotes, fstart)
    fq = np.searchsorted(quotes, fend) - fq_lo
    irregular = np.zeros(total, dtype=bool)
    quoted = np.flatnonzero(fq > 0)
    if len(quoted):
        s, e = fstart[quoted], fend[quoted]
        ok = (e - s >= 2) & (b[s] == _QUOTE) & (b[np.maximum(e - 1, 0)] == _QUOTE) & (fq[quoted] % 2 == 0)
        irregular[quoted[~ok]] = True
        quote_field = np.searchsorted(fstart, quotes, side="right") - 1
        qrank = np.arange(len(quotes)) - fq_lo[quote_field]
        inner = (qrank % 2 == 1) & (qrank < fq[quote_field] - 1)
        step = np.diff(quotes, append=quotes[-1] + 2 if len(quotes) else 0)
        irregular[quote_field[inner & (step != 1)]] = True
    odd_line = ((q_hi - q_lo) & 1) == 1
    fallback = odd_line | (np.bincount(field_line[irregular], minlength=n) > 0)

    # the fields' bytes, separators and line ends dropped, as one Arrow string array
    keep = np.ones(size, dtype=bool)
    keep[term] = False
    keep[seps] = False
    flat = b[keep]
    clen = (ends - starts) - n_sep
    line_at = np.cumsum(clen) - clen
    offsets = np.append(line_at[field_line] + fstart - starts[field_line] - field_j, len(flat))
    values = pa.Array.from_buffers(pa.string(), total, [None, pa.py_buffer(offsets.astype(np.int32)),
                                                         pa.py_buffer(flat.tobytes())])
    strip = np.zeros(total, dtype=bool)
    strip[quoted] = True
    strip &= ~irregular
    if strip.any():
        inner_text = pc.replace_substring(pc.utf8_slice_codeunits(values.filter(pa.array(strip)), 1, -1), '""', '"')
        values = pc.replace_with_mask(values, pa.array(strip), inner_text)

    flen = fend - fstart
    for f in np.flatnonzero((flen > field_limit) & ~fallback[field_line]).tolist():
        notes.setdefault(int(field_line[f]), []).append(
            f"{_column_name(names, int(field_j[f]))}: field over {field_limit} bytes ({int(flen[f])} bytes)")

    extra: list[str] = []
    for i in np.flatnonzero(fallback).tolist():  # irregular quoting: Python's csv rules, one line
        fields, unclosed = split_csv_line(data[int(starts[i]):int(ends[i])].decode("utf-8"))
        base[i] = total + len(extra)
        n_fields[i] = len(fields)
        extra.extend(fields)
        if unclosed is not None:
            notes.setdefault(i, []).append(
                f"{_column_name(names, unclosed)}: unclosed double quote (a field cannot span lines)")
        for j, text in enumerate(fields):
            nbytes = len(text.encode("utf-8"))
            if nbytes > field_limit:
                notes.setdefault(i, []).append(
                    f"{_column_name(names, j)}: field over {field_limit} bytes ({nbytes} bytes)")
    if extra:
        values = pa.concat_arrays([values, pa.array(extra, pa.string())])

    for i, ranges in bad_utf8.items():
        pos = ranges[0][0]
        line_seps = seps[sep_first[i]:sep_first[i] + n_sep[i]]
        j = int(np.searchsorted(line_seps, pos))
        notes.setdefault(i, []).insert(0, f"{_column_name(names, j)}: not UTF-8 at byte {pos - int(starts[i]) + 1} "
                                          f"of the line (0x{original[pos]:02X})")
    if truncated is not None and n:
        notes.setdefault(0, []).insert(0, f"line over {line_limit} bytes ({truncated} bytes); "
                                          f"raw_line keeps its first {len(data)} bytes")

    prob = [None] * n
    for i, parts in notes.items():
        prob[i] = "; ".join(parts)
    raw_offsets = np.append(starts, size).astype(np.int32) if n else np.zeros(1, np.int32)
    raw = pc.utf8_rtrim(pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(raw_offsets),
                                                               pa.py_buffer(data)]), characters="\r\n")
    if raw_fix:
        mask = np.zeros(n, dtype=bool)
        mask[list(raw_fix)] = True
        raw = pc.replace_with_mask(raw, pa.array(mask), pa.array([raw_fix[i] for i in sorted(raw_fix)], pa.string()))
    return Lines(first_row, n_fields, base, values, pa.array(prob, pa.string()), raw)

