"""Provenance: which run and notebook made each snapshot of a table, and what a run changed.

Every commit ridelake makes carries snapshot properties (see :func:`ridelake.tables.catalog.write_table`):
``ridelake.run-id``, ``ridelake.notebook``, ``ridelake.params-hash`` and ``ridelake.table``. An
overwrite commits two snapshots in one transaction (a ``delete`` and an ``append``), both with the
same properties. This module reads them back:

- :func:`history` lists a table's snapshots, newest first (``ridelake history TABLE``);
- :func:`run_changes` tells, per table, the snapshot a run started from and the last one it made,
  from the snapshot properties (cross-checked with the run's ``run.json`` where there is one).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, NamedTuple

from ridelake.core.progress import plain_table, render_text
from ridelake.core.redact import redact
from ridelake.tables import config
from ridelake.tables.config import use_warehouse
from ridelake.errors import CatalogError, ConfigError
from ridelake.tables import catalog
from ridelake.tables.schemas import TABLES
from ridelake.core.manifest import read_manifest, resolve_run, runs_dir

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "PROP_RUN_ID",
    "PROP_NOTEBOOK",
    "PROP_PARAMS_HASH",
    "PROP_TABLE",
    "HISTORY_COLUMNS",
    "Change",
    "RunChanges",
    "open_catalog",
    "resolve_table",
    "history",
    "format_history",
    "run_changes",
    "describe_run_changes",
    "snapshot_label",
    "ancestors",
    "catalog_tables",
    "load_or_none",
    "snapshot_props",
    "use_warehouse",
    "register",
]

PROP_RUN_ID, PROP_NOTEBOOK, PROP_PARAMS_HASH, PROP_TABLE = (
    config.PROP_RUN_ID, config.PROP_NOTEBOOK, config.PROP_PARAMS_HASH, config.PROP_TABLE)

#: The columns of :func:`history`, in order.
HISTORY_COLUMNS = (
    "snapshot_id", "parent_id", "committed_at", "operation", "added_records", "deleted_records",
    "total_records", "run_id", "notebook", "params_hash", "current", "in_lineage",
)


class Change(NamedTuple):
    """What one run did to one table.

    Attributes:
        before: the table's snapshot before the run's first commit on it (None: it had none).
        last: the run's last snapshot on the table.
    """

    before: int | None
    last: int


@dataclass
class RunChanges:
    """Everything :func:`describe_run_changes` found about one run.

    Attributes:
        run_id: the run.
        changes: table -> :class:`Change`.
        snapshots: table -> ids of every snapshot the run made on it.
        before_rows: table -> rows the table held before the run (from snapshot summaries).
        unrestorable: table -> why its state before the run is gone (e.g. expired snapshots).
        warnings: differences between ``run.json`` and the snapshot properties.
        record: the run's ``run.json`` (empty when there is none).
    """

    run_id: str
    changes: dict[str, Change] = field(default_factory=dict)
    snapshots: dict[str, list[int]] = field(default_factory=dict)
    before_rows: dict[str, int | None] = field(default_factory=dict)
    unrestorable: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)


# -- catalog access ----------------------------------------------------------------------------

def open_catalog() -> Any:
    """Open the configured catalog without creating a warehouse by accident.

    Returns:
        The pyiceberg catalog.

    Raises:
        CatalogError: a local warehouse without ``catalog.db`` (and no ``RIDELAKE_CATALOG_URI``).
    """

    if not catalog.exists():
        location = config.warehouse_location()
        raise CatalogError(f"no catalog at {redact(config.catalog_uri(location))}: nothing has been written to the "
                           f"warehouse {location} yet (set RIDELAKE_WAREHOUSE or --warehouse)")
    return catalog.get_catalog()


def resolve_table(name: str) -> str:
    """Turn ``silver.booking`` or ``silver/booking`` into a known table identifier.

    Raises:
        CatalogError: an unknown table; the message lists the close matches and the known tables.
    """

    ident = name.strip().replace("/", ".")
    if ident in TABLES:
        return ident
    close = difflib.get_close_matches(ident, list(TABLES), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise CatalogError(f"unknown table {name!r}.{hint} Known tables: {', '.join(TABLES)}")


def catalog_tables(cat: Any) -> list[str]:
    """Every table the catalog holds, as ``namespace.table``."""
    out = []
    for ns in cat.list_namespaces():
        for ident in cat.list_tables(ns):
            out.append(".".join(ident))
    return sorted(out)


def load_or_none(cat: Any, ident: str) -> Any | None:
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError  # heavy (pyiceberg): only where used

    try:
        return cat.load_table(ident)
    except (NoSuchTableError, NoSuchNamespaceError):
        return None


def snapshot_props(snap: Any) -> dict[str, str]:
    return dict(snap.summary.additional_properties) if snap.summary is not None else {}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def ancestors(table: Any) -> Iterator[Any]:
    """The current snapshot and its ancestors, newest first, up to an expired parent (pyiceberg's
    ``ancestors_of``)."""
    # pyiceberg is heavy to import (a quarter of a second); the command line needs it only here
    from pyiceberg.table.snapshots import ancestors_of

    return iter(ancestors_of(table.current_snapshot(), table.metadata))




def snapshot_label(table: Any, snapshot_id: int | None) -> str:
    """``<id> (run R, notebook N)`` for messages; ``none`` for None."""
    if snapshot_id is None:
        return "none"
    snap = table.snapshot_by_id(snapshot_id)
    if snap is None:
        return f"{snapshot_id} (expired)"
    p = snapshot_props(snap)
    who = ", ".join(x for x in (f"run {p[PROP_RUN_ID]}" if PROP_RUN_ID in p else "no run id",
                                p.get(PROP_NOTEBOOK)) if x)
    return f"{snapshot_id} ({who})"


# -- history -----------------------------------------------------------------------------------

def history(table: str) -> "pd.DataFrame":
    """A table's snapshots with their provenance, newest first.

    Read from pyiceberg's ``inspect.snapshots()``. A snapshot without ridelake's properties
    (written by hand, or by another tool) has None as its run, notebook and params hash.

    Args:
        table: ``<layer>.<table>`` (or ``<layer>/<table>``).

    Returns:
        One row per snapshot with :data:`HISTORY_COLUMNS`: ``committed_at`` is a UTC timestamp;
        ``current`` marks the current snapshot, ``in_lineage`` the current one and its ancestors
        (a snapshot outside it was rolled back). Empty when the table was never written.

    Raises:
        CatalogError: unknown table, or no catalog.
    """
    # pandas is heavy to import; only history needs it
    import pandas as pd

    ident = resolve_table(table)
    tbl = load_or_none(open_catalog(), ident)
    rows: list[dict[str, Any]] = []
    if tbl is not None:
        current = tbl.current_snapshot()
        lineage = {s.snapshot_id for s in ancestors(tbl)}
        # metadata order is commit order: reversed and stably sorted by time, the newest come first
        # even when an overwrite's delete and append share a millisecond
        for snap in reversed(tbl.inspect.snapshots().to_pylist()):
            p = dict(snap["summary"] or [])
            rows.append({
                "snapshot_id": snap["snapshot_id"],
                "parent_id": snap["parent_id"],
                "committed_at": pd.Timestamp(snap["committed_at"]).tz_localize("UTC"),
                "operation": snap["operation"] if snap["operation"] not in (None, "None") else "?",
                "added_records": _int(p.get("added-records")) or 0,
                "deleted_records": _int(p.get("deleted-records")) or 0,
                "total_records": _int(p.get("total-records")),
                "run_id": p.get(PROP_RUN_ID),
                "notebook": p.get(PROP_NOTEBOOK),
                "params_hash": p.get(PROP_PARAMS_HASH),
                "current": current is not None and snap["snapshot_id"] == current.snapshot_id,
                "in_lineage": snap["snapshot_id"] in lineage,
            })
    rows.sort(key=lambda r: r["committed_at"], reverse=True)
    dtypes = {"snapshot_id": "int64", "parent_id": "Int64", "added_records": "int64", "deleted_records": "int64",
              "total_records": "Int64", "current": "bool", "in_lineage": "bool", "committed_at": "datetime64[ms, UTC]"}
    # column by column: 64-bit ids never pass through float, and a missing tag stays None (object), not NaN
    data = {c: pd.Series([r[c] for r in rows], dtype=dtypes.get(c, object)) for c in HISTORY_COLUMNS}
    return pd.DataFrame(data, columns=list(HISTORY_COLUMNS))


def _text(value: Any, width: int | None = None) -> str:
    """A cell: ``-`` for a missing value (None, NaN, NA), else the text (cut to ``width``)."""
    if value is None or (not isinstance(value, str) and _is_na(value)):
        return "-"
    text = str(value)
    return text[:width] if width else text


def format_history(frame: "pd.DataFrame", table: str = "", limit: int | None = None) -> str:
    """Render :func:`history` as a text table.

    Args:
        frame: the whole history (the current snapshot is named even when ``limit`` hides it).
        table: named in the heading.
        limit: show the newest ``limit`` snapshots only.

    Returns:
        The text: ``*`` marks the current snapshot, ``-`` one outside the current lineage; a
        snapshot without ridelake's tags shows ``-`` for its run, notebook and params.
    """
    if frame.empty:
        return f"{table}: no snapshots (never written)" if table else "no snapshots"
    full, frame = frame, (frame.head(max(0, limit)) if limit is not None else frame)
    body = []
    for r in frame.itertuples(index=False):
        mark = "*" if r.current else (" " if r.in_lineage else "-")
        body.append([mark, _text(r.snapshot_id), r.committed_at.strftime("%Y-%m-%d %H:%M:%S"), _text(r.operation),
                     f"{int(r.added_records):,}", f"{int(r.deleted_records):,}", _fmt_total(r.total_records),
                     _text(r.run_id), _text(r.notebook), _text(r.params_hash, 8)])
    table_text = render_text(plain_table(["", "snapshot", "committed (UTC)", "operation", "added", "removed", "total",
                                          "run", "notebook", "params"], body, right={4, 5, 6}))
    current = full.loc[full["current"]]
    note = f"current: {current.iloc[0]['snapshot_id']}" if not current.empty else "current: none"
    if (~frame["in_lineage"]).any():
        note += "; '-' = not in the current state (rolled back)"
    untagged = int(full["run_id"].map(lambda v: _text(v) == "-").sum())
    if untagged:
        note += (f"; {untagged} snapshot(s) carry no ridelake run id (written outside a run: by hand, "
                 "or by another tool)")
    shown = f" (newest {len(frame)} shown)" if len(frame) < len(full) else ""
    title = (f"{table}: " if table else "") + f"{len(full)} snapshot(s), newest first{shown}"
    return "\n".join([title, table_text, note])


def _fmt_total(value: Any) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "?"


# -- what a run changed ------------------------------------------------------------------------

def _run_record(run_id: str) -> tuple[str, dict[str, Any]]:
    """The run's full id and ``run.json`` (empty when no record is found)."""

    try:
        folder = resolve_run(runs_dir(config.project_root()), run_id)
        return folder.name, read_manifest(folder)
    except ConfigError:
        return run_id, {}


