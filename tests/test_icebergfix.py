"""The one-pass partition split gives what pyiceberg's own split gives, and writes through it read back."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from ridelake.tables import icebergfix as partitions

pio = pytest.importorskip("pyiceberg.io.pyarrow")
from pyiceberg.partitioning import PartitionField, PartitionSpec  # noqa: E402
from pyiceberg.schema import Schema  # noqa: E402
from pyiceberg.transforms import IdentityTransform  # noqa: E402
from pyiceberg.types import LongType, NestedField, StringType  # noqa: E402

SCHEMA = Schema(NestedField(1, "id", LongType(), required=False), NestedField(2, "month", StringType(), required=False),
                NestedField(3, "name", StringType(), required=False))
SPEC = PartitionSpec(PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="month"))


def _pyiceberg_split(table: pa.Table) -> list:
    original = partitions._original or pio._determine_partitions
    assert original is not partitions.split_partitions
    return list(original(SPEC, SCHEMA, table))


def _as_lists(parts: list) -> list:
    """Each partition's path and rows, by path (pyiceberg's group-by order of partitions varies
    with chunking; the order of rows within a partition does not)."""
    return sorted((p.partition_key.to_path(), p.arrow_table_partition.to_pylist()) for p in parts)


def _table(months: list, chunks: int = 1) -> pa.Table:
    n = len(months)
    whole = pa.table({"id": pa.array(np.arange(n), pa.int64()), "month": pa.array(months, pa.string()),
                      "name": pa.array([f"r{i}" for i in range(n)], pa.string())})
    if chunks == 1:
        return whole
    step = max(1, n // chunks)
    return pa.Table.from_batches([b for i in range(0, n, step) for b in whole.slice(i, step).to_batches()])


@pytest.mark.parametrize("months, chunks", [
    (["2024-02", "2024-01", "2024-02", None, "2024-03", "2024-01", None], 1),
    (["2024-02", "2024-01", "2024-02", None, "2024-03", "2024-01", None], 3),
    (["2024-05"] * 6, 2),
    (["2024-01"] * 3 + ["2024-02"] * 2 + [None] * 2, 2),  # grouped already: slices
    ([], 1),
    (list(np.random.default_rng(7).choice(["2024-01", "2024-02", "2024-03", "2024-04"], 500)), 4),
])
def test_split_equals_pyiceberg_split(months, chunks):
    table = _table(months, chunks)
    partitions.install()
    ours = list(partitions.split_partitions(SPEC, SCHEMA, table))
    theirs = _pyiceberg_split(table)
    assert _as_lists(ours) == _as_lists(theirs)
    assert len({p.partition_key.to_path() for p in ours}) == len(ours)  # each partition once
    assert all(p.arrow_table_partition.schema == table.schema for p in ours)
    assert sum(p.arrow_table_partition.num_rows for p in ours) == table.num_rows


def test_install_replaces_pyiceberg_split_once():
    assert partitions.install() and partitions.install()
    assert pio._determine_partitions is partitions.split_partitions
    assert partitions._original is not partitions.split_partitions and partitions._original is not None


def _metadata_dump(metadata) -> dict:
    """The metadata as a dict, without the clock: each replay of the updates stamps ``now``."""
    return {k: v for k, v in metadata.model_dump().items() if k not in ("last_updated_ms", "last-updated-ms")}


def test_transaction_metadata_is_computed_once_per_state_and_equals_pyiceberg(tmp_path):
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table import Transaction
    from pyiceberg.table.update import update_table_metadata

    partitions.install()
    assert Transaction.__dict__["table_metadata"].fget is partitions.cached_table_metadata
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}")
    catalog.create_namespace("n")
    table = catalog.create_table("n.t", schema=SCHEMA, partition_spec=SPEC)
    for i in range(3):  # some history
        table.append(_table(["2024-01", "2024-02"] * (i + 1)))
    tx = table.transaction()
    first = tx.table_metadata
    assert tx.table_metadata is first  # nothing staged since: the same object, not another deep copy
    assert _metadata_dump(first) == _metadata_dump(update_table_metadata(table.metadata, tx._updates))
    tx.set_properties(owner="test")
    staged = tx.table_metadata
    assert staged is not first and staged.properties["owner"] == "test" and "owner" not in first.properties
    assert _metadata_dump(staged) == _metadata_dump(update_table_metadata(table.metadata, tx._updates))
    tx.commit_transaction()
    # an overwrite through the cached path commits what it should
    table.overwrite(_table(["2024-03"] * 4), overwrite_filter="month = '2024-01'")
    rows = table.scan().to_arrow()
    assert sorted(set(rows["month"].to_pylist())) == ["2024-02", "2024-03"] and table.properties["owner"] == "test"
    assert len(table.metadata.snapshots) == 3 + 2  # three appends, then a delete and an append


def test_opening_the_catalog_installs_both_fixes(warehouse):
    """In a new process (nothing installed yet): opening ridelake's catalog puts both in place."""
    import subprocess
    import sys

    code = ("import pyiceberg.io.pyarrow as pio; from pyiceberg.table import Transaction;"
            "from ridelake.tables import catalog, icebergfix;"
            "assert pio._determine_partitions is not icebergfix.split_partitions;"
            "catalog.get_catalog();"
            "assert pio._determine_partitions is icebergfix.split_partitions;"
            "assert Transaction.__dict__['table_metadata'].fget is icebergfix.cached_table_metadata")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
