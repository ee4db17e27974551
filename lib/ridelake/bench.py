"""Benchmarks (``make bench``): pipeline wall time and peak memory, generator throughput.

Speed and memory targets are checked here, never in unit tests. Each benchmark runs in a
throw-away copy of the project (``RIDELAKE_HOME``) and warehouse, so ``warehouse/`` and
``outputs/`` are untouched. Results are printed and saved to ``outputs/bench/<timestamp>.json``;
the exit status is 1 when a target is missed.

Usage: ``python -m ridelake.bench [--rows 150000] [--generator-rows 1500000] [--jobs N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from ridelake.tables import config

__all__ = ["TARGETS", "evaluate", "run_benchmarks", "main"]

#: Targets on the reference machine (2 cores, 24 GiB).
TARGETS = {
    "pipeline_seconds": 150.0,          # all notebooks on 150,000 generated rows, -j 2
    "pipeline_peak_rss_mb": 2048.0,     # the largest single process (a kernel) during the run
    "generator_rows_per_second": 100_000.0,
    "generator_peak_rss_mb": 300.0,     # bounded memory whatever the row count
}


def _timed(cmd: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int, str]:
    """Run a command; return (seconds, peak RSS in MB of the command and its children, exit code, tail)."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "rc = subprocess.run(sys.argv[1:]).returncode\n"
        "dt = time.perf_counter() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(f'@@bench {dt} {peak} {rc}', file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", wrapper, *cmd], env=env, cwd=cwd, capture_output=True, text=True)
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("@@bench"))
    _, seconds, peak, rc = line.split()
    return float(seconds), float(peak), int(rc), (proc.stdout + proc.stderr)[-3000:]


def run_benchmarks(rows: int, generator_rows: int, jobs: int | None) -> dict[str, Any]:
    """Run every benchmark.

    Args:
        rows: source rows for the pipeline benchmark.
        generator_rows: rows for the generator benchmark.
        jobs: ``-j`` for the runner (default: the runner's default).

    Returns:
        Measurements, targets and pass/fail per measurement.
    """
    root = config.project_root()
    results: dict[str, Any] = {"rows": rows, "generator_rows": generator_rows, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="ridelake-bench-") as tmp:
        work = Path(tmp)
        project = work / "project"
        shutil.copytree(root / "notebooks", project / "notebooks")
        shutil.copytree(root / "params", project / "params")
        env = {**os.environ, "RIDELAKE_HOME": str(project), "RIDELAKE_WAREHOUSE": str(work / "warehouse")}
        env.pop("RIDELAKE_CATALOG_URI", None)

        big = work / "gen.csv"
        secs, peak, rc, tail = _timed([sys.executable, "-m", "ridelake", "generate", "--rows", str(generator_rows),
                                       "--seed", "1", "--out", str(big)], env, project)
        if rc:
            raise SystemExit(f"generator failed:\n{tail}")
        results["generator_seconds"] = round(secs, 2)
        results["generator_rows_per_second"] = round(generator_rows / secs)
        results["generator_peak_rss_mb"] = round(peak, 1)
        big.unlink()

        data = project / "data" / "ncr_ride_bookings.csv"
        data.parent.mkdir(parents=True)
        subprocess.run([sys.executable, "-m", "ridelake", "generate", "--rows", str(rows), "--seed", "42",
                        "--out", str(data)], env=env, check=True, capture_output=True)
        cmd = [sys.executable, "-m", "ridelake", "run", "-p", "extraction_date=2024-12-31"]
        if jobs:
            cmd += ["-j", str(jobs)]
        secs, peak, rc, tail = _timed(cmd, env, project)
        if rc:
            raise SystemExit(f"pipeline failed:\n{tail}")
        results["pipeline_seconds"] = round(secs, 1)
        results["pipeline_peak_rss_mb"] = round(peak, 1)
        manifest = json.loads((project / "outputs" / "runs" / "latest" / "run.json").read_text())
        results["notebooks"] = len(manifest["notebooks"])
        results["slowest"] = sorted(((n["name"], n["duration_s"]) for n in manifest["notebooks"]),
                                    key=lambda x: -(x[1] or 0))[:5]
    results["checks"] = evaluate(results)
    return results


def evaluate(results: dict[str, Any], targets: dict[str, float] = TARGETS) -> dict[str, dict[str, Any]]:
    """Compare measurements with their targets (rates must reach them, times and sizes stay below).

    Args:
        results: measurement name -> value.
        targets: measurement name -> target.

    Returns:
        Per measurement: ``value``, ``target``, ``ok``.
    """
    checks = {}
    for key, target in targets.items():
        value = results[key]
        ok = value >= target if key.endswith("per_second") else value <= target
        checks[key] = {"value": value, "target": target, "ok": ok}
    return checks


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print them and save them under ``outputs/bench``.

    Args:
        argv: command-line arguments.

    Returns:
        0 when every target is met, else 1.
    """
    parser = argparse.ArgumentParser(prog="python -m ridelake.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--generator-rows", type=int, default=1_500_000)
    parser.add_argument("--jobs", "-j", type=int)
    args = parser.parse_args(argv)
    results = run_benchmarks(args.rows, args.generator_rows, args.jobs)
    print(f"{'measurement':<28}{'value':>12}{'target':>12}  ok")
    for key, c in results["checks"].items():
        print(f"{key:<28}{c['value']:>12,.1f}{c['target']:>12,.0f}  {'yes' if c['ok'] else 'NO'}")
    print("slowest notebooks:", ", ".join(f"{n} {s:.1f}s" for n, s in results["slowest"]))
    out = config.project_root() / "outputs" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"saved {path}")
    return 0 if all(c["ok"] for c in results["checks"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
