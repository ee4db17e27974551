"""Rollback of a run and warehouse maintenance (``ridelake rollback``, ``ridelake maintain``).

Rollback
    ``rollback(RUN_ID)`` puts every table the run changed (found from the snapshot properties, see
    :mod:`ridelake.ops.lineage`) back to the snapshot it had before the run, in one catalog commit per
    table: ``set_current_snapshot(before)``. A table the run created from nothing (no snapshot
    before it) cannot go back to "no snapshot": Iceberg has no such state once written, so it is
    **emptied** in one ``delete`` commit instead (tagged with the rollback's run id). The rollback
    refuses, naming the tables and the runs, when a later commit changed one of those tables
    (``force=True`` rolls back anyway, which also undoes those later changes), and always refuses
    a table whose snapshot before the run was expired by :func:`maintain`. It holds the warehouse
    lock while it works and is recorded as a run: ``outputs/runs/<id>/run.json`` with
    ``command: rollback``, ``params: {rolled_back_run}`` and ``tables: [{table, action,
    from_snapshot, to_snapshot, rows_before, rows_after}]``. A rollback can itself be rolled back.

Maintenance
    ``maintain(older_than)`` (a local folder or an object store), for every table of the catalog: expires the
    snapshots committed before ``now - older_than`` (never the current one, nor any branch or tag
    head), then deletes the files under the table's location that no remaining snapshot
    references: data and delete files, manifests, manifest lists, statistics files, and the
    metadata JSON files that are neither current nor listed in the ``metadata-log`` with a time
    inside the retention window (so ``--older-than 0s`` keeps only the current one). The current
    metadata still *lists* the deleted ones in its ``metadata-log``: they are history, not needed
    to read the table, and go like expired snapshots (time travel to them is gone). Files written in the last
    ``grace`` (one minute) are kept, in case a writer that does not take the lock (a notebook run
    by hand) is between writing a file and committing it. It also deletes ``<warehouse>/_staging``
    files older than the cutoff. Nothing outside the tables' locations and ``_staging`` is
    touched (never ``catalog.db``). ``dry_run=True`` lists what would go and deletes nothing.
    Files are listed and deleted through ``pyarrow.fs`` (:mod:`ridelake.tables.storage`), so an
    ``s3://`` warehouse is maintained like a folder (an object's age is its last-modified time).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ridelake.core.files import iso, relative
from ridelake.core.manifest import (
    RunManifest,
    TableEntry,
    current_user,
    list_runs,
    new_run_id,
    runs_dir,
    update_latest,
    write_manifest,
)
from ridelake.core.project import project_root
from ridelake.core.redact import redact
from ridelake.core.report import write_after_run
from ridelake.tables import config, storage
from ridelake.tables.adapter import RideBookings
from ridelake.errors import CatalogError, ParameterError
from ridelake.ops.lineage import (
    PROP_NOTEBOOK,
    PROP_PARAMS_HASH,
    PROP_RUN_ID,
    PROP_TABLE,
    RunChanges,
    ancestors,
    catalog_tables,
    load_or_none,
    snapshot_props,
    use_warehouse,
    describe_run_changes,
    open_catalog,
    snapshot_label,
)
from ridelake.tables.schemas import TABLES

__all__ = [
    "DEFAULT_GRACE",
    "KINDS",
    "ROLLBACK_NOTEBOOK",
    "parse_duration",
    "TableRollback",
    "RollbackResult",
    "rollback",
    "format_rollback",
    "TableMaintenance",
    "MaintainResult",
    "maintain",
    "format_maintain",
    "register",
]

#: Files younger than this are never deleted by :func:`maintain`.
DEFAULT_GRACE = dt.timedelta(minutes=1)
#: The ``ridelake.notebook`` property of the commits a rollback makes.
ROLLBACK_NOTEBOOK = "rollback"

#: ``7d``, ``1d12h``, ``1.5h``: numbers each with a unit (pandas reads the rest).
_DURATION = re.compile(r"(\d+(?:\.\d+)?[smhdw])+")


def parse_duration(text: str) -> dt.timedelta:
    """Parse ``7d``, ``12h``, ``30m``, ``0s``, ``1w``, ``1d12h`` (a bare ``0`` is zero) with
    :class:`pandas.Timedelta`; the form is checked first, since pandas also takes ``7`` (7 ns).

    Raises:
        ParameterError: anything else.
    """
    s = str(text).strip().lower().replace(" ", "")
    if s == "0":
        return dt.timedelta(0)
    if not _DURATION.fullmatch(s):
        raise ParameterError(f"not a duration: {text!r} (use e.g. 7d, 12h, 30m, 0s)")
    return pd.Timedelta(s.replace("d", "D").replace("w", "W")).to_pytimedelta()


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _total(snap: Any) -> int | None:
    if snap is None:
        return 0
    try:
        return int(snapshot_props(snap)["total-records"])
    except (KeyError, TypeError, ValueError):
        return None


def _lock(run_id: str, warehouse: str) -> Any:
    """The warehouse's lock as a run takes it (the project's: a catalog-database row for a server
    catalog, else the lock file), held."""
    lock = RideBookings(root=project_root()).lock(run_id)
    lock.acquire(wait=0.0)  # LockError naming the holder when a run is active
    return lock


# -- rollback ----------------------------------------------------------------------------------

#: One table of a rollback: its ``action`` is ``set-current`` (back to its snapshot before the
#: run), ``emptied`` (it had none) or ``skipped`` (already back where it was; ``note`` says why,
#: or which later runs a forced rollback undid). It is the run record's table entry.
TableRollback = TableEntry


@dataclass
class RollbackResult:
    """What :func:`rollback` did.

    Attributes:
        run_id: the rollback's own run id (None when there was nothing to do).
        rolled_back_run: the run that was rolled back.
        tables: one entry per table, ``skipped`` ones included.
        forced: ``--force`` was given.
        run_folder: the rollback's run folder (None when nothing was recorded).
        warnings: differences between ``run.json`` and the snapshots, forced-over conflicts.
    """

    run_id: str | None
    rolled_back_run: str
    tables: list[TableRollback] = field(default_factory=list)
    forced: bool = False
    run_folder: Path | None = None
    warnings: list[str] = field(default_factory=list)


def _rollback_setters(table: str, snapshot_id: int | None) -> list[str]:
    """Rollback runs (from their records) that made ``snapshot_id`` the table's current snapshot."""
    try:
        runs = list_runs(runs_dir(config.project_root()))
    except Exception:  # no project root: no records to consult
        return []
    return [r.get("run_id", "?") for r in runs if r.get("command") == "rollback"
            and any(e.get("table") == table and e.get("to_snapshot") == snapshot_id for e in r.get("tables") or [])]


