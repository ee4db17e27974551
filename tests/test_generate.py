"""The synthetic source-file generator (docs/contract.md §1 and §6), checked through the real prepare step."""

from __future__ import annotations

import collections
import datetime as dt
import re
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest

from ridelake.tables import generate
from ridelake.errors import ConfigError, RidelakeError
from ridelake.tables.generate import (
    BAD_ROW_KINDS,
    HEADER,
    LOCATIONS,
    PAYMENT_SHARES,
    STATUS_SHARES,
    VEHICLE_SHARES,
    iter_chunks,
    status_counts,
    write_csv,
)
from ridelake.tables.schemas import STATUSES
from reference_prepare import read_source
from ridelake.tables.source import prepare_file
from ridelake.tables.transforms.bronze import SOURCE_COLUMNS

ROWS = 2_000
SEED = 7
EXTRACTION = dt.date(2025, 1, 15)

#: Columns after Drop Location that each status fills (docs/contract.md §6, checked against the real sample).
FILLED = {
    "Completed": {"Avg VTAT", "Avg CTAT", "Booking Value", "Ride Distance", "Driver Ratings",
                  "Customer Rating", "Payment Method"},
    "Cancelled by Driver": {"Avg VTAT", "Cancelled Rides by Driver", "Driver Cancellation Reason"},
    "Cancelled by Customer": {"Avg VTAT", "Cancelled Rides by Customer", "Reason for cancelling by Customer"},
    "No Driver Found": set(),
    "Incomplete": {"Avg VTAT", "Avg CTAT", "Incomplete Rides", "Incomplete Rides Reason", "Booking Value",
                   "Ride Distance", "Payment Method"},
}
OPTIONAL = HEADER[HEADER.index("Drop Location") + 1:]

#: What prepare says about each kind of bad row.
REASON_OF_KIND = {
    "wrong_field_count": r"^expected 21 fields, found (20|22)$",
    "non_numeric_value": r"^Booking Value: not a number: '.+'$",
    "bad_date": r"^Date: not a date \(YYYY-MM-DD\): '.+'$",
    "rating_out_of_range": r"^(Driver Ratings|Customer Rating): outside 1\.\.5: '\d+\.\d'$",
    "negative_distance": r"^Ride Distance: negative: '-\d+\.\d+'$",
    "missing_booking_id": r"^Booking ID: missing value$",
    "bad_time": r"^Time: not a time \(HH:MM:SS\): '.+'$",
    "unknown_status": r"^Booking Status: unknown value '.+'$",
    "not_finite": r"^Booking Value: not a finite number: '-?1e\d+'$",
    "not_utf8": r"^Pickup Location: not UTF-8 at byte \d+ of the line \(0xE9\)$",
    "unclosed_quote": r"^Drop Location: unclosed double quote \(a field cannot span lines\)$",
    "oversized_field": rf"^Pickup Location: field over 131072 bytes \({generate.OVERSIZED} bytes\)$",
}


def _prepare(path: Path):
    """The file's fields as text (a plain csv reading) and the file prepared by the pipeline."""
    return read_source(path), prepare_file(path, EXTRACTION)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory):
    """A 2,000-row file, read and prepared: (path, summary, raw, prepared)."""
    path = tmp_path_factory.mktemp("gen") / "rides.csv"
    summary = write_csv(path, rows=ROWS, seed=SEED)
    raw, prepared = _prepare(path)
    return path, summary, raw, prepared


@pytest.fixture(scope="module")
def full_text() -> str:
    """The default 150,000-row file's text (about 25 MB), streamed into one string."""
    return "".join(iter_chunks())


# --- shape of the file ---------------------------------------------------------------------------


def test_header_is_the_contract_header(small) -> None:
    path, *_ = small
    assert HEADER == SOURCE_COLUMNS
    assert len(HEADER) == 21
    first = path.read_bytes().split(b"\r\n", 1)[0]
    assert first.decode() == ",".join(SOURCE_COLUMNS)


