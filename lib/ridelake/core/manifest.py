"""Run records: ``outputs/runs/<run_id>/run.json``, the ``latest`` pointer, listing runs.

A run folder holds the executed notebooks (``<layer>/<table>.ipynb``), the catalog receipts of
each attempt (``receipts/``), the kernels' own output (``logs/``) and ``run.json``. ``run.json`` is rewritten atomically whenever a
notebook finishes, so a killed run still leaves a record (status ``running``).
A notebook the up-to-date check did not run (:mod:`ridelake.core.uptodate`) is recorded with status
``up-to-date``, 0 attempts, duration 0, ``output`` null, ``rows_written`` 0 and
``up_to_date_since``: the run whose result it kept; every entry has a ``run_reason``.
``outputs/runs/latest`` is a relative symlink to the newest run folder; where symlinks are not
possible it is a text file holding the run id.

**The schema.** Every ``run.json`` ridelake writes is a :class:`RunManifest` (one
:class:`NotebookEntry` per notebook execution, one :class:`TableEntry` per table a run moved
without a notebook: a rollback, an interactive write), stamped with ``schema_version``
(:data:`ridelake.core.protocol.RUN_SCHEMA_VERSION`). The runner (:class:`RunRecord`), rollback
and interactive writes build it alike. :func:`read_run` reads any record back, including those
written before the version existed (read as version 1); fields it does not know are kept in
``extra`` and written back unchanged. :func:`read_manifest` still gives the JSON as stored.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from ridelake.core.lock import pid_alive
from ridelake.core.files import current_user, iso, parse_iso, relative, write_atomic
from ridelake.core.protocol import RUN_SCHEMA_VERSION
from ridelake.errors import ConfigError
from ridelake.core.scheduler import FAILED, SUCCEEDED, UP_TO_DATE, Listener, NodeState

__all__ = [
    "RUN_FILE",
    "LATEST",
    "runs_dir",
    "output_file",
    "log_file",
    "current_user",
    "new_run_id",
    "iso",
    "parse_iso",
    "write_atomic",
    "NotebookEntry",
    "TableEntry",
    "RunManifest",
    "write_manifest",
    "read_manifest",
    "read_run",
    "update_latest",
    "latest_run_id",
    "resolve_run",
    "list_runs",
    "effective_status",
    "RunRecord",
]

RUN_FILE = "run.json"
LATEST = "latest"


def runs_dir(root: str | Path) -> Path:
    """The folder of run records under a project root (``<root>/outputs/runs``)."""
    return Path(root) / "outputs" / "runs"


def output_file(key: str, attempt: int | None = None) -> str:
    """Where an execution's notebook is kept, relative to its run folder:
    ``<layer>/<table>[@month].ipynb``, or ``<table>.attempt-N.ipynb`` for an earlier, failed attempt."""
    return f"{key}.ipynb" if attempt is None else f"{key}.attempt-{attempt}.ipynb"


def log_file(key: str, attempt: int) -> str:
    """Where the kernel process's own output of one attempt is kept, relative to the run folder."""
    return f"logs/{key.replace('/', '__')}.{attempt}.log"


def new_run_id(now: dt.datetime | None = None) -> str:
    """A new, sortable run id such as ``20261125T203000Z-1a2b``."""
    moment = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


# -- the schema of run.json ----------------------------------------------------------------------