def _later_changes(tbl: Any, table: str, info: RunChanges) -> tuple[str, bool]:
    """Describe what changed ``table`` after the run; and whether that only undid the run already.

    Returns:
        ``(description, already_undone)``.
    """
    change = info.changes[table]
    mine = set(info.snapshots.get(table, [])) | {change.last}
    later: list[Any] = []
    follows = False
    for snap in ancestors(tbl):
        if snap.snapshot_id in mine:
            follows = True
            break
        if snap.snapshot_id == change.before:
            break
        later.append(snap)
    current = tbl.current_snapshot()
    cur_id = current.snapshot_id if current is not None else None
    undone = cur_id == change.before or (
        change.before is None and follows and _total(current) == 0
        and all(snapshot_props(s).get(PROP_NOTEBOOK) == ROLLBACK_NOTEBOOK for s in later))
    if undone:
        return f"already at its snapshot before run {info.run_id} ({snapshot_label(tbl, cur_id)})", True
    runs: dict[str, set[str]] = {}
    for s in later:
        p = snapshot_props(s)
        runs.setdefault(p.get(PROP_RUN_ID) or "(a commit without a run id)", set()).add(p.get(PROP_NOTEBOOK) or "?")
    who = ", ".join(f"run {r} ({', '.join(sorted(nbs))})" for r, nbs in runs.items())
    if follows:
        return f"changed after run {info.run_id} by {who}", False
    setters = _rollback_setters(table, cur_id)
    by = f"; set by rollback run {', '.join(setters)}" if setters else ""
    return (f"its current snapshot {snapshot_label(tbl, cur_id)} does not follow run {info.run_id}'s last snapshot "
            f"{change.last}{by}" + (f"; changed by {who}" if runs and not setters else "")), False


