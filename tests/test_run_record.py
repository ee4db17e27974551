"""The run-record schema (ridelake.core.manifest.RunManifest): one layout for the runner, rollback
and interactive writes, with a schema_version, that still reads records written before it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ridelake.core.manifest import (
    RUN_FILE,
    NotebookEntry,
    RunManifest,
    RunRecord,
    TableEntry,
    read_manifest,
    read_run,
    write_manifest,
)
from ridelake.core.protocol import RUN_SCHEMA_VERSION
from ridelake.core.scheduler import SUCCEEDED, NodeState
from ridelake.errors import ConfigError


def a_run() -> RunManifest:
    """A record using every kind of field: a notebook entry, a table entry, options, unknown fields."""
    return RunManifest(
        run_id="interactive-20260101T100000Z-ab12", status="succeeded", exit_code=0,
        started_at="2026-01-01T10:00:00.000Z", finished_at="2026-01-01T10:00:02.500Z", duration_s=2.5,
        command="interactive", params={"write": True, "extraction_month": None}, warehouse="/w",
        user="ana", host="lab", pid=42, run_folder="outputs/runs/interactive-20260101T100000Z-ab12",
        notebooks=[NotebookEntry(name="silver/customer", key="silver/customer", stage="interactive",
                                 status=SUCCEEDED, attempts=1, rows_written=7, table="silver.customer",
                                 params={"write": True}, writes={"silver.customer": 12},
                                 reads={"bronze.customer": 5, "bronze.booking": None},
                                 attempt_log=[{"attempt": 1, "status": "succeeded"}],
                                 run_reason="written from a notebook (write = True)",
                                 extra={"future_field": [1, 2]})],
        tables=[TableEntry("silver.customer", "overwrite", 11, 12, 6, 7),
                TableEntry("silver.location", "set-current", 3, 2, 5, 4, note="forced")],
        warnings=["w"], extra={"added_in_v3": {"x": 1}},
    )


def test_a_record_round_trips_through_run_json(tmp_path: Path) -> None:
    run = a_run()
    path = write_manifest(tmp_path / run.run_id, run)

    assert path == tmp_path / run.run_id / RUN_FILE
    back = read_run(tmp_path / run.run_id)
    assert back == run
    assert back.to_json() == run.to_json() == read_manifest(tmp_path / run.run_id)
    stored = json.loads(path.read_text())
    assert stored["schema_version"] == RUN_SCHEMA_VERSION and list(stored)[0] == "schema_version"
    # optional fields are left out when unset; unknown fields are written back as they were
    assert "argv" not in stored and "jobs" not in stored and "error" not in stored
    assert stored["added_in_v3"] == {"x": 1} and stored["notebooks"][0]["future_field"] == [1, 2]
    assert "note" not in stored["tables"][0] and stored["tables"][1]["note"] == "forced"


def test_a_record_written_before_schema_versions_still_reads(tmp_path: Path) -> None:
    old = {  # a run.json as ridelake wrote it before the schema: no version, fewer notebook fields
        "run_id": "20240501T100000Z-aaaa", "status": "failed", "exit_code": 1, "command": "run",
        "started_at": "2024-05-01T10:00:00.000Z", "params": {"source_file": "/d.csv"}, "jobs": 2,
        "host": "h", "pid": 1, "run_folder": "outputs/runs/20240501T100000Z-aaaa",
        "notebooks": [{"name": "bronze/prepare", "key": "bronze/prepare", "status": "failed",
                       "attempts": 3, "error": "cell 3: SourceError: x", "writes": {}}],
    }
    folder = tmp_path / old["run_id"]
    folder.mkdir()
    (folder / RUN_FILE).write_text(json.dumps(old))

    run = read_run(folder)
    assert run.schema_version == 1 and run.run_id == old["run_id"] and run.jobs == 2
    nb = run.notebooks[0]
    assert (nb.name, nb.status, nb.attempts, nb.run_reason, nb.attempt_log) == (
        "bronze/prepare", "failed", 3, None, [])
    assert run.tables is None and run.notebook("bronze/prepare") is nb and run.notebook("x") is None
    assert read_manifest(folder) == old  # the raw reader still gives the file as it is

    # a hand-made minimal record reads too; something that is not a record does not
    (folder / RUN_FILE).write_text(json.dumps({"run_id": "r", "notebooks": [{"key": "silver/booking@2024-03"}]}))
    assert read_run(folder).notebooks[0].name == "silver/booking"
    (folder / RUN_FILE).write_text(json.dumps({"run_id": "r", "notebooks": ["not an object"]}))
    with pytest.raises(ConfigError, match="unreadable run record"):
        read_run(folder)


def test_the_runner_record_is_written_through_the_schema(tmp_path: Path) -> None:
    record = RunRecord(tmp_path, "20260101T000000Z-0001", {"command": "run", "argv": ["run"], "params": {"a": 1},
                                                          "params_file": None, "jobs": 2, "force": False})
    record.add("silver/customer", name="silver/customer", table="silver.customer", params={"write": True},
               stage="run")
    state = NodeState("silver/customer", status=SUCCEEDED)
    record.track({"silver/customer": state})
    record.finish("succeeded", 0)

    run = read_run(record.dir)
    assert run.schema_version == RUN_SCHEMA_VERSION and run.command == "run" and run.jobs == 2
    assert run.params_file is None and run.force is False and run.argv == ["run"]
    assert [(nb.key, nb.status, nb.table, nb.params) for nb in run.notebooks] == [
        ("silver/customer", SUCCEEDED, "silver.customer", {"write": True})]
    assert record.data == run.to_json()


def test_a_notebooks_notes_reach_run_json_and_the_summary(tmp_path) -> None:
    from ridelake.core.manifest import NotebookEntry
    from ridelake.core.progress import summary_table

    entry = NotebookEntry.from_json({"name": "bronze/prepare", "status": "succeeded", "notes": ["f.csv: ignored X"]})
    assert NotebookEntry.from_json(entry.to_json()).notes == ["f.csv: ignored X"]
    assert NotebookEntry.from_json({"name": "a/b"}).notes == []  # an older record
    run = {"run_id": "r1", "command": "run", "status": "succeeded", "exit_code": 0,
           "notebooks": [entry.to_json(), NotebookEntry.from_json({"name": "a/b", "status": "succeeded"}).to_json()]}
    text = summary_table(run)
    assert "note: bronze/prepare: f.csv: ignored X" in text and text.count("note:") == 1
