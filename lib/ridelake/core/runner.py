"""The coordinator of a run: parameters, plan, lock, schedule, record, summarise.

:func:`execute` is deliberately thin; each step lives in its own module:

1. read the DAG (:mod:`ridelake.core.dag`) and choose notebooks (:mod:`ridelake.core.selection`);
2. resolve the parameters once per run (:func:`resolve_params`): the params file plus
   ``-p key=value`` overrides; ``extraction_date: null`` becomes today's UTC date, a relative
   ``source_file`` an absolute path; each notebook receives only the names it declares, and an
   override no planned notebook declares is a :class:`~ridelake.errors.ParameterError`;
3. take the warehouse lock (:mod:`ridelake.core.lock`); the project bootstraps its storage once,
   before the first notebook starts (a run with nothing to do never touches it);
4. run the plan's stages with the :class:`~ridelake.core.scheduler.Scheduler` on an
   :class:`~ridelake.core.engine.Executor` (by default papermill in threads); as each notebook
   becomes ready the scheduler asks :class:`~ridelake.core.uptodate.UpToDate` whether it must run:
   one whose notebook, ``lib/``, parameters, source file and input snapshots are unchanged since
   its last success on this warehouse, and whose tables are still at the snapshots it produced,
   is ``up-to-date`` and does not run (``force`` runs everything selected);
5. keep ``outputs/runs/<run_id>/`` with the executed notebooks and ``run.json``
   (:mod:`ridelake.core.manifest`), rewritten as notebooks finish; point ``latest`` at it;
6. print the summary (:mod:`ridelake.core.progress`) and return the exit status.

A run is one or more **stages** run one after the other under one run id and one lock. Most
commands have one stage; ``incremental`` has two: bronze for the delivery, then silver and gold,
where the silver notebooks that declare ``extraction_month`` run once per booking month the
delivery touched (``silver/booking@2024-03``, one month after the other per notebook).

Exit statuses: 0 every notebook succeeded or was up-to-date, 1 a notebook failed or was skipped,
130 interrupted.
Errors before anything runs (bad selector, parameter, lock) raise a RidelakeError.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TextIO

import yaml

from ridelake.core.dag import NotebookSpec, Pipeline, execution_deps, key_month, layered, load_pipeline
from ridelake.core.engine import Engine, Executor, Task, ThreadExecutor, make_engine
from ridelake.errors import ConfigError, ParameterError, SelectionError
from ridelake.core.lock import lock_for
from ridelake.core.project import Project
from ridelake.core.protocol import ENV, RunStatus
from ridelake.core.files import read_yaml_mapping, relative
from ridelake.core.manifest import LATEST, RunRecord, new_run_id, read_manifest, resolve_run, runs_dir, update_latest
from ridelake.core.progress import Progress, reason_text, summary_table
from ridelake.core.redact import redact
from ridelake.core.scheduler import (
    FAILED,
    PENDING,
    RETRYING,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    UP_TO_DATE,
    Listener,
    MultiListener,
    Node,
    Scheduler,
)
from ridelake.core.selection import named, select
from ridelake.core.uptodate import Decision, UpToDate, params_hash, state_for

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "Stage",
    "RunRequest",
    "PlannedNode",
    "RunResult",
    "resolve_params",
    "plan_stage",
    "execute",
    "last_durations",
]

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
_RERUN = {FAILED, SKIPPED, PENDING, RUNNING, RETRYING}


@dataclass(frozen=True)
class Stage:
    """One step of a run.

    Attributes:
        label: shown in messages and recorded per notebook (``bronze``, ``silver+gold``).
        selectors: which notebooks (see :mod:`ridelake.core.selection`; none = all).
        params: values forced for this stage, over the run's parameters.
        per_month: notebooks declaring the project's partition parameter (``extraction_month``)
            run once per partition the project names (:meth:`~ridelake.core.project.Project.partitions`;
            for ride bookings the months the delivery touched)...
        max_months: ...when there are at most this many; beyond, one execution rebuilds every
            month (each execution has a fixed cost, so a delivery spanning a year is faster rebuilt
            whole; the result is the same). None: the project decides by size (a whole run
            partitions only a delivery too large to hold in one process).

    A per-month stage that selects a notebook of :attr:`~ridelake.core.project.Project.partitions_after`
    (``bronze/prepare``) runs it first, whole, as a stage of its own: the partitions are known
    only once it ran.
    """

    label: str
    selectors: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    per_month: bool = False
    max_months: int | None = 3


@dataclass
class RunRequest:
    """What to run and how.

    Attributes:
        command: recorded in run.json (``run``, ``bronze``, ``incremental``...).
        stages: the stages (default one stage of every notebook).
        params_file: YAML parameters (default ``<root>/params/default.yaml`` when present).
        overrides: explicit values (``-p key=value``, subcommand flags); each must be declared
            by some planned notebook.
        jobs: notebooks at a time (default the number of cores).
        retries: extra attempts per notebook.
        retry_delay: seconds before a retry.
        from_failure: rerun what failed or was skipped in ``from_run`` (default the latest run).
        from_run: the run id for ``from_failure``.
        dry_run: print the plan (and which notebooks would be up-to-date), run nothing.
        wait: seconds to wait for another run's lock (0: refuse at once).
        argv: the command line, recorded.
        force: run every planned notebook, even the up-to-date ones.
        fresh_kernels: a fresh kernel per notebook instead of the warm ones (default engine only).
        cell_timeout: seconds a notebook cell may run (None: no limit); past it the attempt fails
            and is retried on a new kernel (default engine only).
    """

    command: str = "run"
    stages: Sequence[Stage] = (Stage("run"),)
    params_file: str | Path | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    jobs: int | None = None
    retries: int = 2
    retry_delay: float = 1.0
    from_failure: bool = False
    from_run: str | None = None
    dry_run: bool = False
    wait: float = 0.0
    argv: Sequence[str] = ()
    force: bool = False
    fresh_kernels: bool = False
    cell_timeout: float | None = None


@dataclass(frozen=True)
class PlannedNode:
    """One execution of one notebook in a run.

    Attributes:
        key: ``<layer>/<table>``, or ``<layer>/<table>@<month>`` for a per-month execution.
        spec: the notebook.
        params: the values passed (only names the notebook declares).
        month: the month of a per-month execution.
        stage: the stage label.
    """

    key: str
    spec: NotebookSpec
    params: Mapping[str, Any]
    month: str | None = None
    stage: str = "run"


@dataclass
class RunResult:
    """What :func:`execute` returns.

    Attributes:
        exit_code: 0, 1 or 130 (see the module doc).
        run_id: None for a dry run.
        run_dir: the run folder (None for a dry run).
        manifest: the run.json record (the plan for a dry run).
    """

    exit_code: int
    run_id: str | None = None
    run_dir: Path | None = None
    manifest: dict[str, Any] = field(default_factory=dict)


# -- parameters --------------------------------------------------------------------------------

def _scalar(text: Any) -> Any:
    """The value of ``-p key=value``'s text: ``null``/``none``/``~``/empty are None, a YAML scalar
    (number, boolean, date) is parsed, anything else stays text."""
    if not isinstance(text, str):
        return text
    value = text.strip()
    if value.lower() in ("", "null", "none", "~"):
        return None
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return parsed if isinstance(parsed, (int, float, bool, str, dt.date)) else value


def resolve_params(
    project: Project,
    params_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Resolve a run's parameters once: the parameters file (or ``base``), then the overrides,
    validated and completed by the project (:meth:`~ridelake.core.project.Project.resolve_params`).

    Args:
        project: the project.
        params_file: YAML file (default ``<root>/params/default.yaml`` if it exists); relative
            paths are looked up in the working directory, then under the project root.
        overrides: explicit values (``-p key=value`` text or values).
        base: start from these values instead of reading a file (``--from-failure``).
        today: the date "today" defaults resolve to.
    """
    root = Path(project.root)
    if base is not None:
        params = dict(base)
    else:
        file = _find_params_file(root, params_file)
        params = read_yaml_mapping(file) if file is not None else {}
    over = {k: _scalar(v) for k, v in (overrides or {}).items()}
    try:
        return project.resolve_params(params, over, today)
    except ParameterError as exc:
        file = None if base is not None else _find_params_file(root, params_file)
        bad_file = file is not None and any(k not in over for k in params)
        raise ParameterError(f"{file}: {exc}" if bad_file and str(file) not in str(exc) else str(exc)) from None


