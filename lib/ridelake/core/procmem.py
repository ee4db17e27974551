"""Peak resident memory of a process, read from Linux's ``/proc`` (elsewhere: unknown).

``VmHWM`` is the process's peak resident set; writing ``5`` to ``/proc/<pid>/clear_refs`` restarts
it from the current size, so one process can be measured notebook by notebook.
"""

from __future__ import annotations

__all__ = ["peak_mib", "rss_mib", "reset_peak"]


def _status(pid: int | str, field: str) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_mib(pid: int | str = "self") -> float | None:
    """``VmHWM`` of process ``pid`` in MiB; None when it is gone or ``/proc`` is absent."""
    return _status(pid, "VmHWM:")


def rss_mib(pid: int | str = "self") -> float | None:
    """``VmRSS`` (resident now) of process ``pid`` in MiB; None when it is gone or ``/proc`` is absent."""
    return _status(pid, "VmRSS:")


def reset_peak(pid: int | str = "self") -> bool:
    """Restart the peak of process ``pid`` (same user) from its current size; False if not possible."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False
