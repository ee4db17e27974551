"""The fault suite's vocabulary: a scenario, what it observed, the rows accounting, kill points.

A :class:`Scenario` has two halves so that the judging can be tested on its own: ``act`` runs the
commands and collects an :class:`Observation` (exit statuses, run records, the rows accounted
for, the rejected rows, the tables compared with the reference); ``check`` turns an observation
into a list of problems (empty: passed) and runs nothing.

Rows accounting: *rows in* is every physical line after the header, counted by the suite
(:func:`~ridelake.reliability.deliveries.count_lines`); *accepted* is ``bronze.booking``'s rows,
*rejected* ``bronze.rejected_row``'s; *otherwise accounted for* is blank lines, or every line of a
file refused as a whole (nothing loaded, the run names the file and the reason). They must add up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from ridelake.reliability.deliveries import Delivery
from ridelake.reliability.workspace import CliRun, Workspace

__all__ = ["Rows", "Observation", "Context", "Scenario", "KillPoint", "KILL_POINTS"]


@dataclass(frozen=True)
class Rows:
    """Rows in, accepted, rejected and otherwise accounted for."""

    rows_in: int
    accepted: int
    rejected: int
    other: int

    @property
    def reconciled(self) -> bool:
        """rows in = accepted + rejected + otherwise accounted for."""
        return self.rows_in == self.accepted + self.rejected + self.other


@dataclass
class Observation:
    """What a scenario's commands did.

    Attributes:
        runs: the commands, in order.
        rows: the rows accounting (None: the scenario loads nothing).
        tables_equal: the tables compared with the reference (None: not compared).
        diffs: what differs when they are not equal.
        rejected: ``source_row`` -> reason of each ``bronze.rejected_row`` row.
        expected_rejected: ``source_row`` -> reason pattern of each line that must be rejected.
        facts: what else the check needs (counts, texts, flags), by name.
        happened: what happened, in one line, from what was observed.
    """

    runs: list[CliRun] = field(default_factory=list)
    rows: Rows | None = None
    tables_equal: bool | None = None
    diffs: list[str] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    expected_rejected: dict[int, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    happened: str = ""


@dataclass
class Context:
    """What every scenario shares: the workspace, the reference and the suite's settings.

    Attributes:
        ws: the throw-away project.
        rows: good rows of the valid delivery.
        seed: its generator seed.
        quick: input scenarios run ``bronze/prepare`` and ``bronze/booking`` only (not the pipeline).
        jobs: ``-j`` of whole-pipeline runs.
        reference: the uninterrupted run's tables.
        reference_run: that run.
        delivery: the valid delivery's lines.
    """

    ws: Workspace
    rows: int
    seed: int
    quick: bool
    jobs: int
    reference: dict[str, pd.DataFrame | None]
    reference_run: CliRun
    delivery: Delivery


@dataclass(frozen=True)
class Scenario:
    """One scenario: ``act`` runs it, ``check`` judges what it observed."""

    key: str
    title: str
    act: Callable[[Context], Observation]
    check: Callable[[Observation], list[str]]


@dataclass(frozen=True)
class KillPoint:
    """Where a run is killed: ``delay`` seconds after a code cell of ``notebook`` starts: the one
    whose source holds ``cell``, or the one ``before`` code cells ahead of it (None: as soon as the
    notebook is handed to a kernel, which may still be warming up)."""

    notebook: str
    cell: str | None
    delay: float
    label: str
    before: int = 0

    @property
    def key(self) -> str:
        """The scenario's key."""
        return f"kill@{self.notebook}:{self.label.split()[0]}"


#: Kill points, most telling first (``--kills N`` takes the first N). Cells are found by the write
#: (``replace_rows(``), which every notebook has, so the points survive edits of the notebooks.
KILL_POINTS: tuple[KillPoint, ...] = (
    KillPoint("silver/booking", "replace_rows(", 0.05, "write (bronze and the dimensions committed)"),
    KillPoint("bronze/prepare", "replace_rows(", 0.1, "parse of the delivery", before=1),
    KillPoint("bronze/booking", "replace_rows(", 0.05, "write (other bronze tables committing in parallel)"),
    KillPoint("bronze/prepare", None, 0.5, "start (kernels still warming up)"),
    KillPoint("silver/customer", "replace_rows(", 0.0, "write"),
    KillPoint("gold/customer_analytics", "replace_rows(", 0.05, "write (the last wave)"),
)
