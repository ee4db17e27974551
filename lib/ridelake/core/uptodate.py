"""Skip up-to-date notebooks: what a notebook depends on, remembered per warehouse.

A notebook execution (a scheduler key: ``silver/customer``, ``silver/booking@2024-03``) is
**up-to-date** when, since its last successful execution against this warehouse, nothing it
depends on changed. The runner asks :meth:`UpToDate.should_run` when the node becomes ready
(its upstream nodes of this run have ended), so a table an upstream notebook has just rewritten
is seen. ``--force`` runs everything selected (and still records what ran).

**The fingerprint** (:class:`Fingerprint`) of an execution, compared with the one recorded:

- ``notebook``: sha256 of the notebook's code cells, source and tags
  (:func:`ridelake.core.codehash.notebook_hash`: markdown, outputs, execution counts and metadata
  do not count, so fixing a typo in prose or saving an executed notebook changes nothing; nor do
  the ``parameters`` cell's defaults of the names the run passes, so a notebook saved with
  ``write = True`` after an interactive write is still the same notebook to a run);
- ``lib``: sha256 of the package modules the notebook imports, transitively
  (:class:`ridelake.core.codehash.ModuleGraph`): editing a gold transform reruns the gold
  notebooks only, editing the report or the CLI reruns nothing;
- ``params``: :func:`params_hash` of the values the notebook receives (the same value the kernel
  gets as ``RIDELAKE_PARAMS_HASH``);
- ``source``: for each parameter the project names as a file (``source_file``): the file's
  resolved path, size and ``mtime_ns`` (a replaced delivery reruns prepare and bronze); an
  object-store URL cannot be checked and always runs;
- ``reads``: the current snapshot id of every Iceberg table it declares in ``pipeline.yaml``
  (and of any other table its last run's receipts show it read). A hand-off dataset (pipeline.yaml's
  ``handoffs``, e.g. ``staging.delivery``) is versioned by the run that last produced it: the recorded entry
  of its writer notebook, so the bronze notebooks rerun whenever ``bronze/prepare`` ran.

**And its own tables** must still be at the snapshots it produced: every table its receipts show
it wrote, and every Iceberg table it declares writing (no receipt for one: it runs).

**State**: one JSON document per warehouse: by default a file (:func:`state_path`):
``<warehouse>/_ridelake/state.json`` for a local warehouse, ``<root>/outputs/state/<sha256(url)[:16]>.json``
for an object store; a project may keep it elsewhere (:func:`state_for`: its ``state()``, e.g. a
row of a catalog database that the runs of every machine share). It
holds, per key, the last successful execution: the fingerprint, the snapshots it read and wrote,
its run id and time. It is written atomically by the run holding the warehouse lock: an entry is
dropped when its key starts an attempt (a killed or failed run leaves none) and written when it
succeeds, replacing the entries of the notebook's other keys (a per-month execution and a whole
one write the same table, so only the latest can still match it) except its other partitions of
the same run, whose recorded writes move on to the new snapshot (together they made it). Another or an emptied
warehouse has no state, so everything runs. Anything that goes wrong while checking (the catalog
cannot be read) means "run"; a state that cannot be written never fails the run.

Consequences worth knowing: the default ``extraction_date`` is today, so the bronze notebooks
re-extract on a new day; a table rolled back, compacted or written by hand has a new current
snapshot, so its writer reruns (unless it is back at the very snapshot that writer produced) and
its readers rerun; dependencies outside ``lib/ridelake`` (installed packages) are not part of the
fingerprint: use ``--force`` after upgrading them.

**Current snapshot ids** come from the project's
:class:`~ridelake.core.project.SnapshotSource` (for ride bookings, the warehouse's catalog, read
afresh on every check).

Example:
    >>> fresh = UpToDate(pipeline, StateStore(state_path(wh, root)), project.snapshots(), run_id)  # doctest: +SKIP
    >>> fresh.add(planned_nodes); fresh.should_run("silver/customer")                             # doctest: +SKIP
    False
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ridelake.core.codehash import ModuleGraph, notebook_hash
from ridelake.core.dag import NotebookSpec, Pipeline
from ridelake.core.engine import Outcome
from ridelake.core.files import iso, write_atomic
from ridelake.core.project import SnapshotSource, file_identity
from ridelake.core.protocol import Status
from ridelake.core.scheduler import Listener, NodeState

__all__ = [
    "STATE_VERSION",
    "LIB_DIR",
    "params_hash",
    "state_path",
    "Fingerprint",
    "Decision",
    "StateStore",
    "state_for",
    "UpToDate",
    "record_success",
]

#: 2: the code part covers the imported modules only; markdown no longer counts.
STATE_VERSION = 2
#: The package whose sources make the ``lib`` part of every fingerprint.
LIB_DIR = Path(__file__).resolve().parents[1]
#: A recorded read that can never match: the table moved while the notebook ran.
_UNSTABLE = "changed-while-running"


def _files_identity(files: Mapping[str, Any]) -> dict[str, Any] | None:
    """The identities of a notebook's file parameters: one file gives its identity (as recorded
    by earlier versions), none ``{"path": None}``, several a name -> identity map; None when any
    cannot be checked."""
    idents = {name: file_identity(value) for name, value in files.items()}
    if any(v is None for v in idents.values()):
        return None
    if not idents:
        return {"path": None}
    return next(iter(idents.values())) if len(idents) == 1 else idents


def params_hash(params: Mapping[str, Any]) -> str:
    """sha256 of the sorted JSON of the parameters a notebook receives."""
    return hashlib.sha256(json.dumps(dict(params), sort_keys=True, default=str).encode("utf-8")).hexdigest()


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

    A state kept elsewhere (a database row that runs on several machines share) is a subclass
    that passes no ``path`` and overrides :meth:`read_text`, :meth:`write_text` and :meth:`where`;
    the document and its rules stay these.

    Args:
        path: the file (see :func:`state_path`); None for a subclass that keeps it elsewhere.
        warehouse: recorded in the file, for people.
    """

    def __init__(self, path: str | Path | None, warehouse: str = "") -> None:
        self.path = Path(path) if path is not None else None
        self.warehouse = warehouse
        self.entries: dict[str, dict[str, Any]] = {}
        try:
            text = self.read_text()
            data = json.loads(text) if text else None
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict) and data.get("version") == STATE_VERSION and isinstance(data.get("entries"), dict):
            self.entries = {str(k): v for k, v in data["entries"].items() if isinstance(v, dict)}

    def where(self) -> str:
        """Where the state is kept, for messages."""
        return str(self.path)

    def read_text(self) -> str | None:
        """The stored document (None: there is none).

        Raises:
            OSError: it cannot be read (the state then reads as empty).
        """
        if self.path is None or not self.path.exists():
            return None
        return self.path.read_text(encoding="utf-8")

    def write_text(self, text: str) -> None:
        """Replace the stored document atomically (a temporary file, then ``os.replace``).

        Raises:
            OSError: it cannot be written.
        """
        if self.path is None:
            raise OSError("this state has no file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, text)

    def save(self) -> None:
        """Write the document (see :meth:`write_text`)."""
        data = {"version": STATE_VERSION, "warehouse": self.warehouse, "updated_at": iso(time.time()),
                "entries": self.entries}
        self.write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


def state_for(project: Any) -> StateStore:
    """The up-to-date state of a project's warehouse: the project's ``state()`` when it has one,
    else the file of :func:`state_path`.

    Args:
        project: a :class:`~ridelake.core.project.Project`.
    """
    make = getattr(project, "state", None)
    if make is not None:
        return make()
    warehouse = project.warehouse()
    return StateStore(state_path(warehouse, project.root), warehouse)


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
        file_params: parameters whose value names a file (its identity is fingerprinted).
        modules: the package's import graph (default :data:`LIB_DIR`, read once per run).
        named: notebooks named on the command line: they run whatever their state.
    """

    def __init__(self, pipeline: Pipeline, store: StateStore, snapshots: SnapshotSource, run_id: str,
                 *, force: bool = False, file_params: Sequence[str] = (),
                 modules: ModuleGraph | None = None, named: Iterable[str] = ()) -> None:
        self.pipeline = pipeline
        self.store = store
        self.snapshots = snapshots
        self.run_id = run_id
        self.force = force
        self.file_params = tuple(file_params)
        self.named = set(named)
        self.modules = modules if modules is not None else ModuleGraph(LIB_DIR)
        self.nodes: dict[str, tuple[NotebookSpec, dict[str, Any]]] = {}
        self.decisions: dict[str, Decision] = {}
        self.save_error: str | None = None

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
        spec, params = self.nodes[key]
        own = set(spec.writes)  # a notebook reading its own table is checked by its writes
        tables = [d for d in spec.reads if self.pipeline.is_table(d) and d not in own]
        tables += [t for t in extra_reads if t not in tables and t not in own]
        reads: dict[str, Any] = dict(self.snapshots.current(tables)) if tables else {}
        for ds in spec.reads:
            if not self.pipeline.is_table(ds):
                reads[ds] = self._dataset_version(ds)
        files = [name for name in self.file_params if name in params]
        source = _files_identity({name: params[name] for name in files})
        code = self.modules.digest(self.modules.notebook_modules(spec.path))
        return Fingerprint(notebook_hash(spec.path, params), code, params_hash(params), source, reads)

    def _dataset_version(self, dataset: str) -> str | None:
        """A non-Iceberg dataset's version: the run and key of its writers' recorded executions."""
        parts = []
        for name in self.pipeline.writers(dataset):
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
        extra = [t for t in (entry or {}).get("reads", {}) if self.pipeline.is_table(t)]
        fp = self.fingerprint(key, extra)
        if self.force:
            return Decision(True, "forced", fingerprint=fp)
        if spec.name in self.named:
            return Decision(True, "named on the command line", fingerprint=fp)
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
            if self.pipeline.is_table(table) and table not in wrote:
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
            self.save_error = f"{self.store.where()}: {exc}"

    def on_start(self, state: NodeState, attempt: int) -> None:
        """An attempt starts: its old entry no longer describes the tables (written at once)."""
        if self.store.entries.pop(state.key, None) is not None:
            self._save()

    def on_finish(self, state: NodeState) -> None:
        """Record a success (its fingerprint, reads and writes); forget a failure."""
        if state.status == Status.SUCCEEDED and state.key in self.decisions and state.key in self.nodes:
            try:
                entry = self._entry(state)
            except Exception:  # an odd receipt: no entry, so it simply runs next time
                entry = None
            if entry is not None:
                name = self.nodes[state.key][0].name
                for other, e in list(self.store.entries.items()):
                    if e.get("notebook") != name or other == state.key:
                        continue
                    if e.get("run_id") == self.run_id and "@" in other and "@" in state.key:
                        # another partition of this run: the table now holds its work too
                        e["writes"] = {**(e.get("writes") or {}), **entry["writes"]}
                    else:
                        self.store.entries.pop(other)  # its table moved on: it can never be up-to-date
                self.store.entries[state.key] = entry
        elif state.status == Status.FAILED:
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


@dataclass(frozen=True)
class _Execution:
    """A planned execution as :meth:`UpToDate.add` takes it."""

    key: str
    spec: NotebookSpec
    params: Mapping[str, Any]


def record_success(pipeline: Pipeline, store: StateStore, snapshots: SnapshotSource, *, key: str,
                   params: Mapping[str, Any], run_id: str, receipts: Sequence[Mapping[str, Any]],
                   file_params: Sequence[str] = (), modules: ModuleGraph | None = None) -> dict[str, Any] | None:
    """Record a success that happened outside the runner (a notebook run by hand that wrote its
    table) exactly as a run records one of its own: the fingerprint now (code, imported modules,
    :func:`params_hash` of ``params``, file identities, declared reads), the snapshots the
    receipts show it read and wrote; the notebook's other entries are dropped and the state saved.

    So the next run finds the notebook up-to-date when nothing changed since, and reruns what
    reads the tables it wrote. The caller holds the warehouse lock.

    Args:
        pipeline: the DAG.
        store: the warehouse's state.
        snapshots: where current snapshot ids come from.
        key: the execution key (``silver/customer``).
        params: the values a run would pass the notebook for the same result.
        run_id: the run id recorded with the entry (and tagged on its snapshots).
        receipts: its read and write receipts (``op``, ``table``, ``snapshot_id``).
        file_params: parameters whose value names a file.
        modules: the package's import graph (default :data:`LIB_DIR`).

    Returns:
        The entry recorded, or None when none could be (the fingerprint could not be computed, or
        the state file not written: the next run then simply runs the notebook).
    """
    fresh = UpToDate(pipeline, store, snapshots, run_id, file_params=file_params, modules=modules)
    fresh.add([_Execution(key, pipeline.spec(key.split("@", 1)[0]), dict(params))])
    fresh.decisions[key] = fresh.evaluate(key)
    if fresh.decisions[key].fingerprint is None:  # an entry it had no longer matches its new snapshot
        return None
    now = time.time()
    fresh.on_finish(NodeState(key, status=Status.SUCCEEDED.value,
                              outcome=Outcome(True, now, now, receipts=[dict(r) for r in receipts])))
    if fresh.save_error is not None:
        return None
    return store.entries.get(key)