def _table_order(tables: Iterable[str]) -> list[str]:
    """Downstream first (gold, silver, bronze), so a failure midway never leaves gold ahead of silver."""

    order = {t: i for i, t in enumerate(TABLES)}
    return sorted(tables, key=lambda t: (-order.get(t, -1), t))


def _rollback_record(result: RollbackResult, status: str, started: float, warehouse: str,
                     error: str | None = None) -> RunManifest:
    """The rollback's ``run.json`` (the run-record schema, like a runner run's)."""
    root = config.project_root()
    now = time.time()
    return RunManifest(
        run_id=str(result.run_id), status=status, exit_code=0 if status == "succeeded" else 1,
        started_at=iso(started), finished_at=None if status == "running" else iso(now),
        duration_s=None if status == "running" else round(now - started, 3),
        command="rollback", params={"rolled_back_run": result.rolled_back_run}, force=result.forced,
        warehouse=warehouse, catalog_uri=redact(os.environ.get("RIDELAKE_CATALOG_URI")), user=current_user(),
        run_folder=relative(runs_dir(root) / str(result.run_id), root),
        tables=[t for t in result.tables if t.action != "skipped"],
        skipped=[{"table": t.table, "reason": t.note} for t in result.tables if t.action == "skipped"],
        warnings=list(result.warnings), error=error,
    )


def rollback(run_id: str, force: bool = False) -> RollbackResult:
    """Put every table a run changed back to its snapshot before the run.

    Args:
        run_id: the run (a unique prefix works when it has a record under ``outputs/runs``).
        force: roll back even tables a later run changed since (undoing those changes too).

    Returns:
        A :class:`RollbackResult`; the rollback is recorded as a run unless nothing needed doing.

    Raises:
        LockError: a run holds the warehouse lock.
        CatalogError: the run changed nothing here; a later run changed its tables (without
            ``force``); a table's state before the run was expired.
    """
    from pyiceberg.expressions import AlwaysTrue  # heavy (pyiceberg): only where used

    warehouse = config.warehouse_location()
    cat = open_catalog()
    new_id = new_run_id()
    lock = _lock(new_id, warehouse)
    try:
        info = describe_run_changes(run_id)
        result = RollbackResult(run_id=None, rolled_back_run=info.run_id, forced=force,
                                warnings=list(info.warnings))
        recorded_wh = info.record.get("warehouse")
        if not info.changes:
            where = f" (its record says warehouse {recorded_wh})" if recorded_wh and recorded_wh != warehouse else ""
            raise CatalogError(f"run {info.run_id} changed no table in the warehouse {warehouse}{where}")
        if info.unrestorable:
            raise CatalogError("cannot roll back run {}: {}".format(
                info.run_id, "; ".join(f"{t}: {why}" for t, why in sorted(info.unrestorable.items()))))
        plan: list[tuple[str, Any, str]] = []  # (table, loaded table, note)
        conflicts: list[str] = []
        for table in _table_order(info.changes):
            tbl = cat.load_table(table)
            change = info.changes[table]
            cur = tbl.current_snapshot()
            cur_id = cur.snapshot_id if cur is not None else None
            if cur_id == change.last:
                plan.append((table, tbl, ""))
                continue
            what, undone = _later_changes(tbl, table, info)
            if undone:
                result.tables.append(TableRollback(table, "skipped", cur_id, cur_id, _total(cur), _total(cur), what))
            elif force:
                plan.append((table, tbl, f"forced: {what}"))
                result.warnings.append(f"{table}: {what}; rolled back anyway (--force)")
            else:
                conflicts.append(f"{table}: {what}")
        if conflicts:
            raise CatalogError(f"refusing to roll back run {info.run_id}: later runs changed its tables:\n  "
                               + "\n  ".join(conflicts)
                               + "\nRoll back those runs first, or pass --force (which undoes their changes too).")
        if not plan:
            return result
        result.run_id = new_id
        root = config.project_root()
        result.run_folder = runs_dir(root) / new_id
        started = time.time()
        write_manifest(result.run_folder, _rollback_record(result, "running", started, warehouse))
        props = {PROP_RUN_ID: new_id, PROP_NOTEBOOK: ROLLBACK_NOTEBOOK,
                 PROP_PARAMS_HASH: hashlib.sha256(json.dumps({"rolled_back_run": info.run_id}).encode()).hexdigest()}
        try:
            for table, tbl, note in plan:
                change = info.changes[table]
                cur = tbl.current_snapshot()
                cur_id = cur.snapshot_id if cur is not None else None
                if change.before is not None:
                    tbl.manage_snapshots().set_current_snapshot(snapshot_id=change.before).commit()
                    result.tables.append(TableRollback(table, "set-current", cur_id, change.before, _total(cur),
                                                       _total(tbl.snapshot_by_id(change.before)), note))
                else:
                    tbl.delete(AlwaysTrue(), snapshot_properties={**props, PROP_TABLE: table})
                    tbl = tbl.refresh()
                    after = tbl.current_snapshot()
                    result.tables.append(TableRollback(table, "emptied", cur_id,
                                                       after.snapshot_id if after is not None else None,
                                                       _total(cur), _total(after), note))
        except Exception as exc:
            write_manifest(result.run_folder, _rollback_record(result, "failed", started, warehouse,
                                                               error=f"{type(exc).__name__}: {exc}"))
            update_latest(runs_dir(root), new_id)
            write_after_run(result.run_folder)  # its index.html: what it moved before failing
            raise
        write_manifest(result.run_folder, _rollback_record(result, "succeeded", started, warehouse))
        update_latest(runs_dir(root), new_id)
        write_after_run(result.run_folder)  # its index.html lists the tables it moved
        return result
    finally:
        lock.release()


