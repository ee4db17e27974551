"""The warehouse lock and the up-to-date state in the catalog database (server catalogs).

A lock file or a state file excludes and informs only the runs that see that file. With a server
catalog (``RIDELAKE_CATALOG_URI=postgresql+psycopg://...``) runs may start on several machines
against one warehouse, so both live where every such run already connects: the catalog database,
in two tables of ridelake's own beside pyiceberg's (created on first use):

``ridelake_locks`` (:class:`CatalogLock`)
    One row per locked warehouse; the warehouse is the primary key, so of two runs inserting it
    at once exactly one succeeds (the database decides, atomically), and the other is refused
    with a :class:`~ridelake.errors.LockError` naming the holder: run id, pid, host, start time
    and the age of its last heartbeat. The holder's background thread rewrites ``heartbeat_at``
    every ``heartbeat_s`` seconds with the **database's clock** (so clocks of different machines
    do not matter). A row is **stale**, and deleted by the next run, when its holder ran on this
    host and its pid is gone, or when its heartbeat is older than ``stale_after_s`` (as for the
    lock file, :func:`ridelake.core.lock.stale_reason`). Breaking deletes the row only if it is
    still the very acquisition judged stale (its ``token`` and heartbeat count), so two runs
    breaking one stale lock cannot both win. Release deletes the row if it is still ours.

``ridelake_state`` (:class:`CatalogStateStore`)
    One row per warehouse holding the up-to-date document of
    :class:`ridelake.core.uptodate.StateStore` (the same JSON as the state file), replaced in one
    transaction by the run holding the lock.

The catalog URL's password is never shown: errors name the database masked
(:func:`ridelake.core.redact.redact`).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
import threading
import time
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, create_engine, delete, func, insert
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ridelake.core.lock import stale_reason
from ridelake.core.redact import redact, redact_text
from ridelake.core.uptodate import StateStore
from ridelake.errors import CatalogError, LockError
from ridelake.tables import storage

__all__ = ["LOCKS_TABLE", "STATE_TABLE", "is_server_catalog", "engine", "CatalogLock", "CatalogStateStore",
           "lock_holder"]

LOCKS_TABLE = "ridelake_locks"
STATE_TABLE = "ridelake_state"

_metadata = MetaData()
_locks = Table(
    LOCKS_TABLE, _metadata,
    Column("warehouse", String(1024), primary_key=True),
    Column("run_id", String(255), nullable=False),
    Column("token", String(64), nullable=False),
    Column("pid", Integer),
    Column("host", String(255)),
    Column("started_at", String(40)),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("beats", Integer, nullable=False),
)
_state = Table(
    STATE_TABLE, _metadata,
    Column("warehouse", String(1024), primary_key=True),
    Column("document", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

_engine_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def is_server_catalog(uri: str) -> bool:
    """Tell whether a catalog URL names a database server (anything but a SQLite file)."""
    return not uri.lower().startswith("sqlite")


def _problem(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return redact_text(text) or type(exc).__name__


def engine(uri: str) -> Engine:
    """The SQLAlchemy engine of a catalog database for the lock and the state (one per process and
    URL), with ridelake's two tables created if absent.

    Raises:
        SQLAlchemyError: the database cannot be reached or the tables cannot be made.
    """
    with _engine_lock:
        eng = _engines.get(uri)
        if eng is None:
            eng = create_engine(uri, pool_pre_ping=True, pool_size=2, max_overflow=4)
            try:
                _metadata.create_all(eng, checkfirst=True)
            except SQLAlchemyError:  # another process created them between our check and create
                _metadata.create_all(eng, checkfirst=True)
            _engines[uri] = eng
        return eng


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _age(conn: Any, beat: dt.datetime) -> float:
    """Seconds since ``beat`` by the database's clock."""
    now = conn.execute(select(func.current_timestamp())).scalar_one()
    if isinstance(now, str):  # SQLite returns the text of CURRENT_TIMESTAMP
        now = dt.datetime.fromisoformat(now)
    if (now.tzinfo is None) != (beat.tzinfo is None):
        now, beat = now.replace(tzinfo=None), beat.replace(tzinfo=None)
    return max(0.0, (now - beat).total_seconds())


def lock_holder(uri: str, warehouse: str) -> dict[str, Any] | None:
    """The row of a warehouse's lock (``run_id``, ``pid``, ``host``, ``started_at``, ``age_s``),
    or None when it is free."""
    with engine(uri).connect() as conn:
        row = conn.execute(select(_locks).where(_locks.c.warehouse == storage.normalize(warehouse))).mappings().first()
        if row is None:
            return None
        return {**dict(row), "age_s": _age(conn, row["heartbeat_at"])}


