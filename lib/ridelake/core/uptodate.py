"""Skip up-to-date notebooks: what a notebook depends on, remembered per warehouse.

A notebook execution (a scheduler key: ``silver/customer``, ``silver/booking@2024-03``) is
**up-to-date** when, since its last successful execution against this warehouse, nothing it
depends on changed. The runner asks :meth:`UpToDate.should_run` when the node becomes ready
(its upstream nodes of this run have ended), so a table an upstream notebook has just rewritten
is seen. ``--force`` runs everything selected (and still records what ran).

**The fingerprint** (:class:`Fingerprint`) of an execution, compared with the one recorded:

- ``notebook``: sha256 of the notebook's cells as they matter to a run: cell type, source and
  tags of every cell (outputs, execution counts, ids and metadata noise are ignored, so running a
  notebook in JupyterLab and saving it changes nothing; editing a markdown cell does count);
- ``lib``: sha256 of every ``*.py`` under the imported ``ridelake`` package (``lib/ridelake``),
  path and content, computed once per run;
- ``params``: :func:`ridelake.core.runner.params_hash` of the values the notebook receives (the same
  value the kernel gets as ``RIDELAKE_PARAMS_HASH``);
- ``source``: for a notebook that receives ``source_file``: the file's resolved path, size and
  ``mtime_ns`` (a replaced delivery reruns prepare and bronze); an object-store URL cannot be
  checked and always runs;
- ``reads``: the current snapshot id of every Iceberg table it declares in ``pipeline.yaml``
  (and of any other table its last run's receipts show it read). A dataset that is not an Iceberg
  table (``staging.delivery``) is versioned by the run that last produced it: the recorded entry
  of its writer notebook, so the bronze notebooks rerun whenever ``bronze/prepare`` ran.

**And its own tables** must still be at the snapshots it produced: every table its receipts show
it wrote, and every Iceberg table it declares writing (no receipt for one: it runs).

**State**: one JSON file per warehouse (:func:`state_path`): ``<warehouse>/_ridelake/state.json``
for a local warehouse, ``<root>/outputs/state/<sha256(url)[:16]>.json`` for an object store. It
holds, per key, the last successful execution: the fingerprint, the snapshots it read and wrote,
its run id and time. It is written atomically by the run holding the warehouse lock: an entry is
dropped when its key starts an attempt (a killed or failed run leaves none) and written when it
succeeds, replacing the entries of the notebook's other keys (a per-month execution and a whole
one write the same table, so only the latest can still match it). Another or an emptied
warehouse has no state, so everything runs. Anything that goes wrong while checking (the catalog
cannot be read) means "run"; a state that cannot be written never fails the run.

Consequences worth knowing: the default ``extraction_date`` is today, so the bronze notebooks
re-extract on a new day; a table rolled back, compacted or written by hand has a new current
snapshot, so its writer reruns (unless it is back at the very snapshot that writer produced) and
its readers rerun; dependencies outside ``lib/ridelake`` (installed packages) are not part of the
fingerprint: use ``--force`` after upgrading them.

**Current snapshot ids** come from :class:`CatalogSnapshots`, which opens the warehouse's SQL
catalog in the runner process and loads each table's metadata afresh on every check (it never
creates the catalog or a table).

Example:
    >>> fresh = UpToDate(pipeline, StateStore(state_path(wh, root)), CatalogSnapshots(wh), run_id)  # doctest: +SKIP
    >>> fresh.add(planned_nodes); fresh.should_run("silver/customer")                             # doctest: +SKIP
    False
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

from ridelake.core.dag import NotebookSpec, Pipeline, is_iceberg
from ridelake.core.manifest import iso, write_atomic
from ridelake.core.scheduler import FAILED, SUCCEEDED, Listener, NodeState

__all__ = [
    "STATE_VERSION",
    "LIB_DIR",
    "is_iceberg",
    "notebook_hash",
    "lib_hash",
    "source_identity",
    "state_path",
    "SnapshotSource",
    "CatalogSnapshots",
    "Fingerprint",
    "Decision",
    "StateStore",
    "UpToDate",
]

STATE_VERSION = 1
#: The package whose sources make the ``lib`` part of every fingerprint.
LIB_DIR = Path(__file__).resolve().parents[1]
#: A recorded read that can never match: the table moved while the notebook ran.
_UNSTABLE = "changed-while-running"


def notebook_hash(path: str | Path) -> str:
    """sha256 of a notebook's cell types, sources and tags (outputs and metadata ignored).

    Args:
        path: the ``.ipynb`` file.

    Returns:
        The hex digest; for a file that is not a readable notebook, the digest of its raw bytes
        (or of the error), so it never matches a good one.
    """
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        return hashlib.sha256(f"unreadable: {exc}".encode()).hexdigest()
    try:
        nb = json.loads(raw)
        cells = []
        for cell in nb.get("cells", []):
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else str(source)
            tags = sorted((cell.get("metadata") or {}).get("tags") or [])
            cells.append([cell.get("cell_type"), text, tags])
    except (ValueError, AttributeError, TypeError):
        return hashlib.sha256(raw).hexdigest()
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode("utf-8")).hexdigest()


def lib_hash(directory: str | Path | None = None) -> str:
    """sha256 of every ``*.py`` file under a folder (relative path and content, sorted).

    Args:
        directory: default :data:`LIB_DIR`, the imported ``ridelake`` package.

    Returns:
        The hex digest.
    """
    base = Path(directory) if directory is not None else LIB_DIR
    digest = hashlib.sha256()
    for file in sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts):
        digest.update(file.relative_to(base).as_posix().encode("utf-8") + b"\0")
        try:
            digest.update(file.read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
        digest.update(b"\0")
    return digest.hexdigest()


def source_identity(value: Any) -> dict[str, Any] | None:
    """The identity of a delivery file: resolved path, size and ``mtime_ns``.

    Args:
        value: the ``source_file`` parameter.

    Returns:
        The identity, ``{"path": ..., "missing": True}`` for a missing file, or None for an
        object-store URL (it cannot be checked cheaply, so the notebook always runs).
    """
    if value is None:
        return {"path": None}
    text = str(value)
    if "://" in text and not text.startswith("file://"):
        return None
    path = Path(text[len("file://"):] if text.startswith("file://") else text).expanduser().resolve()
    try:
        st = path.stat()
    except OSError:
        return {"path": str(path), "missing": True}
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def state_path(warehouse: str, root: str | Path) -> Path:
    """Where a warehouse's up-to-date state lives.

    Args:
        warehouse: a local folder or an object-store URL.
        root: the project root (for object-store warehouses).

    Returns:
        ``<warehouse>/_ridelake/state.json`` (local), else
        ``<root>/outputs/state/<sha256(url)[:16]>.json``.
    """
    if "://" not in warehouse:
        return Path(warehouse) / "_ridelake" / "state.json"
    digest = hashlib.sha256(warehouse.encode("utf-8")).hexdigest()[:16]
    return Path(root) / "outputs" / "state" / f"{digest}.json"


class SnapshotSource(Protocol):
    """Where the current snapshot ids of tables come from."""

    def current(self, tables: Iterable[str]) -> dict[str, int | None]:
        """Return table -> its current snapshot id (None: absent or never written)."""
        ...


class CatalogSnapshots:
    """Current snapshot ids read from the warehouse's SQL catalog, fresh on every call.

    The catalog is the one the kernels use: ``RIDELAKE_CATALOG_URI`` when given, else SQLite at
    ``<warehouse>/catalog.db``. A catalog file that does not exist yet is not created (every
    table is then absent); an absent table is None, never created.

    Args:
        warehouse: the warehouse folder or URL.
        catalog_uri: the SQLAlchemy URL (default from ``warehouse``).
    """

    def __init__(self, warehouse: str, catalog_uri: str | None = None) -> None:
        self.warehouse = warehouse
        self.uri = catalog_uri

    def _open(self) -> Any:
        from ridelake.tables import catalog

        if not catalog.exists(self.warehouse, self.uri):
            return None
        # the catalog object holds a connection pool only; every load_table reads fresh metadata
        return catalog.get_catalog(self.warehouse, self.uri)

    def current(self, tables: Iterable[str]) -> dict[str, int | None]:
        """See :meth:`SnapshotSource.current`."""
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        names = list(dict.fromkeys(tables))
        cat = self._open()
        if cat is None:
            return dict.fromkeys(names)
        out: dict[str, int | None] = {}
        for name in names:
            try:
                snap = cat.load_table(name).current_snapshot()
            except (NoSuchTableError, NoSuchNamespaceError):
                snap = None
            out[name] = snap.snapshot_id if snap is not None else None
        return out


@dataclass(frozen=True)
class Fingerprint:
    """What an execution depends on (see the module doc)."""

    notebook: str
    lib: str
    params: str
    source: dict[str, Any] | None
    reads: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """Whether a key runs, and why.

    Attributes:
        run: True to run it.
        reason: ``up-to-date``, or why it runs (``notebook changed``, ``silver.customer changed``,
            ``forced``...).
        since: for an up-to-date key, the run id of the execution it keeps.
        fingerprint: the fingerprint now (None when it could not be computed).
    """

    run: bool
    reason: str
    since: str | None = None
    fingerprint: Fingerprint | None = None


class StateStore:
    """The state file: key -> the last successful execution against this warehouse.

    An unreadable file or one of another version reads as empty (everything runs).

    Args:
        path: the file (see :func:`state_path`).
        warehouse: recorded in the file, for people.
    """

    def __init__(self, path: str | Path, warehouse: str = "") -> None:
        self.path = Path(path)
        self.warehouse = warehouse
        self.entries: dict[str, dict[str, Any]] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict) and data.get("version") == STATE_VERSION and isinstance(data.get("entries"), dict):
            self.entries = {str(k): v for k, v in data["entries"].items() if isinstance(v, dict)}

    def save(self) -> None:
        """Write the file atomically (a temporary file, then ``os.replace``)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": STATE_VERSION, "warehouse": self.warehouse, "updated_at": iso(time.time()),
                "entries": self.entries}
        write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