def _find_params_file(root: Path, params_file: str | Path | None) -> Path | None:
    if params_file is None:
        default = root / "params" / "default.yaml"
        return default if default.is_file() else None
    path = Path(params_file).expanduser()
    if path.is_absolute() or path.exists():
        return path.resolve() if path.exists() else path
    return root / path


# -- planning ----------------------------------------------------------------------------------

def _link(pipeline: Pipeline, nodes: Sequence[PlannedNode]) -> list[Node]:
    """Scheduler nodes, linked by :func:`ridelake.core.dag.execution_deps`."""
    deps = execution_deps(pipeline, [(n.key, n.spec.name, n.month) for n in nodes])
    return [Node(n.key, frozenset(deps[n.key])) for n in nodes]


def plan_stage(pipeline: Pipeline, stage: Stage, params: Mapping[str, Any],
               months: Sequence[str] | None = None, partition_param: str = "extraction_month") -> list[PlannedNode]:
    """The executions of one stage.

    Args:
        pipeline: the DAG.
        stage: the stage.
        params: the run's parameters.
        months: for a ``per_month`` stage, the months (None, or more than ``stage.max_months``:
            no expansion).

    Returns:
        The planned nodes, in a dependency-respecting order.
    """
    values = {**params, **stage.params}
    if months is not None and stage.max_months is not None and len(months) > stage.max_months:
        months = None
    nodes: list[PlannedNode] = []
    for name in select(pipeline, stage.selectors):
        spec = pipeline.spec(name)
        passed = {k: values[k] for k in spec.parameters if k in values}
        if stage.per_month and months is not None and partition_param in spec.parameters:
            for month in months:
                nodes.append(PlannedNode(f"{name}@{month}", spec, {**passed, partition_param: month},
                                         month, stage.label))
        else:
            nodes.append(PlannedNode(name, spec, passed, None, stage.label))
    return nodes