def test_crlf_line_endings_and_row_count(small) -> None:
    path, summary, *_ = small
    data = path.read_bytes()
    assert data.endswith(b"\r\n")
    assert data.count(b"\n") == data.count(b"\r\n") == ROWS + 1
    assert summary["rows"] == summary["rows_in_file"] == ROWS
    assert summary["bad_rows"] == 0
    assert summary["path"] == str(path)
    assert summary["bytes"] == len(data)


def test_ids_carry_literal_quotes_like_the_real_file(small) -> None:
    path, *_ = small
    lines = path.read_bytes().decode("utf-8").split("\r\n")[1:-1]
    for line in lines[:200]:
        fields = line.split(",")
        assert re.fullmatch(r'"""CNR[1-9]\d{6}"""', fields[2]), line
        assert re.fullmatch(r'"""CID[1-9]\d{6}"""', fields[4]), line
    raw = small[2].rows
    assert raw["Booking ID"].str.fullmatch(r'"CNR\d{7}"').all()  # the parsed value keeps its quotes
    accepted = small[3].accepted
    assert accepted["booking_id"].str.fullmatch(r"CNR\d{7}").all()  # the clean id drops them
    assert accepted["customer_id"].str.fullmatch(r"CID\d{7}").all()


def test_missing_values_are_the_null_literal(small) -> None:
    path, *_ = small
    text = path.read_bytes().decode("utf-8")
    assert ",," not in text and ",\r\n" not in text
    assert ",null," in text


# --- it loads ------------------------------------------------------------------------------------


def test_generated_file_loads_with_no_rejected_rows(small) -> None:
    _, _, raw, prepared = small
    assert raw.header == list(SOURCE_COLUMNS)
    assert prepared.rows_in_file == ROWS
    assert len(prepared.rejected) == 0
    assert len(prepared.accepted) == ROWS
    assert bool(prepared.summary["reconciled"].iloc[0])


# --- distributions -------------------------------------------------------------------------------


def _shares(values: pd.Series) -> dict[str, float]:
    return (values.value_counts(normalize=True) * 100).to_dict()


def test_status_mix_is_exact(small) -> None:
    _, summary, _, prepared = small
    assert set(STATUS_SHARES) == set(STATUSES)
    counts = prepared.accepted["booking_status"].value_counts().to_dict()
    assert counts == status_counts(ROWS) == summary["status_counts"]
    shares = _shares(prepared.accepted["booking_status"])
    for status, share in STATUS_SHARES.items():
        assert abs(shares[status] - share) <= 2.0, status


def test_status_counts_sum_and_round() -> None:
    assert status_counts(100) == {k: int(v) for k, v in STATUS_SHARES.items()}
    assert status_counts(150_000)["Completed"] == 93_000
    for n in (0, 1, 7, 99, 101, 12_345):
        assert sum(status_counts(n).values()) == n


def test_vehicle_and_payment_mix_roughly(small) -> None:
    accepted = small[3].accepted
    vehicles = _shares(accepted["vehicle_type"])
    assert set(vehicles) == set(VEHICLE_SHARES)
    for name, share in VEHICLE_SHARES.items():
        assert abs(vehicles[name] - share) <= 4.0, name
    payments = _shares(accepted["payment_method"].dropna())
    assert set(payments) == set(PAYMENT_SHARES)
    for name, share in PAYMENT_SHARES.items():
        assert abs(payments[name] - share) <= 5.0, name


def test_filled_columns_follow_the_status_for_every_row(small) -> None:
    raw = small[2].rows
    for status, filled in FILLED.items():
        rows = raw[raw["Booking Status"] == status]
        assert len(rows) > 0, status
        for col in OPTIONAL:
            if col in filled:
                assert (rows[col] != "null").all(), (status, col)
            else:
                assert (rows[col] == "null").all(), (status, col)
    for flag in ("Cancelled Rides by Customer", "Cancelled Rides by Driver", "Incomplete Rides"):
        assert set(raw[flag]) == {"null", "1"}


