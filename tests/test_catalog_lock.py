"""The warehouse lock and up-to-date state in the catalog database (ridelake.tables.coordination).

Each test runs on a SQLite file and on the real PostgreSQL server of tests/pg.py (the catalog a
team shares): one run at a time per warehouse across processes (and hosts: a holder elsewhere is
only stale once its heartbeat is old), stale rows broken, the state shared, the adapter choosing
the database lock and state for a server catalog only.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, insert, update

from ridelake.core.lock import WarehouseLock, lock_for
from ridelake.core.uptodate import StateStore, state_for
from ridelake.errors import CatalogError, ConfigError, LockError
from ridelake.tables import coordination
from ridelake.tables.adapter import RideBookings
from ridelake.tables.coordination import CatalogLock, CatalogStateStore, lock_holder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pg_uri(postgres):
    return postgres.create_database("locks")


@pytest.fixture(params=["sqlite", "postgresql"])
def uri(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    return request.getfixturevalue("pg_uri")


@pytest.fixture
def wh() -> str:
    """A warehouse of its own per test (the rows are keyed by it)."""
    return f"s3://bucket/wh-{secrets.token_hex(4)}"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _put_row(uri: str, wh: str, **values) -> None:
    row = {"warehouse": wh, "run_id": "old-run", "token": "t0", "pid": 1, "host": "elsewhere",
           "started_at": "2026-01-01T00:00:00Z", "beats": 0, "heartbeat_at": func.current_timestamp()}
    row.update(values)
    with coordination.engine(uri).begin() as conn:
        conn.execute(insert(coordination._locks).values(**row))


def test_acquire_records_the_holder_and_release_deletes_the_row(uri, wh):
    lock = CatalogLock(uri, wh + "/", "run-1")  # the key is the normalised warehouse
    lock.acquire()
    row = lock_holder(uri, wh)
    assert row["run_id"] == "run-1" and row["pid"] == os.getpid() and row["host"] == socket.gethostname()
    assert row["started_at"].endswith("Z") and row["age_s"] < 30 and lock.broke is None
    lock.release()
    assert lock_holder(uri, wh) is None
    lock.release()  # twice is fine


def test_a_second_run_is_refused_naming_the_holder(uri, wh):
    with CatalogLock(uri, wh, "first"):
        with pytest.raises(LockError) as info:
            CatalogLock(uri, wh, "second").acquire()
        msg = str(info.value)
        assert f"the warehouse {wh} is in use by run first (pid {os.getpid()} on {socket.gethostname()}" in msg
        assert "--wait" in msg and f"DELETE FROM ridelake_locks WHERE warehouse = '{wh}'" in msg
        assert lock_holder(uri, wh)["run_id"] == "first"  # the refused run did not disturb it
        CatalogLock(uri, wh + "-other", "third").acquire()  # another warehouse is another lock
    assert lock_holder(uri, wh) is None


def test_the_password_is_never_in_the_message(postgres, pg_uri, wh):
    with CatalogLock(pg_uri, wh, "first"):
        with pytest.raises(LockError) as info:
            CatalogLock(pg_uri, wh, "second").acquire()
    assert postgres.password not in str(info.value) and f"{postgres.user}:***@127.0.0.1" in str(info.value)


def test_wait_gets_the_lock_when_it_is_released(uri, wh):
    first = CatalogLock(uri, wh, "first")
    first.acquire()
    threading.Timer(0.5, first.release).start()
    second = CatalogLock(uri, wh, "second")
    second.acquire(wait=20, poll=0.05)
    assert lock_holder(uri, wh)["run_id"] == "second"
    second.release()
    with CatalogLock(uri, wh, "third"):
        with pytest.raises(LockError, match="gave up after waiting 0.3 s"):
            CatalogLock(uri, wh, "fourth").acquire(wait=0.3, poll=0.05)


def test_of_many_racing_runs_exactly_one_gets_it(uri, wh):
    locks = [CatalogLock(uri, wh, f"run-{i}") for i in range(6)]
    coordination.engine(uri)  # tables made before the race (as the first acquire would)
    barrier, won, refused = threading.Barrier(len(locks)), [], []

    def take(lock: CatalogLock) -> None:
        barrier.wait()
        try:
            lock.acquire()
            won.append(lock.run_id)
        except LockError:
            refused.append(lock.run_id)

    threads = [threading.Thread(target=take, args=(lock,)) for lock in locks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(won) == 1 and len(refused) == len(locks) - 1
    assert lock_holder(uri, wh)["run_id"] == won[0]
    for lock in locks:
        lock.release()
    assert lock_holder(uri, wh) is None


def test_a_dead_process_on_this_host_leaves_a_stale_lock_that_is_broken(uri, wh):
    pid = _dead_pid()
    _put_row(uri, wh, run_id="killed", pid=pid, host=socket.gethostname())
    lock = CatalogLock(uri, wh, "new")
    lock.acquire()
    assert lock.broke == f"broke a stale lock of run killed: its process {pid} is no longer running"
    assert lock_holder(uri, wh)["run_id"] == "new"
    lock.release()


def test_a_holder_on_another_host_stays_until_its_heartbeat_is_old(uri, wh):
    _put_row(uri, wh, run_id="elsewhere-run", pid=_dead_pid(), host="other-machine")
    with pytest.raises(LockError, match=r"in use by run elsewhere-run \(pid \d+ on other-machine"):
        CatalogLock(uri, wh, "mine").acquire()  # its pid means nothing here: not stale
    lock = CatalogLock(uri, wh, "mine", stale_after_s=1.0)
    lock.acquire(wait=30, poll=0.2)  # by the database's clock, its heartbeat ages past 1 s
    assert lock.broke is not None and "elsewhere-run: no heartbeat for" in lock.broke
    lock.release()


def test_the_heartbeat_keeps_a_long_run_fresh(uri, wh):
    lock = CatalogLock(uri, wh, "long", heartbeat_s=0.2, stale_after_s=1.5)
    lock.acquire()
    try:
        time.sleep(2.5)  # longer than stale_after_s: only the heartbeat keeps it
        row = lock_holder(uri, wh)
        assert row["beats"] >= 3 and row["age_s"] < 1.5
        with pytest.raises(LockError, match="in use by run long"):
            CatalogLock(uri, wh, "other", stale_after_s=1.5).acquire()
    finally:
        lock.release()


def test_a_lock_broken_meanwhile_is_never_released_for_its_new_holder(uri, wh):
    first = CatalogLock(uri, wh, "first", heartbeat_s=0.1)
    first.acquire()
    with coordination.engine(uri).begin() as conn:  # another run judged it stale and took it
        conn.execute(update(coordination._locks).where(coordination._locks.c.warehouse == wh)
                     .values(run_id="second", token="someone-else"))
    deadline = time.monotonic() + 10
    while not first.lost and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.lost
    first.release()
    assert lock_holder(uri, wh)["run_id"] == "second"


_HOLDER = """
import sys, time
from ridelake.tables.coordination import CatalogLock
lock = CatalogLock(sys.argv[1], sys.argv[2], "child-run")
lock.acquire()
print("held", flush=True)
sys.stdin.readline()
lock.release()
"""


def test_a_run_in_another_process_excludes_this_one(uri, wh):
    env = {**os.environ, "RIDELAKE_HOME": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", _HOLDER, uri, wh], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(LockError, match=rf"in use by run child-run \(pid {child.pid} on "):
            CatalogLock(uri, wh, "parent").acquire()
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.wait(60) == 0
    finally:
        if child.poll() is None:
            child.kill()
    with CatalogLock(uri, wh, "parent"):
        assert lock_holder(uri, wh)["run_id"] == "parent"


def test_an_unreachable_database_is_a_catalog_error_without_the_password():
    port = _closed_port()
    uri = f"postgresql+psycopg://someone:pw-never-shown@127.0.0.1:{port}/nothing"
    with pytest.raises(CatalogError) as info:
        CatalogLock(uri, "s3://bucket/wh", "run").acquire()
    assert "pw-never-shown" not in str(info.value) and "someone:***@127.0.0.1" in str(info.value)
    store = CatalogStateStore(uri, "s3://bucket/wh")  # unreadable: everything runs
    assert store.entries == {}
    with pytest.raises(OSError) as err:
        store.save()
    assert "pw-never-shown" not in str(err.value)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_state_is_one_row_per_warehouse_that_every_store_sees(uri, wh):
    store = CatalogStateStore(uri, wh)
    assert store.entries == {}
    store.entries["silver/customer"] = {"run_id": "r1", "writes": {"silver.customer": 7}}
    store.save()
    store.entries["gold/x"] = {"run_id": "r1"}
    store.save()  # replaced, not added
    again = CatalogStateStore(uri, wh + "/")
    assert again.entries == {"silver/customer": {"run_id": "r1", "writes": {"silver.customer": 7}},
                             "gold/x": {"run_id": "r1"}}
    assert CatalogStateStore(uri, wh + "-other").entries == {}
    assert "ridelake_state" in again.where() and wh in again.where()


def test_the_adapter_uses_the_database_for_a_server_catalog_only(pg_uri, postgres, tmp_path, monkeypatch):
    monkeypatch.setenv("RIDELAKE_HOME", str(ROOT))
    project = RideBookings(root=tmp_path)
    monkeypatch.setenv("RIDELAKE_WAREHOUSE", "s3://bucket/team")
    monkeypatch.setenv("RIDELAKE_CATALOG_URI", pg_uri)
    lock, store = lock_for(project, "r"), state_for(project)
    assert isinstance(lock, CatalogLock) and lock.key == "s3://bucket/team"
    assert isinstance(store, CatalogStateStore) and postgres.password not in store.where()
    monkeypatch.setenv("RIDELAKE_CATALOG_URI", f"sqlite:///{tmp_path / 'c.db'}")
    with pytest.raises(ConfigError, match="on an object store but the catalog is a SQLite file"):
        lock_for(project, "r")
    monkeypatch.delenv("RIDELAKE_CATALOG_URI")
    with pytest.raises(ConfigError, match="set RIDELAKE_CATALOG_URI"):
        state_for(project)
    monkeypatch.setenv("RIDELAKE_WAREHOUSE", str(tmp_path / "wh"))
    lock, store = lock_for(project, "r"), state_for(project)
    assert isinstance(lock, WarehouseLock) and lock.path == tmp_path / "wh" / ".ridelake.lock"
    assert type(store) is StateStore and store.path == tmp_path / "wh" / "_ridelake" / "state.json"
    monkeypatch.setenv("RIDELAKE_CATALOG_URI", pg_uri)  # a local folder with a shared catalog: the database
    assert isinstance(lock_for(project, "r"), CatalogLock)
