"""Run records: ``outputs/runs/<run_id>/run.json``, the ``latest`` pointer, listing runs.

A run folder holds the executed notebooks (``<layer>/<table>.ipynb``), the catalog receipts of
each attempt (``receipts/``), the kernels' own output (``logs/``) and ``run.json``. ``run.json`` is rewritten atomically whenever a
notebook finishes, so a killed run still leaves a record (status ``running``).
``outputs/runs/latest`` is a relative symlink to the newest run folder; where symlinks are not
possible it is a text file holding the run id.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from pathlib import Path
from typing import Any

from ridelake.errors import ConfigError

__all__ = [
    "RUN_FILE",
    "LATEST",
    "runs_dir",
    "new_run_id",
    "iso",
    "parse_iso",
    "write_manifest",
    "read_manifest",
    "update_latest",
    "latest_run_id",
    "resolve_run",
    "list_runs",
]

RUN_FILE = "run.json"
LATEST = "latest"


def runs_dir(root: str | Path) -> Path:
    """The folder of run records under a project root (``<root>/outputs/runs``)."""
    return Path(root) / "outputs" / "runs"


def new_run_id(now: dt.datetime | None = None) -> str:
    """A new, sortable run id such as ``20261125T203000Z-1a2b``."""
    moment = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


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


def write_manifest(run_dir: str | Path, data: dict[str, Any]) -> Path:
    """Write ``run.json`` atomically.

    Args:
        run_dir: the run folder.
        data: the record.

    Returns:
        The file written.
    """
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RUN_FILE
    tmp = folder / f".{RUN_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """Read a run folder's ``run.json``.

    Raises:
        ConfigError: no readable record there.
    """
    path = Path(run_dir) / RUN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no run record at {path}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"unreadable run record {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"unreadable run record {path}: not an object")
    return data


def update_latest(runs: str | Path, run_id: str) -> Path:
    """Point ``<runs>/latest`` at a run (symlink, or a text file where symlinks fail).

    Args:
        runs: the runs folder.
        run_id: the run.

    Returns:
        The ``latest`` path.
    """
    folder = Path(runs)
    folder.mkdir(parents=True, exist_ok=True)
    latest = folder / LATEST
    tmp = folder / f".{LATEST}.{os.getpid()}.{secrets.token_hex(2)}"
    try:
        os.symlink(run_id, tmp, target_is_directory=True)
        os.replace(tmp, latest)
        return latest
    except (OSError, NotImplementedError):
        tmp.unlink(missing_ok=True)
    if latest.is_dir() and not latest.is_symlink():
        raise ConfigError(f"{latest} is a folder; remove it so it can point at the newest run")
    tmp.write_text(run_id + "\n", encoding="utf-8")
    os.replace(tmp, latest)
    return latest


def latest_run_id(runs: str | Path) -> str | None:
    """The run ``latest`` points at, or None."""
    latest = Path(runs) / LATEST
    if latest.is_symlink():
        return Path(os.readlink(latest)).name
    if latest.is_file():
        text = latest.read_text(encoding="utf-8").strip()
        return text or None
    return None


def resolve_run(runs: str | Path, ref: str | None = None) -> Path:
    """Find a run folder.

    Args:
        runs: the runs folder.
        ref: a run id, a unique prefix of one, ``latest`` or None (latest).

    Returns:
        The run folder.

    Raises:
        ConfigError: no such run, or an ambiguous prefix.
    """
    folder = Path(runs)
    if ref in (None, "", LATEST):
        run_id = latest_run_id(folder)
        if run_id is None:
            raise ConfigError(f"no runs recorded under {folder} yet")
        return folder / run_id
    assert ref is not None
    if (folder / ref / RUN_FILE).is_file():
        return folder / ref
    matches = sorted(p for p in _run_folders(folder) if p.name.startswith(ref))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ConfigError(f"no run {ref!r} under {folder} (see `python -m ridelake runs`)")
    raise ConfigError(f"run id {ref!r} is ambiguous: {', '.join(p.name for p in matches[:5])}")


def _run_folders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir()
            if p.is_dir() and not p.is_symlink() and (p / RUN_FILE).is_file()]


def list_runs(runs: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """The run records, newest first (unreadable ones are left out).

    Args:
        runs: the runs folder.
        limit: at most this many.

    Returns:
        The ``run.json`` contents.
    """
    records = []
    for path in sorted(_run_folders(Path(runs)), key=lambda p: p.name, reverse=True):
        try:
            records.append(read_manifest(path))
        except ConfigError:
            continue
        if limit is not None and len(records) >= limit:
            break
    return records
