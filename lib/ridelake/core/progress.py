"""What a person sees: live lines while notebooks run, the summary table at the end.

On a terminal, :class:`Progress` keeps one live line per running notebook (name, elapsed
seconds, attempt), redrawn a few times a second, and prints a line as each one ends. When the
stream is not a terminal it stays quiet except for retries and failures, which are always
printed: the notebook, the failing cell, the error and the executed notebook to open.
Notebooks found up-to-date are listed as they are decided (live only) and counted per layer in
the summary.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import Any, Iterable, Mapping, TextIO

from ridelake.core.manifest import effective_status
from ridelake.core.scheduler import FAILED, SUCCEEDED, UP_TO_DATE, Listener, NodeState

__all__ = ["Progress", "summary_table", "runs_table", "format_seconds"]


def format_seconds(value: float | None) -> str:
    """``12.3`` for seconds under ten minutes, ``1h02m`` / ``12m05s`` beyond; ``-`` for None."""
    if value is None:
        return "-"
    if value < 600:
        return f"{value:.1f}"
    minutes, seconds = divmod(int(round(value)), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _rows(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def _short(text: str | None, width: int = 300) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


class Progress(Listener):
    """Console feedback for a run.

    Args:
        stream: where to write (default stderr).
        live: draw live lines (default: when ``stream`` is a terminal).
        max_attempts: attempts allowed per notebook, shown as ``attempt 2/3``.
        outputs: node key -> executed notebook path, named in failure messages.
        refresh_s: seconds between redraws of the live lines.
    """

    def __init__(self, stream: TextIO | None = None, live: bool | None = None, max_attempts: int = 1,
                 outputs: Mapping[str, str] | None = None, refresh_s: float = 0.5) -> None:
        self.stream = stream or sys.stderr
        self.live = bool(self.stream.isatty()) if live is None else live
        self.max_attempts = max_attempts
        self.outputs = dict(outputs or {})
        self.refresh_s = refresh_s
        self._running: dict[str, tuple[float, int]] = {}
        self._drawn = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Start redrawing (a no-op when not live)."""
        if self.live and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="ridelake-progress", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop redrawing and erase the live lines."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        with self._lock:
            self._clear()
            self.stream.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.refresh_s):
            with self._lock:
                self._draw()

    # -- drawing ----------------------------------------------------------------------------
    def _clear(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}A\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        if not self.live:
            return
        self._clear()
        width = max(40, shutil.get_terminal_size((100, 20)).columns - 1)
        now = time.monotonic()
        lines = []
        for key, (since, attempt) in self._running.items():
            tries = f"attempt {attempt}/{self.max_attempts}" if self.max_attempts > 1 else f"attempt {attempt}"
            lines.append(f"  ▸ {key:<34} {now - since:7.1f} s   {tries}"[:width])
        for line in lines:
            self.stream.write(line + "\n")
        self._drawn = len(lines)
        self.stream.flush()

    def message(self, text: str, always: bool = True) -> None:
        """Print a line above the live lines.

        Args:
            text: the line.
            always: print it even when not live.
        """
        if not (always or self.live):
            return
        with self._lock:
            self._clear()
            self.stream.write(text + "\n")
            self._draw()
            self.stream.flush()

    # -- scheduler hooks --------------------------------------------------------------------
    def on_start(self, state: NodeState, attempt: int) -> None:
        with self._lock:
            self._running[state.key] = (time.monotonic(), attempt)
            self._draw()

    def on_retry(self, state: NodeState, delay: float) -> None:
        with self._lock:
            self._running.pop(state.key, None)
        self.message(f"  ↻ {state.key}: attempt {len(state.attempts)} failed: {_short(state.error)}; "
                     f"retrying in {delay:g} s")

    def on_finish(self, state: NodeState) -> None:
        with self._lock:
            self._running.pop(state.key, None)
        seconds = format_seconds(state.duration_s)
        if state.status == SUCCEEDED:
            self.message(f"  ✓ {state.key:<34} {seconds:>7} s", always=False)
        elif state.status == FAILED:
            where = self.outputs.get(state.key)
            tries = len(state.attempts)
            self.message(f"  ✗ {state.key} failed after {tries} attempt{'s' if tries != 1 else ''}: "
                         f"{_short(state.error)}" + (f"\n      executed notebook: {where}" if where else ""))

    def on_skip(self, state: NodeState) -> None:
        self.message(f"  - {state.key} skipped ({state.error})", always=False)

    def on_up_to_date(self, state: NodeState) -> None:
        self.message(f"  = {state.key:<34} up-to-date", always=False)


