"""Benchmarks (``make bench``): the pipeline beside its engine floor and a DuckDB reference.

For each size (default 150,000 rows; ``BENCH_SIZES=150000,1500000,15000000`` or ``--sizes``) it
generates a delivery and measures, in one sitting, the **median** of ``--runs`` runs (default 3,
interleaved so machine noise hits every contender alike) of:

- ``warm``: ``ridelake run --force -j 2`` on warm kernels (the default engine), taking over the
  kernels the previous command left in the pool (what every command but the first gets); the
  first command, which finds none, is measured once beside it (``warm_first``);
- ``fresh``: the same with ``--fresh-kernels``;
- ``floor``: every notebook's code in ONE plain Python process, in pipeline order, with the real
  catalog writes (:mod:`ridelake.bench.floor`);
- ``duckdb``: DuckDB computing the same tables from the CSV into Parquet
  (:mod:`ridelake.bench.reference`);

then, on the warm warehouse, the **second run** (``ridelake run``, everything up-to-date) and the
**one-notebook rerun** (``ridelake run silver/customer --force``), both including the command's
own start-up. Each measurement is wall seconds, CPU seconds (user + system of the process and
everything it waited for) and the peak RSS of the largest single process. Ratios
(warm / floor, warm / DuckDB, floor / DuckDB, fresh / floor) make the targets hold on any machine.

Everything runs in a throw-away copy of the project (``RIDELAKE_HOME``) and warehouses, so
``warehouse/`` and ``outputs/runs`` are untouched. Results go to ``outputs/bench/latest.json``
(and a timestamped copy) and a chart ``outputs/bench/latest.png``; the exit status is 1 when a
measured target is missed (:data:`TARGETS`, evaluated by :func:`evaluate`).

``--skip fresh`` (``BENCH_SKIP=fresh``) leaves the fresh-kernel contender out (at 15M rows it is
the longest and no target names it); ``floor`` can be skipped too, and a target on a skipped
contender is reported ``not measured``.

Usage: ``python -m ridelake.bench [--sizes 150000] [--runs 3] [--jobs 2] [--generator-rows N] [--skip fresh]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence
from ridelake.core.engines.pool import stop_pools
from ridelake.core.project import project_root

__all__ = ["Target", "TARGETS", "SKIPPABLE", "Measurement", "evaluate", "measure", "run_benchmarks", "render", "chart", "main"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class Target:
    """One target: ``metric`` at ``rows`` must stay at or below ``limit`` (or reach it, ``at_least``).

    Attributes:
        metric: a key of a size's metrics (``warm_over_floor``, ``rerun_s``, ``warm_rss_mib``...).
        limit: the bound, in the metric's unit.
        rows: the size it applies to (None: every measured size).
        what: the target as a person states it.
        at_least: True for rates that must reach the limit.
        issue: where the target comes from.
    """

    metric: str
    limit: float
    rows: int | None
    what: str
    at_least: bool = False
    issue: int = 10


#: The targets, checked exactly as stated (ratios, medians). Issue 10: the engine; issue 11: the
#: data work (the floor against DuckDB) and memory.
TARGETS: tuple[Target, ...] = (
    Target("warm_over_floor", 0.8, 150_000, "warm pipeline -j 2 <= 0.8 x engine floor (150k rows)"),
    Target("rerun_s", 4.0, 150_000, "one-notebook rerun <= 4 s (150k rows)"),
    Target("second_run_s", 2.0, 150_000, "second run, all up-to-date, <= 2 s (150k rows)"),
    Target("floor_over_duckdb", 5.0, 150_000, "engine floor <= 5 x DuckDB (150k rows)", issue=11),
    Target("floor_over_duckdb", 3.0, 1_500_000, "engine floor <= 3 x DuckDB (1.5M rows)", issue=11),
    Target("warm_over_duckdb", 5.0, 1_500_000, "warm pipeline <= 5 x DuckDB (1.5M rows)", issue=11),
    Target("warm_rss_mib", 1.5e9 / MIB, 1_500_000, "peak RSS <= 1.5 GB (1.5M rows)", issue=11),
    Target("warm_rss_mib", 3 * 1024.0, 15_000_000, "peak RSS <= 3 GiB (15M rows)", issue=11),
    Target("generator_rows_per_s", 100_000.0, None, "generator >= 100,000 rows/s", at_least=True),
    Target("generator_rss_mib", 300.0, None, "generator peak RSS <= 300 MiB"),
)


@dataclass(frozen=True)
class Measurement:
    """One timed command: wall and CPU seconds, peak RSS (MiB) of its largest process, exit code."""

    wall_s: float
    cpu_s: float
    rss_mib: float
    exit_code: int
    tail: str = ""


def measure(cmd: Sequence[str], env: Mapping[str, str], cwd: Path) -> Measurement:
    """Run ``cmd`` under the timing wrapper (:mod:`ridelake.bench.timing`: CPU and peak RSS count
    the command's process tree and the pooled warm kernels it used).

    Args:
        cmd: the command.
        env: its environment.
        cwd: its working directory.

    Returns:
        The :class:`Measurement` (a failing command is reported, not raised: see ``exit_code``).
    """
    proc = subprocess.run([sys.executable, "-m", "ridelake.bench.timing", *cmd], env=dict(env), cwd=cwd,
                          capture_output=True, text=True)
    line = next((ln for ln in reversed(proc.stderr.splitlines()) if ln.startswith("@@bench ")), None)
    if line is None:
        return Measurement(0.0, 0.0, 0.0, proc.returncode or 1, (proc.stdout + proc.stderr)[-3000:])
    wall, cpu, rss, rc = json.loads(line[len("@@bench "):])
    return Measurement(round(wall, 3), round(cpu, 3), round(rss, 1), int(rc), (proc.stdout + proc.stderr)[-3000:])


def _median(ms: Sequence[Measurement], what: str) -> dict[str, Any]:
    failed = [m for m in ms if m.exit_code]
    if failed:
        raise SystemExit(f"bench: {what} failed (exit {failed[0].exit_code}):\n{failed[0].tail}")
    return {
        "wall_s": round(statistics.median(m.wall_s for m in ms), 3),
        "cpu_s": round(statistics.median(m.cpu_s for m in ms), 3),
        "rss_mib": round(max(m.rss_mib for m in ms), 1),
        "runs_wall_s": [m.wall_s for m in ms],
    }


def _project(root: Path, work: Path) -> Path:
    project = work / "project"
    shutil.copytree(root / "notebooks", project / "notebooks")
    shutil.copytree(root / "params", project / "params")
    (project / "data").mkdir(parents=True)
    return project


def _env(project: Path, warehouse: Path) -> dict[str, str]:
    env = {**os.environ, "RIDELAKE_HOME": str(project), "RIDELAKE_WAREHOUSE": str(warehouse),
           "RIDELAKE_KERNEL_POOL_DIR": str(project.parent / "pools")}  # the bench's own warm-kernel pool
    for var in ("RIDELAKE_CATALOG_URI", "RIDELAKE_RECEIPT_FILE", "RIDELAKE_READS", "RIDELAKE_WRITES",
                "RIDELAKE_KERNEL_IDLE"):
        env.pop(var, None)
    from ridelake.tables.adapter import RideBookings  # the floor's process gets what kernels get

    for name, value in RideBookings(project).process_env().items():
        env.setdefault(name, value)
    return env


#: Contenders ``--skip`` may leave out (the pipeline and DuckDB are what the targets compare).
SKIPPABLE = ("fresh", "floor")


def _size(root: Path, rows: int, runs: int, jobs: int, log: Callable[[str], None],
          skip: Sequence[str] = ()) -> dict[str, Any]:
    """Every measurement at one size, in a throw-away project (``skip``: contenders left out)."""
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix=f"ridelake-bench-{rows}-") as tmp:
        work = Path(tmp)
        project = _project(root, work)
        csv = project / "data" / "ncr_ride_bookings.csv"
        gen = measure([py, "-m", "ridelake", "generate", "--rows", str(rows), "--seed", "42", "--out", str(csv)],
                      _env(project, work / "wh-gen"), project)
        if gen.exit_code:
            raise SystemExit(f"bench: generating {rows} rows failed:\n{gen.tail}")
        date = ["-p", "extraction_date=2024-12-31"]
        run = [py, "-m", "ridelake", "run", *date]
        contenders: dict[str, tuple[list[str], Path]] = {
            "warm": ([*run, "--force", "-j", str(jobs)], work / "wh-warm"),
            "fresh": ([*run, "--force", "-j", str(jobs), "--fresh-kernels"], work / "wh-fresh"),
            "floor": ([py, "-m", "ridelake.bench.floor", *date], work / "wh-floor"),
            "duckdb": ([py, "-m", "ridelake.bench.reference", str(csv), str(work / "parquet"),
                        "--extraction-date", "2024-12-31"], work / "wh-duckdb"),
        }
        for name in skip:
            contenders.pop(name, None)
        taken: dict[str, list[Measurement]] = {name: [] for name in contenders}
        # the first command on a warehouse finds no pooled kernel: start-up and imports included
        first = measure(contenders["warm"][0], _env(project, contenders["warm"][1]), project)
        log(f"  {rows:>10,} rows  first  warm   {first.wall_s:8.2f} s (no pooled kernels yet)")
        for i in range(runs):
            for name, (cmd, wh) in contenders.items():
                m = measure(cmd, _env(project, wh), project)
                taken[name].append(m)
                log(f"  {rows:>10,} rows  run {i + 1}/{runs}  {name:<6} {m.wall_s:8.2f} s"
                    + ("" if not m.exit_code else f"  FAILED (exit {m.exit_code})"))
        out: dict[str, Any] = {"rows": rows, "runs": runs, "jobs": jobs}
        for name, ms in taken.items():
            out[name] = _median(ms, name)
        out["warm_first"] = _median([first], "the first warm run")
        printed = [ln for ln in taken["duckdb"][-1].tail.splitlines() if ln.startswith("{")]
        out["duckdb_tables"] = json.loads(printed[-1]) if printed else {}
        manifest = json.loads((project / "outputs" / "runs" / "latest" / "run.json").read_text())
        out["pipeline_rows"] = {n["table"]: n.get("rows_written") for n in manifest["notebooks"] if n.get("table")}
        env = _env(project, work / "wh-warm")
        second = [measure(run, env, project) for _ in range(runs)]  # the last forced warm run left all fresh
        out["second_run"] = _median(second, "the second run")
        out["second_run_ran"] = sum(1 for n in json.loads((project / "outputs" / "runs" / "latest" / "run.json")
                                                          .read_text())["notebooks"] if n["status"] != "up-to-date")
        rerun = [measure([*run, "silver/customer", "--force"], env, project) for _ in range(runs)]
        out["rerun"] = _median(rerun, "the one-notebook rerun")
        log(f"  {rows:>10,} rows  second run {out['second_run']['wall_s']:.2f} s, "
            f"one-notebook rerun {out['rerun']['wall_s']:.2f} s")
        stop_pools(base=work / "pools")  # the bench's kernels end with it
    out["metrics"] = _metrics(out)
    return out


def _metrics(size: Mapping[str, Any]) -> dict[str, float]:
    """The numbers the targets name, from one size's measurements."""
    w, f, fl, d = (size[k]["wall_s"] if k in size else None for k in ("warm", "fresh", "floor", "duckdb"))

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(a / b, 3)

    out = {
        "warm_s": w, "fresh_s": f, "floor_s": fl, "duckdb_s": d,
        "warm_over_floor": ratio(w, fl), "fresh_over_floor": ratio(f, fl),
        "warm_over_duckdb": ratio(w, d), "floor_over_duckdb": ratio(fl, d),
        "fresh_over_warm": ratio(f, w),
        "warm_rss_mib": size["warm"]["rss_mib"], "floor_rss_mib": size["floor"]["rss_mib"] if fl is not None else None,
        "duckdb_rss_mib": size["duckdb"]["rss_mib"],
        "rerun_s": size["rerun"]["wall_s"], "second_run_s": size["second_run"]["wall_s"],
        "warm_first_s": size["warm_first"]["wall_s"],
        "warm_first_over_floor": ratio(size["warm_first"]["wall_s"], fl),
    }
    return {k: v for k, v in out.items() if v is not None}


def _generator(rows: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="ridelake-bench-gen-") as tmp:
        out = Path(tmp) / "gen.csv"
        m = measure([sys.executable, "-m", "ridelake", "generate", "--rows", str(rows), "--seed", "1",
                     "--out", str(out)], dict(os.environ), Path(tmp))
    if m.exit_code:
        raise SystemExit(f"bench: the generator failed:\n{m.tail}")
    return {"generator_rows": rows, "generator_s": m.wall_s, "generator_rows_per_s": round(rows / max(m.wall_s, 1e-9)),
            "generator_rss_mib": m.rss_mib}


def evaluate(results: Mapping[str, Any], targets: Sequence[Target] = TARGETS) -> list[dict[str, Any]]:
    """Check the targets against a run's results.

    Args:
        results: ``{"sizes": [{"rows": N, "metrics": {...}}, ...], "generator": {...}}``.
        targets: the targets.

    Returns:
        One row per target and size it applies to: ``what``, ``metric``, ``rows``, ``value``,
        ``limit``, ``status`` (``met``, ``MISSED`` or ``not measured``: the size was not run).
    """
    rows = []
    sizes = {s["rows"]: s.get("metrics", {}) for s in results.get("sizes", [])}
    gen = results.get("generator") or {}
    for t in targets:
        if t.metric.startswith("generator_"):
            found = [(None, gen.get(t.metric))]
        elif t.rows is None:
            found = [(n, m.get(t.metric)) for n, m in sizes.items()] or [(None, None)]
        else:
            found = [(t.rows, sizes[t.rows].get(t.metric) if t.rows in sizes else None)]
        for n, value in found:
            if value is None:
                status = "not measured"
            else:
                status = "met" if (value >= t.limit if t.at_least else value <= t.limit) else "MISSED"
            rows.append({"what": t.what, "metric": t.metric, "rows": n, "value": value, "limit": round(t.limit, 3),
                         "status": status, "issue": t.issue})
    return rows


def run_benchmarks(sizes: Sequence[int], runs: int = 3, jobs: int = 2, generator_rows: int = 1_500_000,
                   log: Callable[[str], None] = print, skip: Sequence[str] = ()) -> dict[str, Any]:
    """Run every benchmark.

    Args:
        sizes: source rows per size.
        runs: runs per contender and size (the median is kept).
        jobs: ``-j`` of the pipelines.
        generator_rows: rows for the generator's own benchmark (0: skip it).
        log: where progress lines go.
        skip: contenders to leave out (of :data:`SKIPPABLE`).

    Returns:
        The results: machine, sizes (measurements, medians, metrics), generator, checks.
    """

    root = project_root()
    results: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cores": os.cpu_count(), "load_at_start": list(os.getloadavg()), "python": sys.version.split()[0],
                    "platform": sys.platform},
        "sizes": [],
        "skipped": list(skip),
    }
    for rows in sizes:
        results["sizes"].append(_size(root, rows, runs, jobs, log, skip))
    if generator_rows:
        results["generator"] = _generator(generator_rows)
    results["machine"]["load_at_end"] = list(os.getloadavg())
    results["checks"] = evaluate(results)
    return results