def _check_overrides(overrides: Mapping[str, Any], specs: Sequence[NotebookSpec], pipeline: Pipeline,
                     err: TextIO) -> None:
    """A name no notebook of the pipeline declares is a typo (an error); one that only unselected
    notebooks declare is ignored with a note, so one command line works with any selector."""
    declared = {p for s in specs for p in s.parameters}
    anywhere = {p for s in pipeline.notebooks.values() for p in s.parameters}
    unknown = sorted(set(overrides) - anywhere)
    if unknown:
        known = ", ".join(sorted(anywhere)) or "none"
        raise ParameterError(f"parameter(s) {', '.join(unknown)} not declared by any notebook of the pipeline "
                             f"(they declare: {known})")
    unused = sorted(set(overrides) - declared)
    if unused:
        err.write(f"note: ignoring {', '.join(unused)}: none of the {len(specs)} selected notebook(s) declares "
                  f"{'it' if len(unused) == 1 else 'them'}\n")


# -- execution ---------------------------------------------------------------------------------

def _kernel_env(record: RunRecord, node: PlannedNode, attempt: int, project: Project) -> dict[str, str]:
    env = {
        ENV.RUN_ID: record.run_id,
        ENV.NOTEBOOK: node.spec.name,
        ENV.KEY: node.key,
        ENV.PARAMS_HASH: params_hash(node.params),
        ENV.HOME: str(record.root),
        ENV.ATTEMPT: str(attempt),
        ENV.READS: ",".join(node.spec.reads),
        ENV.WRITES: ",".join(node.spec.writes),
    }
    env.update(project.kernel_env())
    return env


def _once(fn: Callable[[], Any]) -> Callable[[], None]:
    """``fn``, called the first time only (on the scheduling thread)."""
    done: list[bool] = []

    def call() -> None:
        if not done:
            fn()
            done.append(True)

    return call


def _task_factory(record: RunRecord, planned: Mapping[str, PlannedNode],
                  project: Project, before_first: Callable[[], None] = lambda: None) -> Callable[[str, int], Task]:
    def make_task(key: str, attempt: int) -> Task:
        before_first()  # the project's bootstrap: only a run that runs something pays for it
        node = planned[key]
        output = record.output(key)
        if attempt > 1 and output.exists():  # keep the failed attempt's notebook beside the next one
            os.replace(output, record.attempt_output(key, attempt - 1))
        receipt = record.receipt(key, attempt)
        for folder in (output.parent, receipt.parent):
            folder.mkdir(parents=True, exist_ok=True)
        return Task(
            key=key,
            name=node.spec.name,
            input_path=node.spec.path,
            output_path=output,
            parameters=dict(node.params),
            attempt=attempt,
            env=_kernel_env(record, node, attempt, project),
            cwd=node.spec.path.parent,
            receipt_path=receipt,
            log_path=record.log(key, attempt),
        )

    return make_task


