"""The ride-bookings project as the core sees it: :class:`RideBookings` implements
:class:`ridelake.core.project.Project`.

It answers the core's questions from this package: where the warehouse and catalog are, how to
bootstrap them, which snapshot each table is at, how run parameters are validated (the contract's
four names, ``docs/contract.md`` §7), and which booking months a delivery touched (so that
``incremental`` runs the silver facts once per month).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import unquote, urlsplit

from ridelake.core.lock import RunLock, WarehouseLock, lock_path
from ridelake.core.project import Partitions, SnapshotSource, project_root
from ridelake.core.redact import redact
from ridelake.core.uptodate import StateStore, state_path
from ridelake.errors import ConfigError, ParameterError
from ridelake.tables import config

# ridelake.tables.catalog and .source bring pandas, pyarrow and pyiceberg (about a second): the
# adapter imports them in the methods that need them, so a command that runs nothing (all
# up-to-date) reads table versions straight from a SQLite catalog without them.

__all__ = ["RideBookings", "CatalogSnapshots", "PARTITION_BYTES", "WRITE"]

#: The parameter that makes a notebook write its table (``write = False`` in every parameters
#: cell; the runner always passes True).
WRITE = "write"

#: Settings of the object store the kernels receive (never credentials).
_S3_SETTINGS = ("RIDELAKE_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")

#: A whole run partitions by month a delivery file at least this large (about 1.7M rows). Below
#: it a whole-file notebook stays within 1.5 GB (1,154-1,305 MiB measured at 1.5M rows, 244 MiB), and a
#: whole run is twice as fast as month by month (38 s against 81 s at 1.5M rows: each execution
#: has a fixed cost, and 12 months x 13 notebooks are 156 executions).
PARTITION_BYTES = 288 * 2**20


def _file_size(value: Any) -> int | None:
    if not value or "://" in str(value):
        return None
    try:
        return Path(str(value)).stat().st_size
    except OSError:
        return None


class CatalogSnapshots:
    """Current snapshot ids read from the warehouse's SQL catalog, fresh on every call.

    The catalog is the one the kernels use. A catalog file that does not exist yet is not created
    (every table is then absent); an absent table is None, never created.

    Args:
        warehouse: the warehouse folder or URL.
        catalog_uri: the SQLAlchemy URL (default from ``warehouse``).
    """

    def __init__(self, warehouse: str, catalog_uri: str | None = None) -> None:
        self.warehouse = warehouse
        self.uri = catalog_uri

    def current(self, tables: Iterable[str]) -> dict[str, int | None]:
        """See :meth:`ridelake.core.project.SnapshotSource.current`."""
        names = list(dict.fromkeys(tables))
        uri = self.uri or (config.catalog_uri(self.warehouse) if config.is_local_warehouse(self.warehouse) else "")
        if uri.startswith("sqlite:///"):
            return _sqlite_snapshots(uri, names)
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError  # heavy: server catalogs only

        from ridelake.tables import catalog  # heavy (pandas, pyiceberg): see the module's imports

        if not catalog.exists(self.warehouse, self.uri):
            return dict.fromkeys(names)
        # the catalog object holds a connection pool only; every load_table reads fresh metadata
        cat = catalog.get_catalog(self.warehouse, self.uri)
        out: dict[str, int | None] = {}
        for name in names:
            try:
                snap = cat.load_table(name).current_snapshot()
            except (NoSuchTableError, NoSuchNamespaceError):
                snap = None
            out[name] = snap.snapshot_id if snap is not None else None
        return out


def _sqlite_metadata(uri: str, names: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """Each table's current metadata from a SQLite SqlCatalog without pyiceberg: the file its
    ``iceberg_tables`` row points at (what pyiceberg's ``load_table`` reads); None when absent."""
    out: dict[str, dict[str, Any] | None] = dict.fromkeys(names)
    db = Path(unquote(uri[len("sqlite:///"):].split("?", 1)[0]))
    if not db.is_file():
        return out  # never created by a check
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute("SELECT table_namespace, table_name, metadata_location FROM iceberg_tables "
                           "WHERE catalog_name = ?", (config.CATALOG_NAME,)).fetchall()
    except sqlite3.OperationalError:  # no table yet: an empty catalog
        rows = []
    finally:
        con.close()
    where = {f"{ns}.{name}": loc for ns, name, loc in rows}
    for name in out:
        loc = where.get(name)
        if loc:
            path = Path(unquote(urlsplit(loc).path)) if loc.startswith("file:") else Path(loc)
            raw = path.read_bytes()
            out[name] = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    return out


def _sqlite_snapshots(uri: str, names: list[str]) -> dict[str, int | None]:
    """Current snapshot ids (see :func:`_sqlite_metadata`)."""
    out: dict[str, int | None] = {}
    for name, meta in _sqlite_metadata(uri, names).items():
        snap = (meta or {}).get("current-snapshot-id")
        out[name] = int(snap) if snap is not None and int(snap) >= 0 else None
    return out


def _sqlite_ready(uri: str) -> bool:
    """Every table exists in a SQLite catalog with its spec's columns (nothing to bootstrap)."""
    from ridelake.tables.schemas import TABLES, table_spec  # lazy: pulls in pandas

    for name, meta in _sqlite_metadata(uri, TABLES).items():
        if meta is None:
            return False
        current = next((s for s in meta.get("schemas", []) if s.get("schema-id") == meta.get("current-schema-id")), {})
        spec = table_spec(name)
        if [f.get("name") for f in current.get("fields", [])] != spec.column_names:
            return False
        have = meta.get("properties") or {}
        if any(have.get(k) != v for k, v in spec.properties().items()):
            return False  # bootstrap sets them
    return True


def _absolute_source(value: Any, root: Path, from_command_line: bool) -> Any:
    """Make ``source_file`` absolute: a ``-p`` value is looked up in the working directory first,
    then under the project root; a value from a parameters file is relative to the project root."""
    if value is None or "://" in str(value):
        return value
    path = Path(str(value)).expanduser()
    if path.is_absolute():
        return str(path)
    here = Path.cwd() / path
    return str(here.resolve() if from_command_line and here.exists() else (root / path).resolve())


@dataclass
class RideBookings:
    """The ride-bookings pipeline (see the module doc).

    Attributes:
        root: the project root (default :func:`ridelake.core.project.project_root`).
        snapshot_source: where table versions are read (default the warehouse's catalog).
    """

    root: Path = field(default_factory=project_root)
    snapshot_source: SnapshotSource | None = None
    partition_param: str = "extraction_month"
    file_params: tuple[str, ...] = ("source_file",)
    partitions_after: tuple[str, ...] = ("bronze/prepare",)

    def warehouse(self) -> str:
        """``RIDELAKE_WAREHOUSE`` when set, else ``<root>/warehouse``."""
        if os.environ.get("RIDELAKE_WAREHOUSE"):
            return config.warehouse_location()
        return str(Path(self.root) / "warehouse")

    def process_env(self) -> dict[str, str]:
        """Arrow's jemalloc pool from the kernel's start (why: :mod:`ridelake.tables.arrowmem`)."""
        return {} if sys.platform == "win32" else {"ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}  # no jemalloc there

    def kernel_env(self) -> dict[str, str]:
        """The warehouse and catalog the kernels must use (only what the user set)."""
        env: dict[str, str] = {}
        if os.environ.get("RIDELAKE_WAREHOUSE"):
            env["RIDELAKE_WAREHOUSE"] = self.warehouse()
        if os.environ.get("RIDELAKE_CATALOG_URI"):
            env["RIDELAKE_CATALOG_URI"] = os.environ["RIDELAKE_CATALOG_URI"]
        for name in _S3_SETTINGS:  # where the object store is (credentials: each machine's own)
            if os.environ.get(name):
                env[name] = os.environ[name]
        return env

    def _server_catalog(self) -> str | None:
        """The catalog URL when it is a database server (else None: a SQLite file); an object-store
        warehouse without one is a :class:`~ridelake.errors.ConfigError` (:func:`config.catalog_uri`)."""
        uri = config.catalog_uri(self.warehouse())
        return None if uri.lower().startswith("sqlite") else uri

    def lock(self, run_id: str) -> RunLock:
        """The warehouse lock: a row in the catalog database for a server catalog, which excludes
        runs on every machine (:class:`ridelake.tables.coordination.CatalogLock`); else the lock file."""
        uri = self._server_catalog()
        if uri is None:
            return WarehouseLock(lock_path(self.warehouse(), self.root), run_id, warehouse=self.warehouse())
        from ridelake.tables import coordination  # SQLAlchemy (heavy): server catalogs only

        return coordination.CatalogLock(uri, self.warehouse(), run_id)

    def state(self) -> StateStore:
        """The up-to-date state: a row in the catalog database for a server catalog, shared by the
        runs of every machine (:class:`ridelake.tables.coordination.CatalogStateStore`); else the file."""
        uri = self._server_catalog()
        if uri is None:
            return StateStore(state_path(self.warehouse(), self.root), self.warehouse())
        from ridelake.tables import coordination  # as in lock()

        return coordination.CatalogStateStore(uri, self.warehouse())

    def catalog(self) -> str | None:
        """The catalog as records and reports show it: ``RIDELAKE_CATALOG_URI`` with its password
        masked (:func:`ridelake.core.redact.redact`); None for the default SQLite in the warehouse."""
        return redact(os.environ.get("RIDELAKE_CATALOG_URI"))

    def bootstrap(self) -> None:
        """Create the catalog, namespaces and tables before a parallel wave."""
        try:
            uri = config.catalog_uri(self.warehouse())
        except ConfigError:  # no catalog for that warehouse: catalog.bootstrap says why
            uri = ""
        if uri.startswith("sqlite:///") and _sqlite_ready(uri):
            return  # every table is there as specified: no need to load pyiceberg
        from ridelake.tables import catalog  # heavy: see the module's imports

        catalog.bootstrap()

    def snapshots(self) -> SnapshotSource:
        """See :class:`CatalogSnapshots`."""
        return self.snapshot_source or CatalogSnapshots(self.warehouse(), os.environ.get("RIDELAKE_CATALOG_URI"))

    def resolve_params(self, params: Mapping[str, Any], overrides: Mapping[str, Any],
                       today: dt.date | None = None) -> dict[str, Any]:
        """Contract names are validated (dates, months); ``extraction_date: null`` becomes today
        (UTC); ``source_file`` becomes absolute; ``write`` is always True (a run writes its tables:
        a notebook opened by hand defaults to ``write = False`` and only shows what it would
        write). Other names pass through as given."""
        for where, values in (("the parameters file", params), ("-p", overrides)):
            if WRITE in values and values[WRITE] is not True:
                raise ParameterError(
                    f"{WRITE}={values[WRITE]!r} in {where}: a run always writes its tables ({WRITE}=True). "
                    "To see what a notebook would write without writing, open it in JupyterLab: it runs "
                    f"with {WRITE} = False; or use --dry-run to see what a run would execute")
        out = dict(params)  # a parameters file's values too: YAML reads 2024-12-31 as a date
        out.update(config.validate_params({k: v for k, v in params.items() if k in config.PARAMETER_NAMES}))
        known = {k: v for k, v in overrides.items() if k in config.PARAMETER_NAMES}
        out.update(config.validate_params(known))
        out.update({k: v for k, v in overrides.items() if k not in config.PARAMETER_NAMES})
        if out.get("extraction_date") is None:
            out["extraction_date"] = (today or config.today_utc()).isoformat()
        if out.get("source_file") is not None:
            out["source_file"] = _absolute_source(out["source_file"], Path(self.root), "source_file" in known)
        out[WRITE] = True
        return out

    def check_params(self, params_by_key: Mapping[str, Mapping[str, Any]]) -> None:
        """A delivery file every notebook that receives it can read; else the make hint."""
        users = [k for k, p in params_by_key.items() if p.get("source_file")]
        paths = sorted({str(p["source_file"]) for p in params_by_key.values() if p.get("source_file")})
        for path in paths:
            if "://" in path:
                continue
            if not Path(path).exists():
                raise ParameterError(
                    f"source_file {path} does not exist (needed by {', '.join(users[:3])}"
                    f"{'...' if len(users) > 3 else ''}); generate one with `make data` or pass -p source_file=PATH"
                )
            if Path(path).is_dir():
                raise ParameterError(f"source_file {path} is a directory, not a delivery file")

    def partitions(self, params: Mapping[str, Any], max_partitions: int | None) -> Partitions:
        """The booking months the delivery touched; whole when unknown, too many, or when the
        delivery moves bookings to another month (month rebuilds cannot move them consistently).

        With no ``max_partitions`` (a whole run) it partitions only a large delivery: a source file
        of at least ``RIDELAKE_PARTITION_BYTES`` (default :data:`PARTITION_BYTES`), so that a
        kernel holds one month at a time.
        """
        if max_partitions is None:
            size = _file_size(params.get("source_file"))
            limit = int(os.environ.get("RIDELAKE_PARTITION_BYTES", PARTITION_BYTES))
            if size is None or size < limit:
                return Partitions(None)
        from ridelake.tables import source  # heavy (pandas, pyarrow): only when months are looked up

        args = (params.get("source_file") or "", params["extraction_date"], params.get("extraction_month"),
                self.warehouse())
        months = source.staged_months(*args)
        if months is None:
            return Partitions(None, "note: the months of the delivery are unknown (no staging record); "
                                    "the silver facts rebuild every month once")
        if max_partitions is None:
            return Partitions(tuple(months), f"large delivery ({size / 2**20:,.0f} MiB): bronze and the silver "
                                             f"facts run once per month ({len(months)} months)")
        if len(months) > max_partitions:
            return Partitions(None, f"delivery touched {len(months)} months (more than {max_partitions}): "
                                    "the silver facts rebuild every month once")
        try:
            moved = bool(source.moved_bookings(*args))
        except Exception:  # cannot tell: the safe choice is a whole rebuild
            moved = True
        if moved:
            return Partitions(None, "the delivery moves bookings to another month: "
                                    "the silver facts rebuild every month once")
        return Partitions(tuple(months), f"delivery touched {len(months)} month(s): {', '.join(months) or 'none'}")
