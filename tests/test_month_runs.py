"""Month by month or whole file, in big or tiny batches: the same tables (issue 11).

The notebooks' own code runs in this process (tests/inprocess.py), on a delivery spread over
three months with every kind of bad row, then a second delivery that re-delivers some bookings
later, so the winner rule, rejected rows of unknown month and stable ids are all exercised.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import inprocess
from ridelake.tables import csvlines, source, winning
from ridelake.tables.generate import write_csv

pytestmark = pytest.mark.slow

MONTHS = ["2024-01", "2024-02", "2024-03"]


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory) -> tuple[Path, Path]:
    """A first delivery over January to March (plus bad rows, some of unknown month) and a second
    one re-delivering 40 of its bookings, 5 of them in another month."""
    folder = tmp_path_factory.mktemp("months")
    full = folder / "full.csv"
    write_csv(full, rows=6000, seed=21, bad_rows=60)
    lines = full.read_bytes().split(b"\r\n")
    body = [ln for ln in lines[1:-1] if ln[:7] in {m.encode() for m in MONTHS} or not ln[:4].isdigit()
            or ln[:7] == b"2024-13"]
    first = folder / "first.csv"
    first.write_bytes(b"\r\n".join([lines[0], *body]) + b"\r\n")
    again = [ln for ln in body if b",Completed," in ln or b",Incomplete," in ln][:40]
    again = [b"2024-03-28" + ln[10:] if i < 5 and ln.startswith(b"2024-01") else ln for i, ln in enumerate(again)]
    second = folder / "second.csv"
    second.write_bytes(b"\r\n".join([lines[0], *again]) + b"\r\n")
    return first, second


def _run(deliveries, months, prepare_per_month=True) -> dict[str, pd.DataFrame]:
    first, second = deliveries
    inprocess.load(first, "2024-12-31", months, prepare_per_month)
    # the second delivery moves bookings between months: the facts rebuild whole then
    inprocess.load(second, "2025-01-10", [None])
    return inprocess.tables()


@pytest.fixture(scope="module")
def whole(deliveries, tmp_path_factory) -> dict[str, pd.DataFrame]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RIDELAKE_WAREHOUSE", str(tmp_path_factory.mktemp("whole") / "warehouse"))
        return _run(deliveries, [None])


def _assert_same(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame]) -> None:
    assert set(got) == set(want)
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], check_dtype=False, obj=name)
    assert len(want["bronze.rejected_row"]) >= 12 and len(want["silver.booking"]) > 1000


def test_month_by_month_gives_the_tables_of_a_whole_file_run(deliveries, whole, warehouse):
    _assert_same(_run(deliveries, MONTHS), whole)


def test_month_by_month_from_one_whole_file_staging_gives_the_same_tables(deliveries, whole, warehouse):
    _assert_same(_run(deliveries, MONTHS, prepare_per_month=False), whole)


def test_tiny_batches_and_month_splits_give_the_same_tables(deliveries, whole, warehouse, monkeypatch):
    blocks: list[int] = []
    split = csvlines.split_lines

    def counted(data, *args, **kwargs):
        blocks.append(len(data))
        return split(data, *args, **kwargs)

    monkeypatch.setattr(csvlines, "BLOCK_SIZE", 4096)
    monkeypatch.setattr(csvlines, "split_lines", counted)
    monkeypatch.setattr(source, "ROW_GROUP", 50)
    monkeypatch.setattr(source, "BUFFERED_ROWS", 120)
    monkeypatch.setattr(winning, "DECIDE_ROWS", 150)  # the winner rule decided in buckets of booking ids
    totals = winning.customer_totals

    monkeypatch.setattr(winning, "customer_totals", lambda compact_at=300: totals(compact_at))
    got = _run(deliveries, MONTHS)
    assert len(blocks) > 40 and max(blocks) < 4096 + 2 * csvlines.FIELD_LIMIT
    staged = next((warehouse / "_staging").glob("first.csv__2024-12-31__2024-02.*/2024-02.parquet"))
    import pyarrow.parquet as pq

    assert pq.ParquetFile(staged).metadata.num_row_groups > 2  # the month was written in pieces
    _assert_same(got, whole)
