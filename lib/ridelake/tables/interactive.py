"""Writes made from a notebook opened by hand, tagged and recorded like a run's.

A notebook opened in JupyterLab runs with ``write = False`` and only shows what it would write.
When the user sets ``write = True``, its write (outside the runner: no ``RIDELAKE_RUN_ID``) goes
through :func:`write`, which makes it a run of its own:

- **run id** ``interactive-<UTC time>-<4 hex>``; the **notebook** is the one whose ``writes`` in
  ``notebooks/pipeline.yaml`` include the table; its **parameters** are the values the kernel
  holds for the names its parameters cell declares, completed as the runner completes them
  (:func:`runner_params`: an absolute ``source_file``, ``extraction_date`` today when None,
  ``write`` True), so that their hash is the one a run of the same values would have;
- the commit carries the run id, notebook, parameters hash, user and host, like a runner's;
- the **run record** ``outputs/runs/<run id>/run.json`` (command ``interactive``; the notebook,
  its parameters, what it read, the table and snapshots written), its report, and ``latest``;
- the **freshness state** gets the entry a successful run of that notebook would leave
  (:func:`ridelake.core.uptodate.record_success`), so the next ``make pipeline`` does not rerun
  the notebook but reruns what reads its new snapshot.

It holds the warehouse lock while it writes and records (a run in progress: it refuses, naming
the run). ``ridelake history`` shows the snapshot, ``ridelake rollback <run id>`` undoes it.

The fingerprint covers the notebook file as saved: run it with ``write = True`` without saving
(or save it back with ``write = False``), else the next run sees a changed notebook.
"""

from __future__ import annotations

import ast
import datetime as dt
import io
import sys
import time
from dataclasses import asdict
from typing import Any, Callable, Mapping

from ridelake.core.dag import NotebookSpec, Pipeline, load_pipeline
from ridelake.core.files import current_user, iso, relative
from ridelake.core.manifest import (
    NotebookEntry,
    RunManifest,
    TableEntry,
    new_run_id,
    runs_dir,
    update_latest,
    write_manifest,
)
from ridelake.core.protocol import Status
from ridelake.core.report import write_after_run
from ridelake.core.uptodate import params_hash, record_success
from ridelake.errors import CatalogError
from ridelake.tables import catalog, config, writes
from ridelake.tables.adapter import WRITE, RideBookings

__all__ = ["RUN_PREFIX", "STAGE", "new_interactive_run_id", "notebook_for", "notebook_values", "runner_params",
           "write"]

#: How an interactive run's id starts (and its ``command`` in run.json).
RUN_PREFIX = "interactive"
#: The stage label of its notebook entry.
STAGE = "interactive"


def new_interactive_run_id(now: dt.datetime | None = None) -> str:
    """``interactive-20261125T203000Z-1a2b``: sortable among runs, recognisable at a glance."""
    return f"{RUN_PREFIX}-{new_run_id(now)}"


def notebook_for(pipeline: Pipeline, table: str) -> NotebookSpec:
    """The notebook that writes ``table`` according to pipeline.yaml.

    Raises:
        CatalogError: no notebook (or more than one) writes it.
    """
    names = pipeline.writers(table)
    if len(names) != 1:
        raise CatalogError(f"{table}: {'no notebook' if not names else 'several notebooks'} in "
                           f"{pipeline.source} write(s) it ({', '.join(names) or 'none'}), so a write from a "
                           "notebook cannot be recorded as that notebook's run")
    return pipeline.spec(names[0])


def _cell_defaults(spec: NotebookSpec) -> dict[str, Any]:
    """The values the parameters cell assigns (literals only), read from the saved notebook."""
    # papermill is heavy to import; only a write outside a kernel (no live values) needs it
    import papermill

    out: dict[str, Any] = {}
    for name, info in papermill.inspect_notebook(str(spec.path)).items():
        try:
            out[name] = ast.literal_eval(str(info.get("default")))
        except (ValueError, SyntaxError):
            out[name] = info.get("default")
    return out


