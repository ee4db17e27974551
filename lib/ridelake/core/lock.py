"""One run at a time per warehouse.

A run holds a lock file while it writes: ``<warehouse>/.ridelake.lock`` for a local warehouse,
else ``<root>/outputs/locks/<hash of the warehouse URL>.lock``. The file says who holds it
(``run_id``, ``pid``, ``host``, ``started_at``) and when the holder last proved it was alive
(``heartbeat_at``, rewritten every ``heartbeat_s`` seconds by a background thread).

Behaviour:

- A second run **refuses** at once with a :class:`~ridelake.errors.LockError` that names the
  holder, unless it was asked to wait (``--wait SECONDS``): then it retries twice a second until
  the lock is free or the time is up.
- A lock left by a killed run never blocks for long: it is **stale**, and broken, when its
  holder ran on this host and its pid is gone, or when its heartbeat is older than
  ``stale_after_s`` (default 120 s; covers other hosts and reused pids).
- Creating the file is atomic (write a temporary file, then ``os.link`` it into place, which
  fails if the lock exists; ``O_EXCL`` where links are unsupported). Breaking a stale lock
  renames it aside first and puts it back if it turns out to have changed meanwhile, so two
  runs breaking the same stale lock cannot both win.

A file excludes only the runs that see the same file. A project can supply another lock through
:meth:`~ridelake.core.project.Project.lock` (any :class:`RunLock`); :func:`lock_for` gives the
project's, else this file lock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from ridelake.errors import LockError

__all__ = ["LOCK_NAME", "RunLock", "lock_path", "read_lock", "pid_alive", "stale_reason", "WarehouseLock", "lock_for"]

LOCK_NAME = ".ridelake.lock"


class RunLock(Protocol):
    """What the core asks of a warehouse lock (:class:`WarehouseLock`, or the project's own, e.g.
    one kept in a catalog database so that runs on other machines are excluded too).

    Attributes:
        broke: after :meth:`acquire`, why a stale lock was broken to take it (else None).
    """

    broke: str | None

    def acquire(self, wait: float = 0.0, poll: float = 0.5) -> None:
        """Take the lock (breaking a stale one), waiting up to ``wait`` seconds.

        Raises:
            LockError: another live run holds it, naming that run.
        """
        ...

    def release(self) -> None:
        """Give the lock back if it is still ours; safe to call twice."""
        ...


def lock_path(warehouse: str, root: str | Path) -> Path:
    """Where the lock of a warehouse lives.

    Args:
        warehouse: a local path or an object-store URL.
        root: the project root, for non-local warehouses.

    Returns:
        ``<warehouse>/.ridelake.lock``, or ``<root>/outputs/locks/<hash>.lock`` for a URL.
    """
    if "://" not in warehouse:
        return Path(warehouse) / LOCK_NAME
    digest = hashlib.sha256(warehouse.encode("utf-8")).hexdigest()[:16]
    return Path(root) / "outputs" / "locks" / f"{digest}.lock"


def read_lock(path: str | Path) -> dict[str, Any] | None:
    """Read a lock file.

    Args:
        path: the lock file.

    Returns:
        The holder's record; None when there is no lock; ``{}`` when it cannot be parsed.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def pid_alive(pid: int) -> bool:
    """Tell whether a process with this id exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def stale_reason(info: dict[str, Any], age_s: float, stale_after_s: float) -> str | None:
    """Decide whether a lock's holder is gone.

    Args:
        info: the lock's record (``{}`` for an unreadable file).
        age_s: seconds since the last heartbeat (or since the file was modified).
        stale_after_s: heartbeat age beyond which the holder is presumed dead.

    Returns:
        Why the lock is stale, or None when it is held.
    """
    host, pid = info.get("host"), info.get("pid")
    if host == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid):
        return f"its process {pid} is no longer running"
    if age_s > stale_after_s:
        return f"no heartbeat for {age_s:.0f} s"
    return None


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class WarehouseLock:
    """The lock of one warehouse, held by one run.

    Args:
        path: the lock file (see :func:`lock_path`).
        run_id: the run that holds it.
        warehouse: recorded in the file, for the error message.
        heartbeat_s: how often the holder rewrites ``heartbeat_at``.
        stale_after_s: heartbeat age after which another run may break the lock.
    """

    def __init__(self, path: str | Path, run_id: str, *, warehouse: str = "",
                 heartbeat_s: float = 10.0, stale_after_s: float = 120.0) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.warehouse = warehouse
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.held = False
        self._started = _now_iso()
        self.broke: str | None = None  # why a stale lock was broken on acquire, if one was
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _record(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "pid": os.getpid(), "host": socket.gethostname(),
                "started_at": self._started, "heartbeat_at": _now_iso(), "heartbeat": time.time(),
                "warehouse": self.warehouse}

    def _tmp(self) -> Path:
        return self.path.with_name(f"{self.path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")

    def _try_create(self) -> bool:
        tmp = self._tmp()
        tmp.write_text(json.dumps(self._record()), encoding="utf-8")
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links here: exclusive create (content follows right after)
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(tmp.read_text(encoding="utf-8"))
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def _age(self, info: dict[str, Any]) -> float:
        beat = info.get("heartbeat")
        if isinstance(beat, (int, float)):
            return time.time() - float(beat)
        try:
            return time.time() - self.path.stat().st_mtime
        except OSError:
            return 0.0

    def _break(self, info: dict[str, Any]) -> bool:
        """Move a stale lock aside; put it back if it changed since it was judged stale."""
        tomb = self.path.with_name(f"{self.path.name}.stale.{os.getpid()}.{secrets.token_hex(3)}")
        try:
            os.rename(self.path, tomb)
        except FileNotFoundError:
            return True  # someone else removed it: try to create ours
        if (read_lock(tomb) or {}) == info:
            tomb.unlink(missing_ok=True)
            return True
        try:  # we moved a fresh lock: restore it unless another one took its place
            os.link(tomb, self.path)
        except OSError:
            pass
        tomb.unlink(missing_ok=True)
        return False

    def holder_message(self, info: dict[str, Any]) -> str:
        """Describe the holder of the lock for an error message."""
        if not info:
            return f"the warehouse is locked by {self.path} (unreadable)"
        age = self._age(info)
        return (f"the warehouse {info.get('warehouse') or self.warehouse} is in use by run "
                f"{info.get('run_id', '?')} (pid {info.get('pid', '?')} on {info.get('host', '?')}, "
                f"started {info.get('started_at', '?')}, last heartbeat {age:.0f} s ago)")

    def acquire(self, wait: float = 0.0, poll: float = 0.5) -> None:
        """Take the lock, breaking a stale one.

        Args:
            wait: seconds to keep trying while another run holds it (0: refuse at once).
            poll: seconds between tries while waiting.

        Raises:
            LockError: another live run holds the lock (after ``wait`` seconds).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._started = _now_iso()
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                if self._try_create():
                    break
            except OSError as exc:
                raise LockError(f"cannot create the lock file {self.path}: {exc}") from None
            info = read_lock(self.path)
            if info is None:
                continue  # released between our tries
            reason = stale_reason(info, self._age(info), self.stale_after_s)
            if reason is not None:
                if self._break(info):
                    self.broke = f"broke a stale lock of run {info.get('run_id', '?')}: {reason}"
                continue
            if time.monotonic() >= deadline:
                hint = ("; try again later or pass --wait SECONDS" if wait <= 0
                        else f"; gave up after waiting {wait:g} s")
                raise LockError(f"{self.holder_message(info)}{hint}. If no run is active, delete {self.path}.")
            time.sleep(min(poll, max(0.01, deadline - time.monotonic())))
        self.held = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="ridelake-lock-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            info = read_lock(self.path)
            if not info or info.get("run_id") != self.run_id or info.get("pid") != os.getpid():
                return  # no longer ours: never overwrite another run's lock
            tmp = self._tmp()
            try:
                tmp.write_text(json.dumps(self._record()), encoding="utf-8")
                os.replace(tmp, self.path)
            except OSError:
                tmp.unlink(missing_ok=True)

    def release(self) -> None:
        """Give the lock back (only if it is still ours). Safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if not self.held:
            return
        self.held = False
        info = read_lock(self.path)
        if info and info.get("run_id") == self.run_id and info.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "WarehouseLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_for(project: Any, run_id: str) -> RunLock:
    """The lock a run of ``project`` takes: the project's ``lock(run_id)`` when it has one, else
    the file lock of its warehouse (:func:`lock_path`).

    Args:
        project: a :class:`~ridelake.core.project.Project`.
        run_id: the run that will hold the lock.
    """
    make = getattr(project, "lock", None)
    if make is not None:
        return make(run_id)
    warehouse = project.warehouse()
    return WarehouseLock(lock_path(warehouse, project.root), run_id, warehouse=warehouse)
