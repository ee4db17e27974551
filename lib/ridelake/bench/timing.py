"""The bench's timing wrapper: ``python -m ridelake.bench.timing CMD...`` runs CMD and prints
``@@bench [wall_s, cpu_s, peak_rss_mib, exit_code]`` on stderr.

CPU is user + system of CMD and everything it waited for, plus the **pooled warm kernels** the
command used (:mod:`ridelake.core.engines.pool`): they are not its children once they outlive it,
so their CPU is read from ``/proc`` before and after (the whole life of a kernel the command
started, the difference for one it took over). Peak RSS is the largest single process: the
waited-for tree's ``ru_maxrss``, a pooled kernel's ``VmHWM`` (reset before the command through
``/proc/<pid>/clear_refs`` so an earlier command's peak does not count), or the largest
``peak_rss_mib`` of a notebook in the run record the command wrote (a warm kernel's peak is
measured notebook by notebook, which restarts its ``VmHWM``).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from ridelake.core.procmem import peak_mib, reset_peak

__all__ = ["pooled_kernels", "kernel_cpu", "kernel_peak_mib", "recorded_peak_mib", "main"]

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def pooled_kernels(base: str | None) -> list[int]:
    """Pids of the kernels in the pools under ``base`` (``RIDELAKE_KERNEL_POOL_DIR``)."""
    pids = []
    if base and os.path.isdir(base):
        for info in Path(base).glob("*/k*/kernel.json"):
            try:
                pids.append(int(json.loads(info.read_text(encoding="utf-8"))["pid"]))
            except (OSError, ValueError, KeyError):
                continue
    return pids


def kernel_cpu(pid: int) -> float | None:
    """Seconds of user + system CPU of a live process (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return None


def kernel_peak_mib(pid: int) -> float:
    """``VmHWM`` (peak resident set) of a live process, MiB (0 when it is gone)."""
    return peak_mib(pid) or 0.0


def recorded_peak_mib(since: float, home: str | None) -> float:
    """The largest notebook ``peak_rss_mib`` in ``<home>/outputs/runs/latest/run.json`` when that
    record was written after ``since`` (epoch seconds); 0 when there is none."""
    record = Path(home or ".") / "outputs" / "runs" / "latest" / "run.json"
    try:
        if record.stat().st_mtime < since:
            return 0.0
        notebooks = json.loads(record.read_text(encoding="utf-8")).get("notebooks", [])
    except (OSError, ValueError):
        return 0.0
    return max((float(n.get("peak_rss_mib") or 0.0) for n in notebooks), default=0.0)


def main(argv: Sequence[str] | None = None) -> int:
    """The wrapper (see the module doc)."""
    cmd = list(sys.argv[1:] if argv is None else argv)
    base = os.environ.get("RIDELAKE_KERNEL_POOL_DIR")
    before = {pid: kernel_cpu(pid) for pid in pooled_kernels(base)}
    for pid in before:
        reset_peak(pid)
    since = time.time()
    t = time.perf_counter()
    rc = subprocess.run(cmd).returncode
    wall = time.perf_counter() - t
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu, peak = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
    for pid in pooled_kernels(base):
        now = kernel_cpu(pid)
        if now is not None:
            cpu += now - (before.get(pid) or 0.0)
            peak = max(peak, kernel_peak_mib(pid))
    peak = max(peak, recorded_peak_mib(since, os.environ.get("RIDELAKE_HOME")))
    print("@@bench " + json.dumps([wall, cpu, peak, rc]), file=sys.stderr)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
