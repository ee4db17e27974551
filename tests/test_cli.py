"""The command line: subcommands, their parameters, exit statuses, runs/show (fake engine)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

import ridelake.tables.catalog
import ridelake.core.engine
import ridelake.core.runner
from ridelake.cli import EXIT_LOCKED, EXIT_USAGE, main, parse_assignments
from ridelake.core.engine import Outcome, Task
from ridelake.errors import ParameterError
from ridelake.core.lock import WarehouseLock, lock_path

PIPELINE = """
notebooks:
  bronze/prepare: {reads: [], writes: [bronze.rejected_row, staging.delivery]}
  bronze/booking: {reads: [staging.delivery], writes: [bronze.booking]}
  silver/customer: {reads: [bronze.booking], writes: [silver.customer]}
  silver/booking: {reads: [bronze.booking, silver.customer], writes: [silver.booking]}
  gold/daily_booking_summary: {reads: [silver.booking], writes: [gold.daily_booking_summary]}
"""
BRONZE = "source_file = None\nextraction_date = None\nextraction_month = None\n"
PARAMS = {
    "bronze/prepare": BRONZE,
    "bronze/booking": BRONZE,
    "silver/customer": None,
    "silver/booking": "extraction_month = None\n",
    "gold/daily_booking_summary": "target_date = None\n",
}


class FakeEngine:
    """Stands in for PapermillEngine: no kernels; fails the keys in ``FAIL``."""

    tasks: list[Task] = []
    FAIL: set[str] = set()
    _lock = threading.Lock()

    def __init__(self, *a, **kw) -> None:
        pass

    def execute(self, task: Task) -> Outcome:
        start = time.time()
        with self._lock:
            FakeEngine.tasks.append(task)
        task.output_path.write_text("{}")
        if task.name == "bronze/prepare":
            wh = Path(task.env.get("RIDELAKE_WAREHOUSE") or Path(task.env["RIDELAKE_HOME"]) / "warehouse")
            key = f"{Path(task.parameters['source_file']).name}__{task.parameters['extraction_date']}__all"
            (wh / "_staging").mkdir(parents=True, exist_ok=True)
            (wh / "_staging" / f"{key}.json").write_text(json.dumps({"months": ["2024-05"]}))
        ok = task.key not in self.FAIL
        return Outcome(ok, start, time.time(), None if ok else "cell 4: ZeroDivisionError: division by zero", 4)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "proj"
    for name, params in PARAMS.items():
        cells = [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": params, "outputs": [],
                  "execution_count": None}] if params else []
        path = root / "notebooks" / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4}))
    (root / "notebooks" / "pipeline.yaml").write_text(PIPELINE)
    (root / "params").mkdir()
    (root / "params" / "default.yaml").write_text("source_file: data/d.csv\nextraction_date: null\n"
                                                  "extraction_month: null\ntarget_date: null\n")
    (root / "params" / "march.yaml").write_text("source_file: data/d.csv\nextraction_month: 2024-03\n")
    (root / "data").mkdir()
    (root / "data" / "d.csv").write_text("Date\n")
    monkeypatch.setenv("RIDELAKE_HOME", str(root))
    monkeypatch.delenv("RIDELAKE_WAREHOUSE", raising=False)
    monkeypatch.delenv("RIDELAKE_CATALOG_URI", raising=False)
    monkeypatch.chdir(root)
    monkeypatch.setattr(ridelake.core.runner, "make_engine", lambda *a, **k: FakeEngine())
    monkeypatch.setattr(ridelake.tables.catalog, "bootstrap", lambda *a, **k: [])
    FakeEngine.tasks = []
    FakeEngine.FAIL = set()
    return root


def _params(name: str) -> dict:
    return next(dict(t.parameters) for t in FakeEngine.tasks if t.key == name)


def test_parse_assignments() -> None:
    assert parse_assignments(["a=1", "b=x=y", "a=2", "c="]) == {"a": "2", "b": "x=y", "c": ""}
    with pytest.raises(ParameterError, match="key=value"):
        parse_assignments(["novalue"])


def test_run_all_then_runs_and_show(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--params", "params/default.yaml", "-j", "2"]) == 0
    out = capsys.readouterr().out
    assert "exit status 0" in out and "gold/daily_booking_summary" in out
    assert len(FakeEngine.tasks) == 5
    run_id = (project / "outputs" / "runs" / "latest").resolve().name
    assert main(["runs"]) == 0
    listing = capsys.readouterr().out
    assert run_id in listing and "succeeded" in listing
    assert main(["show", run_id[:17]]) == 0
    assert "silver/booking" in capsys.readouterr().out
    assert main(["show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == run_id


def test_exit_statuses(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "silver/custmer"]) == EXIT_USAGE
    assert "did you mean silver/customer" in capsys.readouterr().err
    assert main(["run", "-p", "colour=blue"]) == EXIT_USAGE
    assert main(["run", "-p", "colour=blue"]) == EXIT_USAGE
    assert "colour not declared by any notebook of the pipeline" in capsys.readouterr().err
    assert main(["show", "nope"]) == EXIT_USAGE
    FakeEngine.FAIL = {"silver/customer"}
    assert main(["run", "--retries", "0"]) == 1
    captured = capsys.readouterr()
    assert "silver/customer failed after 1 attempt: cell 4: ZeroDivisionError: division by zero" in captured.err
    assert "exit status 1" in captured.out
    FakeEngine.FAIL = set()
    FakeEngine.tasks = []
    assert main(["run", "--from-failure", "--params", "params/default.yaml"]) == 0
    assert [t.key for t in FakeEngine.tasks] == ["silver/customer", "silver/booking", "gold/daily_booking_summary"]
    held = WarehouseLock(lock_path(str(project / "warehouse"), project), "someone-else")
    held.acquire()
    try:
        assert main(["run"]) == EXIT_LOCKED
        assert "in use by run someone-else" in capsys.readouterr().err
    finally:
        held.release()


def test_dry_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--dry-run", "+silver/booking"]) == 0
    out = capsys.readouterr().out
    assert "wave 1:" in out and "bronze/prepare" in out and "gold/" not in out
    assert main(["run", "silver/customer", "-j", "1", "gold", "--dry-run"]) == 0  # selectors around options
    out = capsys.readouterr().out
    assert "silver/customer" in out and "gold/daily_booking_summary" in out and "bronze/" not in out
    with pytest.raises(SystemExit):
        main(["gold", "--dry-run", "stray"])
    assert FakeEngine.tasks == [] and not (project / "outputs" / "runs").exists()


def test_layer_commands_pass_their_flags(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bronze", "--source-file", "data/d.csv", "--extraction-date", "2024-12-31",
                 "--extraction-month", "2024-02"]) == 0
    assert {t.name.split("/")[0] for t in FakeEngine.tasks} == {"bronze"}
    assert _params("bronze/booking") == {"source_file": str(project / "data" / "d.csv"),
                                         "extraction_date": "2024-12-31", "extraction_month": "2024-02"}
    FakeEngine.tasks = []
    assert main(["silver", "--extraction-month", "2024-03"]) == 0
    assert {t.key for t in FakeEngine.tasks} == {"silver/customer", "silver/booking"}
    assert _params("silver/booking") == {"extraction_month": "2024-03"}
    FakeEngine.tasks = []
    assert main(["gold", "--target-date", "2024-03-05"]) == 0
    assert _params("gold/daily_booking_summary") == {"target_date": "2024-03-05"}
    FakeEngine.tasks = []
    # backfill rebuilds whole: the params file's month is overridden
    assert main(["backfill", "--params", "params/march.yaml"]) == 0
    assert {t.key for t in FakeEngine.tasks} == {"silver/customer", "silver/booking", "gold/daily_booking_summary"}
    assert _params("silver/booking") == {"extraction_month": None}
    capsys.readouterr()


def test_incremental(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["incremental", "--params", "params/default.yaml", "--source-file", "data/d.csv",
                 "--extraction-date", "2024-12-31"]) == 0
    keys = [t.key for t in FakeEngine.tasks]
    assert keys[:2] == ["bronze/prepare", "bronze/booking"]
    assert set(keys[2:]) == {"silver/customer", "silver/booking@2024-05", "gold/daily_booking_summary"}
    assert _params("silver/booking@2024-05") == {"extraction_month": "2024-05"}
    assert "delivery touched 1 month(s): 2024-05" in capsys.readouterr().err


def test_warehouse_option_reaches_the_kernels(project: Path, tmp_path: Path, capsys) -> None:
    assert main(["run", "bronze/prepare", "--warehouse", str(tmp_path / "wh")]) == 0
    assert FakeEngine.tasks[0].env["RIDELAKE_WAREHOUSE"] == str(tmp_path / "wh")
    assert not (project / "warehouse").exists()  # the default warehouse was not touched
    data = json.loads((project / "outputs" / "runs" / "latest" / "run.json").read_text())
    assert data["warehouse"] == str(tmp_path / "wh")


def test_generate_still_works(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g.csv"
    assert main(["generate", "--rows", "20", "--seed", "1", "--out", str(out)]) == 0
    assert out.read_text().count("\n") == 21
    assert "wrote 20 rows" in capsys.readouterr().out
