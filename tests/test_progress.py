"""Console output: headless progress lines in a captured log, the end-of-run table, the runs
listing (no-op runs collapsed) and a rollback's table (``ridelake show``)."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest

from ridelake.cli import main
from ridelake.core.engine import Outcome, Task, ThreadExecutor
from ridelake.core.manifest import update_latest, write_manifest
from ridelake.core.progress import Progress, reason_text, runs_table, summary_table, tables_moved
from ridelake.core.scheduler import MultiListener, Node, Scheduler

ANSI = re.compile(r"\x1b\[")


class _Engine:
    """``silver/b`` fails its first attempt; ``gold/c`` always fails; the others write rows."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def execute(self, task: Task) -> Outcome:
        start = time.time()
        n = self.calls[task.key] = self.calls.get(task.key, 0) + 1
        if task.key == "gold/c" or (task.key == "silver/b" and n == 1):
            return Outcome(False, start, time.time(), f"cell 3: ValueError: attempt {n} of {task.key}", 3)
        rows = {"bronze/a": 147_575, "silver/b": 12}[task.key]
        return Outcome(True, start, time.time(), receipts=[{"op": "write", "table": task.key, "rows_written": rows}])


def _run(stream: io.TextIOBase | io.StringIO, live: bool | None = None) -> Scheduler:
    nodes = [Node("bronze/a", frozenset()), Node("silver/b", frozenset({"bronze/a"})),
             Node("gold/c", frozenset({"silver/b"})), Node("gold/d", frozenset({"gold/c"}))]
    pool = ThreadExecutor(_Engine(), 2)
    progress = Progress(stream, live=live, max_attempts=3, outputs={"gold/c": "outputs/runs/r/gold/c.ipynb"})

    def make_task(key: str, attempt: int) -> Task:
        return Task(key, key, Path(f"{key}.ipynb"), Path(f"/nonexistent/{key}.ipynb"), attempt=attempt)

    sched = Scheduler(nodes, pool, make_task, retries=2, retry_delay=0.01, listener=MultiListener(progress))
    progress.start()
    try:
        sched.run()
    finally:
        progress.stop()
        pool.close()
    return sched


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def test_headless_progress_prints_a_line_per_start_retry_and_end(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    with open(log, "w", encoding="utf-8") as stream:  # a log file: not a terminal
        assert not stream.isatty()
        _run(stream)
    text = log.read_text(encoding="utf-8")
    lines = _lines(text)
    assert not ANSI.search(text), "no colour or cursor movement in a log"
    assert "▸ bronze/a started" in lines
    assert re.search(r"^ *✓ bronze/a +\d+\.\d s +147,575 rows$", text, re.M)
    assert any(ln.startswith("↻ retry silver/b: attempt 1 failed: cell 3: ValueError: attempt 1 of silver/b")
               for ln in lines), lines
    assert "▸ silver/b started (attempt 2/3)" in lines
    assert re.search(r"^ *✓ silver/b +\d+\.\d s +12 rows$", text, re.M)
    assert sum(ln.startswith("↻ retry gold/c") for ln in lines) == 2
    failed = next(ln for ln in lines if ln.startswith("✗ gold/c"))
    assert failed.startswith("✗ gold/c failed after 3 attempts: cell 3: ValueError: attempt 3 of gold/c")
    assert "executed notebook: outputs/runs/r/gold/c.ipynb" in lines
    assert any(ln.startswith("- gold/d skipped") for ln in lines)
    # in the order things happened: a ends before b starts again, b ends before c starts
    order = [lines.index("▸ bronze/a started"), next(i for i, ln in enumerate(lines) if ln.startswith("✓ bronze/a")),
             lines.index("▸ silver/b started (attempt 2/3)"), lines.index("▸ gold/c started")]
    assert order == sorted(order)


def test_live_progress_on_a_terminal_still_prints_each_end() -> None:
    stream = io.StringIO()
    _run(stream, live=True)
    text = stream.getvalue()
    assert "✓ bronze/a" in text and "✗ gold/c failed after 3 attempts" in text
    assert "▸ bronze/a started" not in text  # the live area shows what runs instead


def test_long_lines_are_not_wrapped_in_a_log() -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    error = "cell 9: ValueError: " + "x" * 180
    progress.message(f"  ✗ silver/b failed after 1 attempt: {error}")
    assert len(stream.getvalue().splitlines()) == 1


def _nb(key: str, status: str, **kw: object) -> dict:
    return {"name": key.split("@")[0], "key": key, "status": status, "attempts": 0 if status == "up-to-date" else 1,
            "duration_s": 0.0 if status == "up-to-date" else 2.5, "rows_written": 0 if status == "up-to-date" else 10,
            **kw}


def _record(run_id: str, notebooks: list[dict], **kw: object) -> dict:
    return {"run_id": run_id, "command": "run", "status": "succeeded", "exit_code": 0, "duration_s": 1.0,
            "started_at": f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}T{run_id[9:11]}:{run_id[11:13]}:00.000Z",
            "run_folder": f"outputs/runs/{run_id}", "notebooks": notebooks, **kw}