def notebook_values(spec: NotebookSpec, namespace: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values of the notebook's parameters as it ran.

    Args:
        spec: the notebook.
        namespace: its variables (default: the IPython user namespace of this kernel); a name it
            lacks takes the parameters cell's value from the saved notebook.

    Returns:
        Parameter name -> value, for every name the parameters cell declares.
    """
    if namespace is None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
        namespace = shell.user_ns if shell is not None else {}
    missing = [n for n in spec.parameters if n not in namespace]
    defaults = _cell_defaults(spec) if missing else {}
    return {n: namespace[n] if n in namespace else defaults.get(n) for n in spec.parameters}


def runner_params(project: RideBookings, spec: NotebookSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a run would pass the notebook for these values (their hash is the
    fingerprint's ``params``): validated and completed by the project as ``-p`` overrides (a
    relative ``source_file`` is looked up in the working directory, the notebook's folder, then
    under the project root, as the notebook itself does), with ``write`` True."""
    given = {k: v for k, v in values.items() if k in spec.parameters and k != WRITE}
    resolved = project.resolve_params({}, given)
    return {k: resolved[k] for k in spec.parameters if k in resolved}


def _table_state(identifier: str) -> tuple[int | None, int]:
    """The table's current snapshot and its rows (from the snapshot summary)."""
    snap = catalog.load_table(identifier).current_snapshot()
    if snap is None:
        return None, 0
    props = snap.summary.additional_properties if snap.summary else {}
    return snap.snapshot_id, int(props.get("total-records", 0) or 0)


def _reads(receipts: list[dict[str, Any]]) -> dict[str, Any]:
    """Table -> the snapshot first read (as a run records its notebooks' reads)."""
    out: dict[str, Any] = {}
    for r in receipts:
        out.setdefault(r["table"], r.get("snapshot_id"))
    return out


def write(identifier: str, do_write: Callable[[dict[str, str]], catalog.WriteResult], *,
          namespace: Mapping[str, Any] | None = None, project: RideBookings | None = None) -> catalog.WriteResult:
    """Make one write of a notebook run by hand, and record it as an interactive run.

    Args:
        identifier: the table written.
        do_write: commits the write with the snapshot properties it is given (run id, notebook,
            parameters hash) and returns its :class:`~ridelake.tables.catalog.WriteResult`.
        namespace: the notebook's variables (default: this kernel's).
        project: the project (default :class:`~ridelake.tables.adapter.RideBookings` of the root).

    Returns:
        The write's result.

    Raises:
        LockError: a run holds the warehouse lock (nothing is written).
        CatalogError: pipeline.yaml names no single writer of the table (nothing is written).
    """
    project = project or RideBookings()
    root = project.root
    pipe = load_pipeline(root, strict=False)
    spec = notebook_for(pipe, identifier)
    params = runner_params(project, spec, notebook_values(spec, namespace))
    run_id = new_interactive_run_id()
    warehouse = project.warehouse()
    folder = runs_dir(root) / run_id
    lock = project.lock(run_id)
    lock.acquire(wait=0.0)
    try:
        before, rows_before = _table_state(identifier)
        started = time.time()
        result = do_write({config.PROP_RUN_ID: run_id, config.PROP_NOTEBOOK: spec.name,
                           config.PROP_PARAMS_HASH: params_hash(params)})
        finished = time.time()
        _, rows_after = _table_state(identifier)
        read = [r for r in catalog.session_receipts(warehouse) if r.get("op") == "read" and "table" in r]
        wrote = {"op": "write", **asdict(result)}
        record = RunManifest(
            run_id=run_id, status="succeeded", exit_code=0, started_at=iso(started), finished_at=iso(finished),
            duration_s=round(finished - started, 3), command=RUN_PREFIX, params=params, warehouse=warehouse,
            catalog_uri=project.catalog(),
            user=current_user(), run_folder=relative(folder, root),
            notebooks=[NotebookEntry(
                name=spec.name, key=spec.name, stage=STAGE, status=Status.SUCCEEDED.value, attempts=1,
                started_at=iso(started), finished_at=iso(finished), duration_s=round(finished - started, 3),
                table=identifier, rows_written=result.rows_written, params=params,
                writes={identifier: result.snapshot_id}, reads=_reads(read),
                run_reason="written from the notebook, opened by hand (write = True)")],
            tables=[TableEntry(identifier, result.operation, before, result.snapshot_id, rows_before, rows_after)],
        )
        notes: list[str] = []
        try:
            write_manifest(folder, record)
            update_latest(runs_dir(root), run_id)
        except OSError as exc:
            notes.append(f"warning: could not write its run record ({exc}); the snapshot still carries "
                         f"run id {run_id}")
        entry = record_success(pipe, project.state(), project.snapshots(),
                               key=spec.name, params=params, run_id=run_id, receipts=[*read, wrote],
                               file_params=project.file_params)
        if entry is None:
            notes.append(f"note: could not record {spec.name} as up-to-date; the next run reruns it")
    finally:
        lock.release()
    write_after_run(folder, io.StringIO(), pipe)  # index.html beside run.json; a failure only warns
    writes.show(result)
    print(f"recorded as run {run_id} ({spec.name}, by {record.user or '?'} on {record.host}): "
          f"{relative(folder / 'run.json', root)}\n"
          f"undo with: ridelake rollback {run_id}   (make rollback RUN={run_id})")
    for note in notes:
        print(note)
    return result
