"""Synthetic source files shaped like the real NCR ride-bookings CSV (docs/contract.md §1 and §6).

The real file (150,000 rows, 2024) cannot be downloaded here, so the project writes one of the
same shape: the exact 21-column header, CRLF line endings, the literal ``null`` for missing
values, ids wrapped in literal double quotes (the CSV field ``\"\"\"CNR5349165\"\"\"``), the
status mix exactly as in the real file and the other columns drawn to mirror its distributions.

Design:

- **Streaming.** Rows are drawn and formatted in chunks of :data:`CHUNK_ROWS` with vectorised
  numpy draws and pre-formatted lookup tables, written, and dropped, so memory stays bounded
  whatever the row count (15 million rows is fine).
- **Deterministic.** One seed gives a byte-identical file. The good rows come from one random
  stream and the bad rows from another, so asking for bad rows does not change the good ones.
  The output depends on :data:`CHUNK_ROWS` (fixed; tests may lower it).
- **Exact statuses.** The status counts of the whole file are fixed up front by
  largest-remainder rounding of :data:`STATUS_SHARES`; each chunk takes a multivariate
  hypergeometric draw of what is left, which is a uniformly random order of that exact multiset.
- **Bad rows** (``bad_rows=K``) are *extra* rows at seeded random positions, each with one
  defect of :data:`BAD_ROW_KINDS` that the prepare step must reject, on its own: value defects
  (a bad number, date, time, status or rating, a wrong field count, no booking id) and the input
  edges (a number that overflows, a byte that is not UTF-8, an unclosed quote, a field over
  128 KB). Exactly ``K`` rows are then rejected.

Per-status shapes mirrored from the real file (VTAT and CTAT in minutes, distance in km):

- Completed: VTAT 2..15, CTAT 15..45, distance 2..50, booking value, both ratings, payment.
- Cancelled by Driver: VTAT 3..12, its flag ``1`` and a driver reason; nothing else.
- Cancelled by Customer: VTAT 5..20, its flag ``1`` and a customer reason; nothing else.
- Incomplete: VTAT 2..10, CTAT 10..30, distance 1..20, flag, reason, value, payment; no ratings.
- No Driver Found: nothing after Drop Location.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import gzip
import operator
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from ridelake.tables.csvlines import FIELD_LIMIT
from ridelake.tables.transforms.bronze import SOURCE_COLUMNS
from ridelake.errors import ConfigError
from ridelake.tables.locations import LOCATIONS

__all__ = [
    "HEADER",
    "NULL",
    "CHUNK_ROWS",
    "LOCATIONS",
    "STATUS_SHARES",
    "VEHICLE_SHARES",
    "PAYMENT_SHARES",
    "CUSTOMER_REASONS",
    "DRIVER_REASONS",
    "INCOMPLETE_REASONS",
    "BAD_ROW_KINDS",
    "VALUE_DEFECTS",
    "status_counts",
    "iter_chunks",
    "write_csv",
]

#: The source header, in file order (docs/contract.md §1): the prepare step's own list.
HEADER: tuple[str, ...] = SOURCE_COLUMNS

#: How the real file writes a missing value.
NULL = "null"

#: Good rows drawn, formatted and written per chunk (bounds memory; part of the seed's meaning).
CHUNK_ROWS = 20_000

#: Booking status -> share of rows in percent (exact in the real file).
STATUS_SHARES: dict[str, float] = {
    "Completed": 62.0,
    "Cancelled by Driver": 18.0,
    "Cancelled by Customer": 7.0,
    "No Driver Found": 7.0,
    "Incomplete": 6.0,
}

#: Vehicle type -> share of rows in percent. "Bike" and "eBike" are separate values.
VEHICLE_SHARES: dict[str, float] = {
    "Auto": 24.9,
    "Go Mini": 19.9,
    "Go Sedan": 18.1,
    "Bike": 15.0,
    "Premier Sedan": 12.1,
    "eBike": 7.0,
    "Uber XL": 3.0,
}

#: Payment method -> share in percent of the rows that have one (Completed and Incomplete).
PAYMENT_SHARES: dict[str, float] = {
    "UPI": 45.0,
    "Cash": 24.9,
    "Uber Wallet": 12.0,
    "Credit Card": 10.0,
    "Debit Card": 8.1,
}

#: Customer cancellation reason -> relative rate ("AC is not working" at half the others' rate).
CUSTOMER_REASONS: dict[str, float] = {
    "Wrong Address": 2.0,
    "Change of plans": 2.0,
    "Driver is not moving towards pickup location": 2.0,
    "Driver asked to cancel": 2.0,
    "AC is not working": 1.0,
}

#: Driver cancellation reason -> relative rate (about equal).
DRIVER_REASONS: dict[str, float] = {
    "Customer related issue": 1.0,
    "The customer was coughing/sick": 1.0,
    "Personal & Car related issues": 1.0,
    "More than permitted people in there": 1.0,
}

#: Incomplete-ride reason -> relative rate (about equal).
INCOMPLETE_REASONS: dict[str, float] = {
    "Customer Demand": 1.0,
    "Vehicle Breakdown": 1.0,
    "Other Issue": 1.0,
}

#: Defects a bad row can carry (kind -> what is wrong). Each one must make prepare reject the row,
#: and only that row: the first six are value defects, the rest the input edges of issue 12.
BAD_ROW_KINDS: dict[str, str] = {
    "wrong_field_count": "the line has 20 or 22 fields instead of 21",
    "non_numeric_value": "Booking Value is not a number (e.g. 'abc')",
    "bad_date": "Date cannot be parsed (e.g. '2024-13-45')",
    "rating_out_of_range": "a rating outside 1..5 (e.g. 7.5)",
    "negative_distance": "Ride Distance is negative",
    "missing_booking_id": "Booking ID is missing ('null' or empty)",
    "bad_time": "Time cannot be parsed (e.g. '25:61:00')",
    "unknown_status": "Booking Status is none of the five known values",
    "not_finite": "Booking Value overflows a double ('1e309')",
    "not_utf8": "Pickup Location holds a latin-1 byte ('Caf\\xe9 Row')",
    "unclosed_quote": "Drop Location opens a double quote that the line never closes",
    "oversized_field": "Pickup Location is longer than the 128 KB field limit",
}

#: The kinds the row-by-row reader before issue 11 already rejected correctly.
VALUE_DEFECTS: tuple[str, ...] = tuple(list(BAD_ROW_KINDS)[:6])

#: Length of an ``oversized_field`` (just over the prepare step's field limit).
OVERSIZED = FIELD_LIMIT + 64

# --- distributions mirrored from the real file ------------------------------------------------

_STATUSES = tuple(STATUS_SHARES)
_COMPLETED, _BY_DRIVER, _BY_CUSTOMER, _NO_DRIVER, _INCOMPLETE = range(5)

#: Avg VTAT range (minutes) per status; Avg CTAT and Ride Distance ranges where they are filled.
_VTAT = {_COMPLETED: (2.0, 15.0), _BY_DRIVER: (3.0, 12.0), _BY_CUSTOMER: (5.0, 20.0), _INCOMPLETE: (2.0, 10.0)}
_CTAT = {_COMPLETED: (15.0, 45.0), _INCOMPLETE: (10.0, 30.0)}
_DISTANCE = {_COMPLETED: (2.0, 50.0), _INCOMPLETE: (1.0, 20.0)}

#: Relative weights of ratings 3.0, 3.1, ..., 5.0 (driver mean ~4.23, customer mean ~4.41).
_DRIVER_RATING_W = (13, 24, 26, 27, 22, 24, 38, 56, 62, 81, 40, 116, 236, 225, 124, 86, 160, 84, 44, 78, 48)
_CUSTOMER_RATING_W = (9, 13, 18, 19, 12, 10, 27, 40, 42, 36, 20, 84, 170, 192, 84, 104, 220, 101, 133, 186, 90)

#: Relative weights of the booking hour 00..23: peaks at 10:00 and 18:00, few before 04:00.
_HOUR_W = (18, 26, 26, 26, 28, 50, 72, 92, 108, 135, 200, 145, 125, 115, 150, 160, 172, 180, 222,
           175, 158, 150, 100, 40)

#: Booking Value: gamma body plus a thin lognormal tail, clipped to the real file's range.
_VALUE_MIN, _VALUE_MAX = 50, 4277
_VALUE_GAMMA = (1.9, 258.0)
_VALUE_TAIL = (0.01, 7.5, 0.35)  # share of rows, lognormal mu, sigma

_ID_LOW, _ID_HIGH = 1_000_000, 10_000_000  # 7 digits


def _probabilities(weights: Mapping[str, float] | tuple[float, ...]) -> np.ndarray:
    w = np.asarray(list(weights.values()) if isinstance(weights, Mapping) else weights, dtype="float64")
    return w / w.sum()


def _objects(values: Any) -> np.ndarray:
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


_STATUS_ARR = _objects(_STATUSES)
_VEHICLE_ARR, _VEHICLE_P = _objects(VEHICLE_SHARES), _probabilities(VEHICLE_SHARES)
_PAYMENT_ARR, _PAYMENT_P = _objects(PAYMENT_SHARES), _probabilities(PAYMENT_SHARES)
_CUSTOMER_REASON_ARR, _CUSTOMER_REASON_P = _objects(CUSTOMER_REASONS), _probabilities(CUSTOMER_REASONS)
_DRIVER_REASON_ARR, _DRIVER_REASON_P = _objects(DRIVER_REASONS), _probabilities(DRIVER_REASONS)
_INCOMPLETE_REASON_ARR, _INCOMPLETE_REASON_P = _objects(INCOMPLETE_REASONS), _probabilities(INCOMPLETE_REASONS)
_LOCATION_ARR = _objects(LOCATIONS)
_DRIVER_RATING_P = _probabilities(_DRIVER_RATING_W)
_CUSTOMER_RATING_P = _probabilities(_CUSTOMER_RATING_W)
_HOUR_P = _probabilities(_HOUR_W)


# --- pre-formatted text ---------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _tenths() -> np.ndarray:
    """``"0.0"`` .. ``"100.0"`` indexed by tenths (VTAT, CTAT, ratings: always one decimal)."""
    return _objects(f"{i // 10}.{i % 10}" for i in range(1001))


@lru_cache(maxsize=None)
def _hundredths() -> np.ndarray:
    """Distances indexed by hundredths, written like the real file: ``16.2``, ``16.0``, ``15.13``."""
    def text(i: int) -> str:
        frac = f"{i % 100:02d}".rstrip("0") or "0"
        return f"{i // 100}.{frac}"

    return _objects(text(i) for i in range(5001))


@lru_cache(maxsize=None)
def _integers() -> np.ndarray:
    return _objects(str(i) for i in range(_VALUE_MAX + 1))


@lru_cache(maxsize=None)
def _times() -> np.ndarray:
    """``HH:MM:SS`` indexed by second of the day."""
    return _objects(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400))


@lru_cache(maxsize=8)
def _dates(year: int) -> np.ndarray:
    """Every day of ``year`` except December 31, as ``YYYY-MM-DD``."""
    first = dt.date(year, 1, 1)
    days = (366 if calendar.isleap(year) else 365) - 1
    return _objects((first + dt.timedelta(days=d)).isoformat() for d in range(days))


# --- drawing rows ---------------------------------------------------------------------------------


def _quoted_ids(prefix: str, numbers: np.ndarray) -> list[str]:
    # the real file's field is """CNR5349165""": the value "CNR5349165" with its quotes escaped
    return [f'"""{prefix}{n}"""' for n in numbers.tolist()]


def _booking_values(rng: np.random.Generator, n: int) -> np.ndarray:
    """Integer booking values: median ~414, mean ~508, long right tail, 50..4277."""
    shape, scale = _VALUE_GAMMA
    share, mu, sigma = _VALUE_TAIL
    x = rng.gamma(shape, scale, n)
    tail = rng.random(n) < share
    x[tail] = rng.lognormal(mu, sigma, int(tail.sum()))
    low = x < _VALUE_MIN
    x[low] = rng.uniform(_VALUE_MIN, 2 * _VALUE_MIN, int(low.sum()))
    return np.clip(np.rint(x), _VALUE_MIN, _VALUE_MAX).astype(np.int64)


def _uniform_steps(rng: np.random.Generator, bounds: tuple[float, float], steps: int, n: int) -> np.ndarray:
    lo, hi = round(bounds[0] * steps), round(bounds[1] * steps)
    return rng.integers(lo, hi + 1, n)


def _columns(rng: np.random.Generator, status: np.ndarray, dates: np.ndarray) -> list[list[str]]:
    """Draw and format one chunk's rows; returns the 21 columns as lists of field texts."""
    n = len(status)
    tenths, hundredths, integers = _tenths(), _hundredths(), _integers()

    def nulls() -> np.ndarray:
        return np.full(n, NULL, dtype=object)

    date = dates[rng.integers(0, len(dates), n)]
    seconds = rng.choice(24, n, p=_HOUR_P) * 3600 + rng.integers(0, 3600, n)
    time = _times()[seconds]
    booking_id = _quoted_ids("CNR", rng.integers(_ID_LOW, _ID_HIGH, n))
    customer_id = _quoted_ids("CID", rng.integers(_ID_LOW, _ID_HIGH, n))
    vehicle = _VEHICLE_ARR[rng.choice(len(_VEHICLE_ARR), n, p=_VEHICLE_P)]
    pickup = rng.integers(0, len(LOCATIONS), n)
    drop = (pickup + rng.integers(1, len(LOCATIONS), n)) % len(LOCATIONS)  # never the pickup

    at = {k: np.flatnonzero(status == k) for k in range(len(_STATUSES))}
    paid = np.flatnonzero((status == _COMPLETED) | (status == _INCOMPLETE))
    vtat, ctat, distance = nulls(), nulls(), nulls()
    for k, bounds in _VTAT.items():
        vtat[at[k]] = tenths[_uniform_steps(rng, bounds, 10, len(at[k]))]
    for k, bounds in _CTAT.items():
        ctat[at[k]] = tenths[_uniform_steps(rng, bounds, 10, len(at[k]))]
    for k, bounds in _DISTANCE.items():
        distance[at[k]] = hundredths[_uniform_steps(rng, bounds, 100, len(at[k]))]

    flags: list[np.ndarray] = []
    for k, names, p in (
        (_BY_CUSTOMER, _CUSTOMER_REASON_ARR, _CUSTOMER_REASON_P),
        (_BY_DRIVER, _DRIVER_REASON_ARR, _DRIVER_REASON_P),
        (_INCOMPLETE, _INCOMPLETE_REASON_ARR, _INCOMPLETE_REASON_P),
    ):
        flag, reason = nulls(), nulls()
        flag[at[k]] = "1"
        reason[at[k]] = names[rng.choice(len(names), len(at[k]), p=p)]
        flags += [flag, reason]

    value, payment = nulls(), nulls()
    value[paid] = integers[_booking_values(rng, len(paid))]
    payment[paid] = _PAYMENT_ARR[rng.choice(len(_PAYMENT_ARR), len(paid), p=_PAYMENT_P)]
    done = at[_COMPLETED]
    driver_rating, customer_rating = nulls(), nulls()
    driver_rating[done] = tenths[30 + rng.choice(21, len(done), p=_DRIVER_RATING_P)]
    customer_rating[done] = tenths[30 + rng.choice(21, len(done), p=_CUSTOMER_RATING_P)]

    columns = [date, time, booking_id, _STATUS_ARR[status], customer_id, vehicle, _LOCATION_ARR[pickup],
               _LOCATION_ARR[drop], vtat, ctat, *flags, value, distance, driver_rating, customer_rating,
               payment]
    return [c if isinstance(c, list) else c.tolist() for c in columns]