def _from_failure_nodes(pipeline: Pipeline, root: Path, ref: str | None,
                        overrides: Mapping[str, Any]) -> tuple[str, dict[str, Any], list[PlannedNode]]:
    prev_dir = resolve_run(runs_dir(root), ref)
    prev = read_manifest(prev_dir)
    nodes = []
    for rec in prev.get("notebooks") or []:
        if rec.get("status") not in _RERUN:
            continue
        name = rec.get("name", "")
        if name not in pipeline.notebooks:
            raise SelectionError(f"run {prev.get('run_id')} has notebook {name!r}, which pipeline.yaml no longer describes")
        spec = pipeline.spec(name)
        params = dict(rec.get("params") or {})
        params.update({k: v for k, v in overrides.items() if k in spec.parameters})
        key = rec.get("key") or name
        nodes.append(PlannedNode(key, spec, params, key_month(key), "from-failure"))
    return str(prev.get("run_id") or prev_dir.name), dict(prev.get("params") or {}), nodes


def _print_plan(out: TextIO, pipeline: Pipeline, stages: Sequence[tuple[Stage, list[PlannedNode]]],
                params: Mapping[str, Any], jobs: int, partition_param: str,
                fresh: Mapping[str, Any] | None = None) -> dict[str, Any]:
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    total = sum(len(nodes) for _, nodes in stages)
    out.write(f"dry run: {total} notebook execution(s), -j {jobs}; run parameters: {shown or 'none'}\n")
    plan: dict[str, Any] = {"params": dict(params), "stages": []}
    if fresh is not None:
        skip = sorted(k for k, d in fresh.items() if not d.run)
        out.write(f"  {total - len(skip)} would run, {len(skip)} up-to-date\n")
        plan["up_to_date"] = skip
    for stage, nodes in stages:
        by_key = {n.key: n for n in nodes}
        waves = layered([n.key for n in nodes], {n.key: n.deps for n in _link(pipeline, nodes)})
        if len(stages) > 1:
            out.write(f"stage {stage.label}:\n")
        if stage.per_month and any(partition_param in n.spec.parameters for n in nodes):
            out.write(f"  (notebooks declaring {partition_param} run once per partition the earlier stages "
                      "touch, known after them; shown once here)\n")
        for i, wave in enumerate(waves, 1):
            out.write(f"  wave {i}:\n")
            for key in wave:
                shown_p = [k if params.get(k) == v and k in params else f"{k}={v}"
                           for k, v in by_key[key].params.items()]
                line = f"    {key:<34} {', '.join(shown_p)}".rstrip()
                if fresh is not None and key in fresh:
                    why = "[up-to-date]" if not fresh[key].run else f"[runs: {reason_text(fresh[key].reason)}]"
                    line = f"{line:<58} {why}"
                out.write(line + "\n")
        plan["stages"].append({"label": stage.label, "waves": waves})
    return plan


@dataclass
class _Plan:
    """A request made concrete: the run's parameters, its stages and the first stage's nodes."""

    params: dict[str, Any]
    stages: list[Stage]
    first: list[PlannedNode]
    from_run: str | None = None


def _split_partitioned(pipe: Pipeline, stage: Stage, project: Project) -> list[Stage]:
    """A per-month stage that selects a notebook the partitions come from: that notebook first
    (whole), the rest per partition (see :class:`Stage`)."""
    if not stage.per_month:
        return [stage]
    chosen = select(pipe, stage.selectors)
    first = [n for n in chosen if n in project.partitions_after]
    if not first:
        return [stage]
    rest = tuple(n for n in chosen if n not in first)
    split = [Stage(stage.label, tuple(first), stage.params)]
    if rest:
        split.append(Stage(stage.label, rest, stage.params, per_month=True, max_months=stage.max_months))
    return split