def _table(header: list[str], rows: Iterable[list[str]], right: set[int]) -> list[str]:
    body = [header, *rows]
    widths = [max(len(r[i]) for r in body) for i in range(len(header))]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    return [fmt(header), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)]


def summary_table(run: Mapping[str, Any], run_folder: str | None = None) -> str:
    """The end-of-run table: each notebook, totals per layer, the run folder, the exit status.

    Args:
        run: a ``run.json`` record.
        run_folder: shown as the run folder (default the record's ``run_folder``).

    Returns:
        The text, without a trailing newline.
    """
    notebooks = list(run.get("notebooks") or [])
    rows = [[nb.get("key") or nb["name"], nb.get("status", "?"), str(nb.get("attempts", 0)),
             format_seconds(nb.get("duration_s")), _rows(nb.get("rows_written"))] for nb in notebooks]
    what = run.get("command", "run") + (f", rerunning what failed in {run['from_failure']}" if run.get("from_failure") else "")
    lines = [f"run {run.get('run_id', '?')}  ({what})", ""]
    lines += _table(["notebook", "status", "attempts", "seconds", "rows written"], rows, {2, 3, 4})
    layers: dict[str, dict[str, Any]] = {}
    for nb in notebooks:
        agg = layers.setdefault(nb["name"].split("/", 1)[0], {"n": 0, "succeeded": 0, UP_TO_DATE: 0, "failed": 0,
                                                             "skipped": 0, "s": 0.0, "rows": 0})
        agg["n"] += 1
        if nb.get("status") in agg:
            agg[nb["status"]] += 1
        agg["s"] += nb.get("duration_s") or 0.0
        agg["rows"] += nb.get("rows_written") or 0
    total = {k: sum(a[k] for a in layers.values())
             for k in ("n", "succeeded", UP_TO_DATE, "failed", "skipped", "s", "rows")}
    lrows = [[name, str(a["n"]), str(a["succeeded"]), str(a[UP_TO_DATE]), str(a["failed"]), str(a["skipped"]),
              format_seconds(a["s"]), _rows(a["rows"])] for name, a in [*layers.items(), ("total", total)]]
    lines += [""] + _table(["layer", "notebooks", "succeeded", UP_TO_DATE, "failed", "skipped", "seconds (sum)",
                            "rows written"], lrows, {1, 2, 3, 4, 5, 6, 7})
    lines += [
        "",
        f"run folder:  {run_folder or run.get('run_folder', '?')}",
        f"wall time:   {format_seconds(run.get('duration_s'))} s",
        f"status:      {effective_status(dict(run))} (exit status {run.get('exit_code', '?')})",
    ]
    if total[UP_TO_DATE]:
        lines.append(f"up-to-date:  {total[UP_TO_DATE]} of {total['n']} did not need to run (--force runs them)")
    failed = [nb for nb in notebooks if nb.get("status") == FAILED]
    for nb in failed:
        lines.append(f"  ✗ {nb.get('key') or nb['name']}: {_short(nb.get('error'))}")
        if nb.get("output"):
            lines.append(f"      {nb['output']}")
    return "\n".join(lines)


def runs_table(runs: Iterable[Mapping[str, Any]]) -> str:
    """One line per run: id, start, status, wall time, notebooks (how many ran, how many were
    up-to-date), the failed ones.

    Args:
        runs: ``run.json`` records, newest first.

    Returns:
        The text (a note when there are none).
    """
    rows = []
    for run in runs:
        notebooks = run.get("notebooks") or []
        failed = [nb.get("key") or nb.get("name", "?") for nb in notebooks if nb.get("status") == FAILED]
        skipped = sum(1 for nb in notebooks if nb.get("status") == "skipped")
        fresh = sum(1 for nb in notebooks if nb.get("status") == UP_TO_DATE)
        ran = sum(1 for nb in notebooks if nb.get("attempts"))
        note = ", ".join(failed) + (f" (+{skipped} skipped)" if skipped else "")
        rows.append([run.get("run_id", "?"), str(run.get("started_at", "?"))[:19].replace("T", " "),
                     run.get("command", "run"), effective_status(dict(run)), format_seconds(run.get("duration_s")),
                     str(len(notebooks)), str(ran), str(fresh), note or "-"])
    if not rows:
        return "no runs recorded yet"
    return "\n".join(_table(["run id", "started (UTC)", "command", "status", "seconds", "notebooks", "ran",
                             UP_TO_DATE, "failed"], rows, {4, 5, 6, 7}))