def _split(cls: type, data: Mapping[str, Any], what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A JSON object's known fields (for ``cls``) and the rest."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"unreadable run record: {what} is {type(data).__name__}, not an object")
    names = {f.name for f in fields(cls)} - {"extra"}
    return ({k: v for k, v in data.items() if k in names},
            {k: v for k, v in data.items() if k not in names})


@dataclass
class NotebookEntry:
    """One notebook execution in ``run.json`` (see the module doc for up-to-date entries).

    Attributes:
        name: ``<layer>/<table>``.
        key: the execution key (``silver/booking@2024-03`` for a per-month one).
        stage: the stage label (``interactive`` for a write made in JupyterLab).
        status: a :class:`~ridelake.core.protocol.Status` value.
        attempts: attempts made (0: it did not run).
        output: the executed notebook, relative to the project root (None: none kept).
        rows_written: rows its writes committed (from the receipts).
        error_cell: the failing cell's index in the executed notebook.
        params: the values it received.
        writes: table -> the snapshot it wrote; ``reads``: table -> the snapshot it read.
        attempt_log: one object per attempt (attempt, status, times, error, output).
        run_reason: why it ran (or ``up-to-date``); ``up_to_date_since``: the run it kept.
        peak_rss_mib: the kernel's peak resident memory (MiB) during the last attempt, where
            the engine measures it (warm kernels on Linux); else None.
        notes: what the notebook asked to be told in the run's summary (receipts ``op: note``,
            e.g. the columns of a delivery it ignored).
        extra: fields this version does not know (kept as read).
    """

    name: str
    key: str = ""
    stage: str = ""
    status: str = "pending"
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    output: str | None = None
    table: str | None = None
    rows_written: int | None = None
    error: str | None = None
    error_cell: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    writes: dict[str, Any] = field(default_factory=dict)
    reads: dict[str, Any] = field(default_factory=dict)
    attempt_log: list[dict[str, Any]] = field(default_factory=list)
    run_reason: str | None = None
    up_to_date_since: str | None = None
    notes: list[str] = field(default_factory=list)
    peak_rss_mib: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON object (every field, then the unknown ones)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out["status"] = str(self.status)
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "NotebookEntry":
        """Read one entry; missing fields take their defaults (an older layout)."""
        known, extra = _split(cls, data, "a notebook entry")
        known.setdefault("name", str(known.get("key") or "?").split("@", 1)[0])
        known.setdefault("key", known["name"])
        for name in ("params", "writes", "reads"):
            known[name] = dict(known.get(name) or {})
        known["attempt_log"] = list(known.get("attempt_log") or [])
        known["notes"] = [str(n) for n in known.get("notes") or []]
        return cls(**known, extra=extra)


@dataclass
class TableEntry:
    """One table a run moved without a notebook of its own (a rollback step, an interactive write).

    Attributes:
        table: the table.
        action: ``set-current`` or ``emptied`` (rollback), ``overwrite`` or ``append`` (a write).
        from_snapshot: its current snapshot before; ``to_snapshot``: after.
        rows_before: rows before (from the snapshot summary); ``rows_after``: after.
        note: why, or what a forced rollback undid (left out of the JSON when empty).
        extra: fields this version does not know.
    """

    table: str
    action: str
    from_snapshot: int | None = None
    to_snapshot: int | None = None
    rows_before: int | None = None
    rows_after: int | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON object (``note`` only when there is one)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("note", "extra")}
        return {**out, **({"note": self.note} if self.note else {}), **self.extra}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TableEntry":
        """Read one entry."""
        known, extra = _split(cls, data, "a table entry")
        known.setdefault("table", "?")
        known.setdefault("action", "?")
        return cls(**known, extra=extra)


#: Fields of :class:`RunManifest` written even when None (the rest only when set).
_ALWAYS = ("schema_version", "run_id", "status", "exit_code", "started_at", "finished_at", "duration_s",
           "command", "params", "host", "pid", "run_folder", "notebooks")