def _make_plan(request: RunRequest, pipe: Pipeline, project: Project, err: TextIO) -> _Plan:
    root = Path(project.root)
    if request.from_failure:
        if any(st.selectors for st in request.stages):
            raise SelectionError("--from-failure reruns what failed in a run; do not combine it with selectors")
        from_run, prev_params, rerun = _from_failure_nodes(pipe, root, request.from_run, request.overrides)
        _check_overrides(request.overrides, [n.spec for n in rerun], pipe, err)
        if request.params_file is not None:
            err.write(f"note: --from-failure reuses the parameters of run {from_run}; "
                      f"{request.params_file} is not read (override with -p key=value)\n")
        params = resolve_params(project, overrides=request.overrides, base=prev_params)
        return _Plan(params, [Stage("from-failure")], rerun, from_run)
    params = resolve_params(project, request.params_file, request.overrides)
    stages = [part for st in request.stages for part in _split_partitioned(pipe, st, project)]
    _check_overrides(request.overrides, [pipe.spec(n) for st in stages for n in select(pipe, st.selectors)],
                     pipe, err)
    return _Plan(params, stages, plan_stage(pipe, stages[0], params))


def _header(request: RunRequest, plan: _Plan, root: Path, jobs: int, warehouse: str,
            catalog: str | None = None) -> dict[str, Any]:
    """The run-level fields of ``run.json``; ``catalog`` is masked again here (never a password)."""
    catalog = redact(catalog)
    file = None if request.from_failure else _find_params_file(root, request.params_file)
    return {
        "command": request.command,
        "argv": list(request.argv),
        "params": plan.params,
        "params_file": str(file) if file is not None else None,
        "selectors": [s for st in request.stages for s in st.selectors],
        "stages": [st.label for st in plan.stages],
        "from_failure": plan.from_run,
        "jobs": jobs,
        "retries": request.retries,
        "retry_delay": request.retry_delay,
        "warehouse": warehouse,
        "catalog_uri": catalog,
        "force": request.force,
    }


def _add(record: RunRecord, planned: dict[str, PlannedNode], nodes: Sequence[PlannedNode]) -> None:
    for n in nodes:
        planned[n.key] = n
        record.add(n.key, name=n.spec.name, table=n.spec.table, params=dict(n.params), stage=n.stage)


def _any_not_ok(record: RunRecord) -> bool:
    return any(s.status not in (SUCCEEDED, UP_TO_DATE, PENDING) for s in record.states.values())


def _should_run(fresh: UpToDate, record: RunRecord) -> Callable[[str], bool]:
    """The scheduler's hook: decide, and note the decision in the run record."""

    def should_run(key: str) -> bool:
        run = fresh.should_run(key)
        decision = fresh.decisions[key]
        record.annotate(key, run_reason=decision.reason, up_to_date_since=decision.since)
        return run

    return should_run


def _run_stages(pipe: Pipeline, plan: _Plan, request: RunRequest, record: RunRecord, pool: Executor,
                progress: Progress, err: TextIO, project: Project, fresh: UpToDate | None = None,
                bootstrap: Callable[[], None] = lambda: None, pages: Listener | None = None,
                costs: Mapping[str, float] | None = None) -> bool:
    """Run the stages one after the other; a stage after one that did not succeed is skipped.

    Returns:
        True when the run was interrupted (Ctrl-C).
    """
    planned: dict[str, PlannedNode] = {}
    for i, stage in enumerate(plan.stages):
        nodes = plan.first if i == 0 else _later_stage(pipe, stage, plan.params, project, err)
        _add(record, planned, nodes)
        if fresh is not None:
            fresh.add(nodes)
        if _any_not_ok(record):
            for n in nodes:
                record.states[n.key].status = SKIPPED
                record.states[n.key].error = "an earlier stage did not succeed"
            record.save()
            continue
        progress.outputs.update({n.key: relative(record.output(n.key), record.root) for n in nodes})
        sched = Scheduler(_link(pipe, nodes), pool, _task_factory(record, planned, project, bootstrap), retries=request.retries,
                          retry_delay=request.retry_delay, listener=MultiListener(fresh, record, progress, pages),
                          should_run=_should_run(fresh, record) if fresh is not None else None, costs=costs)
        record.track(sched.states)
        try:
            sched.run()
        except KeyboardInterrupt:
            return True
        finally:
            record.data["peak_parallelism"] = max(record.data.get("peak_parallelism", 0), sched.peak_running)
    return False