def _join(columns: list[list[str]]) -> list[str]:
    return list(map(",".join, zip(*columns)))


# --- bad rows -------------------------------------------------------------------------------------

_KIND_NAMES = tuple(BAD_ROW_KINDS)
_COL = {name: i for i, name in enumerate(HEADER)}
_NEEDS_COMPLETED = {"non_numeric_value", "rating_out_of_range", "negative_distance", "not_finite"}


def _bad_lines(rng: np.random.Generator, kinds: np.ndarray, dates: np.ndarray, year: int) -> list[str]:
    """Realistic rows with one defect each (kinds index :data:`BAD_ROW_KINDS`)."""
    n = len(kinds)
    if n == 0:
        return []
    names = [_KIND_NAMES[k] for k in kinds.tolist()]
    status = rng.choice(len(_STATUSES), n, p=_probabilities(STATUS_SHARES))
    status[[i for i, k in enumerate(names) if k in _NEEDS_COMPLETED]] = _COMPLETED
    columns = _columns(rng, status, dates)
    rows = [list(r) for r in zip(*columns)]
    picks = rng.integers(0, 1_000_000, (n, 2)).tolist()
    for row, kind, (a, b) in zip(rows, names, picks):
        if kind == "wrong_field_count":
            if a % 2:
                row.pop()  # a truncated line
            else:
                row.insert(_COL["Drop Location"] + 1, row[_COL["Drop Location"]])  # a field twice
        elif kind == "non_numeric_value":
            row[_COL["Booking Value"]] = ("abc", "N/A", "12O", "--")[a % 4]
        elif kind == "bad_date":
            row[_COL["Date"]] = (f"{year}-13-45", f"{year}-02-30", f"31/12/{year}")[a % 3]
        elif kind == "rating_out_of_range":
            column = ("Driver Ratings", "Customer Rating")[b % 2]
            row[_COL[column]] = _tenths()[51 + a % 49]  # 5.1 .. 9.9
        elif kind == "negative_distance":
            row[_COL["Ride Distance"]] = "-" + row[_COL["Ride Distance"]]
        elif kind == "missing_booking_id":
            row[_COL["Booking ID"]] = (NULL, "")[a % 2]
        elif kind == "bad_time":
            row[_COL["Time"]] = ("25:61:00", "24:00:00", "10.15.00")[a % 3]
        elif kind == "unknown_status":
            row[_COL["Booking Status"]] = ("Lost", "Pending", "completed ok")[a % 3]
        elif kind == "not_finite":
            row[_COL["Booking Value"]] = ("1e309", "-1e999")[a % 2]
        elif kind == "not_utf8":
            # a latin-1 e-acute: the surrogate escape becomes the single byte 0xE9 when written
            row[_COL["Pickup Location"]] = ("Caf\udce9 Row", "Jhilmil G\udce9t")[a % 2]
        elif kind == "unclosed_quote":
            row[_COL["Drop Location"]] = '"' + row[_COL["Drop Location"]]
        elif kind == "oversized_field":
            row[_COL["Pickup Location"]] = "x" * OVERSIZED
    return [",".join(r) for r in rows]