def format_rollback(result: RollbackResult) -> str:
    """Render a :class:`RollbackResult` for the console."""
    def rows(n: int | None) -> str:
        return "?" if n is None else f"{n:,}"

    done = [t for t in result.tables if t.action != "skipped"]
    skipped = [t for t in result.tables if t.action == "skipped"]
    if not done:
        return (f"nothing to roll back: the {len(skipped)} table(s) run {result.rolled_back_run} changed are "
                "already at their snapshots before the run")
    lines = [f"rollback {result.run_id} of run {result.rolled_back_run}" + (" (forced)" if result.forced else "")]
    table = [["table", "action", "snapshot from -> to", "rows before -> after"]]
    for t in done:
        table.append([t.table, t.action, f"{t.from_snapshot} -> {t.to_snapshot}",
                      f"{rows(t.rows_before)} -> {rows(t.rows_after)}"])
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for i, r in enumerate(table):
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    if skipped:
        lines.append(f"  already at their snapshots before the run (left alone): {', '.join(t.table for t in skipped)}")
    for w in result.warnings:
        lines.append(f"  warning: {w}")
    if result.run_folder is not None:
        lines.append(f"recorded as run {result.run_id}: {result.run_folder / 'run.json'}")
    return "\n".join(lines)


# -- maintenance -------------------------------------------------------------------------------

#: File kinds :func:`maintain` reports.
KINDS = ("data", "manifest", "manifest-list", "metadata", "statistics", "other")


@dataclass
class TableMaintenance:
    """What :func:`maintain` did (or would do) to one table.

    Attributes:
        table: the table.
        snapshots_expired: snapshots removed from the metadata.
        snapshots_kept: snapshots that remain.
        files: kind (see :data:`KINDS`) -> files deleted.
        bytes_freed: their total size.
        kept_young: unreferenced files kept because they are younger than the grace period.
        deleted: the paths deleted (or that would be, in a dry run).
    """

    table: str
    snapshots_expired: int = 0
    snapshots_kept: int = 0
    files: dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})
    bytes_freed: int = 0
    kept_young: int = 0
    deleted: list[str] = field(default_factory=list)

    @property
    def files_deleted(self) -> int:
        """Files deleted, all kinds."""
        return sum(self.files.values())