def execute(
    request: RunRequest,
    project: Project,
    *,
    pipeline: Pipeline | None = None,
    engine: Engine | None = None,
    executor: Executor | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    live: bool | None = None,
) -> RunResult:
    """Run a request.

    Args:
        request: what to run.
        project: the project (root, warehouse, parameters, bootstrap, table versions).
        pipeline: the DAG (default read from ``<root>/notebooks/pipeline.yaml``).
        engine: how a notebook runs (default :func:`~ridelake.core.engine.make_engine`: warm
            kernels, or fresh ones with ``request.fresh_kernels``).
        executor: how tasks are dispatched (default threads running ``engine``).
        out: where the plan and summary go (default stdout).
        err: where progress and failures go (default stderr).
        live: force live progress lines on or off (default: when ``err`` is a terminal).

    Returns:
        A :class:`RunResult`.

    Raises:
        RidelakeError: bad selector or parameter, locked warehouse, unreadable pipeline.
    """
    out, err = out or sys.stdout, err or sys.stderr
    base = Path(project.root).resolve()
    pipe = pipeline or load_pipeline(base)
    jobs = request.jobs if request.jobs is not None else (os.cpu_count() or 1)
    if jobs < 1:
        raise ParameterError(f"-j must be at least 1, got {jobs}")
    if request.retries < 0:
        raise ParameterError(f"--retries must be 0 or more, got {request.retries}")

    # kernel processes inherit the project's process settings (one the user set wins)
    for name, value in (getattr(project, "process_env", None) or dict)().items():
        os.environ.setdefault(name, value)
    # 1-2. parameters and plan; the default engine's kernels start meanwhile, in the background
    if engine is None and executor is None and not request.dry_run:
        sure_to_run = request.force or request.from_failure or any(st.selectors for st in request.stages)
        engine = make_engine(jobs, request.fresh_kernels, request.cell_timeout,
                             [spec.path for spec in pipe.notebooks.values()], prestart=sure_to_run,
                             pool_identity=_pool_identity(project), pool_label=str(base))
        close_early = getattr(engine, "close", None)
    else:
        close_early = None
    try:
        plan = _make_plan(request, pipe, project, err)
        warehouse = project.warehouse()
    except BaseException:
        if close_early is not None:
            close_early(cancel=True)
        raise
    if request.dry_run:
        try:
            project.check_params({n.key: n.params for n in plan.first})
        except ParameterError as exc:
            err.write(f"warning: {exc}\n")
        staged = [(plan.stages[0], plan.first)] + [(st, plan_stage(pipe, st, plan.params)) for st in plan.stages[1:]]
        predicted = _predict(pipe, staged, request, project)
        shown = _print_plan(out, pipe, staged, plan.params, jobs, project.partition_param, predicted)
        if plan.from_run:
            out.write(f"(rerunning what failed or was skipped in run {plan.from_run})\n")
        return RunResult(EXIT_OK, manifest=shown)
    try:
        project.check_params({n.key: n.params for n in plan.first})
        # 3. lock, catalog
        run_id = new_run_id()
        lock = lock_for(project, run_id)  # the project's (e.g. in its catalog database), else a file
        lock.acquire(wait=request.wait)
    except BaseException:
        if close_early is not None:
            close_early(cancel=True)
        raise
    record: RunRecord | None = None
    progress: Progress | None = None
    pages: Any = None  # PagesAhead, once the run folder exists
    pool = executor or ThreadExecutor(engine, jobs)  # type: ignore[arg-type]
    interrupted = False
    try:
        if lock.broke:
            err.write(f"note: {lock.broke}\n")
        bootstrap = _once(project.bootstrap)
        fresh = _up_to_date(pipe, project, run_id, force=request.force,
                            named={n for st in request.stages for n in named(pipe, st.selectors)})
        costs = last_durations(runs_dir(base))  # before this run becomes the latest
        # 4-5. run folder, stages, record
        record = RunRecord(base, run_id, _header(request, plan, base, jobs, warehouse, project.catalog()))
        _add(record, {}, plan.first)
        record.save()
        from ridelake.core.pages import PagesAhead  # the report module (jinja2): only once a run starts

        pages = PagesAhead(record.dir, lambda: record.data, base)  # the report's pages, while it runs
        update_latest(runs_dir(base), run_id)
        err.write(f"run {run_id}: {len(plan.first)} notebook(s) in stage {plan.stages[0].label}, -j {jobs}"
                  f" -> {record.data['run_folder']}\n")
        progress = Progress(err, live=live, max_attempts=request.retries + 1)
        progress.start()
        interrupted = _run_stages(pipe, plan, request, record, pool, progress, err, project, fresh, bootstrap,
                                  pages, costs)
        if fresh.save_error:
            err.write(f"note: could not record which notebooks are up-to-date ({fresh.save_error}); "
                      "the next run will rerun them\n")
        if interrupted:
            record.finish(RunStatus.INTERRUPTED, EXIT_INTERRUPTED)
        elif _any_not_ok(record):
            record.finish(RunStatus.FAILED, EXIT_FAILED)
        else:
            record.finish(RunStatus.SUCCEEDED, EXIT_OK)
    finally:
        if executor is None:
            pool.close(cancel=interrupted)
        if progress is not None:
            progress.stop()
        if pages is not None:
            pages.close(wait=0 if interrupted else 60)
        if record is not None and record.exit_code is None:  # an unexpected error: leave an honest record
            try:
                record.finish(RunStatus.FAILED, EXIT_FAILED)
            except OSError:
                pass
        lock.release()
    # 6. summary
    out.write(summary_table(record.data) + "\n")
    from ridelake.core.report import write_after_run  # index.html of the run; a failure only warns

    write_after_run(record.dir, err, pipe)
    return RunResult(record.exit_code or 0, run_id, record.dir, record.data)