def _recorded_writes(record: dict[str, Any]) -> dict[str, list[int]]:
    """Table -> snapshot ids ``run.json`` says the run produced (notebooks' writes, rollback entries)."""
    out: dict[str, list[int]] = {}
    for nb in record.get("notebooks") or []:
        for table, snap in (nb.get("writes") or {}).items():
            if snap is not None:
                out.setdefault(table, []).append(int(snap))
    for entry in record.get("tables") or []:
        if entry.get("to_snapshot") is not None and entry.get("table"):
            out.setdefault(entry["table"], []).append(int(entry["to_snapshot"]))
    return out


def describe_run_changes(run_id: str, tables: Iterable[str] | None = None) -> RunChanges:
    """Find what a run changed, from the snapshot properties, checked against ``run.json``.

    A table's run snapshots are those whose ``ridelake.run-id`` is the run; ``before`` is the
    parent of the earliest of them and ``last`` the newest. A rollback run's ``set-current`` steps
    make no snapshot: they come from its ``run.json`` (``tables``: ``from_snapshot`` -> ``to_snapshot``).

    Args:
        run_id: a run id (or a unique prefix of one with a record under ``outputs/runs``).
        tables: look only at these (default every table in the catalog).

    Returns:
        A :class:`RunChanges`.
    """
    full_id, record = _run_record(run_id)
    result = RunChanges(run_id=full_id, record=record)
    cat = open_catalog()
    recorded = _recorded_writes(record)
    rollback_steps = {e["table"]: e for e in record.get("tables") or []
                      if e.get("table") and e.get("action") == "set-current"}
    for ident in (list(tables) if tables is not None else catalog_tables(cat)):
        tbl = load_or_none(cat, ident)
        if tbl is None:
            if ident in recorded:
                result.warnings.append(f"{ident}: in run.json but no longer in the catalog")
            continue
        mine = sorted((s for s in tbl.snapshots() if snapshot_props(s).get(PROP_RUN_ID) == full_id),
                      key=lambda s: (s.sequence_number or 0, s.timestamp_ms))
        if mine:
            first, last = mine[0], mine[-1]
            p = snapshot_props(first)
            prev_rows = None
            total, added, deleted = (_int(p.get(k)) for k in ("total-records", "added-records", "deleted-records"))
            if total is not None:
                prev_rows = total - (added or 0) + (deleted or 0)
            before = first.parent_snapshot_id
            if before is not None and tbl.snapshot_by_id(before) is None:
                result.unrestorable[ident] = f"its snapshot before the run ({before}) was expired"
            elif before is None and (first.sequence_number or 1) > 1 and prev_rows:
                result.unrestorable[ident] = (f"its snapshot before the run (holding {prev_rows:,} rows) was expired "
                                              "(ridelake maintain)")
            result.changes[ident] = Change(before, last.snapshot_id)
            result.snapshots[ident] = [s.snapshot_id for s in mine]
            result.before_rows[ident] = prev_rows
        elif ident in rollback_steps:
            step = rollback_steps[ident]
            to_snap, from_snap = int(step["to_snapshot"]), step.get("from_snapshot")
            from_snap = int(from_snap) if from_snap is not None else None
            if tbl.snapshot_by_id(to_snap) is None:
                result.unrestorable[ident] = f"the snapshot the rollback set ({to_snap}) was expired"
            if from_snap is not None and tbl.snapshot_by_id(from_snap) is None:
                result.unrestorable[ident] = f"its snapshot before the rollback ({from_snap}) was expired"
            result.changes[ident] = Change(from_snap, to_snap)
            result.snapshots[ident] = []
            result.before_rows[ident] = _int(step.get("rows_before"))
        if ident in recorded:
            known = {s.snapshot_id for s in mine} | ({int(rollback_steps[ident]["to_snapshot"])}
                                                     if ident in rollback_steps else set())
            missing = [s for s in recorded[ident] if s not in known]
            if ident not in result.changes:
                result.warnings.append(f"{ident}: run.json records snapshot(s) {missing} but the table has no "
                                       f"snapshot of run {full_id} (expired?)")
                result.unrestorable[ident] = "the run's snapshots are no longer in the table (expired?)"
            elif missing:
                result.warnings.append(f"{ident}: run.json records snapshot(s) {missing} that are not the run's "
                                       "snapshots in the table")
    for ident in sorted(set(result.changes) - set(recorded)):
        if record:
            result.warnings.append(f"{ident}: changed by the run (snapshot properties) but not in its run.json")
    return result


