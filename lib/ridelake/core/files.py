"""Small file helpers the core's records share: atomic text writes, timestamps, relative paths,
the current user."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import secrets
from pathlib import Path

__all__ = ["iso", "parse_iso", "write_atomic", "relative", "current_user"]


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO-8601 UTC with milliseconds (``2026-11-25T20:30:00.123Z``)."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str | None) -> float | None:
    """The inverse of :func:`iso` (None for None or unparseable text)."""
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def write_atomic(path: str | Path, text: str) -> Path:
    """Write a text file atomically: a temporary file beside it, then ``os.replace``.

    Args:
        path: the file.
        text: its new content (UTF-8).

    Returns:
        The file written.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(2)}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return target


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies below it, else as it is."""
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def current_user() -> str | None:
    """The login name of the user running this process (None when the system cannot tell)."""
    try:
        return getpass.getuser() or None
    except (OSError, KeyError, ImportError):  # no name in the environment nor in the user database
        return None