class UpToDate(Listener):
    """Decide, per scheduler key, whether it must run; record successful executions.

    Use :meth:`add` for the planned nodes, :meth:`should_run` as the scheduler's hook, and the
    object itself as a scheduler :class:`~ridelake.core.scheduler.Listener` (it updates the state as
    attempts start and end). Everything happens on the scheduling thread.

    Args:
        pipeline: the DAG (which notebook writes which dataset).
        store: the warehouse's state.
        snapshots: where current snapshot ids come from.
        run_id: the run (recorded with each success).
        force: run everything (decisions say ``forced``), still recording successes.
        lib: the ``lib`` hash (default :func:`lib_hash`, computed now, once).
    """

    def __init__(self, pipeline: Pipeline, store: StateStore, snapshots: SnapshotSource, run_id: str,
                 *, force: bool = False, lib: str | None = None) -> None:
        self.pipeline = pipeline
        self.store = store
        self.snapshots = snapshots
        self.run_id = run_id
        self.force = force
        self.lib = lib if lib is not None else lib_hash()
        self.nodes: dict[str, tuple[NotebookSpec, dict[str, Any]]] = {}
        self.decisions: dict[str, Decision] = {}
        self.save_error: str | None = None
        self._writers: dict[str, list[str]] = {}
        for spec in pipeline.notebooks.values():
            for ds in spec.writes:
                self._writers.setdefault(ds, []).append(spec.name)

    # -- planning ---------------------------------------------------------------------------
    def add(self, nodes: Iterable[Any]) -> None:
        """Register planned executions (objects with ``key``, ``spec`` and ``params``)."""
        for n in nodes:
            self.nodes[n.key] = (n.spec, dict(n.params))

    def fingerprint(self, key: str, extra_reads: Iterable[str] = ()) -> Fingerprint:
        """The fingerprint of a planned key now (reads the catalog).

        Args:
            key: the scheduler key.
            extra_reads: more tables to include in ``reads`` (those the last run read undeclared).
        """
        from ridelake.core.runner import params_hash

        spec, params = self.nodes[key]
        own = set(spec.writes)  # a notebook reading its own table is checked by its writes
        tables = [d for d in spec.reads if is_iceberg(d) and d not in own]
        tables += [t for t in extra_reads if t not in tables and t not in own]
        reads: dict[str, Any] = dict(self.snapshots.current(tables)) if tables else {}
        for ds in spec.reads:
            if not is_iceberg(ds):
                reads[ds] = self._dataset_version(ds)
        source = source_identity(params.get("source_file")) if "source_file" in params else {"path": None}
        return Fingerprint(notebook_hash(spec.path), self.lib, params_hash(params), source, reads)

    def _dataset_version(self, dataset: str) -> str | None:
        """A non-Iceberg dataset's version: the run and key of its writers' recorded executions."""
        parts = []
        for name in self._writers.get(dataset, []):
            entries = [(k, e) for k, e in self.store.entries.items() if e.get("notebook") == name]
            if not entries:
                return None
            k, e = max(entries, key=lambda ke: str(ke[1].get("finished_at")))
            parts.append(f"{name}={e.get('run_id')}:{k}")
        return ";".join(parts) or None

    def evaluate(self, key: str) -> Decision:
        """Decide whether a planned key must run (no side effects).

        Returns:
            The :class:`Decision`; any error computing it (the catalog cannot be read...) means
            "run", with the error as the reason.
        """
        try:
            return self._evaluate(key)
        except Exception as exc:
            return Decision(True, f"cannot check: {type(exc).__name__}: {exc}")

    def _evaluate(self, key: str) -> Decision:
        spec, _ = self.nodes[key]
        entry = self.store.entries.get(key)
        extra = [t for t in (entry or {}).get("reads", {}) if is_iceberg(t)]
        fp = self.fingerprint(key, extra)
        if self.force:
            return Decision(True, "forced", fingerprint=fp)
        if entry is None:
            return Decision(True, "no successful run recorded for this warehouse", fingerprint=fp)
        old = entry.get("fingerprint") or {}
        for part, what in (("notebook", "notebook changed"), ("lib", "lib/ changed"),
                           ("params", "parameters changed")):
            if old.get(part) != getattr(fp, part):
                return Decision(True, what, fingerprint=fp)
        if fp.source is None:
            return Decision(True, "source file cannot be checked (object store)", fingerprint=fp)
        if old.get("source") != fp.source:
            return Decision(True, "source file changed", fingerprint=fp)
        recorded = entry.get("reads") or {}
        for table, snap in fp.reads.items():
            if table not in recorded:
                return Decision(True, f"{table}: not recorded", fingerprint=fp)
            if recorded[table] != snap:
                return Decision(True, f"{table} changed", fingerprint=fp)
        wrote = entry.get("writes") or {}
        for table in spec.writes:
            if is_iceberg(table) and table not in wrote:
                return Decision(True, f"no record of writing {table}", fingerprint=fp)
        current = self.snapshots.current(wrote) if wrote else {}
        for table, snap in wrote.items():
            if current.get(table) != snap:
                return Decision(True, f"{table} changed since its last run", fingerprint=fp)
        return Decision(False, "up-to-date", since=entry.get("run_id"), fingerprint=fp)

    def should_run(self, key: str) -> bool:
        """The scheduler hook: decide now and remember the decision (see :attr:`decisions`)."""
        decision = self.evaluate(key)
        self.decisions[key] = decision
        return decision.run

    def predict(self, keys: Sequence[str], deps: Mapping[str, Iterable[str]]) -> dict[str, Decision]:
        """What a run of these keys would do, without running anything (for ``--dry-run``).

        A key runs when :meth:`evaluate` says so or when something it waits for runs (that
        will write new snapshots).

        Args:
            keys: planned keys, in dependency order.
            deps: key -> the keys it waits for.
        """
        out: dict[str, Decision] = {}
        for key in keys:
            waits = set(deps.get(key, ()))
            upstream = [d for d, dec in out.items() if d in waits and dec.run]  # in planned order
            out[key] = Decision(True, f"upstream {upstream[0]} runs") if upstream else self.evaluate(key)
        return out

    # -- scheduler hooks --------------------------------------------------------------------
    def _save(self) -> None:
        """Write the state; a failure is kept in :attr:`save_error` and never fails the run (the
        next run then finds old entries whose tables moved on, or none: it runs more, not less)."""
        try:
            self.store.save()
        except OSError as exc:
            self.save_error = f"{self.store.path}: {exc}"

    def on_start(self, state: NodeState, attempt: int) -> None:
        """An attempt starts: its old entry no longer describes the tables (written at once)."""
        if self.store.entries.pop(state.key, None) is not None:
            self._save()

    def on_finish(self, state: NodeState) -> None:
        """Record a success (its fingerprint, reads and writes); forget a failure."""
        if state.status == SUCCEEDED and state.key in self.decisions and state.key in self.nodes:
            try:
                entry = self._entry(state)
            except Exception:  # an odd receipt: no entry, so it simply runs next time
                entry = None
            if entry is not None:
                name = self.nodes[state.key][0].name
                for other in [k for k, e in self.store.entries.items() if e.get("notebook") == name]:
                    self.store.entries.pop(other)  # its table moved on: it can never be up-to-date
                self.store.entries[state.key] = entry
        elif state.status == FAILED:
            self.store.entries.pop(state.key, None)
        self._save()

    def _entry(self, state: NodeState) -> dict[str, Any] | None:
        fp = self.decisions[state.key].fingerprint
        if fp is None:
            return None
        receipts = state.outcome.receipts if state.outcome is not None else []
        reads: dict[str, Any] = dict(fp.reads)
        seen: dict[str, set[Any]] = {}
        writes: dict[str, Any] = {}
        for r in receipts:
            if "table" not in r:
                continue
            if r.get("op") == "read":
                seen.setdefault(r["table"], set()).add(r.get("snapshot_id"))
            elif r.get("op") == "write":
                writes[r["table"]] = r.get("snapshot_id")
        for table, snaps in seen.items():
            if table in writes:
                continue  # it read what it then wrote: its own table is checked as a write
            if len(snaps) > 1 or (table in reads and reads[table] not in snaps):
                reads[table] = _UNSTABLE  # the table moved under it: never up-to-date
            elif table not in reads:
                reads[table] = next(iter(snaps))
        return {
            "notebook": self.nodes[state.key][0].name,
            "run_id": self.run_id,
            "finished_at": iso(time.time()),
            "fingerprint": {k: v for k, v in asdict(fp).items() if k != "reads"},
            "reads": reads,
            "writes": writes,
        }
