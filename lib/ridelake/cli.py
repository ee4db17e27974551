"""The ``ridelake`` command line: ``python -m ridelake <command> ...``.

Commands:

- ``generate``, ``init``: write a synthetic source file; create the catalog and tables.
- ``run [SELECTORS...]``: run notebooks (all by default) in parallel waves; selectors as dbt's:
  ``silver/customer``, ``silver/customer+``, ``+gold/customer_analytics``, ``silver``;
  ``--from-failure [RUN_ID]`` reruns what failed or was skipped (default: the latest run).
- ``bronze``, ``silver``, ``gold``: one layer (with its own parameters as flags).
- ``incremental --source-file F --extraction-date D``: bronze for that delivery, silver for the
  months it touched, then gold.
- ``backfill``: silver and gold rebuilt whole from what bronze holds.
- ``runs``: list the run records; ``show [RUN_ID]``: one run's table (default the latest).
- ``kernels [stop]``: the warm kernels a run leaves for the next command (see
  :mod:`ridelake.core.engines.pool`), or end them now.

Every running command accepts ``--params FILE`` (default ``params/default.yaml``),
``-p key=value`` (repeatable), ``-j N``, ``--retries N``, ``--retry-delay S``, ``--wait S``,
``--dry-run``, ``--force`` and ``--warehouse PATH`` (sets ``RIDELAKE_WAREHOUSE`` for the run and
its kernels). A notebook whose inputs did not change since its last success on the warehouse is
``up-to-date`` and does not run (see :mod:`ridelake.core.uptodate`); ``--force`` runs every selected one.
Notebooks run on one warm kernel per worker, reset between notebooks (``--fresh-kernels``: a new
kernel for each); ``--cell-timeout S`` fails (and retries) an attempt whose cell runs longer.
``--executor dask [--scheduler tcp://HOST:PORT]`` runs each notebook as a task on a Dask cluster
(default: a LocalCluster of ``-j`` workers for the run; see :mod:`ridelake.core.engines.dask`).

Exit statuses: 0 every notebook succeeded or was up-to-date; 1 a notebook failed or was skipped; 2 a usage,
parameter, selection or configuration error (nothing ran); 3 the warehouse is locked by another
run (nothing ran; pass ``--wait SECONDS`` to wait); 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any, Sequence

from ridelake.core.project import project_root
from ridelake.core.redact import redact
from ridelake.errors import LockError, ParameterError, RidelakeError
from ridelake.tables import config, recipes

__all__ = ["main", "build_parser", "parse_assignments", "EXIT_USAGE", "EXIT_LOCKED"]

EXIT_USAGE, EXIT_LOCKED = 2, 3


def parse_assignments(items: Sequence[str] | None) -> dict[str, str]:
    """Parse ``-p key=value`` arguments.

    Args:
        items: the ``key=value`` strings (later ones win).

    Returns:
        Name -> text value.

    Raises:
        ParameterError: an item without ``=`` or with an empty name.
    """
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"-p expects key=value, got {item!r}")
        out[key.strip()] = value
    return out


def _cmd_generate(args: argparse.Namespace) -> int:
    from ridelake.tables.generate import write_csv  # lazy (start-up)

    summary = write_csv(args.out, rows=args.rows, seed=args.seed, bad_rows=args.bad_rows, year=args.year)
    print(f"wrote {summary['rows']} rows ({summary['bad_rows']} bad) to {args.out}")
    if summary["bad_rows"]:
        kinds = ", ".join(f"{k} {n}" for k, n in summary["bad_row_kinds"].items())
        print(f"expected: {summary['expected_rejected']} rejected rows ({kinds}), {summary['rows']} accepted")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from ridelake.tables import catalog, config  # lazy (start-up)

    config.use_warehouse(args.warehouse)
    created = catalog.bootstrap()
    print(f"catalog {redact(config.catalog_uri())}: created {len(created)} table(s)"
          + (f": {', '.join(created)}" if created else " (all present)"))
    return 0


def _request(args: argparse.Namespace, stages: Sequence[Any], flags: dict[str, Any],
             argv: Sequence[str]) -> Any:
    from ridelake.core.runner import RunRequest  # lazy (start-up)

    overrides: dict[str, Any] = parse_assignments(args.param)
    overrides.update({k: v for k, v in flags.items() if v is not None})
    return RunRequest(
        command=args.command,
        stages=tuple(stages),
        params_file=args.params,
        overrides=overrides,
        jobs=args.jobs,
        retries=args.retries,
        retry_delay=args.retry_delay,
        from_failure=getattr(args, "from_failure", None) is not None,
        from_run=None if getattr(args, "from_failure", None) in (None, "latest") else args.from_failure,
        dry_run=args.dry_run,
        wait=args.wait,
        argv=list(argv),
        force=args.force,
        fresh_kernels=args.fresh_kernels,
        cell_timeout=args.cell_timeout,
    )


def _run_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ridelake.core.runner import Stage, execute  # lazy (start-up)
    from ridelake.tables.adapter import RideBookings  # lazy (start-up)

    config.use_warehouse(args.warehouse)
    recipe = getattr(args, "recipe", None)
    if recipe is None:  # `run [SELECTORS]`: a large delivery runs bronze and the facts month by month
        stages, flags = [Stage("run", tuple(args.selectors), per_month=True, max_months=None)], {}
    else:
        stages, flags = recipe.plan(args)
    request, project = _request(args, stages, flags, argv), RideBookings()
    executor = args.executor or ("dask" if args.scheduler else "local")
    if executor == "local" and args.scheduler:
        raise ParameterError("--scheduler is the Dask scheduler: use it with --executor dask")
    if executor == "local" or args.dry_run:
        return execute(request, project).exit_code
    from ridelake.core.engines.dask import DaskExecutor  # lazy: distributed is heavy, only for this executor

    os.environ.setdefault("RIDELAKE_WAREHOUSE", project.warehouse())  # spelled out for workers elsewhere
    pool = DaskExecutor.start(args.scheduler, args.jobs, root=project.root, fresh_kernels=args.fresh_kernels,
                              cell_timeout=args.cell_timeout)
    try:
        request.jobs = pool.slots
        return execute(request, project, executor=pool).exit_code
    finally:
        pool.close()


def _cmd_runs(args: argparse.Namespace) -> int:
    from ridelake.core.manifest import list_runs, runs_dir  # lazy (start-up)
    from ridelake.core.progress import runs_table  # lazy (start-up)

    print(runs_table(list_runs(runs_dir(project_root()), limit=args.limit)))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from ridelake.core.manifest import read_manifest, resolve_run, runs_dir  # lazy (start-up)
    from ridelake.core.progress import summary_table  # lazy (start-up)

    data = read_manifest(resolve_run(runs_dir(project_root()), args.run_id))
    print(json.dumps(data, indent=2) if args.json else summary_table(data))
    return 0


def _cmd_kernels(args: argparse.Namespace) -> int:
    from ridelake.core.engines import pool  # lazy (start-up)

    if args.action == "stop":
        print(f"stopped {pool.stop_pools()} pooled kernel(s)")
        return 0
    found = pool.pools()
    if not found:
        print("no pooled kernels")
    for entry in found:
        print(f"{entry['label'] or '?'}  ({entry['folder']})")
        for k in entry["kernels"]:
            idle = f", idle {k['idle_s']:.0f} s" if k["idle_s"] is not None and k["state"] == "idle" else ""
            print(f"  {k['slot']}: pid {k['pid']}, {k['state']}{idle}")
    print(f"idle kernels end after {pool.idle_seconds():g} s (RIDELAKE_KERNEL_IDLE); `ridelake kernels stop` ends them now")
    return 0


def _runner_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    o = common.add_argument_group("run options")
    o.add_argument("--params", metavar="FILE", help="parameter file (default params/default.yaml)")
    o.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", default=[],
                   help="override a parameter (repeatable); each notebook gets only those it declares")
    o.add_argument("-j", "--jobs", type=int, metavar="N", help="notebooks at a time (default: cores)")
    o.add_argument("--retries", type=int, default=2, metavar="N", help="extra attempts per notebook (default 2)")
    o.add_argument("--retry-delay", type=float, default=1.0, metavar="S", help="seconds before a retry (default 1)")
    o.add_argument("--warehouse", metavar="PATH", help="warehouse folder or URL (sets RIDELAKE_WAREHOUSE)")
    o.add_argument("--wait", type=float, default=0.0, metavar="S",
                   help="wait up to S seconds for another run on this warehouse (default: refuse)")
    o.add_argument("--dry-run", action="store_true",
                   help="print the waves and which notebooks are up-to-date, run nothing")
    o.add_argument("--force", action="store_true",
                   help="run every selected notebook, even those up-to-date (inputs unchanged since their last success)")
    o.add_argument("--fresh-kernels", action="store_true",
                   help="start a fresh kernel for every notebook (default: one warm kernel per worker, "
                        "reset between notebooks)")
    o.add_argument("--cell-timeout", type=float, metavar="S",
                   help="seconds a notebook cell may run; past it the attempt fails and is retried on a "
                        "new kernel (default: no limit)")
    o.add_argument("--executor", choices=("local", "dask"),
                   help="where notebooks run: local kernels (default), or tasks on a Dask cluster")
    o.add_argument("--scheduler", metavar="URL",
                   help="the Dask scheduler (tcp://HOST:PORT) for --executor dask (default: a LocalCluster "
                        "of -j worker processes on 127.0.0.1 for the run)")
    return common


#: Commands whose modules are heavy to import (pandas, pyiceberg, nbconvert) -> their module, which
#: has a ``register(subparsers)``: the parser imports only the one a command line names.
_LAZY = {"report": "ridelake.core.report", "history": "ridelake.ops.lineage",
         "rollback": "ridelake.ops.maintenance", "maintain": "ridelake.ops.maintenance", "sql": "ridelake.ops.sql"}


#: The commands defined here and in :mod:`ridelake.tables.recipes` (light to import).
_CORE_COMMANDS = ("generate", "init", "run", "runs", "show", "kernels", *recipes.RECIPES)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Build the argument parser: every subcommand, but of the heavy ones (:data:`_LAZY`) only the
    one ``argv`` names (all of them for ``--help``, no command, or an unknown one)."""
    named = next((a for a in argv or () if not a.startswith("-")), None)
    wanted = named if named in _LAZY else (None if named is None or named not in _CORE_COMMANDS else "")
    parser = argparse.ArgumentParser(prog="ridelake", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write a synthetic source file (docs/contract.md §6)")
    g.add_argument("--rows", type=int, default=150_000)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--out", required=True)
    g.add_argument("--bad-rows", type=int, default=0, help="also write this many bad rows")
    g.add_argument("--year", type=int, default=2024)
    g.set_defaults(func=_cmd_generate)

    i = sub.add_parser("init", help="create the catalog, namespaces and tables (safe to repeat)")
    i.add_argument("--warehouse")
    i.set_defaults(func=_cmd_init)

    common = _runner_options()
    r = sub.add_parser("run", parents=[common], help="run notebooks: all, or those selected")
    r.add_argument("selectors", nargs="*", metavar="SELECTOR",
                   help="layer/table, layer/table+ (and downstream), +layer/table (and upstream), or a layer")
    r.add_argument("--from-failure", nargs="?", const="latest", metavar="RUN_ID",
                   help="rerun what failed or was skipped in RUN_ID (default: the latest run)")
    r.set_defaults(func=_run_command)

    recipes.register(sub, common, _run_command)

    rs = sub.add_parser("runs", help="list the run records under outputs/runs")
    rs.add_argument("--limit", type=int, default=20, metavar="N", help="newest N runs (default 20)")
    rs.set_defaults(func=_cmd_runs)

    sh = sub.add_parser("show", help="print one run's table")
    sh.add_argument("run_id", nargs="?", default="latest", metavar="RUN_ID",
                    help="a run id or a unique prefix (default: latest)")
    sh.add_argument("--json", action="store_true", help="print run.json as is")
    sh.set_defaults(func=_cmd_show)

    k = sub.add_parser("kernels", help="list the warm kernels kept between commands, or stop them")
    k.add_argument("action", nargs="?", choices=("list", "stop"), default="list",
                   help="list (default) or stop this user's pooled kernels")
    k.set_defaults(func=_cmd_kernels)
    for module in dict.fromkeys(_LAZY[command] for command in _LAZY if wanted in (None, command)):
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: arguments (default ``sys.argv[1:]``).

    Returns:
        The process exit status (see the module doc).
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args, extra = parser.parse_known_args(args_list)
    if extra:
        # selectors split by options (`run silver -j 2 gold`) are still selectors
        if args.command == "run" and not any(e.startswith("-") for e in extra):
            args.selectors = [*args.selectors, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.func is _run_command:
            return int(_run_command(args, args_list))
        status = int(args.func(args))
        sys.stdout.flush()  # a reader that went away (`| head`) shows here, in the handler below
        return status
    except BrokenPipeError:
        # the reader stopped reading (`| head`): exit quietly; what is left goes nowhere, also at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except LockError as exc:
        print(f"ridelake: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except RidelakeError as exc:
        print(f"ridelake: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ridelake: interrupted", file=sys.stderr)
        return 130
