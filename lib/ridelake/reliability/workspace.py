"""A throw-away project for the fault suite: its copy of the project, its warehouse, the ridelake
command line run in it (to the end, or started and killed), and its tables read back.

Every command runs as a user would run it, ``python -m ridelake ...`` in a subprocess, with
``RIDELAKE_HOME`` and ``RIDELAKE_WAREHOUSE`` pointing at the copy, and ``lib/`` copied into it and
imported first (by the runner and its kernels), so edits to the checkout during the suite change
nothing. The warehouse always sits at the same path: its tables hold absolute paths, so the
reference's warehouse is saved once and copied back into place for scenarios that start from it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
import psutil
from pyiceberg.catalog.sql import SqlCatalog

from ridelake.core.manifest import read_manifest
from ridelake.ops.lineage import load_or_none, snapshot_props
from ridelake.tables import config
from ridelake.tables.generate import write_csv
from ridelake.tables.schemas import TABLES

__all__ = [
    "EXTRACTION_DATE",
    "IGNORED_COLUMNS",
    "CliRun",
    "Started",
    "Workspace",
    "stop_all",
    "compare_tables",
    "canonical_rows",
]

#: The extraction date every run of the suite passes (a fixed one: reruns must match the reference).
EXTRACTION_DATE = "2024-12-31"

#: Columns left out of every comparison: they say when a row was written, not what it holds.
IGNORED_COLUMNS = frozenset({"created_at", "updated_at"})

_RUN_FOLDER = re.compile(r"run folder:\s+outputs/runs/(\S+)")


@dataclass
class CliRun:
    """One ``ridelake`` command and what came of it.

    Attributes:
        argv: the arguments after ``python -m ridelake``.
        code: the exit status (None when the suite killed the process).
        stdout: what it printed on stdout.
        stderr: what it printed on stderr.
        manifest: its ``run.json`` (None when the command made no run record).
        seconds: wall time.
    """

    argv: list[str]
    code: int | None
    stdout: str
    stderr: str
    manifest: dict[str, Any] | None
    seconds: float

    @property
    def text(self) -> str:
        """stdout and stderr together."""
        return self.stdout + "\n" + self.stderr

    def notebooks(self) -> dict[str, dict[str, Any]]:
        """The run record's notebooks by key (empty without a record)."""
        return {nb["key"]: nb for nb in (self.manifest or {}).get("notebooks", [])}

    def first_error(self) -> str:
        """The first line on stderr that reads like an error, else the last non-empty line."""
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        for ln in lines:
            if ln.startswith(("ridelake: ", "✗ ")) or "Error" in ln:
                return ln
        return lines[-1] if lines else ""


#: Commands started and not yet finished (see :func:`stop_all`).
_LIVE: set["Started"] = set()


def stop_all() -> None:
    """Kill every command the suite started that has not finished, kernels included: they run in
    sessions of their own, so an interrupted suite would otherwise leave them running."""
    for started in list(_LIVE):
        started.kill()
        _LIVE.discard(started)