@dataclass
class MaintainResult:
    """What :func:`maintain` did.

    Attributes:
        warehouse: the warehouse folder or URL.
        cutoff: snapshots committed before this (UTC) were expired.
        dry_run: nothing was deleted.
        tables: one entry per table.
        staging_files: ``_staging`` files deleted.
        staging_bytes: their size.
        warnings: tables skipped (e.g. a location outside the warehouse).
    """

    warehouse: str
    cutoff: dt.datetime
    dry_run: bool
    tables: list[TableMaintenance] = field(default_factory=list)
    staging_files: int = 0
    staging_bytes: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def files_deleted(self) -> int:
        """Files deleted, tables and staging."""
        return sum(t.files_deleted for t in self.tables) + self.staging_files

    @property
    def bytes_freed(self) -> int:
        """Bytes freed, tables and staging."""
        return sum(t.bytes_freed for t in self.tables) + self.staging_bytes

    @property
    def snapshots_expired(self) -> int:
        """Snapshots expired over all tables."""
        return sum(t.snapshots_expired for t in self.tables)


def _local(uri: str) -> str:
    """A file's location in one spelling (:func:`ridelake.tables.storage.normalize`): a ``file://``
    URI or a plain path as a normalised local path, an object-store URL as ``scheme://bucket/key``."""
    return storage.normalize(uri)


def _referenced(tbl: Any, snapshots: Iterable[Any]) -> set[str]:
    """Every file the given snapshots need: manifest lists, manifests, live data and delete files."""
    refs: set[str] = set()
    seen_manifests: set[str] = set()
    for snap in snapshots:
        if snap.manifest_list:
            refs.add(_local(snap.manifest_list) or snap.manifest_list)
        for manifest in snap.manifests(tbl.io):
            path = _local(manifest.manifest_path) or manifest.manifest_path
            refs.add(path)
            if path in seen_manifests:
                continue
            seen_manifests.add(path)
            for entry in manifest.fetch_manifest_entry(tbl.io, discard_deleted=True):
                refs.add(_local(entry.data_file.file_path) or entry.data_file.file_path)
    for stats in [*tbl.metadata.statistics, *tbl.metadata.partition_statistics]:
        refs.add(_local(stats.statistics_path) or stats.statistics_path)
    return refs


def _kind(path: str, location: str) -> str:
    rel = path[len(location):].replace(os.sep, "/").lstrip("/")
    name = rel.rsplit("/", 1)[-1]
    if rel.startswith("data/"):
        return "data"
    if name.endswith(".metadata.json"):
        return "metadata"
    if name.startswith("snap-") and name.endswith(".avro"):
        return "manifest-list"
    if name.endswith(".avro"):
        return "manifest"
    if name.endswith((".puffin", ".stats")):
        return "statistics"
    return "other"


def _walk(location: str, skip: set[str]) -> Iterable[storage.FileEntry]:
    """Files under a table location (no symbolic links), leaving out other tables' locations nested in it."""
    for entry in storage.list_files(location):
        if not any(_inside(entry.location, other) for other in skip):
            yield entry


def _prune_empty_dirs(top: str) -> None:
    """Remove empty folders strictly below ``top`` (partition folders emptied by a clean-up; on an
    object store the marker objects of emptied prefixes): :func:`ridelake.tables.storage.prune_empty_dirs`."""
    storage.prune_empty_dirs(top)


def _inside(path: str, root: str) -> bool:
    """Whether a location lies at or below another (both as :func:`_local` spells them)."""
    sep = "/" if storage.is_object_store(root) else os.sep
    return path == root or path.startswith(root.rstrip(sep) + sep)


