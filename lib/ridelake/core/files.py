"""Small file helpers the core's records share: atomic text writes, timestamps, relative paths,
the current user, parameters files."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import secrets
from pathlib import Path
from typing import Any

import yaml

from ridelake.errors import ConfigError

__all__ = ["iso", "parse_iso", "write_atomic", "relative", "current_user", "read_yaml_mapping"]


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


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file holding a mapping (a parameters file), keys as text.

    Raises:
        ConfigError: the file is missing, not YAML, or not a mapping (the message names it).
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"parameter file not found: {file}")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of parameter names to values")
    return {str(k): v for k, v in data.items()}


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
