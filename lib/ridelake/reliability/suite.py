"""Running the scenarios: one reference run, then every scenario against it, and the table.

:func:`prepare` builds the throw-away project, generates the valid delivery and runs the pipeline
once, uninterrupted: its tables are the reference every scenario compares with. :func:`evaluate`
runs one scenario and judges it (an exception inside a scenario is a failure, not a crash of the
suite). :func:`render` prints the results as a table; :func:`markdown` as a Markdown table.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from rich.console import Console
from rich.table import Table

from ridelake.core.project import project_root
from ridelake.reliability.deliveries import Delivery
from ridelake.reliability.model import Context, Rows, Scenario
from ridelake.reliability.scenarios import scenarios
from ridelake.reliability.workspace import EXTRACTION_DATE, Workspace, stop_all

__all__ = ["Result", "prepare", "evaluate", "run_suite", "render", "markdown", "exit_code", "DEFAULT_ROWS"]

#: Good rows of the suite's delivery by default (small: the suite is about behaviour, not size).
DEFAULT_ROWS = 3000


@dataclass
class Result:
    """One scenario's row of the table.

    Attributes:
        key: the scenario's id.
        title: what it does.
        rows: the rows accounting (None: it loads nothing).
        tables_equal: compared with the reference (None: not compared).
        problems: why it failed (empty: passed).
        happened: what happened, from what was observed.
        seconds: how long it took.
    """

    key: str
    title: str
    rows: Rows | None
    tables_equal: bool | None
    problems: list[str] = field(default_factory=list)
    happened: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """No problem found."""
        return not self.problems

    @property
    def verdict(self) -> str:
        """``passed`` or ``FAILED: <the problems>``."""
        return "passed" if self.passed else "FAILED: " + "; ".join(self.problems)

    def as_dict(self) -> dict[str, Any]:
        """For JSON."""
        out = asdict(self)
        out["passed"] = self.passed
        return out


def prepare(root: Path, source: Path, rows: int, seed: int, quick: bool, jobs: int) -> Context:
    """Make the workspace and run the reference: the whole pipeline on the valid delivery.

    Args:
        root: an empty folder for the workspace.
        source: the checkout to copy.
        rows: good rows of the delivery.
        seed: its seed.
        quick: input scenarios load bronze only.
        jobs: ``-j`` of whole-pipeline runs.

    Returns:
        The :class:`~ridelake.reliability.model.Context` (its ``reference_run`` may have failed:
        the ``reference`` scenario says so).
    """
    ws = Workspace(root, source)
    ws.create(rows, seed)
    run = ws.cli("run", "-p", f"extraction_date={EXTRACTION_DATE}", "-j", str(jobs))
    reference = ws.tables()
    ws.save_reference()
    return Context(ws, rows, seed, quick, jobs, reference, run, Delivery.read(ws.base_file))


def evaluate(scenario: Scenario, ctx: Context) -> Result:
    """Run one scenario and judge what it did."""
    began = time.monotonic()
    try:
        obs = scenario.act(ctx)
        problems = scenario.check(obs)
        result = Result(scenario.key, scenario.title, obs.rows, obs.tables_equal, problems, obs.happened)
    except Exception as exc:  # a scenario that breaks is a failed scenario, and the suite goes on
        result = Result(scenario.key, scenario.title, None, None,
                        [f"the scenario broke: {type(exc).__name__}: {exc}"])
    result.seconds = time.monotonic() - began
    result.happened = ctx.ws.relative(result.happened)
    result.problems = [ctx.ws.relative(p) for p in result.problems]
    return result


def run_suite(rows: int = DEFAULT_ROWS, seed: int = 7, quick: bool = False, kills: int | None = None,
              jobs: int = 2, only: str | None = None, keep: Path | None = None,
              log: Callable[[str], None] | None = None) -> list[Result]:
    """Run the reference and every scenario (or those whose key matches ``only``).

    Args:
        rows: good rows of the delivery.
        seed: its seed.
        quick: input scenarios load bronze only (``bronze/prepare``, ``bronze/booking``).
        kills: kill points (default all of :data:`~ridelake.reliability.model.KILL_POINTS`).
        jobs: ``-j`` of whole-pipeline runs.
        only: a regular expression on scenario keys.
        keep: keep the workspace in this folder (default a temporary one, removed at the end).
        log: called with one line as each scenario ends.

    Returns:
        One :class:`Result` per scenario, the reference first.
    """
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="ridelake-reliability-"))
    try:
        ctx = prepare(root / "ws", project_root(), rows, seed, quick, jobs)
        chosen = scenarios() if kills is None else scenarios(kills)
        results = []
        for sc in chosen:
            if only and sc.key != "reference" and not re.search(only, sc.key):
                continue
            result = evaluate(sc, ctx)
            results.append(result)
            if log:
                log(f"{'✓' if result.passed else '✗'} {sc.key:<28} {result.seconds:6.1f} s  "
                    f"{'' if result.passed else result.verdict}")
            if sc.key == "reference" and not result.passed:
                break  # nothing to compare with
        return results
    finally:
        stop_all()  # an interrupted suite leaves no run behind (they run in sessions of their own)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def _num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _cells(r: Result) -> list[str]:
    rows = r.rows
    equal = "-" if r.tables_equal is None else ("yes" if r.tables_equal else "no")
    return [r.title, _num(rows and rows.rows_in), _num(rows and rows.accepted), _num(rows and rows.rejected),
            _num(rows and rows.other), equal, r.verdict, r.happened]


HEADERS = ["scenario", "rows in", "accepted", "rejected", "otherwise", "tables = reference", "verdict",
           "what happens"]


def render(results: Sequence[Result], width: int = 220) -> str:
    """The results as a table (rich), with a last line counting passed and failed."""
    table = Table(show_lines=False, header_style="bold", title="ridelake reliability", title_justify="left")
    for i, name in enumerate(HEADERS):
        table.add_column(name, justify="right" if 1 <= i <= 4 else "left", overflow="fold",
                         max_width=70 if name in ("what happens", "verdict") else None)
    for r in results:
        style = None if r.passed else "bold red"
        table.add_row(*_cells(r), style=style)
    console = Console(width=width, record=True, force_terminal=False, color_system=None)
    with console.capture() as cap:
        console.print(table)
        failed = sum(1 for r in results if not r.passed)
        console.print(f"{len(results) - failed} passed, {failed} failed, "
                      f"{sum(r.seconds for r in results):.0f} s of scenarios")
    return cap.get()


def markdown(results: Sequence[Result]) -> str:
    """The results as a Markdown table."""
    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(esc(c) for c in _cells(r)) + " |" for r in results]
    return "\n".join(lines) + "\n"


def exit_code(results: Sequence[Result]) -> int:
    """0 when there are results and every one passed, else 1."""
    return 0 if results and all(r.passed for r in results) else 1


def stamp() -> str:
    """Now, for the saved results' names."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