def maintain(older_than: dt.timedelta, dry_run: bool = False, *, grace: dt.timedelta = DEFAULT_GRACE,
             now: dt.datetime | None = None) -> MaintainResult:
    """Expire old snapshots and delete the files nothing references any more.

    Args:
        older_than: expire snapshots committed more than this long ago (the current one stays).
        dry_run: list what would be deleted, change nothing.
        grace: never delete files modified more recently than this.
        now: the reference time (default: now, UTC).

    Returns:
        A :class:`MaintainResult`.

    Raises:
        CatalogError: the warehouse has no catalog.
        ConfigError: an object-store warehouse without a server catalog.
        LockError: a run holds the warehouse lock.
    """
    warehouse = config.warehouse_location()
    cat = open_catalog()
    moment = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    cutoff = moment - older_than
    cutoff_ms = int(cutoff.timestamp() * 1000)
    young_after = time.time() - grace.total_seconds()
    result = MaintainResult(warehouse=warehouse, cutoff=cutoff, dry_run=dry_run)
    wh_root = _local(warehouse)
    lock = _lock(f"maintain-{new_run_id(moment)}", warehouse)
    try:
        loaded: dict[str, Any] = {}
        locations: dict[str, str] = {}
        for ident in catalog_tables(cat):
            tbl = load_or_none(cat, ident)
            if tbl is None:
                continue
            loc = _local(tbl.location())
            if not _inside(loc, wh_root) or loc == wh_root:
                result.warnings.append(f"{ident}: location {tbl.location()} is not a folder inside the warehouse; "
                                       "left alone")
                continue
            loaded[ident], locations[ident] = tbl, loc
        for ident, tbl in loaded.items():
            result.tables.append(_maintain_table(ident, tbl, locations, cutoff_ms, young_after, dry_run))
        _clean_staging(result, storage.join(wh_root, "_staging"), min(cutoff.timestamp(), young_after), dry_run)
    finally:
        lock.release()
    return result


def _maintain_table(ident: str, tbl: Any, locations: dict[str, str], cutoff_ms: int, young_after: float,
                    dry_run: bool) -> TableMaintenance:
    out = TableMaintenance(ident)
    protected = {ref.snapshot_id for ref in tbl.metadata.refs.values()}
    current = tbl.current_snapshot()
    if current is not None:
        protected.add(current.snapshot_id)
    expire = [s.snapshot_id for s in tbl.snapshots() if s.timestamp_ms < cutoff_ms and s.snapshot_id not in protected]
    out.snapshots_expired = len(expire)
    superseded: set[str] = set()
    if expire and not dry_run:
        tbl.maintenance.expire_snapshots().by_ids(expire).commit()
        tbl = tbl.refresh()
        gone = set(expire) & {s.snapshot_id for s in tbl.snapshots()}
        if gone:  # pragma: no cover - pyiceberg skips only protected ids, which we never pass
            raise CatalogError(f"{ident}: snapshots {sorted(gone)} were not expired")
    elif expire and dry_run and tbl.metadata.last_updated_ms < cutoff_ms:
        superseded.add(_local(tbl.metadata_location) or "")  # the expiry commit would supersede it
    kept = [s for s in tbl.snapshots() if s.snapshot_id not in set(expire)]
    out.snapshots_kept = len(kept)
    location = locations[ident]
    refs = _referenced(tbl, kept)
    current_meta = _local(tbl.metadata_location)
    if current_meta and current_meta not in superseded:
        refs.add(current_meta)
    for entry in tbl.metadata.metadata_log:  # earlier metadata files from within the retention window
        if entry.timestamp_ms >= cutoff_ms:
            refs.add(_local(entry.metadata_file) or entry.metadata_file)
    others = {loc for t, loc in locations.items() if t != ident and _inside(loc, location)}
    for entry in _walk(location, others):
        path = entry.location
        if path in refs:
            continue
        if entry.mtime > young_after:
            out.kept_young += 1
            continue
        if not _remove(path, dry_run):
            continue
        out.files[_kind(path, location)] += 1
        out.bytes_freed += entry.size
        out.deleted.append(path)
    if not dry_run:
        _prune_empty_dirs(storage.join(location, "data"))
    return out


def _remove(path: str, dry_run: bool) -> bool:
    """Delete a file (only pretend on a dry run); False when it vanished in the meantime."""
    if dry_run:
        return True
    return storage.delete_file(path)


def _clean_staging(result: MaintainResult, staging: str, older_than_ts: float, dry_run: bool) -> None:
    for entry in _walk(staging, set()):
        if entry.mtime >= older_than_ts:
            continue
        if not _remove(entry.location, dry_run):
            continue
        result.staging_files += 1
        result.staging_bytes += entry.size
    if not dry_run:
        _prune_empty_dirs(staging)


