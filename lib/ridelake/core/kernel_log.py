"""The kernel process's own output (``logs/<layer>__<table>.<attempt>.log`` of a run folder).

A kernel that shuts down normally still prints ipykernel's chatter to its stderr, e.g.
``[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.``: that is noise, not a problem of
the notebook. :func:`clean` drops such lines from a log after the attempt (and the file when
nothing else is left); :func:`has_content` tells whether a log holds anything else (the report
links only those).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["NOISE", "is_noise", "meaningful", "has_content", "clean"]

#: Lines a normally ending kernel prints; nothing a reader needs.
NOISE = (
    re.compile(r"^\[IPKernelApp\] ERROR \| KeyboardInterrupt caught in kernel\.?$"),
    re.compile(r"^\[IPKernelApp\] WARNING \| Parent appears to have exited, shutting down\.?$"),
)


def is_noise(line: str) -> bool:
    """True for a line of :data:`NOISE`."""
    text = line.strip()
    return any(p.match(text) for p in NOISE)


def meaningful(text: str) -> str:
    """The text without its noise lines; empty when nothing but noise and blank lines was there."""
    kept = [line for line in text.splitlines() if not is_noise(line)]
    return "\n".join(kept) + "\n" if any(line.strip() for line in kept) else ""


def has_content(path: str | Path) -> bool:
    """True when the log exists and holds more than noise."""
    file = Path(path)
    try:
        return file.is_file() and bool(meaningful(file.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        return False


def clean(path: str | Path | None) -> None:
    """Drop the noise lines from a log; delete the file when nothing else is left. Never raises."""
    if path is None:
        return
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
        kept = meaningful(text)
        if not kept:
            file.unlink()
        elif kept != text:
            file.write_text(kept, encoding="utf-8")
    except OSError:
        pass  # a log is a convenience; never fail a run for it