@dataclass
class RunManifest:
    """The content of one ``run.json``.

    Attributes:
        run_id: the run.
        status: ``running``, ``succeeded``, ``failed`` or ``interrupted``.
        exit_code: the command's exit status (None while running).
        started_at: ISO-8601 UTC (:func:`~ridelake.core.files.iso`); ``finished_at`` likewise.
        command: ``run``, ``bronze``, ``incremental``... ``rollback``, ``interactive``.
        params: the run's parameters (a rollback's: ``rolled_back_run``).
        argv, params_file, selectors, stages, from_failure, jobs, retries, retry_delay, force,
            peak_parallelism: how a runner command ran (left out when None).
        warehouse: the warehouse; ``catalog_uri``: the catalog when it is not the default.
        user: who ran it (interactive writes); ``host`` and ``pid``: where.
        run_folder: the run's folder, relative to the project root.
        notebooks: the notebook executions.
        tables: the tables a run moved without a notebook of its own (None: not such a run).
        skipped: tables a rollback left alone (``{table, reason}``).
        warnings: what a rollback wants the user to know; ``error``: why it failed.
        schema_version: the layout version (1: written before versions existed).
        extra: fields this version does not know (kept as read, written back).
    """

    run_id: str
    status: str = "running"
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    command: str = "run"
    argv: list[str] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    params_file: str | None = None
    selectors: list[str] | None = None
    stages: list[str] | None = None
    from_failure: str | None = None
    jobs: int | None = None
    retries: int | None = None
    retry_delay: float | None = None
    warehouse: str | None = None
    catalog_uri: str | None = None
    force: bool | None = None
    user: str | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int | None = field(default_factory=os.getpid)
    run_folder: str = ""
    notebooks: list[NotebookEntry] = field(default_factory=list)
    peak_parallelism: int | None = None
    tables: list[TableEntry] | None = None
    skipped: list[dict[str, Any]] | None = None
    warnings: list[str] | None = None
    error: str | None = None
    schema_version: int = RUN_SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON object: ``schema_version`` first, optional fields only when set, then the
        unknown ones."""
        out: dict[str, Any] = {"schema_version": self.schema_version}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("schema_version", "extra") or (value is None and f.name not in _ALWAYS):
                continue
            if f.name == "notebooks":
                value = [nb.to_json() for nb in value]
            elif f.name == "tables":
                value = [t.to_json() for t in value]
            out[f.name] = value
        return {**out, **{k: v for k, v in self.extra.items() if k not in out}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, default_version: int = 1) -> "RunManifest":
        """Read a record.

        Args:
            data: the JSON object.
            default_version: the version of a record without ``schema_version`` (1: an old file).

        Raises:
            ConfigError: not an object, or an entry that is not one.
        """
        known, extra = _split(cls, data, "the record")
        known.setdefault("run_id", "?")
        known.setdefault("schema_version", default_version)
        known["params"] = dict(known.get("params") or {})
        known["notebooks"] = [NotebookEntry.from_json(nb) for nb in known.get("notebooks") or []]
        if known.get("tables") is not None:
            known["tables"] = [TableEntry.from_json(t) for t in known["tables"]]
        for name in ("host", "pid", "run_folder"):  # an old or hand-made record may lack them
            known.setdefault(name, None if name == "pid" else "")
        return cls(**known, extra=extra)

    def notebook(self, key: str) -> NotebookEntry | None:
        """The entry of one execution key, or None."""
        return next((nb for nb in self.notebooks if nb.key == key), None)


def write_manifest(run_dir: str | Path, data: RunManifest | Mapping[str, Any]) -> Path:
    """Write ``run.json`` atomically.

    Args:
        run_dir: the run folder.
        data: the record: a :class:`RunManifest` (what ridelake writes), or a mapping written as
            it is (tests and tools that fabricate records).

    Returns:
        The file written.
    """
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    doc = data.to_json() if isinstance(data, RunManifest) else dict(data)
    return write_atomic(folder / RUN_FILE, json.dumps(doc, indent=2, default=str) + "\n")


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """Read a run folder's ``run.json``.

    Raises:
        ConfigError: no readable record there.
    """
    path = Path(run_dir) / RUN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no run record at {path}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"unreadable run record {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"unreadable run record {path}: not an object")
    return data


def read_run(run_dir: str | Path) -> RunManifest:
    """Read a run folder's ``run.json`` as a :class:`RunManifest` (any version).

    Raises:
        ConfigError: no readable record there.
    """
    data = read_manifest(run_dir)
    try:
        return RunManifest.from_json(data)
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"unreadable run record {Path(run_dir) / RUN_FILE}: {exc}") from None


def update_latest(runs: str | Path, run_id: str) -> Path:
    """Point ``<runs>/latest`` at a run (symlink, or a text file where symlinks fail).

    Args:
        runs: the runs folder.
        run_id: the run.

    Returns:
        The ``latest`` path.
    """
    folder = Path(runs)
    folder.mkdir(parents=True, exist_ok=True)
    latest = folder / LATEST
    tmp = folder / f".{LATEST}.{os.getpid()}.{secrets.token_hex(2)}"
    try:
        os.symlink(run_id, tmp, target_is_directory=True)
        os.replace(tmp, latest)
        return latest
    except (OSError, NotImplementedError):
        tmp.unlink(missing_ok=True)
    if latest.is_dir() and not latest.is_symlink():
        raise ConfigError(f"{latest} is a folder; remove it so it can point at the newest run")
    tmp.write_text(run_id + "\n", encoding="utf-8")
    os.replace(tmp, latest)
    return latest


def latest_run_id(runs: str | Path) -> str | None:
    """The run ``latest`` points at, or None."""
    latest = Path(runs) / LATEST
    if latest.is_symlink():
        return Path(os.readlink(latest)).name
    if latest.is_file():
        text = latest.read_text(encoding="utf-8").strip()
        return text or None
    return None


def resolve_run(runs: str | Path, ref: str | None = None) -> Path:
    """Find a run folder.

    Args:
        runs: the runs folder.
        ref: a run id, a unique prefix of one, ``latest`` or None (latest).

    Returns:
        The run folder.

    Raises:
        ConfigError: no such run, or an ambiguous prefix.
    """
    folder = Path(runs)
    if ref in (None, "", LATEST):
        run_id = latest_run_id(folder)
        if run_id is None:
            raise ConfigError(f"no runs recorded under {folder} yet")
        return folder / run_id
    assert ref is not None
    if (folder / ref / RUN_FILE).is_file():
        return folder / ref
    matches = sorted(p for p in _run_folders(folder) if p.name.startswith(ref))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ConfigError(f"no run {ref!r} under {folder} (see `python -m ridelake runs`)")
    raise ConfigError(f"run id {ref!r} is ambiguous: {', '.join(p.name for p in matches[:5])}")


def _run_folders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir()
            if p.is_dir() and not p.is_symlink() and (p / RUN_FILE).is_file()]


def list_runs(runs: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """The run records, newest first (unreadable ones are left out).

    Args:
        runs: the runs folder.
        limit: at most this many.

    Returns:
        The ``run.json`` contents.
    """
    records = []
    for path in sorted(_run_folders(Path(runs)), key=lambda p: p.name, reverse=True):
        try:
            records.append(read_manifest(path))
        except ConfigError:
            continue
        if limit is not None and len(records) >= limit:
            break
    return records


def effective_status(run: dict[str, Any]) -> str:
    """A run's status, with ``killed`` for a ``running`` record whose process is gone (same host)."""
    status = str(run.get("status", "?"))
    if status == "running" and run.get("host") == socket.gethostname():
        pid = run.get("pid")
        if isinstance(pid, int) and not pid_alive(pid):
            return "killed"
    return status