class Started:
    """A ``ridelake`` command running in the background (its own session), read line by line."""

    def __init__(self, workspace: "Workspace", argv: Sequence[str]) -> None:
        self.workspace = workspace
        self.argv = list(argv)
        self.began = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "ridelake", *self.argv], cwd=workspace.project,
                                     env=workspace.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self._changed = threading.Condition()
        self.killed = False
        self.survivors: list[int] = []  # processes still alive after kill()
        _LIVE.add(self)
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, lines: list[str]) -> None:
        for raw in iter(stream.readline, b""):
            with self._changed:
                lines.append(raw.decode("utf-8", "replace"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 600) -> bool:
        """Wait until a stderr line matches ``pattern`` (True), or the command ends first (False)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.err[seen:]:
                    if rx.search(line):
                        return True
                seen = len(self.err)
                if self.proc.poll() is not None and not any(r.is_alive() for r in self._readers):
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.2))

    def run_id(self, timeout: float = 600) -> str | None:
        """The run's id, once the runner has announced it ("run <id>: ..." on stderr)."""
        if not self.wait_for(r"^run \S+: ", timeout):
            return None
        with self._changed:
            return next((m.group(1) for ln in self.err if (m := re.match(r"^run (\S+): ", ln))), None)

    def wait_for_cell(self, notebook: str, marker: str, before: int = 0, timeout: float = 600) -> bool:
        """Wait until the notebook's executed copy shows the code cell whose source holds
        ``marker`` (or the one ``before`` code cells ahead of it) running (papermill saves the
        notebook as each cell starts) or done; False when the command ends first."""
        run_id = self.run_id(timeout)
        if run_id is None:
            return False
        path = self.workspace.project / "outputs" / "runs" / run_id / f"{notebook}.ipynb"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _cell_started(path, marker, before):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def finished_notebooks(self) -> list[str]:
        """The notebooks reported done (``✓ name``) so far."""
        with self._changed:
            return [m.group(1) for ln in self.err if (m := re.match(r"\s*✓ (\S+)", ln))]

    def kernels(self) -> list[psutil.Process]:
        """The Jupyter kernels this command started (they run in sessions of their own)."""
        try:
            procs = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        out = []
        for p in procs:
            try:
                if any("ipykernel" in part for part in p.cmdline()):
                    out.append(p)
            except psutil.Error:
                continue
        return out

    def kill_kernels(self) -> int:
        """SIGKILL this command's kernels (not the command); returns how many."""
        kernels = self.kernels()
        for p in kernels:
            _kill(p)
        _wait_gone(kernels)
        return len(kernels)

    def kill(self) -> None:
        """SIGKILL the command's whole process group and every process it started, kernels included
        (they live in sessions of their own and would otherwise run on), and wait until all are gone."""
        try:
            procs = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            procs = []
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for p in procs:
            _kill(p)
        self.proc.wait()
        _wait_gone(procs)
        self.killed = True
        self.survivors = [p.pid for p in procs if _alive(p)]

    def finish(self, timeout: float = 1800) -> CliRun:
        """Wait for the command to end (killing it after ``timeout``) and collect what it did."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        _LIVE.discard(self)
        for reader in self._readers:
            reader.join(timeout=30)
        code = None if self.killed else self.proc.returncode
        stdout, stderr = "".join(self.out), "".join(self.err)
        return CliRun(self.argv, code, stdout, stderr, self.workspace.manifest_of(stdout),
                      time.monotonic() - self.began)


def _cell_started(path: Path, marker: str, before: int = 0) -> bool:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # not there yet, or caught mid-write
        return False
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    for i, cell in enumerate(code):
        source = cell.get("source", "")
        if marker in ("".join(source) if isinstance(source, list) else source):
            target = code[max(0, i - before)]
            return target.get("metadata", {}).get("papermill", {}).get("status") in ("running", "completed")
    return False


def _kill(p: psutil.Process) -> None:
    try:
        pgid = os.getpgid(p.pid)
        if pgid == p.pid:  # a session/group of its own (a kernel): everything in it
            os.killpg(pgid, signal.SIGKILL)
        else:
            p.kill()
    except (ProcessLookupError, psutil.Error, OSError):
        pass


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(procs: Sequence[psutil.Process], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        while _alive(p) and time.monotonic() < deadline:
            time.sleep(0.05)


class Workspace:
    """The throw-away project: ``<root>/project`` (notebooks, params, lib, data, outputs) and
    ``<root>/warehouse``.

    Args:
        root: an empty folder of its own.
        source: the checkout to copy (its ``notebooks/``, ``params/`` and the ``lib/`` ridelake runs from).
    """

    def __init__(self, root: Path, source: Path) -> None:
        self.root = Path(root)
        self.source = Path(source)
        self.project = self.root / "project"
        self.warehouse = self.root / "warehouse"
        self.saved = self.root / "reference-warehouse"
        self.data = self.project / "data"
        self.base_file = self.data / "ncr_ride_bookings.csv"

    def create(self, rows: int, seed: int) -> dict[str, Any]:
        """Copy the project and generate the valid delivery; returns the generator's summary."""
        lib = Path(__file__).resolve().parents[2]
        shutil.copytree(self.source / "notebooks", self.project / "notebooks")
        shutil.copytree(self.source / "params", self.project / "params")
        shutil.copytree(lib, self.project / "lib", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        self.pristine = self.root / "pristine-notebooks"
        shutil.copytree(self.source / "notebooks", self.pristine)
        return write_csv(self.base_file, rows=rows, seed=seed)

    def env(self) -> dict[str, str]:
        """The environment of every command: this project and warehouse, this copy of lib/, no
        kernel pool, no other RIDELAKE_* setting (a catalog URL, a run's variables) from the caller."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RIDELAKE_")}
        # each command's kernels are its own (children it can lose to a kill), not pooled ones
        # left by the previous command: the kill points are about one command's processes
        env.update(RIDELAKE_HOME=str(self.project), RIDELAKE_WAREHOUSE=str(self.warehouse), RIDELAKE_KERNEL_IDLE="0",
                   PYTHONPATH=os.pathsep.join([str(self.project / "lib"),
                                               *filter(None, [os.environ.get("PYTHONPATH")])]))
        return env

    def relative(self, text: str) -> str:
        """Paths inside the project shown relative to it (as its user sees them), others under the
        workspace as ``<workspace>``."""
        return text.replace(str(self.project) + "/", "").replace(str(self.root), "<workspace>")

    # -- commands ---------------------------------------------------------------------------------

    def cli(self, *argv: str, timeout: float = 1800) -> CliRun:
        """Run ``python -m ridelake ARGV`` in the project to its end."""
        return self.start(*argv).finish(timeout)

    def start(self, *argv: str) -> Started:
        """Start ``python -m ridelake ARGV`` in the project, in the background."""
        return Started(self, argv)

    def manifest_of(self, stdout: str) -> dict[str, Any] | None:
        """The run record a command's summary names ("run folder: ..."), if any."""
        found = _RUN_FOLDER.findall(stdout)
        if not found:
            return None
        folder = self.project / "outputs" / "runs" / found[-1]
        try:
            return read_manifest(folder)
        except Exception:  # a killed run may leave no record or half of one
            return None

    def run_folders(self) -> int:
        """How many run records the project holds."""
        runs = self.project / "outputs" / "runs"
        return sum(1 for p in runs.iterdir() if p.is_dir() and not p.is_symlink()) if runs.is_dir() else 0

    # -- the warehouse ----------------------------------------------------------------------------

    def save_reference(self) -> None:
        """Keep a copy of the warehouse as it is (the reference run's)."""
        shutil.rmtree(self.saved, ignore_errors=True)
        shutil.copytree(self.warehouse, self.saved, symlinks=True)

    def reset(self, reference: bool) -> None:
        """Empty the warehouse, or put the reference's back in place; restore the notebooks."""
        shutil.rmtree(self.warehouse, ignore_errors=True)
        if reference:
            shutil.copytree(self.saved, self.warehouse, symlinks=True)
        self.reset_notebooks()

    def reset_notebooks(self) -> None:
        """Put the project's notebooks back as they were copied (undo a scenario's edits)."""
        shutil.rmtree(self.project / "notebooks")
        shutil.copytree(self.pristine, self.project / "notebooks")

    def _catalog(self) -> Any:
        uri = f"sqlite:///{self.warehouse / 'catalog.db'}"
        return SqlCatalog(config.CATALOG_NAME, uri=uri, warehouse=self.warehouse.as_uri(), init_catalog_tables="false")

    def tables(self, names: Sequence[str] | None = None) -> dict[str, pd.DataFrame | None]:
        """The tables' current rows (None: no such table or never written), read with a catalog
        opened for this call only (the warehouse may be replaced between calls)."""
        names = list(names or TABLES)
        if not (self.warehouse / "catalog.db").is_file():
            return {n: None for n in names}
        cat = self._catalog()
        try:
            out: dict[str, pd.DataFrame | None] = {}
            for name in names:
                table = load_or_none(cat, name)
                out[name] = (table.scan().to_arrow().to_pandas()
                             if table is not None and table.current_snapshot() is not None else None)
            return out
        finally:
            cat.engine.dispose()

    def snapshots(self, name: str) -> list[tuple[dict[str, str], str]]:
        """A table's snapshots, oldest first: their ridelake properties (run id, notebook...) and
        operation (``append``, ``delete``, ``overwrite``)."""
        if not (self.warehouse / "catalog.db").is_file():
            return []
        cat = self._catalog()
        try:
            table = load_or_none(cat, name)
            if table is None:
                return []
            return [(snapshot_props(s), s.summary.operation.value if s.summary is not None else "")
                    for s in table.snapshots()]
        finally:
            cat.engine.dispose()


def canonical_rows(frame: pd.DataFrame | None, ignore: frozenset[str] | set[str] = frozenset()) -> Counter:
    """A table's rows as a multiset of text tuples, without the ignored columns (and never
    ``created_at``/``updated_at``), so two tables compare whatever their row order and dtypes."""
    if frame is None:
        return Counter()
    cols = sorted(c for c in frame.columns if c not in IGNORED_COLUMNS and c not in ignore)
    if not cols:
        return Counter({(): len(frame)})
    text = frame[cols].astype(object).where(frame[cols].notna(), None).astype(str)
    return Counter(map(tuple, text.itertuples(index=False, name=None)))


def compare_tables(reference: Mapping[str, pd.DataFrame | None], current: Mapping[str, pd.DataFrame | None],
                   names: Sequence[str] | None = None,
                   ignore: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """What differs between two sets of tables (empty: equal).

    Args:
        reference: table -> rows (None: never written).
        current: the same for the warehouse under test.
        names: the tables to compare (default every table of ``reference``).
        ignore: columns to leave out besides ``created_at``/``updated_at``.

    Returns:
        One line per differing table: rows only in the reference, only here, and an example.
    """
    diffs = []
    for name in names or list(reference):
        want, got = canonical_rows(reference.get(name), ignore), canonical_rows(current.get(name), ignore)
        if want == got:
            continue
        missing, extra = want - got, got - want
        example = next(iter(extra or missing), ())
        diffs.append(f"{name}: {sum(missing.values())} reference row(s) missing, {sum(extra.values())} "
                     f"other row(s){f', e.g. {example[:6]}' if example else ''}")
    return diffs

