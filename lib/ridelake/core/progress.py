"""What a person sees: progress lines while notebooks run, the tables at the end.

:class:`Progress` prints one plain line when a notebook finishes (``✓ silver/customer  6.9 s
147,575 rows``, ``✗ ...`` with the error and the executed notebook to open), is retried
(``↻ retry ...``) or skipped. On a terminal it also keeps a live area (rich) with a spinner,
the elapsed time and the attempt of each running notebook. When the stream is not a terminal
(CI, a log file, ``nohup``) there is no live area and no colour; instead a line is printed when
each notebook starts, so a log shows what is running.

:func:`summary_table`, :func:`runs_table` and :func:`tables_moved` render plain text tables
(rich, without colour, at a width that never wraps them) for the console and for logs.
"""

from __future__ import annotations

import io
import sys
import threading
import time
from typing import Any, Iterable, Mapping, Sequence, TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from ridelake.core.manifest import effective_status
from ridelake.core.scheduler import FAILED, SKIPPED, SUCCEEDED, UP_TO_DATE, Listener, NodeState

__all__ = [
    "Progress",
    "summary_table",
    "runs_table",
    "tables_moved",
    "format_seconds",
    "format_rows",
    "reason_text",
    "plain_table",
    "render_text",
]

#: Width of text rendered for a stream that is not a terminal: wide enough that no table wraps.
LOG_WIDTH = 240
_KEY_WIDTH = 34
#: The up-to-date check's reason for a notebook that never succeeded on this warehouse.
_FIRST_RUN = "no successful run recorded"


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