# --- the plan of a file ---------------------------------------------------------------------------


def _whole(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a whole number, not {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    return number


def status_counts(rows: int) -> dict[str, int]:
    """Exact status counts for a file of ``rows`` good rows.

    Largest-remainder rounding of :data:`STATUS_SHARES`, ties to the more frequent status, so
    the counts always sum to ``rows`` and are exact for multiples of 100.

    Args:
        rows: number of good rows (>= 0).

    Returns:
        Status name -> row count, in :data:`STATUS_SHARES` order.

    Raises:
        ConfigError: ``rows`` is not a non-negative whole number.
    """
    rows = _whole("rows", rows)
    shares = np.asarray(list(STATUS_SHARES.values()))
    quotas = rows * shares / shares.sum()
    counts = np.floor(quotas).astype(np.int64)
    order = sorted(range(len(counts)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: rows - int(counts.sum())]:
        counts[i] += 1
    return dict(zip(STATUS_SHARES, counts.tolist()))


@dataclass
class _Plan:
    rows: int
    bad_rows: int
    seed: int
    year: int
    chunk_rows: int
    kinds: tuple[int, ...] = tuple(range(len(_KIND_NAMES)))
    statuses: dict[str, int] = field(default_factory=dict)
    bad_slots: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    bad_kinds: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    good_rng: np.random.Generator = field(init=False)
    bad_rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        good, bad = np.random.SeedSequence(self.seed).spawn(2)
        self.good_rng = np.random.default_rng(good)
        self.bad_rng = np.random.default_rng(bad)
        self.statuses = status_counts(self.rows)
        k = self.bad_rows
        if k:
            positions = np.sort(self.bad_rng.choice(self.rows + k, size=k, replace=False))
            # a bad row's slot: the number of good rows written before it
            self.bad_slots = positions - np.arange(k)
            # every kind once there are at least as many bad rows as kinds
            kinds = np.resize(np.asarray(self.kinds)[self.bad_rng.permutation(len(self.kinds))], k)
            self.bad_rng.shuffle(kinds)
            self.bad_kinds = kinds

    def kind_counts(self) -> dict[str, int]:
        counts = np.bincount(self.bad_kinds, minlength=len(_KIND_NAMES)).tolist()
        return {name: c for name, c in zip(_KIND_NAMES, counts) if c}


def _kinds(bad_kinds: Any) -> tuple[int, ...]:
    if bad_kinds is None:
        return tuple(range(len(_KIND_NAMES)))
    names = [bad_kinds] if isinstance(bad_kinds, str) else list(bad_kinds)
    unknown = [k for k in names if k not in BAD_ROW_KINDS]
    if unknown or not names:
        raise ConfigError(f"unknown bad row kind(s) {', '.join(map(str, unknown)) or '(none given)'}; "
                          f"known: {', '.join(BAD_ROW_KINDS)}")
    return tuple(sorted({_KIND_NAMES.index(k) for k in names}))


def _plan(rows: Any, seed: Any, bad_rows: Any, year: Any, chunk_rows: Any, bad_kinds: Any = None) -> _Plan:
    rows = _whole("rows", rows)
    bad_rows = _whole("bad_rows", bad_rows)
    seed = _whole("seed", seed)
    year = _whole("year", year, 1000)
    if year > 9999:
        raise ConfigError(f"year must have four digits (1000..9999), got {year}")
    chunk_rows = _whole("chunk_rows", chunk_rows, 1)
    return _Plan(rows=rows, bad_rows=bad_rows, seed=seed, year=year, chunk_rows=chunk_rows,
                 kinds=_kinds(bad_kinds))


def _chunks(plan: _Plan) -> Iterator[str]:
    dates = _dates(plan.year)
    remaining = np.asarray(list(plan.statuses.values()), dtype=np.int64)
    yield ",".join(HEADER) + "\r\n"
    starts = range(0, plan.rows, plan.chunk_rows) if plan.rows else range(1)
    bad_at = 0
    for g0 in starts:
        g1 = min(plan.rows, g0 + plan.chunk_rows)
        n = g1 - g0
        if n:
            counts = plan.good_rng.multivariate_hypergeometric(remaining, n)
            remaining -= counts
            status = plan.good_rng.permutation(np.repeat(np.arange(len(counts)), counts))
            lines = _join(_columns(plan.good_rng, status, dates))
        else:
            lines = []
        # bad rows whose slot falls in this chunk (the last chunk also takes slot == rows)
        last = g1 == plan.rows
        bad_end = len(plan.bad_slots) if last else int(np.searchsorted(plan.bad_slots, g1, side="left"))
        if bad_end > bad_at:
            bad = _bad_lines(plan.bad_rng, plan.bad_kinds[bad_at:bad_end], dates, plan.year)
            merged: list[str] = []
            prev = 0
            for slot, line in zip(plan.bad_slots[bad_at:bad_end].tolist(), bad):
                merged.extend(lines[prev: slot - g0])
                merged.append(line)
                prev = slot - g0
            merged.extend(lines[prev:])
            lines = merged
            bad_at = bad_end
        if lines:
            yield "\r\n".join(lines) + "\r\n"
        del lines


def iter_chunks(
    rows: int = 150_000,
    seed: int = 42,
    bad_rows: int = 0,
    year: int = 2024,
    chunk_rows: int | None = None,
    bad_kinds: Iterable[str] | None = None,
) -> Iterator[str]:
    """Stream a source file's text: the header line, then blocks of CRLF-terminated rows.

    Args:
        rows: good rows to write.
        seed: random seed; the same arguments give the same text.
        bad_rows: extra rows with one defect each, at seeded random positions.
        year: the booking year (every day but December 31).
        chunk_rows: good rows per block (default :data:`CHUNK_ROWS`); changes the draws.
        bad_kinds: the :data:`BAD_ROW_KINDS` to draw from (default all of them).

    Returns:
        An iterator of text blocks whose concatenation is the file. A ``not_utf8`` bad row holds
        its byte as a surrogate escape: encode with ``errors="surrogateescape"``.

    Raises:
        ConfigError: an argument is not a whole number in range, or a kind is unknown.
    """
    plan = _plan(rows, seed, bad_rows, year, CHUNK_ROWS if chunk_rows is None else chunk_rows, bad_kinds)
    return _chunks(plan)


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def write_csv(
    out: str | os.PathLike[str],
    rows: int = 150_000,
    seed: int = 42,
    bad_rows: int = 0,
    year: int = 2024,
    bad_kinds: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Write a synthetic source file shaped like the real one (docs/contract.md §6), streaming.

    The file is written to a temporary name beside ``out`` and renamed when complete, so a
    failed run never leaves a half-written delivery behind. Missing parent folders are created.

    Args:
        out: path of the CSV to write (replaced if it exists).
        rows: good rows (default 150,000, the size of the real file).
        seed: random seed; the same arguments give a byte-identical file.
        bad_rows: extra rows with one defect each (see :data:`BAD_ROW_KINDS`), at seeded random
            positions; the file then holds ``rows + bad_rows`` data rows, and the prepare step
            rejects exactly ``bad_rows`` of them (each bad row, and no good row next to it).
        year: booking year; dates cover every day of it except December 31.
        bad_kinds: the kinds of bad row to mix in (default every kind; each appears once there
            are at least as many bad rows as kinds).

    Returns:
        A summary: ``path``, ``rows``, ``bad_rows``, ``rows_in_file``, ``seed``, ``year``, ``bytes``,
        ``status_counts`` (status -> good rows), ``bad_row_kinds`` (kind -> bad rows) and
        ``expected_rejected`` (rows the prepare step must reject). A name ending in ``.gz``
        writes a gzip-compressed file.

    Raises:
        ConfigError: an argument is out of range, or the file cannot be written.
    """
    plan = _plan(rows, seed, bad_rows, year, CHUNK_ROWS, bad_kinds)
    target = Path(out)
    if target.is_dir():
        raise ConfigError(f"cannot write the source file: {target} is a directory")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        opener = gzip.open if target.suffix == ".gz" else open
        with opener(tmp, "wt", encoding="utf-8", errors="surrogateescape", newline="") as fh:
            for block in _chunks(plan):
                fh.write(block)
        os.replace(tmp, target)
    except OSError as exc:
        _discard(tmp)
        raise ConfigError(f"cannot write the source file {target}: {exc}") from exc
    except BaseException:
        _discard(tmp)
        raise
    return {
        "path": str(target),
        "rows": plan.rows,
        "bad_rows": plan.bad_rows,
        "rows_in_file": plan.rows + plan.bad_rows,
        "seed": plan.seed,
        "year": plan.year,
        "bytes": target.stat().st_size,
        "status_counts": dict(plan.statuses),
        "bad_row_kinds": plan.kind_counts(),
        "expected_rejected": plan.bad_rows,
    }