def test_number_formats_and_ranges(small) -> None:
    raw, accepted = small[2].rows, small[3].accepted

    def filled(col: str) -> pd.Series:
        return raw.loc[raw[col] != "null", col]

    for col in ("Avg VTAT", "Avg CTAT", "Driver Ratings", "Customer Rating"):
        assert filled(col).str.fullmatch(r"\d{1,2}\.\d").all(), col
    assert filled("Booking Value").str.fullmatch(r"[1-9]\d*").all()
    assert filled("Ride Distance").str.fullmatch(r"\d{1,2}\.\d{1,2}").all()
    assert not filled("Ride Distance").str.fullmatch(r"\d+\.\d0").any()  # 16.20 is written 16.2

    def between(col: str, lo: float, hi: float) -> None:
        v = accepted[col].dropna()
        assert v.min() >= lo and v.max() <= hi, col

    between("avg_vtat", 2, 20)
    between("avg_ctat", 10, 45)
    between("booking_value", 50, 4277)
    between("ride_distance", 1, 50)
    between("driver_rating", 3, 5)
    between("customer_rating", 3, 5)
    value = accepted["booking_value"].dropna()
    assert 330 <= value.median() <= 500 and 420 <= value.mean() <= 600
    assert value.mean() > value.median()  # long right tail
    assert 4.1 <= accepted["driver_rating"].mean() <= 4.35
    assert 4.3 <= accepted["customer_rating"].mean() <= 4.5
    assert 7.8 <= accepted["avg_vtat"].mean() <= 9.2
    assert 27.5 <= accepted["avg_ctat"].mean() <= 30.5


def test_reasons_come_from_the_contract_lists(small) -> None:
    accepted = small[3].accepted
    assert set(accepted["reason_for_cancelling_by_customer"].dropna()) <= set(generate.CUSTOMER_REASONS)
    assert set(accepted["driver_cancellation_reason"].dropna()) == set(generate.DRIVER_REASONS)
    assert set(accepted["incomplete_rides_reason"].dropna()) == set(generate.INCOMPLETE_REASONS)


def test_dates_and_times(small) -> None:
    raw, accepted = small[2].rows, small[3].accepted
    assert raw["Date"].str.fullmatch(r"2024-\d{2}-\d{2}").all()
    assert raw["Time"].str.fullmatch(r"\d{2}:\d{2}:\d{2}").all()
    dates = accepted["booking_date"]
    assert dates.min() >= pd.Timestamp("2024-01-01") and dates.max() <= pd.Timestamp("2024-12-30")
    assert dates.dt.month.nunique() == 12


def test_locations() -> None:
    assert len(LOCATIONS) == 176 == len(set(LOCATIONS))
    for name in ("AIIMS", "Akshardham", "Anand Vihar ISBT", "Khandsa", "Palam Vihar", "Jhilmil"):
        assert name in LOCATIONS
    assert all(name == name.strip() and "," not in name and '"' not in name for name in LOCATIONS)


def test_pickup_never_equals_drop(small) -> None:
    accepted = small[3].accepted
    assert (accepted["pickup_location"] != accepted["drop_location"]).all()
    used = set(accepted["pickup_location"]) | set(accepted["drop_location"])
    assert used <= set(LOCATIONS)
    assert len(used) > 150


def test_other_year(tmp_path: Path) -> None:
    path = tmp_path / "y.csv"
    write_csv(path, rows=3_000, seed=1, year=2023)
    raw, prepared = _prepare(path)
    assert len(prepared.rejected) == 0
    assert raw.rows["Date"].str.startswith("2023-").all()
    assert "2023-12-31" not in set(raw.rows["Date"])