def _pool_identity(project: Project) -> list[str] | None:
    """What pooled warm kernels must share with this command: the project, the warehouse and,
    for a local one, the folder itself (a warehouse deleted and made again is another one)."""
    try:
        warehouse = project.warehouse()
    except Exception:  # noqa: BLE001 - the plan reports a bad configuration; no pool meanwhile
        return None
    stamp = "remote"
    if "://" not in warehouse:
        try:
            os.makedirs(warehouse, exist_ok=True)  # the run makes it anyway; its identity is the folder's
            st = os.stat(warehouse)
            stamp = f"{st.st_dev}:{st.st_ino}"
        except OSError:
            return None
    return [str(Path(project.root).resolve()), warehouse, stamp]


def last_durations(runs: Path) -> dict[str, float]:
    """Seconds each notebook took in the latest run that ran it (the scheduler's expected costs);
    empty when there is no readable latest run."""
    try:
        data = read_manifest(Path(runs) / LATEST)
    except Exception:  # noqa: BLE001 - only a scheduling hint
        return {}
    out: dict[str, float] = {}
    for nb in data.get("notebooks") or []:
        seconds = nb.get("duration_s")
        if nb.get("status") == SUCCEEDED and isinstance(seconds, (int, float)) and seconds > 0:
            out[str(nb.get("key") or nb.get("name"))] = float(seconds)
    return out


def _up_to_date(pipe: Pipeline, project: Project, run_id: str, force: bool = False,
                named: set[str] | None = None) -> UpToDate:
    """The up-to-date check on the project's warehouse state and table versions."""
    return UpToDate(pipe, state_for(project), project.snapshots(),
                    run_id, force=force, file_params=project.file_params, named=named or ())


def _predict(pipe: Pipeline, staged: Sequence[tuple[Stage, list[PlannedNode]]], request: RunRequest,
             project: Project) -> dict[str, Any] | None:
    """For a dry run: which planned executions would run and which are up-to-date (None when it
    cannot be told: ``--force``, or the state or catalog cannot be read). Later stages count as
    running after an earlier stage that runs anything."""
    if request.force:
        return None
    try:
        fresh = _up_to_date(pipe, project, "dry-run",
                            named={n for st in request.stages for n in named(pipe, st.selectors)})
        out: dict[str, Any] = {}
        for _, nodes in staged:
            fresh.add(nodes)
            if any(d.run for d in out.values()):  # an earlier stage writes: assume these run too
                out.update({n.key: Decision(True, "an earlier stage runs") for n in nodes})
                continue
            out.update(fresh.predict([n.key for n in nodes], {n.key: n.deps for n in _link(pipe, nodes)}))
        return out
    except Exception:  # a nice-to-have: never fail a dry run for it
        return None


def _later_stage(pipe: Pipeline, stage: Stage, params: Mapping[str, Any], project: Project,
                 err: TextIO) -> list[PlannedNode]:
    months = None
    if stage.per_month:
        parts = project.partitions(params, stage.max_months)
        if parts.note:
            err.write(parts.note + "\n")
        months = parts.values
    return plan_stage(pipe, stage, params, months, project.partition_param)