def format_maintain(result: MaintainResult, older_than: str = "") -> str:
    """Render a :class:`MaintainResult` for the console."""
    head = ["table", "expired", "kept", "data", "manifests", "lists", "metadata", "other", "freed"]
    rows = []
    for t in result.tables:
        rows.append([t.table, str(t.snapshots_expired), str(t.snapshots_kept), str(t.files["data"]),
                     str(t.files["manifest"]), str(t.files["manifest-list"]), str(t.files["metadata"]),
                     str(t.files["statistics"] + t.files["other"]), _human(t.bytes_freed)])
    tot = [sum(int(r[i]) for r in rows) for i in range(1, 8)]
    rows.append(["total", *map(str, tot), _human(sum(t.bytes_freed for t in result.tables))])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    verb = "would delete" if result.dry_run else "deleted"
    out = [f"maintain{' (dry run)' if result.dry_run else ''}: warehouse {result.warehouse}; expiring snapshots "
           f"committed before {result.cutoff:%Y-%m-%d %H:%M:%S} UTC"
           + (f" (older than {older_than})" if older_than else ""),
           line(head), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows[:-1]]
    out += ["  ".join("-" * w for w in widths), line(rows[-1])]
    young = sum(t.kept_young for t in result.tables)
    out.append(f"staging: {verb} {result.staging_files} file(s), {_human(result.staging_bytes)}")
    out.append(f"{verb} {result.files_deleted} file(s), {'would free' if result.dry_run else 'freed'} "
               f"{_human(result.bytes_freed)} ({result.bytes_freed:,} bytes); "
               f"expired {result.snapshots_expired} snapshot(s)")
    if young:
        out.append(f"kept {young} unreferenced file(s) younger than the grace period")
    out += [f"warning: {w}" for w in result.warnings]
    return "\n".join(out)


# -- command line ------------------------------------------------------------------------------

def _cmd_rollback(args: argparse.Namespace) -> int:
    use_warehouse(args.warehouse)
    print(format_rollback(rollback(args.run_id, force=args.force)))
    return 0


def _cmd_maintain(args: argparse.Namespace) -> int:
    use_warehouse(args.warehouse)
    older = parse_duration(args.older_than)
    grace = parse_duration(args.grace)
    print(format_maintain(maintain(older, dry_run=args.dry_run, grace=grace), args.older_than))
    return 0


def register(subparsers: Any) -> None:
    """Add ``rollback RUN_ID [--force]`` and ``maintain [--older-than 7d] [--dry-run]`` to the command line."""
    rb = subparsers.add_parser(
        "rollback", help="put every table a run changed back to its snapshot before the run",
        description="Put every table RUN_ID changed back to its snapshot before the run (one commit per table; a "
                    "table the run created is emptied). Refuses when a later run changed those tables, unless "
                    "--force. Recorded as a run (command rollback).")
    rb.add_argument("run_id", metavar="RUN_ID", help="the run (or a unique prefix of its id)")
    rb.add_argument("--force", action="store_true", help="roll back even tables later runs changed (undoes those too)")
    rb.add_argument("--warehouse", metavar="PATH", help="warehouse folder or URL (sets RIDELAKE_WAREHOUSE)")
    rb.set_defaults(func=_cmd_rollback)

    mt = subparsers.add_parser(
        "maintain", help="expire old snapshots and delete files no snapshot references",
        description="Expire snapshots older than --older-than (never the current one) and delete the data, "
                    "manifest and metadata files no remaining snapshot references, and old _staging files, in a "
                    "local or object-store (s3://) warehouse; refuses while a run holds the warehouse lock.")
    mt.add_argument("--older-than", default="7d", metavar="DURATION",
                    help="expire snapshots committed longer ago than this: 7d, 12h, 30m, 0s (default 7d)")
    mt.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    mt.add_argument("--grace", default="60s", metavar="DURATION",
                    help="never delete files younger than this (default 60s)")
    mt.add_argument("--warehouse", metavar="PATH", help="warehouse folder or URL (sets RIDELAKE_WAREHOUSE)")
    mt.set_defaults(func=_cmd_maintain)