def test_default_file_mirrors_the_real_one(full_text: str) -> None:
    """150,000 rows: exact statuses, ~0.8% repeated ids, ~12,500 rows a month, hour peaks."""
    lines = full_text.split("\r\n")
    assert lines[0] == ",".join(HEADER) and lines[-1] == ""
    assert len(lines) == 150_002
    status = collections.Counter(line.split(",", 4)[3] for line in lines[1:-1])
    assert dict(status) == status_counts(150_000)
    ids = re.findall(r'"""(CNR\d{7})"""', full_text)
    assert len(ids) == 150_000
    assert 148_400 <= len(set(ids)) <= 149_100  # the real file: 148,767 distinct
    customers = re.findall(r'"""(CID\d{7})"""', full_text)
    assert 148_400 <= len(set(customers)) <= 149_100
    months = collections.Counter(line[5:7] for line in lines[1:-1])
    assert len(months) == 12 and all(11_500 <= n <= 13_500 for n in months.values())
    hours = collections.Counter(int(line[11:13]) for line in lines[1:-1])
    assert max(hours, key=hours.__getitem__) in (10, 18)
    assert hours[10] > hours[9] and hours[10] > hours[11] and hours[18] > hours[17] and hours[18] > hours[19]
    assert sum(hours[h] for h in range(4)) < 0.05 * 150_000


# --- determinism ---------------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    write_csv(a, rows=1_500, seed=3, bad_rows=5)
    write_csv(b, rows=1_500, seed=3, bad_rows=5)
    write_csv(c, rows=1_500, seed=4, bad_rows=5)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert "".join(iter_chunks(rows=1_500, seed=3, bad_rows=5)).encode("utf-8", "surrogateescape") == a.read_bytes()


# --- bad rows ------------------------------------------------------------------------------------


def test_bad_rows_are_rejected_with_reasons(tmp_path: Path) -> None:
    k = 30
    path = tmp_path / "bad.csv"
    summary = write_csv(path, rows=ROWS, seed=SEED, bad_rows=k)
    assert summary["rows"] == ROWS and summary["bad_rows"] == k and summary["rows_in_file"] == ROWS + k
    assert sum(summary["bad_row_kinds"].values()) == k
    assert set(summary["bad_row_kinds"]) == set(BAD_ROW_KINDS)  # every kind once k >= 12
    assert summary["expected_rejected"] == k
    prepared = prepare_file(path, EXTRACTION)
    assert prepared.rows_in_file == ROWS + k
    assert len(prepared.accepted) == ROWS
    assert len(prepared.rejected) == k
    kinds: collections.Counter[str] = collections.Counter()
    for reason in prepared.rejected["reason"]:
        matched = [kind for kind, pattern in REASON_OF_KIND.items() if re.fullmatch(pattern, reason)]
        assert len(matched) == 1, reason
        kinds[matched[0]] += 1
    assert dict(kinds) == summary["bad_row_kinds"]
    assert (prepared.rejected["raw_line"].str.len() > 50).all()  # realistic lines, not stubs
    assert "\ufffd" not in "".join(prepared.accepted["pickup_location"])
    # spread through the file, not bunched at the end
    rows = prepared.rejected["source_row"]
    assert rows.min() < (ROWS + k) / 2 < rows.max()


def test_bad_rows_leave_the_good_rows_unchanged(tmp_path: Path) -> None:
    clean, dirty = tmp_path / "clean.csv", tmp_path / "dirty.csv"
    write_csv(clean, rows=ROWS, seed=SEED)
    write_csv(dirty, rows=ROWS, seed=SEED, bad_rows=9)
    prepared = prepare_file(dirty, EXTRACTION)
    bad = set(prepared.rejected["source_row"])
    lines = dirty.read_bytes().split(b"\r\n")
    kept = [line for i, line in enumerate(lines) if i not in bad]  # line i is source_row i
    assert b"\r\n".join(kept) == clean.read_bytes()


