"""Winners decided once and read month by month agree with the pure rule on whole tables; projected
and filtered reads return the same rows as full reads."""

from __future__ import annotations

import pandas as pd
import pytest

from ridelake.tables import catalog, winning
from ridelake.tables.generate import write_csv
from ridelake.tables.transforms import silver as sv
from test_catalog import load

KEY = list(winning.KEY)


@pytest.fixture
def loaded(tmp_path, warehouse):
    """Two deliveries: 1,500 generated rows, then 300 rows of another file re-delivering some bookings."""
    first = write_csv(tmp_path / "a.csv", rows=1500, seed=4, bad_rows=6)["path"]
    load(first, "2024-12-31")
    second = tmp_path / "b.csv"
    lines = (tmp_path / "a.csv").read_bytes().split(b"\r\n")
    second.write_bytes(b"\r\n".join([lines[0], *lines[200:500]]) + b"\r\n")
    load(second, "2025-01-15")
    return warehouse


def _sorted(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return frame.sort_values(by, kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("decide_rows", [2_000_000, 97], ids=["at-once", "in-buckets"])
def test_winning_rows_agree_with_the_rule_on_the_whole_table(loaded, monkeypatch, decide_rows):
    """Decided at once or in buckets of booking ids (a repeated id always in one bucket)."""
    monkeypatch.setattr(winning, "DECIDE_ROWS", decide_rows)
    keys = catalog.read_table("bronze.booking", columns=KEY)
    for table in ("bronze.booking", "bronze.ride", "bronze.location", "bronze.cancelled_ride"):
        whole = catalog.read_table(table)
        want = sv.winning_rows(whole, keys)
        got = winning.rows(table)
        assert got.read == len(whole) and got.dropped > 0
        by = ["source_file", "source_row"] + (["location_type"] if table == "bronze.location" else [])
        pd.testing.assert_frame_equal(_sorted(got.rows, by), _sorted(want, by), check_dtype=False)
    decided = winning.decided()
    won, dropped = sv.winners(keys)
    assert decided.bookings == len(won) and decided.dropped == dropped > 0
    assert decided.per_month.set_index("extraction_month")["bookings"].to_dict() == \
        won.groupby("extraction_month").size().to_dict()


def test_one_month_of_winning_rows_is_that_month_of_all(loaded):
    every = winning.rows("bronze.ride").rows
    for month in ("2024-02", "2024-11"):
        one = winning.rows("bronze.ride", ["booking_id", "ride_distance", "extraction_month"], month)
        want = every.loc[every["extraction_month"] == month, ["booking_id", "ride_distance", "extraction_month"]]
        pd.testing.assert_frame_equal(_sorted(one.rows, ["booking_id"]), _sorted(want, ["booking_id"]))
        assert one.read == int((catalog.read_table("bronze.ride", columns=["extraction_month"])
                                ["extraction_month"] == month).sum())


def test_names_and_customers_counted_batch_by_batch(loaded):
    keys = catalog.read_table("bronze.booking", columns=KEY)
    locations = sv.winning_rows(catalog.read_table("bronze.location"), keys)
    counts = winning.name_counts("bronze.location", "location_name")
    assert counts.to_dict() == locations["location_name"].value_counts().to_dict()
    customers = sv.winning_rows(catalog.read_table("bronze.customer"), keys)
    got = _sorted(winning.customer_totals(compact_at=100), ["customer_id"])
    want = sv.customer_totals(customers)
    pd.testing.assert_frame_equal(sv.build_customer_totals(got, None, pd.Timestamp("2025-01-01", tz="UTC")),
                                  sv.build_customer_totals(want, None, pd.Timestamp("2025-01-01", tz="UTC")))


def test_the_decision_is_staged_once_per_state_of_bronze_booking(loaded):
    first = winning.decided()
    folder = loaded / "_staging" / "winners" / str(first.snapshot_id)
    assert (folder / "decided.json").is_file()
    assert sorted(p.stem for p in folder.glob("*.parquet")) == first.months
    stamp = (folder / "decided.json").stat().st_mtime_ns
    again = winning.decided()
    assert again.snapshot_id == first.snapshot_id and again.per_month.equals(first.per_month)
    assert (folder / "decided.json").stat().st_mtime_ns == stamp  # read, not decided again
    frame = catalog.read_table("bronze.booking").head(0)
    catalog.write_table("bronze.booking", frame)  # a new snapshot: decided again
    assert winning.decided().snapshot_id != first.snapshot_id


def test_other_months_are_the_rest_of_the_table(loaded):
    whole = catalog.read_table("bronze.booking", columns=["booking_id", "extraction_month"])
    # other_months works on any partitioned table; bronze.booking stands in for a fact here
    rest = winning.other_months("bronze.booking", ["booking_id"], "2024-03")
    assert len(rest) == int((whole["extraction_month"] != "2024-03").sum())
    assert winning.other_months("bronze.booking", ["booking_id"], None).empty


def test_projected_and_filtered_reads_return_the_rows_of_a_full_read(loaded):
    full = catalog.read_table("bronze.booking")
    for month in ("2024-01", "2024-07"):
        flt = catalog.month_filter(month)
        part = catalog.read_table("bronze.booking", columns=["source_row", "booking_value"], row_filter=flt)
        want = full.loc[full["extraction_month"] == month, ["source_row", "booking_value"]]
        pd.testing.assert_frame_equal(_sorted(part, ["source_row"]), _sorted(want, ["source_row"]))
        arrow = catalog.read_arrow("bronze.booking", columns=["source_row"], row_filter=flt)
        assert sorted(arrow["source_row"].to_pylist()) == sorted(want["source_row"])
        streamed = [b for b in catalog.read_batches("bronze.booking", ["source_row"], flt)]
        assert sum(b.num_rows for b in streamed) == len(want)
    # file by file (read_batches) and pyiceberg's own reader (read_arrow): the same rows and types,
    # with a filter on a column that is not the partition (applied row by row in each file)
    import pyarrow as pa
    from pyiceberg.expressions import GreaterThan

    for flt in (None, GreaterThan("source_row", 700)):
        whole = catalog.read_arrow("bronze.booking", row_filter=flt)
        streamed = pa.Table.from_batches(list(catalog.read_batches("bronze.booking", row_filter=flt)))
        assert streamed.schema == whole.schema and streamed.num_rows == whole.num_rows > 0
        order = [(c, "ascending") for c in ("source_file", "extraction_date", "source_row")]
        assert streamed.sort_by(order).equals(whole.sort_by(order))
    values = catalog.read_table("bronze.booking", columns=["booking_value", "booking_id"])
    assert list(values.columns) == ["booking_value", "booking_id"]
    pd.testing.assert_frame_equal(_sorted(values, ["booking_id", "booking_value"]),
                                  _sorted(full[["booking_value", "booking_id"]], ["booking_id", "booking_value"]))
    assert catalog.month_filter(None) is None


def test_aggregating_batch_by_batch_equals_aggregating_the_whole_table(loaded):
    import pyarrow as pa

    from ridelake.tables.transforms import gold

    cols = ["customer_id", "booking_value", "booking_date"]
    whole = catalog.read_arrow("bronze.booking", columns=cols)
    want = gold.merge_customer_partials([gold.customer_partials(whole)]).to_pandas()
    got = catalog.aggregate("bronze.booking", cols, gold.customer_partials, gold.merge_customer_partials,
                            compact_at=50).to_pandas()
    pd.testing.assert_frame_equal(_sorted(got, ["customer_id"]), _sorted(want, ["customer_id"]))
    assert int(got["total_bookings"].sum()) == whole.num_rows == catalog.count_rows("bronze.booking")
    assert catalog.count_rows("bronze.booking", catalog.month_filter("2024-05")) == int(
        (catalog.read_table("bronze.booking", columns=["extraction_month"])["extraction_month"] == "2024-05").sum())
    assert isinstance(whole, pa.Table)


def test_the_winner_lookup_is_a_semi_join_on_every_key_column() -> None:
    """Same row number in another file or delivery date, another booking id on a winner's row,
    nulls: only rows equal to a winner on all of KEY are kept, in batch order."""
    import datetime as dt

    import pyarrow as pa

    d1, d2 = dt.date(2024, 12, 31), dt.date(2025, 1, 5)
    won = pa.table({"booking_id": ["B1", "B2", "B3"], "extraction_date": [d1, d1, d2],
                    "source_file": ["a.csv", "a.csv", "a.csv"], "source_row": [1, 2, 1],
                    "extraction_month": ["2024-03"] * 3})
    batch = pa.table({
        "booking_id": ["B1", "B2", "B1", "B3", "BX", "B2", None, "B3"],
        "extraction_date": [d1, d1, d2, d2, d1, d1, d1, d1],
        "source_file": ["a.csv", "a.csv", "a.csv", "a.csv", "a.csv", "b.csv", "a.csv", "a.csv"],
        "source_row": [1, 2, 1, 1, 1, 2, 2, 3],
        "extraction_month": ["2024-03"] * 8,
        "value": list(range(8)),
    })
    got = winning._is_winner(batch, won).to_pylist()
    oracle = batch.append_column("_i", pa.array(range(8))).join(
        won, keys=list(winning.KEY), join_type="left semi")["_i"].to_pylist()
    assert got == [i in set(oracle) for i in range(8)]
    assert got == [True, True, False, True, False, False, False, False]
    assert not any(winning._is_winner(batch, won.slice(0, 0)).to_pylist())


def test_fold_merges_geometrically_and_adds_up_every_piece() -> None:
    """A result that keeps growing is merged when the held partials double it, not on every piece
    once it passes ``compact_at`` (which would merge the whole result per piece: quadratic)."""
    import pyarrow as pa

    merges: list[int] = []

    def merge(parts: list[pa.Table]) -> pa.Table:
        merges.append(sum(p.num_rows for p in parts))
        return pa.concat_tables(parts)

    pieces = [pa.table({"k": list(range(i * 10, i * 10 + 10))}) for i in range(100)]  # 1,000 distinct keys
    out = catalog.fold(pieces, lambda t: t, merge, compact_at=25)
    assert sorted(out.column("k").to_pylist()) == list(range(1000))
    assert len(merges) <= 8  # 30, 70, 150, 310, 630, then the end (every piece would be 98)
    assert merges[-1] == 1000


def test_a_keyed_fold_merges_bucket_by_bucket_to_the_same_totals() -> None:
    """Split by the key's bucket, merged bucket by bucket: the same totals as one whole merge,
    with null and empty keys, ids of any length and pieces that spread a key over many buckets'
    merges."""
    import numpy as np
    import pyarrow as pa

    from ridelake.tables.transforms import gold

    rng = np.random.default_rng(3)
    ids = [f"CID{n}" for n in rng.integers(0, 60, 400)] + [None, "", "x", "CID7"] * 5
    rng.shuffle(ids)
    rows = pa.table({"customer_id": pa.array(ids, pa.string()),
                     "booking_value": pa.array(rng.integers(1, 500, len(ids)).astype(float)),
                     "booking_date": pa.array(rng.integers(19_700, 19_900, len(ids)).astype("int32")).cast(pa.date32())})
    pieces = [rows.slice(i, 37) for i in range(0, rows.num_rows, 37)]
    whole = gold.merge_customer_partials([gold.customer_partials(rows)]).to_pandas()
    keyed = catalog.fold(pieces, gold.customer_partials, gold.merge_customer_partials, compact_at=8,
                         key="customer_id", buckets=4).to_pandas()
    assert keyed["customer_id"].isna().sum() == 1 and len(keyed) == len(whole)
    pd.testing.assert_frame_equal(_sorted(keyed, ["customer_id"]), _sorted(whole, ["customer_id"]))


def test_bucket_of_gives_equal_values_equal_buckets() -> None:
    import pyarrow as pa

    values = ["CID1234", "CID1234", "ab", "", None, "CID1235"]
    for typ in (pa.string(), pa.large_string()):
        arr = pa.chunked_array([pa.array(values[:3], typ), pa.array(values[3:], typ)])
        got = catalog.bucket_of(arr, 8).tolist()
        assert got[0] == got[1] and got[4] == 0 and all(0 <= b < 8 for b in got)
        assert got == catalog.bucket_of(pa.array(values, typ).slice(0), 8).tolist()
    assert catalog.bucket_of(pa.array(values[:2] + ["zzz"], pa.string()).slice(1), 8).tolist()[0] == got[0]
    assert catalog.bucket_of(pa.array([5, 13, None, -3]), 8).tolist() == [5, 5, 0, 5]
    with pytest.raises(TypeError):
        catalog.bucket_of(pa.array([1.5]), 8)