class CatalogLock:
    """The lock of one warehouse in its catalog database, held by one run (see the module doc).

    Implements :class:`ridelake.core.lock.RunLock`.

    Args:
        uri: the catalog's SQLAlchemy URL.
        warehouse: the warehouse (the row's key, normalised: :func:`ridelake.tables.storage.normalize`).
        run_id: the run that holds it.
        heartbeat_s: how often the holder refreshes its heartbeat.
        stale_after_s: heartbeat age after which another run may break the lock.
    """

    def __init__(self, uri: str, warehouse: str, run_id: str, *, heartbeat_s: float = 10.0,
                 stale_after_s: float = 120.0) -> None:
        self.uri = uri
        self.warehouse = warehouse
        self.key = storage.normalize(warehouse)
        self.run_id = run_id
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.held = False
        self.lost = False  # our row was deleted by another run while we held it (judged stale)
        self.broke: str | None = None
        self.token = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _where(self) -> str:
        return f"the catalog database {redact(self.uri)}"

    def _try_insert(self, conn: Any) -> bool:
        try:
            with conn.begin():
                conn.execute(insert(_locks).values(
                    warehouse=self.key, run_id=self.run_id, token=self.token, pid=os.getpid(),
                    host=socket.gethostname(), started_at=_now_iso(), heartbeat_at=func.current_timestamp(), beats=0))
            return True
        except IntegrityError:
            return False

    def _try_break(self, conn: Any, row: Any) -> bool:
        """Delete a stale row if it is still that acquisition at that heartbeat."""
        with conn.begin():
            gone = conn.execute(delete(_locks).where(_locks.c.warehouse == self.key, _locks.c.token == row["token"],
                                                     _locks.c.beats == row["beats"]))
        return gone.rowcount == 1

    def holder_message(self, row: Any, age: float) -> str:
        """Describe the holder of the lock for an error message."""
        return (f"the warehouse {self.warehouse} is in use by run {row['run_id']} (pid {row['pid']} on "
                f"{row['host']}, started {row['started_at']}, last heartbeat {age:.0f} s ago)")

    def acquire(self, wait: float = 0.0, poll: float = 0.5) -> None:
        """Take the lock, breaking a stale one.

        Args:
            wait: seconds to keep trying while another run holds it (0: refuse at once).
            poll: seconds between tries while waiting.

        Raises:
            LockError: another live run holds the lock (after ``wait`` seconds).
            CatalogError: the catalog database cannot be reached.
        """
        self.token = secrets.token_hex(16)
        deadline = time.monotonic() + max(0.0, wait)
        try:
            with engine(self.uri).connect() as conn:
                while True:
                    if self._try_insert(conn):
                        break
                    row = conn.execute(select(_locks).where(_locks.c.warehouse == self.key)).mappings().first()
                    conn.rollback()
                    if row is None:
                        continue  # released between our tries
                    age = _age(conn, row["heartbeat_at"])
                    conn.rollback()
                    reason = stale_reason({"host": row["host"], "pid": row["pid"]}, age, self.stale_after_s)
                    if reason is not None:
                        if self._try_break(conn, row):
                            self.broke = f"broke a stale lock of run {row['run_id']}: {reason}"
                        continue
                    if time.monotonic() >= deadline:
                        hint = ("; try again later or pass --wait SECONDS" if wait <= 0
                                else f"; gave up after waiting {wait:g} s")
                        raise LockError(
                            f"{self.holder_message(row, age)}{hint}. The lock is a row of {LOCKS_TABLE} in "
                            f"{self._where()}; if no run is active, delete it: "
                            f"DELETE FROM {LOCKS_TABLE} WHERE warehouse = '{self.key}'")
                    time.sleep(min(poll, max(0.01, deadline - time.monotonic())))
        except SQLAlchemyError as exc:
            raise CatalogError(f"cannot take the warehouse lock in {self._where()}: {_problem(exc)}") from None
        self.held = True
        self.lost = False
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="ridelake-catalog-lock-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                with engine(self.uri).begin() as conn:
                    done = conn.execute(update(_locks).where(_locks.c.warehouse == self.key,
                                                             _locks.c.token == self.token)
                                        .values(heartbeat_at=func.current_timestamp(), beats=_locks.c.beats + 1))
            except SQLAlchemyError:
                continue  # the database is briefly away: the next beat tries again
            if done.rowcount == 0:
                self.lost = True  # no longer ours: never touch another run's row
                return

    def release(self) -> None:
        """Give the lock back (only if it is still ours). Safe to call twice; a database that
        cannot be reached leaves the row, which goes stale after ``stale_after_s``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if not self.held:
            return
        self.held = False
        try:
            with engine(self.uri).begin() as conn:
                conn.execute(delete(_locks).where(_locks.c.warehouse == self.key, _locks.c.token == self.token))
        except SQLAlchemyError:
            pass

    def __enter__(self) -> "CatalogLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class CatalogStateStore(StateStore):
    """The up-to-date state of a warehouse as a row of ``ridelake_state`` in the catalog database
    (see the module doc and :class:`ridelake.core.uptodate.StateStore`).

    Args:
        uri: the catalog's SQLAlchemy URL.
        warehouse: the warehouse (the row's key, normalised).
    """

    def __init__(self, uri: str, warehouse: str) -> None:
        self.uri = uri
        self.key = storage.normalize(warehouse)
        super().__init__(None, warehouse)

    def where(self) -> str:
        """The row, for messages (the password masked)."""
        return f"{STATE_TABLE} (warehouse {self.key}) in the catalog database {redact(self.uri)}"

    def read_text(self) -> str | None:
        """The stored document (None: no row yet).

        Raises:
            OSError: the database cannot be read.
        """
        try:
            with engine(self.uri).connect() as conn:
                return conn.execute(select(_state.c.document).where(_state.c.warehouse == self.key)).scalar()
        except SQLAlchemyError as exc:
            raise OSError(_problem(exc)) from None

    def write_text(self, text: str) -> None:
        """Replace the stored document in one transaction.

        Raises:
            OSError: the database cannot be written.
        """
        values = {"document": text, "updated_at": func.current_timestamp()}
        try:
            for _ in range(2):
                try:
                    with engine(self.uri).begin() as conn:
                        done = conn.execute(update(_state).where(_state.c.warehouse == self.key).values(**values))
                        if done.rowcount == 0:
                            conn.execute(insert(_state).values(warehouse=self.key, **values))
                    return
                except IntegrityError:  # another process inserted the row first: update it
                    continue
            raise OSError(f"cannot write {self.where()}")
        except SQLAlchemyError as exc:
            raise OSError(_problem(exc)) from None