def format_rows(value: Any) -> str:
    """``147,575`` for an integer, ``-`` otherwise."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "-"


def reason_text(reason: str | None) -> str:
    """Why a notebook ran, worded for people: ``first run`` for a notebook that never succeeded
    on this warehouse; other reasons as recorded."""
    if not reason:
        return ""
    if reason.startswith(_FIRST_RUN):
        return "first run"
    return reason


def _short(text: str | None, width: int = 300) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _console(stream: TextIO, terminal: bool) -> Console:
    """A console for ``stream``: colour and the terminal's width on a terminal; else plain text
    at :data:`LOG_WIDTH` with nothing wrapped."""
    if terminal:
        return Console(file=stream, force_terminal=True, highlight=False, soft_wrap=True)
    return Console(file=stream, force_terminal=False, color_system=None, width=LOG_WIDTH, highlight=False,
                   soft_wrap=True, emoji=False)


def render_text(*renderables: RenderableType) -> str:
    """Render rich objects as plain text (no colour, no trailing spaces, no final newline)."""
    buf = io.StringIO()
    _console(buf, terminal=False).print(*renderables)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()).strip("\n")


def plain_table(header: Sequence[str], rows: Iterable[Sequence[Any]], right: Iterable[int] = ()) -> Table:
    """A rich table for plain logs: the header, a rule under it, the rows; ``right`` are the
    indexes of the right-aligned (numeric) columns."""
    numeric = set(right)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="", safe_box=False)
    for i, name in enumerate(header):
        table.add_column(name, justify="right" if i in numeric else "left", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(str(c)) for c in row))
    return table


def _rows_written(state: NodeState) -> int | None:
    out = state.outcome
    if out is None:
        return None
    return sum(int(r.get("rows_written") or 0) for r in out.receipts if r.get("op") == "write")


class Progress(Listener):
    """Console feedback for a run (a scheduler :class:`~ridelake.core.scheduler.Listener`).

    Args:
        stream: where to write (default stderr).
        live: keep a live area of the running notebooks (default: when ``stream`` is a terminal);
            without it, a line is printed as each notebook starts.
        max_attempts: attempts allowed per notebook, shown as ``attempt 2/3``.
        outputs: node key -> executed notebook path, named in failure messages.
        refresh_s: seconds between redraws of the live area.
    """

    def __init__(self, stream: TextIO | None = None, live: bool | None = None, max_attempts: int = 1,
                 outputs: Mapping[str, str] | None = None, refresh_s: float = 0.5) -> None:
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty()) if live is None and callable(isatty) else bool(live)
        self.max_attempts = max_attempts
        self.outputs = dict(outputs or {})
        self.refresh_s = refresh_s
        self.console = _console(self.stream, terminal=self.live)
        self._running: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()
        self._live: Live | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the live area (a no-op when not live)."""
        if self.live and self._live is None:
            self._live = Live(get_renderable=self._render, console=self.console, transient=True,
                              refresh_per_second=max(1.0, 1.0 / max(self.refresh_s, 0.05)),
                              redirect_stdout=False, redirect_stderr=False)
            self._live.start()

    def stop(self) -> None:
        """Stop the live area and erase it."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.stream.flush()

    def _tries(self, attempt: int) -> str:
        return f"attempt {attempt}/{self.max_attempts}" if self.max_attempts > 1 else f"attempt {attempt}"

    def _render(self) -> RenderableType:
        now = time.monotonic()
        with self._lock:
            running = list(self._running.items())
        grid = Table.grid(padding=(0, 2))
        for _ in range(3):
            grid.add_column(no_wrap=True)
        for key, (since, attempt) in running:
            grid.add_row(Spinner("dots", text=Text(f"{key:<{_KEY_WIDTH}}")), f"{now - since:7.1f} s",
                         Text(self._tries(attempt), style="dim"))
        return Group(grid) if running else Text("")

    def message(self, text: str, always: bool = True) -> None:
        """Print a line (above the live area when there is one).

        Args:
            text: the line.
            always: print it even when not live.
        """
        if not (always or self.live):
            return
        self.console.print(Text(text))
        if not self.live:
            self.stream.flush()

    # -- scheduler hooks --------------------------------------------------------------------
    def on_start(self, state: NodeState, attempt: int) -> None:
        with self._lock:
            self._running[state.key] = (time.monotonic(), attempt)
        if not self.live:
            again = f" ({self._tries(attempt)})" if attempt > 1 else ""
            self.message(f"  ▸ {state.key} started{again}")

    def on_retry(self, state: NodeState, delay: float) -> None:
        with self._lock:
            self._running.pop(state.key, None)
        self.message(f"  ↻ retry {state.key}: attempt {len(state.attempts)} failed: {_short(state.error)}; "
                     f"next attempt in {delay:g} s")

    def on_finish(self, state: NodeState) -> None:
        with self._lock:
            self._running.pop(state.key, None)
        seconds = f"{format_seconds(state.duration_s)} s"
        if state.status == SUCCEEDED:
            rows = _rows_written(state)
            self.message(f"  ✓ {state.key:<{_KEY_WIDTH}} {seconds:>9}" + (f"  {rows:,} rows" if rows is not None else ""))
            for note in _notes(state):
                self.message(f"      note: {note}")
        elif state.status == FAILED:
            where = self.outputs.get(state.key)
            tries = len(state.attempts)
            self.message(f"  ✗ {state.key} failed after {tries} attempt{'s' if tries != 1 else ''}: "
                         f"{_short(state.error)} ({seconds})" + (f"\n      executed notebook: {where}" if where else ""))

    def on_skip(self, state: NodeState) -> None:
        self.message(f"  - {state.key} skipped ({state.error})")

    def on_up_to_date(self, state: NodeState) -> None:
        self.message(f"  = {state.key:<{_KEY_WIDTH}} up-to-date", always=False)


def _notes(state: NodeState) -> list[str]:
    receipts = state.outcome.receipts if state.outcome is not None else []
    return list(dict.fromkeys(str(r["text"]) for r in receipts if r.get("op") == "note" and r.get("text")))


# -- tables ----------------------------------------------------------------------------------

def _layer(nb: Mapping[str, Any]) -> str:
    return str(nb.get("name") or nb.get("key") or "?").split("/", 1)[0]


def tables_moved(run: Mapping[str, Any]) -> str:
    """The tables a rollback (or another run without notebooks) moved, from its ``tables``
    entries: ``table, action, snapshot from -> to, rows before -> after``; empty when none."""
    entries = [e for e in run.get("tables") or [] if isinstance(e, Mapping)]
    if not entries:
        return ""
    rows = [[e.get("table", "?"), e.get("action", "?"), f"{e.get('from_snapshot')} -> {e.get('to_snapshot')}",
             f"{format_rows(e.get('rows_before'))} -> {format_rows(e.get('rows_after'))}"] for e in entries]
    return render_text(plain_table(["table", "action", "snapshot from -> to", "rows before -> after"], rows))


def _run_footer(run: Mapping[str, Any], run_folder: str | None) -> list[str]:
    return [
        f"run folder:  {run_folder or run.get('run_folder', '?')}",
        f"wall time:   {format_seconds(run.get('duration_s'))} s",
        f"status:      {effective_status(dict(run))} (exit status {run.get('exit_code', '?')})",
    ]


def _summary_without_notebooks(run: Mapping[str, Any], run_folder: str | None) -> str:
    params = run.get("params") or {}
    what = str(run.get("command", "run"))
    if params.get("rolled_back_run"):
        what += f" of run {params['rolled_back_run']}" + (" (forced)" if run.get("force") else "")
    lines = [f"run {run.get('run_id', '?')}  ({what})", ""]
    moved = tables_moved(run)
    lines += [moved, ""] if moved else ["no table moved", ""]
    for entry in run.get("skipped") or []:
        lines.append(f"left alone: {entry.get('table', '?')}: {entry.get('reason', '')}")
    lines += [f"warning: {w}" for w in run.get("warnings") or []]
    if run.get("error"):
        lines.append(f"error: {run['error']}")
    return "\n".join(lines + _run_footer(run, run_folder))


def summary_table(run: Mapping[str, Any], run_folder: str | None = None) -> str:
    """The end-of-run table: each notebook, totals per layer, the run folder, the exit status.
    A run without notebooks (a rollback) lists the tables it moved instead.

    Args:
        run: a ``run.json`` record.
        run_folder: shown as the run folder (default the record's ``run_folder``).

    Returns:
        The text, without a trailing newline.
    """
    notebooks = list(run.get("notebooks") or [])
    if not notebooks and run.get("command", "run") != "run":
        return _summary_without_notebooks(run, run_folder)
    what = run.get("command", "run") + (f", rerunning what failed in {run['from_failure']}" if run.get("from_failure") else "")
    parts: list[str] = [f"run {run.get('run_id', '?')}  ({what})", ""]
    if _is_no_op(run):  # nothing ran: one line instead of a table of zeros
        since = sorted({str(nb.get("up_to_date_since")) for nb in notebooks if nb.get("up_to_date_since")})
        kept = f"; their results come from run {', '.join(since)}" if 0 < len(since) <= 3 else (
            f"; their results come from {len(since)} earlier runs" if since else "")
        parts += [f"nothing needed to run: all {len(notebooks)} notebooks are up-to-date{kept}", ""]
        parts += _run_footer(run, run_folder)
        parts.append(f"up-to-date:  {len(notebooks)} of {len(notebooks)} did not need to run "
                     "(--force runs them; with make: FORCE=1)")
        return "\n".join(parts)
    rows = [[nb.get("key") or nb.get("name", "?"), nb.get("status", "?"), nb.get("attempts", 0),
             format_seconds(nb.get("duration_s")), format_rows(nb.get("rows_written"))] for nb in notebooks]
    parts.append(render_text(plain_table(["notebook", "status", "attempts", "seconds", "rows written"],
                                         rows, {2, 3, 4})))
    counted = ("n", SUCCEEDED, UP_TO_DATE, FAILED, SKIPPED, "s", "rows")
    layers: dict[str, dict[str, Any]] = {}
    for nb in notebooks:
        agg = layers.setdefault(_layer(nb), dict.fromkeys(counted, 0))
        agg["n"] += 1
        if nb.get("status") in agg:
            agg[nb["status"]] += 1
        agg["s"] += nb.get("duration_s") or 0.0
        agg["rows"] += nb.get("rows_written") or 0
    total = {k: sum(a[k] for a in layers.values()) for k in counted}
    lrows = [[name, a["n"], a[SUCCEEDED], a[UP_TO_DATE], a[FAILED], a[SKIPPED], format_seconds(a["s"]),
              format_rows(a["rows"])] for name, a in [*layers.items(), ("total", total)]]
    parts += ["", render_text(plain_table(["layer", "notebooks", SUCCEEDED, UP_TO_DATE, FAILED, SKIPPED,
                                           "seconds (sum)", "rows written"], lrows, range(1, 8))), ""]
    parts += _run_footer(run, run_folder)
    if total[UP_TO_DATE]:
        parts.append(f"up-to-date:  {total[UP_TO_DATE]} of {total['n']} did not need to run "
                     "(--force runs them; with make: FORCE=1)")
    for nb in notebooks:
        for note in nb.get("notes") or []:
            parts.append(f"  note: {nb.get('key') or nb.get('name', '?')}: {note}")
    for nb in notebooks:
        if nb.get("status") == FAILED:
            parts.append(f"  ✗ {nb.get('key') or nb.get('name', '?')}: {_short(nb.get('error'))}")
            if nb.get("output"):
                parts.append(f"      {nb['output']}")
    return "\n".join(parts)


def _is_no_op(run: Mapping[str, Any]) -> bool:
    """A finished notebook run in which every notebook was up-to-date (nothing ran)."""
    notebooks = run.get("notebooks") or []
    return (bool(notebooks) and effective_status(dict(run)) == SUCCEEDED
            and all(nb.get("status") == UP_TO_DATE for nb in notebooks))


def _run_row(run: Mapping[str, Any]) -> list[Any]:
    notebooks = run.get("notebooks") or []
    failed = [nb.get("key") or nb.get("name", "?") for nb in notebooks if nb.get("status") == FAILED]
    skipped = sum(1 for nb in notebooks if nb.get("status") == SKIPPED)
    fresh = sum(1 for nb in notebooks if nb.get("status") == UP_TO_DATE)
    ran = sum(1 for nb in notebooks if nb.get("attempts"))
    note = ", ".join(failed) + (f" (+{skipped} skipped)" if skipped else "")
    if not notebooks and run.get("tables") is not None:  # a rollback: how many tables it moved
        note = f"moved {len(run.get('tables') or [])} table(s)" + (
            f" back to before {run['params']['rolled_back_run']}" if (run.get("params") or {}).get("rolled_back_run")
            else "")
    return [run.get("run_id", "?"), str(run.get("started_at", "?"))[:19].replace("T", " "), run.get("command", "run"),
            effective_status(dict(run)), format_seconds(run.get("duration_s")), len(notebooks), ran, fresh,
            note or "-"]


def runs_table(runs: Iterable[Mapping[str, Any]]) -> str:
    """One line per run: id, start, status, wall time, notebooks (how many ran, how many were
    up-to-date), notes (the failed notebooks; the tables a rollback moved). Two or more consecutive no-op runs (every notebook
    up-to-date) are collapsed into one line.

    Args:
        runs: ``run.json`` records, newest first.

    Returns:
        The text (a note when there are none).
    """
    records = list(runs)
    if not records:
        return "no runs recorded yet"
    rows: list[list[Any]] = []
    i = 0
    while i < len(records):
        j = i
        while j < len(records) and _is_no_op(records[j]):
            j += 1
        if j - i >= 2:
            newest, oldest = records[i], records[j - 1]
            started = str(oldest.get("started_at", "?"))[:19].replace("T", " ")
            n = len(newest.get("notebooks") or [])
            rows.append([f"{j - i} no-op runs", started, "run", SUCCEEDED, "-", n, 0, n,
                         f"all up-to-date: {oldest.get('run_id', '?')} .. {newest.get('run_id', '?')}"])
            i = j
            continue
        rows.append(_run_row(records[i]))
        i += 1
    return render_text(plain_table(["run id", "started (UTC)", "command", "status", "seconds", "notebooks", "ran",
                                    UP_TO_DATE, "notes"], rows, {4, 5, 6, 7}))