def run_changes(run_id: str) -> dict[str, Change]:
    """What a run changed, per table: ``(before_snapshot_id | None, last_snapshot_id)``.

    Args:
        run_id: the run (a unique prefix works when the run has a record under ``outputs/runs``).

    Returns:
        Table identifier -> :class:`Change` (a 2-tuple), for every table the run committed to.
    """
    return describe_run_changes(run_id).changes


# -- command line ------------------------------------------------------------------------------

def _cmd_history(args: argparse.Namespace) -> int:
    use_warehouse(args.warehouse)
    ident = resolve_table(args.table)
    frame = history(ident)
    if args.json:
        if args.limit is not None:
            frame = frame.head(max(0, args.limit))
        records = []
        for r in frame.to_dict(orient="records"):
            r["committed_at"] = r["committed_at"].isoformat().replace("+00:00", "Z")
            r = {k: (None if _is_na(v) else (int(v) if k in ("parent_id", "total_records") else v))
                 for k, v in r.items()}
            records.append(r)
        print(json.dumps(records, indent=2, default=str))
    else:
        print(format_history(frame, ident, args.limit))
    return 0


def _is_na(value: Any) -> bool:
    """True for None, NaN and pandas' NA (never raises)."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and NaT differ from themselves
    except (TypeError, ValueError):  # pandas' NA: its comparison has no truth value
        return True


def register(subparsers: Any) -> None:
    """Add ``history TABLE [--limit N] [--json] [--warehouse PATH]`` to the command line."""
    h = subparsers.add_parser("history", help="list a table's snapshots with the run and notebook of each",
                              description="A table's snapshots, newest first: time (UTC), operation, rows "
                                          "added/removed, total, run id, notebook, params hash. '*' marks the "
                                          "current snapshot; '-' one no longer in the table (rolled back).")
    h.add_argument("table", metavar="TABLE", help="layer.table, e.g. silver.booking")
    h.add_argument("--limit", type=int, metavar="N", help="newest N snapshots only")
    h.add_argument("--json", action="store_true", help="print JSON records")
    h.add_argument("--warehouse", metavar="PATH", help="warehouse folder or URL (sets RIDELAKE_WAREHOUSE)")
    h.set_defaults(func=_cmd_history)
