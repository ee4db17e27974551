"""Provenance: snapshot properties on every commit, `ridelake history`, what a run changed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ridelake import cli

from ridelake.tables import catalog

from ridelake.ops import lineage
from ridelake.errors import CatalogError
from ridelake.core.manifest import runs_dir, write_manifest

NOW = pd.Timestamp("2024-05-01 10:00:00", tz="UTC")
R1, R2 = "20240501T100000Z-aaaa", "20240502T100000Z-bbbb"


def dim(names: list[str], key: str = "vehicle_type_id") -> pd.DataFrame:
    """A silver dimension frame (same columns for every dimension but the key)."""
    return pd.DataFrame({key: range(1, len(names) + 1), "name": names,
                         "created_at": [NOW] * len(names), "updated_at": [NOW] * len(names)})


def as_run(monkeypatch: pytest.MonkeyPatch, run_id: str, notebook: str, params_hash: str = "h" * 64) -> None:
    """What the runner sets in a kernel's environment."""
    monkeypatch.setenv("RIDELAKE_RUN_ID", run_id)
    monkeypatch.setenv("RIDELAKE_NOTEBOOK", notebook)
    monkeypatch.setenv("RIDELAKE_PARAMS_HASH", params_hash)


@pytest.fixture
def project(tmp_path: Path, warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throw-away project root (for outputs/runs) beside the throw-away warehouse."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "notebooks" / "pipeline.yaml").write_text("notebooks: {}\n", encoding="utf-8")
    monkeypatch.setenv("RIDELAKE_HOME", str(root))
    return root


def two_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """R1 writes vehicle_type (2 rows) and location; R2 replaces vehicle_type (3 rows) and creates payment_method."""
    as_run(monkeypatch, R1, "silver/vehicle_type", "1" * 64)
    catalog.write_table("silver.vehicle_type", dim(["Auto", "Bike"]), replace_all=True)
    as_run(monkeypatch, R1, "silver/location", "1" * 64)
    catalog.write_table("silver.location", dim(["AIIMS"], "location_id"), replace_all=True)
    as_run(monkeypatch, R2, "silver/vehicle_type", "2" * 64)
    catalog.write_table("silver.vehicle_type", dim(["Auto", "Bike", "eBike"]), replace_all=True)
    as_run(monkeypatch, R2, "silver/payment_method", "2" * 64)
    catalog.write_table("silver.payment_method", dim(["UPI", "Cash"], "payment_method_id"), replace_all=True)


def test_every_commit_carries_the_run_notebook_params_hash_and_table(warehouse, monkeypatch):
    as_run(monkeypatch, R1, "silver/location", "abc123")
    catalog.write_table("silver.location", dim(["AIIMS", "Saket"], "location_id"))            # append
    catalog.replace_rows("silver.location", dim(["Saket"], "location_id").assign(location_id=[2]),
                         {"name": ["Saket"]})                                                  # delete + append
    snaps = catalog.load_table("silver.location").snapshots()
    assert len(snaps) == 3
    for snap in snaps:
        props = snap.summary.additional_properties
        assert props["ridelake.run-id"] == R1
        assert props["ridelake.notebook"] == "silver/location"
        assert props["ridelake.params-hash"] == "abc123"
        assert props["ridelake.table"] == "silver.location"


def test_history_lists_snapshots_newest_first_with_provenance(warehouse, monkeypatch):
    two_runs(monkeypatch)
    frame = lineage.history("silver.vehicle_type")
    assert list(frame.columns) == list(lineage.HISTORY_COLUMNS)
    # R1: append 2; R2: overwrite = delete 2 + append 3, newest first
    assert frame["run_id"].tolist() == [R2, R2, R1]
    assert frame["operation"].tolist() == ["append", "delete", "append"]
    assert frame["added_records"].tolist() == [3, 0, 2]
    assert frame["deleted_records"].tolist() == [0, 2, 0]
    assert frame["total_records"].tolist() == [3, 0, 2]
    assert frame["notebook"].unique().tolist() == ["silver/vehicle_type"]
    assert frame["params_hash"].tolist() == ["2" * 64, "2" * 64, "1" * 64]
    assert frame["current"].tolist() == [True, False, False]
    assert frame["in_lineage"].all()
    assert str(frame["committed_at"].dt.tz) == "UTC"
    assert frame["committed_at"].is_monotonic_decreasing
    assert frame.loc[0, "parent_id"] == frame.loc[1, "snapshot_id"]
    assert pd.isna(frame.loc[2, "parent_id"])
    assert frame.loc[0, "snapshot_id"] == catalog.snapshot_id("silver.vehicle_type")


def test_history_accepts_the_notebook_spelling_and_is_empty_for_an_unwritten_table(warehouse, monkeypatch):
    two_runs(monkeypatch)
    assert len(lineage.history("silver/vehicle_type")) == 3
    assert lineage.history("gold.location_analytics").empty


def test_history_command_prints_the_table(warehouse, monkeypatch, capsys):
    two_runs(monkeypatch)
    assert cli.main(["history", "silver.vehicle_type"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("silver.vehicle_type: 3 snapshot(s), newest first")
    assert "snapshot" in lines[1] and "run" in lines[1] and "notebook" in lines[1]
    body = lines[3:6]
    assert body[0].startswith("*") and R2 in body[0] and "append" in body[0]
    assert R2 in body[1] and "delete" in body[1]
    assert R1 in body[2] and "silver/vehicle_type" in body[2]
    assert f"current: {catalog.snapshot_id('silver.vehicle_type')}" in out

    assert cli.main(["history", "silver.vehicle_type", "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "3 snapshot(s), newest first (newest 1 shown)" in out and R1 not in out

    assert cli.main(["history", "silver.vehicle_type", "--json", "--limit", "2"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in records] == [R2, R2]
    assert records[0]["current"] is True and records[0]["total_records"] == 3
    assert records[0]["committed_at"].endswith("Z")
    assert records[0]["snapshot_id"] == catalog.snapshot_id("silver.vehicle_type")


def test_history_of_an_unknown_table_names_the_close_matches(warehouse, monkeypatch, capsys):
    two_runs(monkeypatch)
    assert cli.main(["history", "silver.vehicle_typ"]) == 2
    err = capsys.readouterr().err
    assert "unknown table 'silver.vehicle_typ'" in err
    assert "Did you mean silver.vehicle_type" in err
    assert "Known tables: bronze.rejected_row" in err


def test_history_without_a_catalog_does_not_create_one(warehouse):
    with pytest.raises(CatalogError, match="no catalog"):
        lineage.history("silver.booking")
    assert not (warehouse / "catalog.db").exists()


def test_run_changes_from_snapshot_properties(warehouse, monkeypatch):
    two_runs(monkeypatch)
    vt = catalog.load_table("silver.vehicle_type")
    by_run = {s.summary.additional_properties["ridelake.run-id"]: s.snapshot_id
              for s in sorted(vt.snapshots(), key=lambda s: s.sequence_number)}  # last per run wins
    r1, r2 = lineage.run_changes(R1), lineage.run_changes(R2)
    assert set(r1) == {"silver.vehicle_type", "silver.location"}
    assert r1["silver.vehicle_type"] == (None, by_run[R1])          # first write: nothing before
    assert r1["silver.location"].before is None
    assert set(r2) == {"silver.vehicle_type", "silver.payment_method"}
    before, last = r2["silver.vehicle_type"]
    assert before == by_run[R1]                                     # the parent of R2's delete snapshot
    assert last == by_run[R2] == vt.current_snapshot().snapshot_id
    assert r2["silver.payment_method"].before is None
    assert lineage.run_changes("20000101T000000Z-none") == {}


def test_run_changes_cross_checks_run_json(project, monkeypatch):
    two_runs(monkeypatch)
    r2 = lineage.run_changes(R2)
    # the record agrees about vehicle_type, forgets payment_method, and names a snapshot that is not there
    write_manifest(runs_dir(project) / R2, {"run_id": R2, "command": "run", "notebooks": [
        {"name": "silver/vehicle_type", "writes": {"silver.vehicle_type": r2["silver.vehicle_type"].last}},
        {"name": "silver/location", "writes": {"silver.location": 123}},
    ]})
    info = lineage.describe_run_changes(R2[:12])  # a unique prefix resolves through the record
    assert info.run_id == R2 and info.record["command"] == "run"
    assert info.changes == r2  # the snapshot properties decide; run.json only raises warnings
    assert any("silver.payment_method" in w and "not in its run.json" in w for w in info.warnings)
    assert any("silver.location" in w and "[123]" in w for w in info.warnings)
    assert "silver.location" in info.unrestorable


def _untagged_and_foreign(monkeypatch: pytest.MonkeyPatch) -> None:
    """R1 and R2 (tagged), then a commit by hand (no properties) and one by another tool."""
    two_runs(monkeypatch)
    for var in ("RIDELAKE_RUN_ID", "RIDELAKE_NOTEBOOK", "RIDELAKE_PARAMS_HASH"):
        monkeypatch.delenv(var)
    data = catalog.to_arrow("silver.vehicle_type", dim(["Auto"]))
    catalog.load_table("silver.vehicle_type").append(data)  # by hand, e.g. a notebook cell run in JupyterLab
    catalog.load_table("silver.vehicle_type").append(
        data, snapshot_properties={"spark.app.id": "app-20240501", "engine": "spark 3.5"})  # another tool


def test_history_with_untagged_and_foreign_snapshots(warehouse, monkeypatch, capsys):
    _untagged_and_foreign(monkeypatch)
    frame = lineage.history("silver.vehicle_type")
    assert len(frame) == 5
    assert frame["run_id"].tolist() == [None, None, R2, R2, R1]
    assert frame["params_hash"].tolist()[:2] == [None, None] and frame["notebook"].tolist()[:2] == [None, None]
    assert frame["total_records"].tolist() == [5, 4, 3, 0, 2] and frame["current"].tolist()[0]
    assert frame["in_lineage"].all()
    text = lineage.format_history(frame, "silver.vehicle_type")
    lines = text.splitlines()
    assert lines[0] == "silver.vehicle_type: 5 snapshot(s), newest first"
    body = lines[3:8]
    assert body[0].startswith("*") and body[0].split()[-3:] == ["-", "-", "-"]   # run, notebook, params
    assert body[1].split()[-3:] == ["-", "-", "-"] and "append" in body[1]
    assert body[2].split()[-3:] == [R2, "silver/vehicle_type", "2" * 8]
    assert "2 snapshot(s) carry no ridelake run id" in lines[-1]
    # the crash of issue 9: a missing tag that pandas turned into NaN (float) or NA
    for missing in (float("nan"), pd.NA):
        frame2 = frame.astype({"params_hash": object, "run_id": object})
        frame2.loc[[0, 1], ["params_hash", "run_id", "notebook"]] = missing
        assert lineage.format_history(frame2, "silver.vehicle_type").splitlines()[3].split()[-3:] == ["-", "-", "-"]
    assert cli.main(["history", "silver/vehicle_type"]) == 0
    assert "carry no ridelake run id" in capsys.readouterr().out
    assert cli.main(["history", "silver.vehicle_type", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert records[0]["run_id"] is None and records[0]["params_hash"] is None and records[2]["run_id"] == R2


def test_history_marks_rolled_back_snapshots(warehouse, monkeypatch):
    two_runs(monkeypatch)
    tbl = catalog.load_table("silver.vehicle_type")
    first = lineage.history("silver.vehicle_type").iloc[-1]["snapshot_id"]
    tbl.manage_snapshots().set_current_snapshot(snapshot_id=int(first)).commit()
    frame = lineage.history("silver.vehicle_type")
    assert frame["in_lineage"].tolist() == [False, False, True] and frame["current"].tolist() == [False, False, True]
    lines = lineage.format_history(frame, "silver.vehicle_type").splitlines()
    assert lines[3].startswith("-") and lines[5].startswith("*")
    assert "'-' = not in the current state (rolled back)" in lines[-1]


def test_history_piped_into_head_exits_quietly(warehouse, monkeypatch):
    """``ridelake history T | head``: the reader goes away before the output is written."""
    import subprocess
    import sys

    _untagged_and_foreign(monkeypatch)
    proc = subprocess.Popen([sys.executable, "-m", "ridelake", "history", "silver.vehicle_type"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `head` that has read its lines
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert err == "", err
