"""Settings, paths and run parameters.

Everything that depends on where the project lives or which warehouse to use is decided here,
from environment variables first (docs/contract.md §7) and sensible project-relative defaults second:

- ``RIDELAKE_HOME``          project root (default: found by walking up to ``notebooks/pipeline.yaml``)
- ``RIDELAKE_WAREHOUSE``     warehouse path or object-store URL (default ``<root>/warehouse``)
- ``RIDELAKE_CATALOG_URI``   SQLAlchemy URL of the catalog (default SQLite ``<warehouse>/catalog.db``;
                            an object-store warehouse needs a server catalog)
- ``RIDELAKE_S3_ENDPOINT``   an S3-compatible endpoint (else ``AWS_ENDPOINT_URL``), with the usual
                            ``AWS_*`` credentials and region (see :mod:`ridelake.tables.storage`)
- ``RIDELAKE_RUN_ID``, ``RIDELAKE_NOTEBOOK``, ``RIDELAKE_PARAMS_HASH``  set by the runner for provenance
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from ridelake.core.files import read_yaml_mapping
from ridelake.core.project import project_root
from ridelake.core.protocol import ENV
from ridelake.errors import ConfigError, ParameterError

__all__ = [
    "CATALOG_NAME",
    "PROP_RUN_ID",
    "PROP_NOTEBOOK",
    "PROP_PARAMS_HASH",
    "PROP_TABLE",
    "PROP_USER",
    "PROP_HOST",
    "PARAMETER_NAMES",
    "RunParams",
    "project_root",
    "warehouse_location",
    "is_local_warehouse",
    "catalog_uri",
    "use_warehouse",
    "staging_location",
    "resolve_path",
    "today_utc",
    "parse_param_value",
    "validate_params",
    "load_params_file",
    "run_parameters",
    "run_context",
]

CATALOG_NAME = "ridelake"
#: Snapshot properties every write carries (``history`` and ``rollback`` read them).
PROP_RUN_ID, PROP_NOTEBOOK, PROP_PARAMS_HASH, PROP_TABLE = (
    "ridelake.run-id", "ridelake.notebook", "ridelake.params-hash", "ridelake.table")
#: Who made a write, and on which machine (every write carries them too).
PROP_USER, PROP_HOST = "ridelake.user", "ridelake.host"
#: The run parameters of docs/contract.md §7, with these exact names everywhere.
PARAMETER_NAMES = ("source_file", "extraction_date", "extraction_month", "target_date")

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def warehouse_location() -> str:
    """Return the warehouse as an absolute local path or an object-store URL."""
    env = os.environ.get("RIDELAKE_WAREHOUSE")
    if env:
        if "://" in env and not env.startswith("file://"):
            return env.rstrip("/")
        local = env[len("file://"):] if env.startswith("file://") else env
        return str(Path(local).expanduser().resolve())
    return str(project_root() / "warehouse")


def is_local_warehouse(location: str | None = None) -> bool:
    """Tell whether the warehouse is a local folder (as opposed to an object store)."""
    return "://" not in (location or warehouse_location())


def catalog_uri(warehouse: str | None = None) -> str:
    """Return the SQLAlchemy URL of the Iceberg SQL catalog.

    Args:
        warehouse: the warehouse whose default catalog is meant (default :func:`warehouse_location`).

    Returns:
        ``RIDELAKE_CATALOG_URI`` when set, else SQLite at ``<warehouse>/catalog.db`` opened with a
        30 s busy timeout so parallel notebooks wait for each other's commits instead of failing.

    Raises:
        ConfigError: an object-store warehouse without a server catalog (none set, or SQLite).
    """
    env = os.environ.get("RIDELAKE_CATALOG_URI")
    if env and not env.lower().startswith("sqlite"):
        return env
    location = warehouse or warehouse_location()
    if env and not is_local_warehouse(location):
        raise ConfigError(
            f"the warehouse {location} is on an object store but the catalog is a SQLite file: runs on other "
            "machines could neither see it nor share the warehouse lock and up-to-date state kept with it; set "
            "RIDELAKE_CATALOG_URI to a server catalog (e.g. postgresql+psycopg://user@host/ridelake)"
        )
    if env:
        return env
    if not is_local_warehouse(location):
        raise ConfigError(
            f"the warehouse {location} is not a local folder: set RIDELAKE_CATALOG_URI "
            "(e.g. postgresql+psycopg://user@host/ridelake) to say where the catalog lives"
        )
    return f"sqlite:///{Path(location) / 'catalog.db'}?timeout=30"


def use_warehouse(path: str | None) -> None:
    """Point this process (and the kernels it starts) at a warehouse (``--warehouse``)."""
    if path:
        # absolute, because kernels run in the notebooks' folders
        os.environ["RIDELAKE_WAREHOUSE"] = path if "://" in path else str(Path(path).expanduser().resolve())


def staging_location() -> str:
    """Where prepared deliveries are handed from the prepare notebook to the bronze notebooks."""
    location = warehouse_location()
    if is_local_warehouse(location):
        return str(Path(location) / "_staging")
    return f"{location}/_staging"


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """Resolve a user-given path.

    Args:
        path: absolute, relative to the working directory, or relative to the project root
            (so ``data/x.csv`` works from a notebook opened in ``notebooks/bronze/``).

    Returns:
        The absolute path (which may not exist).
    """
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    if p.exists():
        return p.resolve()
    return (project_root() / p).resolve()


def today_utc() -> dt.date:
    """Today's date in UTC (the default ``extraction_date``)."""
    return dt.datetime.now(dt.timezone.utc).date()