class RunRecord(Listener):
    """One run's folder and ``run.json``, kept in step with the scheduler.

    It is a scheduler :class:`~ridelake.core.scheduler.Listener`: ``run.json`` is rewritten whenever
    a notebook ends, is retried or is skipped. Use it from the scheduling thread only.

    Args:
        root: the project root (paths in the record are relative to it).
        run_id: the run.
        header: run-level fields recorded after the standard ones (command, params, ...).
    """

    def __init__(self, root: str | Path, run_id: str, header: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.run_id = run_id
        self.dir = runs_dir(self.root) / run_id
        self.entries: dict[str, dict[str, Any]] = {}
        self.states: dict[str, NodeState] = {}
        self.started = time.time()
        self.finished: float | None = None
        self.status = "running"
        self.exit_code: int | None = None
        #: the record as JSON (a :class:`RunManifest`'s; run-level fields may be set here between saves)
        self.data: dict[str, Any] = RunManifest.from_json({
            **(header or {}), "run_id": run_id, "status": "running", "started_at": iso(self.started),
            "run_folder": relative(self.dir, self.root),
        }, default_version=RUN_SCHEMA_VERSION).to_json()

    # -- where things go ------------------------------------------------------------------
    def output(self, key: str) -> Path:
        """The executed notebook: ``<run>/<layer>/<table>[@month].ipynb``."""
        return self.dir / output_file(key)

    def attempt_output(self, key: str, attempt: int) -> Path:
        """Where an earlier, failed attempt's notebook is kept (``<table>.attempt-N.ipynb``)."""
        return self.dir / output_file(key, attempt)

    def receipt(self, key: str, attempt: int) -> Path:
        """The catalog receipt file of one attempt."""
        return self.dir / "receipts" / f"{key.replace('/', '__')}.{attempt}.jsonl"

    def log(self, key: str, attempt: int) -> Path:
        """The kernel process's own output for one attempt."""
        return self.dir / log_file(key, attempt)

    # -- content --------------------------------------------------------------------------
    def add(self, key: str, *, name: str, table: str | None, params: dict[str, Any], stage: str) -> None:
        """Describe a notebook execution of this run (recorded as ``pending`` until it runs)."""
        self.entries[key] = {"name": name, "key": key, "stage": stage, "table": table, "params": dict(params)}
        self.states.setdefault(key, NodeState(key))

    def annotate(self, key: str, **fields: Any) -> None:
        """Note facts about an execution for its ``run.json`` entry (``run_reason``,
        ``up_to_date_since``)."""
        self.entries[key].update(fields)

    def track(self, states: dict[str, NodeState]) -> None:
        """Follow the scheduler's live states for these keys."""
        self.states.update(states)

    def notebook(self, key: str) -> dict[str, Any]:
        """The ``run.json`` entry of one notebook execution."""
        entry, state = self.entries[key], self.states[key]
        out = state.outcome
        receipts = out.receipts if out is not None else []
        writes = {r["table"]: r.get("snapshot_id") for r in receipts if r.get("op") == "write" and "table" in r}
        reads: dict[str, Any] = {}
        for r in receipts:
            if r.get("op") == "read" and "table" in r:
                reads.setdefault(r["table"], r.get("snapshot_id"))
        rows = sum(int(r.get("rows_written") or 0) for r in receipts if r.get("op") == "write") if out else None
        if state.status == UP_TO_DATE:
            rows = 0
        output = self.output(key)
        log = []
        for a in state.attempts:
            path = output if a.attempt == len(state.attempts) else self.attempt_output(key, a.attempt)
            log.append({"attempt": a.attempt, "status": SUCCEEDED if a.ok else FAILED,
                        "started_at": iso(a.started_at), "finished_at": iso(a.finished_at),
                        "duration_s": round(a.finished_at - a.started_at, 3), "error": a.error,
                        "output": relative(path, self.root) if path.exists() else None})
        return NotebookEntry(
            name=entry["name"],
            key=key,
            stage=entry["stage"],
            status=state.status,
            attempts=len(state.attempts),
            started_at=iso(state.started_at),
            finished_at=iso(state.finished_at),
            duration_s=round(state.duration_s, 3) if state.duration_s is not None else None,
            output=relative(output, self.root) if output.exists() else None,
            table=entry["table"],
            rows_written=rows,
            error=state.error,
            error_cell=out.error_cell if out is not None and not out.ok else None,
            params=entry["params"],
            writes=writes,
            reads=reads,
            attempt_log=log,
            # why it ran (or "up-to-date"), and for an up-to-date one the run whose result it kept
            run_reason=entry.get("run_reason"),
            up_to_date_since=entry.get("up_to_date_since") if state.status == UP_TO_DATE else None,
            notes=list(dict.fromkeys(str(r["text"]) for r in receipts if r.get("op") == "note" and r.get("text"))),
            peak_rss_mib=out.peak_rss_mib if out is not None else None,
        ).to_json()

    def save(self) -> None:
        """Rewrite ``run.json`` (atomically)."""
        now = self.finished
        self.data.update({
            "status": self.status,
            "exit_code": self.exit_code,
            "finished_at": iso(now),
            "duration_s": round(now - self.started, 3) if now else None,
            "notebooks": [self.notebook(k) for k in self.entries],
        })
        doc = RunManifest.from_json(self.data, default_version=RUN_SCHEMA_VERSION)
        write_manifest(self.dir, doc)
        self.data = doc.to_json()

    def finish(self, status: str, exit_code: int) -> None:
        """Close the record with the run's final status."""
        self.finished, self.status, self.exit_code = time.time(), status, exit_code
        self.save()

    # -- scheduler hooks ------------------------------------------------------------------
    def on_retry(self, state: NodeState, delay: float) -> None:
        self.save()

    def on_finish(self, state: NodeState) -> None:
        self.save()

    def on_skip(self, state: NodeState) -> None:
        self.save()

    def on_up_to_date(self, state: NodeState) -> None:
        self.save()
