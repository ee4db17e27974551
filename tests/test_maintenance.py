"""Rollback of a run and warehouse maintenance, on a throw-away warehouse and project."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import pytest

from ridelake import cli

from ridelake.tables import catalog

from ridelake.ops import lineage, maintenance
from ridelake.errors import CatalogError, ConfigError, LockError, ParameterError
from ridelake.core.lock import WarehouseLock, lock_path
from ridelake.core.manifest import latest_run_id, read_manifest, read_run, runs_dir
from ridelake.core.protocol import RUN_SCHEMA_VERSION
from test_lineage import R1, R2, as_run, dim, project  # noqa: F401  (project is a fixture)

R3 = "20240503T100000Z-cccc"
ZERO = dt.timedelta(0)


def rows(table: str) -> int:
    return len(catalog.read_table(table))


def first_and_second_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """R1 creates vehicle_type (2) and location (1); R2 rewrites vehicle_type (3), appends a location (2)
    and creates payment_method (2)."""
    as_run(monkeypatch, R1, "silver/vehicle_type")
    catalog.write_table("silver.vehicle_type", dim(["Auto", "Bike"]), replace_all=True)
    as_run(monkeypatch, R1, "silver/location")
    catalog.write_table("silver.location", dim(["AIIMS"], "location_id"), replace_all=True)
    as_run(monkeypatch, R2, "silver/vehicle_type")
    catalog.write_table("silver.vehicle_type", dim(["Auto", "Bike", "eBike"]), replace_all=True)
    as_run(monkeypatch, R2, "silver/location")
    catalog.write_table("silver.location", dim(["AIIMS", "Saket"], "location_id").iloc[[1]])
    as_run(monkeypatch, R2, "silver/payment_method")
    catalog.write_table("silver.payment_method", dim(["UPI", "Cash"], "payment_method_id"), replace_all=True)
    for var in ("RIDELAKE_RUN_ID", "RIDELAKE_NOTEBOOK", "RIDELAKE_PARAMS_HASH"):
        monkeypatch.delenv(var)


def table_files(warehouse: Path) -> set[Path]:
    return {p for p in warehouse.rglob("*") if p.is_file() and p.name != "catalog.db"}


def held_lock(warehouse: Path) -> WarehouseLock:
    lock = WarehouseLock(lock_path(str(warehouse), warehouse.parent), "20240509T000000Z-lock", warehouse=str(warehouse))
    lock.acquire()
    return lock


# -- durations ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [("7d", 7 * 86400), ("12h", 43200), ("30m", 1800), ("0s", 0),
                                           ("0", 0), ("1w", 604800), ("1d12h", 129600), ("1.5h", 5400)])
def test_parse_duration(text, seconds):
    assert maintenance.parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "7", "7x", "d7", "7d-1h", "soon"])
def test_parse_duration_refuses_garbage(text):
    with pytest.raises(ParameterError, match="not a duration"):
        maintenance.parse_duration(text)


# -- rollback ----------------------------------------------------------------------------------

def test_rollback_restores_every_table_the_run_changed_and_is_recorded_as_a_run(project, warehouse, monkeypatch):
    first_and_second_run(monkeypatch)
    assert (rows("silver.vehicle_type"), rows("silver.location"), rows("silver.payment_method")) == (3, 2, 2)
    before_vt = lineage.run_changes(R2)["silver.vehicle_type"].before

    result = maintenance.rollback(R2)

    assert (rows("silver.vehicle_type"), rows("silver.location"), rows("silver.payment_method")) == (2, 1, 0)
    assert catalog.snapshot_id("silver.vehicle_type") == before_vt
    assert sorted(catalog.read_table("silver.vehicle_type")["name"]) == ["Auto", "Bike"]
    assert catalog.read_table("silver.location")["name"].tolist() == ["AIIMS"]
    actions = {t.table: (t.action, t.rows_before, t.rows_after) for t in result.tables}
    assert actions == {"silver.vehicle_type": ("set-current", 3, 2), "silver.location": ("set-current", 2, 1),
                       "silver.payment_method": ("emptied", 2, 0)}   # it had no snapshot before R2
    # R1's tables are untouched
    assert [t for t in lineage.run_changes(R1)] == ["silver.location", "silver.vehicle_type"]

    record = read_manifest(runs_dir(project) / result.run_id)
    assert record["command"] == "rollback" and record["status"] == "succeeded"
    assert record["params"] == {"rolled_back_run": R2}
    assert {(t["table"], t["from_snapshot"], t["to_snapshot"]) for t in record["tables"]} == {
        (t.table, t.from_snapshot, t.to_snapshot) for t in result.tables}
    # written through the run-record schema, like a runner run's
    run = read_run(runs_dir(project) / result.run_id)
    assert run.schema_version == RUN_SCHEMA_VERSION and run.command == "rollback" and run.notebooks == []
    assert run.tables == result.tables and run.skipped == [] and run.force is False
    assert latest_run_id(runs_dir(project)) == result.run_id
    # history still shows R2's snapshots, marked as no longer in the table
    hist = lineage.history("silver.vehicle_type")
    assert not hist.loc[hist["run_id"] == R2, "in_lineage"].any()
    assert hist.loc[hist["current"], "run_id"].tolist() == [R1]
    # the emptying commit carries the rollback's provenance
    pm = lineage.history("silver.payment_method")
    assert pm.loc[0, "run_id"] == result.run_id and pm.loc[0, "notebook"] == "rollback" and pm.loc[0, "current"]
    assert not (warehouse / ".ridelake.lock").exists()


def test_rollback_command_prints_rows_before_and_after(project, warehouse, monkeypatch, capsys):
    first_and_second_run(monkeypatch)
    assert cli.main(["rollback", R2]) == 0
    out = capsys.readouterr().out
    assert f"of run {R2}" in out
    assert any("silver.vehicle_type" in ln and "set-current" in ln and "3 -> 2" in ln for ln in out.splitlines())
    assert any("silver.payment_method" in ln and "emptied" in ln and "2 -> 0" in ln for ln in out.splitlines())
    assert "recorded as run" in out


def test_rolling_back_again_has_nothing_to_do(project, warehouse, monkeypatch):
    first_and_second_run(monkeypatch)
    maintenance.rollback(R2)
    runs_before = sorted(p.name for p in runs_dir(project).iterdir())
    again = maintenance.rollback(R2)
    assert again.run_id is None and {t.action for t in again.tables} == {"skipped"}
    assert sorted(p.name for p in runs_dir(project).iterdir()) == runs_before
    assert "nothing to roll back" in maintenance.format_rollback(again)


def test_a_rollback_can_be_rolled_back(project, warehouse, monkeypatch):
    first_and_second_run(monkeypatch)
    undo = maintenance.rollback(R2)
    maintenance.rollback(undo.run_id)  # R2's state again, payment_method included
    assert (rows("silver.vehicle_type"), rows("silver.location"), rows("silver.payment_method")) == (3, 2, 2)


def test_rollback_refuses_when_a_later_run_changed_a_table_and_force_overrides(project, warehouse, monkeypatch,
                                                                               capsys):
    first_and_second_run(monkeypatch)
    as_run(monkeypatch, R3, "silver/location")
    catalog.write_table("silver.location", dim(["AIIMS", "Saket", "Noida"], "location_id"), replace_all=True)
    monkeypatch.delenv("RIDELAKE_RUN_ID")
    snaps = {t: catalog.snapshot_id(t) for t in ("silver.vehicle_type", "silver.location", "silver.payment_method")}

    with pytest.raises(CatalogError) as err:
        maintenance.rollback(R2)
    msg = str(err.value)
    assert f"refusing to roll back run {R2}" in msg
    assert "silver.location" in msg and R3 in msg and "silver/location" in msg
    assert "silver.vehicle_type" not in msg and "--force" in msg
    # nothing changed, nothing recorded
    assert {t: catalog.snapshot_id(t) for t in snaps} == snaps
    assert not runs_dir(project).exists()

    assert cli.main(["rollback", R2]) == 2
    assert R3 in capsys.readouterr().err

    assert cli.main(["rollback", R2, "--force"]) == 0
    assert "forced" in capsys.readouterr().out
    assert (rows("silver.vehicle_type"), rows("silver.location"), rows("silver.payment_method")) == (2, 1, 0)
    record = read_manifest(runs_dir(project) / latest_run_id(runs_dir(project)))
    assert record["force"] is True and any(R3 in w for w in record["warnings"])


def test_rollback_refuses_while_a_run_holds_the_lock(project, warehouse, monkeypatch, capsys):
    first_and_second_run(monkeypatch)
    lock = held_lock(warehouse)
    try:
        with pytest.raises(LockError, match="20240509T000000Z-lock"):
            maintenance.rollback(R2)
        assert cli.main(["rollback", R2]) == 3
        assert rows("silver.vehicle_type") == 3
    finally:
        lock.release()
    maintenance.rollback(R2)
    assert rows("silver.vehicle_type") == 2


def test_rollback_of_an_unknown_run_is_refused(project, warehouse, monkeypatch):
    first_and_second_run(monkeypatch)
    with pytest.raises(CatalogError, match="changed no table"):
        maintenance.rollback("20000101T000000Z-none")


# -- maintain ----------------------------------------------------------------------------------

def churn(monkeypatch: pytest.MonkeyPatch, times: int = 4) -> None:
    """Several runs rewriting the same table: old data files pile up."""
    for i in range(times):
        as_run(monkeypatch, f"20240601T00000{i}Z-{i:04d}", "silver/vehicle_type")
        catalog.write_table("silver.vehicle_type", dim([f"v{j}" for j in range(i + 2)]), replace_all=True)
    as_run(monkeypatch, R1, "silver/location")
    catalog.write_table("silver.location", dim(["AIIMS", "Saket"], "location_id"))
    monkeypatch.delenv("RIDELAKE_RUN_ID")


def test_maintain_deletes_unreferenced_files_and_tables_still_read_the_same(project, warehouse, monkeypatch):
    churn(monkeypatch)
    tables = ("silver.vehicle_type", "silver.location")
    before = {t: catalog.read_table(t).sort_values("name").reset_index(drop=True) for t in tables}
    vt = catalog.load_table("silver.vehicle_type")
    old = [s.snapshot_id for s in vt.snapshots() if s.snapshot_id != vt.current_snapshot().snapshot_id]
    stray = warehouse / "notes.txt"
    stray.write_text("not ours")
    os.utime(stray, (0, 0))
    files_before = table_files(warehouse)

    result = maintenance.maintain(ZERO, grace=ZERO)

    per = {t.table: t for t in result.tables}
    # an append, then three overwrites of a delete and an append each: 7 snapshots, one current
    assert per["silver.vehicle_type"].snapshots_expired == len(old) == 6
    assert per["silver.vehicle_type"].snapshots_kept == 1
    assert per["silver.vehicle_type"].files["data"] == 3                    # the three replaced data files
    assert per["silver.vehicle_type"].files["manifest-list"] == 6
    assert per["silver.vehicle_type"].files["metadata"] == 5                # all but the expiry's own
    assert per["silver.location"].snapshots_expired == 0 and per["silver.location"].files["data"] == 0
    assert result.bytes_freed > 0 and result.bytes_freed == sum(t.bytes_freed for t in result.tables)
    files_after = table_files(warehouse)
    deleted = {Path(p) for t in result.tables for p in t.deleted}
    assert deleted and not (files_after & deleted) and files_before - deleted <= files_after
    new = files_after - files_before                                        # the expiry commit's metadata
    assert len(new) == 1 and next(iter(new)).name.endswith(".metadata.json")
    assert stray.exists() and (warehouse / "catalog.db").exists()
    # every table reads the same rows; the expired snapshots are gone for time travel
    for t in tables:
        pd.testing.assert_frame_equal(catalog.read_table(t).sort_values("name").reset_index(drop=True), before[t])
    vt = catalog.load_table("silver.vehicle_type")
    assert [s.snapshot_id for s in vt.snapshots()] == [vt.current_snapshot().snapshot_id]
    assert all(vt.snapshot_by_id(s) is None for s in old)
    with pytest.raises(ValueError):
        vt.scan(snapshot_id=old[0]).to_arrow()
    assert len(lineage.history("silver.vehicle_type")) == 1
    # and a second pass finds nothing left to free
    again = maintenance.maintain(ZERO, grace=ZERO)
    assert again.files_deleted == 0 and again.snapshots_expired == 0


def test_maintain_dry_run_deletes_nothing_but_reports_what_a_real_run_frees(project, warehouse, monkeypatch,
                                                                            capsys):
    churn(monkeypatch)
    files_before = {p: p.stat().st_size for p in table_files(warehouse)}
    snaps_before = len(catalog.load_table("silver.vehicle_type").snapshots())

    dry = maintenance.maintain(ZERO, dry_run=True, grace=ZERO)

    assert {p: p.stat().st_size for p in table_files(warehouse)} == files_before
    assert len(catalog.load_table("silver.vehicle_type").snapshots()) == snaps_before
    assert dry.dry_run and dry.files_deleted > 0 and dry.snapshots_expired == 6
    real = maintenance.maintain(ZERO, grace=ZERO)
    assert (real.files_deleted, real.bytes_freed) == (dry.files_deleted, dry.bytes_freed)
    assert {t.table: t.files for t in real.tables} == {t.table: t.files for t in dry.tables}

    assert cli.main(["maintain", "--older-than", "0s", "--grace", "0s", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "(dry run)" in out and "would delete 0 file(s)" in out


def test_maintain_keeps_young_snapshots_and_young_files(project, warehouse, monkeypatch):
    churn(monkeypatch)
    files_before = table_files(warehouse)
    week = maintenance.maintain(dt.timedelta(days=7), grace=ZERO)
    assert week.snapshots_expired == 0 and week.files_deleted == 0
    # expired snapshots, but every unreferenced file is younger than the grace period
    young = maintenance.maintain(ZERO, grace=dt.timedelta(hours=1))
    assert young.snapshots_expired == 6 and young.files_deleted == 0
    assert sum(t.kept_young for t in young.tables) > 0
    assert files_before <= table_files(warehouse)


def test_maintain_cleans_old_staging_files(project, warehouse, monkeypatch):
    churn(monkeypatch, times=1)
    staging = warehouse / "_staging" / "abc"
    staging.mkdir(parents=True)
    old, new = staging / "old.parquet", staging / "new.parquet"
    old.write_bytes(b"x" * 100)
    new.write_bytes(b"y" * 10)
    os.utime(old, (0, 0))
    result = maintenance.maintain(dt.timedelta(days=7), grace=ZERO)
    assert (result.staging_files, result.staging_bytes) == (1, 100)
    assert not old.exists() and new.exists()


def test_maintain_refuses_while_a_run_holds_the_lock(project, warehouse, monkeypatch, capsys):
    churn(monkeypatch)
    files_before = table_files(warehouse)
    lock = held_lock(warehouse)
    try:
        with pytest.raises(LockError, match="in use by run 20240509T000000Z-lock"):
            maintenance.maintain(ZERO, grace=ZERO)
        assert cli.main(["maintain", "--older-than", "0s", "--grace", "0s"]) == 3
    finally:
        lock.release()
    assert table_files(warehouse) == files_before


def test_maintain_command_prints_per_table_and_totals(project, warehouse, monkeypatch, capsys):
    churn(monkeypatch)
    assert cli.main(["maintain", "--older-than", "0s", "--grace", "0s"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "expiring snapshots committed before" in lines[0] and "older than 0s" in lines[0]
    assert any(ln.startswith("silver.vehicle_type") for ln in lines)
    assert any(ln.startswith("total") for ln in lines)
    assert "freed" in lines[-1] or any(ln.startswith("deleted") and "freed" in ln for ln in lines)


def test_maintain_refuses_an_object_store_warehouse_with_a_sqlite_catalog(project, monkeypatch, tmp_path):
    monkeypatch.setenv("RIDELAKE_WAREHOUSE", "s3://bucket/warehouse")
    monkeypatch.setenv("RIDELAKE_CATALOG_URI", f"sqlite:///{tmp_path / 'c.db'}")
    with pytest.raises(ConfigError, match="on an object store but the catalog is a SQLite file"):
        maintenance.maintain(ZERO)


def test_rollback_refuses_when_maintain_expired_the_state_before_the_run(project, warehouse, monkeypatch):
    first_and_second_run(monkeypatch)
    maintenance.maintain(ZERO, grace=ZERO)
    with pytest.raises(CatalogError, match="expired"):
        maintenance.rollback(R2)
    assert rows("silver.vehicle_type") == 3