def parse_param_value(text: str) -> Any:
    """Turn the text of ``-p key=value`` into a value: ``null``/``none``/empty become None."""
    stripped = text.strip()
    if stripped.lower() in ("", "null", "none", "~"):
        return None
    return stripped


def _check_date(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    if not _DATE_RE.match(text):
        raise ParameterError(f"{name} must be YYYY-MM-DD, got {value!r}")
    try:
        dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ParameterError(f"{name} is not a real date: {value!r} ({exc})") from None
    return text


def _check_month(name: str, value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not _MONTH_RE.match(text):
        raise ParameterError(f"{name} must be YYYY-MM, got {value!r}")
    return text


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check and normalise run parameters.

    Args:
        params: parameter names to values; unknown names are an error.

    Returns:
        A new dict with dates as ``YYYY-MM-DD`` strings, months as ``YYYY-MM``, None kept.
    """
    unknown = sorted(set(params) - set(PARAMETER_NAMES))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(PARAMETER_NAMES)}"
        )
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, str):
            value = parse_param_value(value)
        if name in ("extraction_date", "target_date"):
            out[name] = _check_date(name, value)
        elif name == "extraction_month":
            out[name] = _check_month(name, value)
        else:
            out[name] = None if value is None else str(value)
    return out


def load_params_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``params/*.yaml`` file.

    Args:
        path: the YAML file; a mapping of parameter names to values.

    Returns:
        The validated parameters.
    """
    file = Path(path)
    data = read_yaml_mapping(file)
    try:
        return validate_params(data)
    except ParameterError as exc:
        raise ParameterError(f"{file}: {exc}") from None


@dataclass(frozen=True)
class RunParams:
    """The parameters a notebook runs with, validated and typed.

    Attributes:
        source_file: absolute path of the delivery, or None.
        extraction_date: the delivery's extraction date (defaults to today, UTC).
        extraction_month: ``YYYY-MM`` to restrict the run to one booking month, or None.
        target_date: one booking date for the gold daily summary, or None.
    """

    source_file: Path | None
    extraction_date: dt.date
    extraction_month: str | None
    target_date: dt.date | None

    def as_dict(self) -> dict[str, Any]:
        """Return the parameters as plain JSON-able values."""
        d = asdict(self)
        d["source_file"] = str(self.source_file) if self.source_file else None
        d["extraction_date"] = self.extraction_date.isoformat()
        d["target_date"] = self.target_date.isoformat() if self.target_date else None
        return d


def run_parameters(
    source_file: str | None = None,
    extraction_date: str | dt.date | None = None,
    extraction_month: str | None = None,
    target_date: str | dt.date | None = None,
) -> RunParams:
    """Validate a notebook's parameters cell values.

    Args:
        source_file: path of the delivery (resolved with :func:`resolve_path`).
        extraction_date: ``YYYY-MM-DD``; None means today (UTC).
        extraction_month: ``YYYY-MM`` or None.
        target_date: ``YYYY-MM-DD`` or None.

    Returns:
        A :class:`RunParams`.
    """
    p = validate_params(
        {
            "source_file": source_file,
            "extraction_date": extraction_date,
            "extraction_month": extraction_month,
            "target_date": target_date,
        }
    )
    return RunParams(
        source_file=resolve_path(p["source_file"]) if p["source_file"] else None,
        extraction_date=dt.date.fromisoformat(p["extraction_date"]) if p["extraction_date"] else today_utc(),
        extraction_month=p["extraction_month"],
        target_date=dt.date.fromisoformat(p["target_date"]) if p["target_date"] else None,
    )


def run_context() -> dict[str, str]:
    """Provenance of the current execution, as set by the runner (empty when run by hand).

    Returns:
        ``{"ridelake.run-id": ..., "ridelake.notebook": ..., "ridelake.params-hash": ...}`` for the
        variables that are set.
    """
    keys = {ENV.RUN_ID: PROP_RUN_ID, ENV.NOTEBOOK: PROP_NOTEBOOK, ENV.PARAMS_HASH: PROP_PARAMS_HASH}
    return {prop: os.environ[var] for var, prop in keys.items() if os.environ.get(var)}