def test_bad_kinds_can_be_chosen_and_unknown_ones_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "value.csv"
    summary = write_csv(path, rows=50, seed=2, bad_rows=12, bad_kinds=generate.VALUE_DEFECTS)
    assert set(summary["bad_row_kinds"]) == set(generate.VALUE_DEFECTS)
    path.read_bytes().decode("utf-8")  # value defects only: still UTF-8
    with pytest.raises(ConfigError, match="unknown bad row kind"):
        write_csv(path, rows=5, bad_rows=1, bad_kinds=["nope"])


def test_a_gz_name_writes_a_gzip_file_the_pipeline_reads(tmp_path: Path) -> None:
    path = tmp_path / "rides.csv.gz"
    write_csv(path, rows=300, seed=5, bad_rows=12)
    prepared = prepare_file(path, EXTRACTION)
    assert prepared.accepted_rows == 300 and len(prepared.rejected) == 12


def test_the_command_line_prints_the_expected_rejections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ridelake.cli import main

    out = tmp_path / "bad.csv"
    assert main(["generate", "--rows", "100", "--seed", "3", "--bad-rows", "24", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "expected: 24 rejected rows (" in printed and "100 accepted" in printed
    prepared = prepare_file(out, EXTRACTION)
    assert len(prepared.rejected) == 24 and prepared.accepted_rows == 100


def test_only_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "only_bad.csv"
    summary = write_csv(path, rows=0, bad_rows=6, seed=11)
    assert summary["status_counts"] == {s: 0 for s in STATUS_SHARES}
    prepared = prepare_file(path, EXTRACTION)
    assert prepared.rows_in_file == 6 and len(prepared.rejected) == 6 and len(prepared.accepted) == 0


def test_empty_file_has_the_header_only(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    summary = write_csv(path, rows=0)
    assert path.read_bytes() == (",".join(HEADER) + "\r\n").encode()
    assert summary["rows_in_file"] == 0


# --- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{"rows": -1}, {"bad_rows": -2}, {"seed": -1}, {"year": 99}, {"year": 10_000}, {"rows": "10"},
     {"rows": 1.5}, {"rows": True}],
)
def test_bad_arguments_raise_config_error(tmp_path: Path, kwargs: dict) -> None:
    path = tmp_path / "x.csv"
    with pytest.raises(ConfigError) as info:
        write_csv(path, **kwargs)
    assert isinstance(info.value, RidelakeError)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_unwritable_target_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        write_csv(tmp_path, rows=10)  # a directory
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError):
        write_csv(blocker / "sub" / "x.csv", rows=10)  # parent is a file


def test_creates_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "rides.csv"
    write_csv(path, rows=10)
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["rides.csv"]  # no temporary file left


# --- streaming -----------------------------------------------------------------------------------


def test_streams_in_chunks() -> None:
    blocks = list(iter_chunks(rows=10_500, seed=1, chunk_rows=2_000))
    assert len(blocks) == 1 + 6  # the header, then ceil(10,500 / 2,000) blocks
    assert [b.count("\r\n") for b in blocks] == [1, 2_000, 2_000, 2_000, 2_000, 2_000, 500]


def _peak_writing(path: Path, rows: int) -> int:
    tracemalloc.start()
    try:
        write_csv(path, rows=rows, seed=5, bad_rows=3)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_bounded_by_the_chunk_not_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Peak traced memory does not grow with the row count: 10x the rows, about the same peak."""
    monkeypatch.setattr(generate, "CHUNK_ROWS", 2_000)
    write_csv(tmp_path / "warm.csv", rows=10, bad_rows=1)  # build the cached lookup tables first
    small_peak = _peak_writing(tmp_path / "small.csv", 8_000)
    big = tmp_path / "big.csv"
    big_peak = _peak_writing(big, 80_000)
    size = big.stat().st_size
    assert size > 13_000_000
    assert big_peak < 1.25 * small_peak, (small_peak, big_peak)
    # holding every row as text would take more than the file's size
    assert big_peak < size / 4, (big_peak, size)