def render(results: Mapping[str, Any]) -> str:
    """The side-by-side table and the targets, as text."""
    lines = [f"machine: {results['machine']['cores']} cores, load {results['machine']['load_at_start'][0]:.1f} at start",
             f"{'rows':>11}  {'what':<22}{'wall s':>9}{'CPU s':>9}{'peak RSS MiB':>14}{'/ floor':>9}{'/ DuckDB':>10}"]
    for s in results["sizes"]:
        m = s["metrics"]
        for key, label in (("warm", f"pipeline warm -j {s['jobs']}"), ("warm_first", "  first (no pool yet)"),
                           ("fresh", f"pipeline fresh -j {s['jobs']}"), ("floor", "engine floor"),
                           ("duckdb", "DuckDB reference")):
            if key not in s:
                lines.append(f"{s['rows']:>11,}  {label:<22}{'(skipped)':>9}")
                continue
            d = s[key]
            over_floor = f"{d['wall_s'] / m['floor_s']:>9.2f}" if "floor_s" in m else f"{'-':>9}"
            lines.append(f"{s['rows']:>11,}  {label:<22}{d['wall_s']:>9.2f}{d['cpu_s']:>9.2f}{d['rss_mib']:>14.0f}"
                         f"{over_floor}{d['wall_s'] / m['duckdb_s']:>10.2f}")
        lines.append(f"{s['rows']:>11,}  {'second run':<22}{s['second_run']['wall_s']:>9.2f}{s['second_run']['cpu_s']:>9.2f}"
                     f"{s['second_run']['rss_mib']:>14.0f}")
        lines.append(f"{s['rows']:>11,}  {'one-notebook rerun':<22}{s['rerun']['wall_s']:>9.2f}{s['rerun']['cpu_s']:>9.2f}"
                     f"{s['rerun']['rss_mib']:>14.0f}")
    if results.get("generator"):
        g = results["generator"]
        lines.append(f"generator: {g['generator_rows']:,} rows in {g['generator_s']:.2f} s "
                     f"({g['generator_rows_per_s']:,} rows/s), peak RSS {g['generator_rss_mib']:.0f} MiB")
    lines.append("")
    lines.append(f"{'target':<58}{'value':>10}{'limit':>10}  status")
    for c in results["checks"]:
        value = "-" if c["value"] is None else f"{c['value']:,.2f}"
        lines.append(f"{c['what']:<58}{value:>10}{c['limit']:>10,.2f}  {c['status']}")
    return "\n".join(lines)