ROLLBACK = _record("20240103T000000Z-0003", [], command="rollback", params={"rolled_back_run": "20240101T000000Z-0001"},
                   tables=[{"table": "silver.booking", "action": "set-current", "from_snapshot": 22,
                            "to_snapshot": 11, "rows_before": 1200, "rows_after": 1000},
                           {"table": "gold.summary", "action": "emptied", "from_snapshot": 33,
                            "to_snapshot": 34, "rows_before": 5, "rows_after": 0}],
                   skipped=[{"table": "bronze.booking", "reason": "already at its snapshot before the run"}])


def test_summary_of_a_run_and_of_a_no_op_run() -> None:
    ran = summary_table(_record("20240101T000000Z-0001", [_nb("bronze/a", "succeeded"), _nb("silver/b", "up-to-date",
                                                                                            up_to_date_since="R0")]))
    lines = ran.splitlines()
    header = next(ln for ln in lines if ln.startswith("notebook"))
    assert header.split() == ["notebook", "status", "attempts", "seconds", "rows", "written"]
    assert re.search(r"^bronze/a +succeeded +1 +2\.5 +10$", ran, re.M)
    assert "1 of 2 did not need to run (--force runs them; with make: FORCE=1)" in ran
    noop = summary_table(_record("20240102T000000Z-0002", [_nb(k, "up-to-date", up_to_date_since="20240101T000000Z-0001")
                                                          for k in ("bronze/a", "silver/b")]))
    assert "nothing needed to run: all 2 notebooks are up-to-date; their results come from run 20240101T000000Z-0001" \
        in noop
    assert "bronze/a" not in noop and "2 of 2 did not need to run" in noop


def test_show_lists_what_a_rollback_moved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    text = summary_table(ROLLBACK)
    assert text.startswith("run 20240103T000000Z-0003  (rollback of run 20240101T000000Z-0001)")
    assert re.search(r"^silver\.booking +set-current +22 -> 11 +1,200 -> 1,000$", text, re.M)
    assert re.search(r"^gold\.summary +emptied +33 -> 34 +5 -> 0$", text, re.M)
    assert "left alone: bronze.booking: already at its snapshot before the run" in text
    assert tables_moved({"tables": []}) == ""
    runs = tmp_path / "outputs" / "runs"
    write_manifest(runs / ROLLBACK["run_id"], ROLLBACK)
    update_latest(runs, ROLLBACK["run_id"])
    monkeypatch.setenv("RIDELAKE_HOME", str(tmp_path))
    assert main(["show"]) == 0
    out = capsys.readouterr().out
    assert "silver.booking" in out and "22 -> 11" in out and "1,200 -> 1,000" in out


def test_runs_listing_collapses_consecutive_no_op_runs() -> None:
    first = _record("20240101T000000Z-0001", [_nb("bronze/a", "succeeded"), _nb("silver/b", "succeeded")])
    noops = [_record(f"20240102T0{i}0000Z-000{i}", [_nb("bronze/a", "up-to-date"), _nb("silver/b", "up-to-date")])
             for i in range(1, 5)]
    lone = _record("20240104T000000Z-0009", [_nb("bronze/a", "up-to-date"), _nb("silver/b", "up-to-date")])
    failed = _record("20240103T000000Z-0005", [_nb("bronze/a", "failed")], status="failed", exit_code=1)
    text = runs_table([lone, ROLLBACK, failed, *reversed(noops), first])
    lines = text.splitlines()
    assert lines[0].split() == ["run", "id", "started", "(UTC)", "command", "status", "seconds", "notebooks", "ran",
                                "up-to-date", "notes"]
    body = lines[2:]
    assert len(body) == 5, text  # lone, rollback, failed, the 4 no-op runs as one line, first
    assert body[0].startswith("20240104T000000Z-0009")  # a single no-op run keeps its own line
    assert "moved 2 table(s) back to before 20240101T000000Z-0001" in body[1]
    assert body[2].startswith("20240103T000000Z-0005") and body[2].rstrip().endswith("bronze/a")
    assert body[3].startswith("4 no-op runs") and "all up-to-date: 20240102T010000Z-0001 .. 20240102T040000Z-0004" \
        in body[3]
    assert body[4].startswith("20240101T000000Z-0001")
    assert runs_table([]) == "no runs recorded yet"


def test_reason_text() -> None:
    assert reason_text("no successful run recorded for this warehouse") == "first run"
    assert reason_text("silver.customer changed") == "silver.customer changed"
    assert reason_text(None) == ""