def chart(results: Mapping[str, Any], path: Path) -> None:
    """Save a bar chart: wall seconds of each contender per size, with the ratios to the floor."""
    import matplotlib  # the chart only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy (matplotlib): only for the chart

    sizes = results["sizes"]
    keys = [("warm", "pipeline, warm kernels"), ("fresh", "pipeline, fresh kernels"), ("floor", "engine floor"),
            ("duckdb", "DuckDB reference")]
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.5 * len(sizes) + 1.5, 4.2), squeeze=False)
    colors = {"warm": "#1f77b4", "fresh": "#aec7e8", "floor": "#2ca02c", "duckdb": "#ff7f0e"}
    for ax, s in zip(axes[0], sizes):
        shown = [(k, label) for k, label in keys if k in s]
        values = [s[k]["wall_s"] for k, _ in shown]
        bars = ax.bar(range(len(shown)), values, color=[colors[k] for k, _ in shown])
        base, base_name = (s["metrics"]["floor_s"], "floor") if "floor_s" in s["metrics"] else (s["metrics"]["duckdb_s"], "DuckDB")
        for bar, v in zip(bars, values):
            ax.annotate(f"{v:.1f} s\n{v / base:.2f}x {base_name}", (bar.get_x() + bar.get_width() / 2, v),
                        ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(shown)), [label for _, label in shown], rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("wall seconds (median)")
        ax.set_ylim(0, max(values) * 1.3)
        ax.set_title(f"{s['rows']:,} rows, -j {s['jobs']}", fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(f"ridelake bench {results['started_at']} ({results['machine']['cores']} cores)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sizes(text: str | None) -> list[int]:
    if not text:
        return [150_000]
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the table, save ``latest.json`` and ``latest.png``.

    Args:
        argv: command-line arguments.

    Returns:
        0 when every measured target is met, else 1.
    """
    parser = argparse.ArgumentParser(prog="python -m ridelake.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES"),
                        help="comma-separated row counts (default $BENCH_SIZES, else 150000)")
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 3)),
                        help="runs per contender; the median counts (default 3)")
    parser.add_argument("--jobs", "-j", type=int, default=2, help="-j of the pipelines (default 2)")
    parser.add_argument("--generator-rows", type=int, default=1_500_000, help="generator benchmark rows (0: skip)")
    parser.add_argument("--out", type=Path, help="results folder (default <project>/outputs/bench)")
    parser.add_argument("--skip", default=os.environ.get("BENCH_SKIP", ""),
                        help=f"comma-separated contenders to leave out, of {', '.join(SKIPPABLE)} (default $BENCH_SKIP)")
    args = parser.parse_args(argv)
    skip = [name.strip() for name in args.skip.split(",") if name.strip()]
    unknown = sorted(set(skip) - set(SKIPPABLE))
    if unknown:
        parser.error(f"--skip: {', '.join(unknown)} cannot be skipped (only {', '.join(SKIPPABLE)})")
    results = run_benchmarks(_sizes(args.sizes), max(1, args.runs), args.jobs, args.generator_rows,
                             log=lambda line: print(line, file=sys.stderr, flush=True), skip=skip)
    print(render(results))
    if args.out is None:
        args.out = project_root() / "outputs" / "bench"
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2)
    (args.out / "latest.json").write_text(text)
    (args.out / f"{results['started_at'].replace(':', '').replace('-', '')}.json").write_text(text)
    chart(results, args.out / "latest.png")
    print(f"saved {args.out / 'latest.json'} and {args.out / 'latest.png'}")
    return 1 if any(c["status"] == "MISSED" for c in results["checks"]) else 0

