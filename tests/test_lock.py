"""One run at a time per warehouse: refuse, wait, stale locks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ridelake.errors import LockError
from ridelake.core.lock import LOCK_NAME, WarehouseLock, lock_path, pid_alive, read_lock


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_path_local_and_remote(tmp_path: Path) -> None:
    assert lock_path(str(tmp_path / "wh"), tmp_path) == tmp_path / "wh" / LOCK_NAME
    remote = lock_path("s3://bucket/wh", tmp_path)
    assert remote.parent == tmp_path / "outputs" / "locks" and remote.suffix == ".lock"
    assert remote == lock_path("s3://bucket/wh", tmp_path)
    assert remote != lock_path("s3://bucket/other", tmp_path)


def test_acquire_records_holder_and_release_removes(tmp_path: Path) -> None:
    path = tmp_path / LOCK_NAME
    lock = WarehouseLock(path, "run-1", warehouse=str(tmp_path))
    lock.acquire()
    info = read_lock(path)
    assert info["run_id"] == "run-1" and info["pid"] == os.getpid() and info["host"] == socket.gethostname()
    assert info["started_at"].endswith("Z")
    lock.release()
    assert not path.exists()
    lock.release()  # twice is fine


def test_second_run_refuses_with_clear_message(tmp_path: Path) -> None:
    path = tmp_path / LOCK_NAME
    with WarehouseLock(path, "first", warehouse="/wh"):
        with pytest.raises(LockError) as info:
            WarehouseLock(path, "second").acquire()
        msg = str(info.value)
        assert "in use by run first" in msg and f"pid {os.getpid()}" in msg and "--wait" in msg
        assert read_lock(path)["run_id"] == "first"  # the refused run did not disturb it
    assert not path.exists()


def test_wait_gets_the_lock_when_released(tmp_path: Path) -> None:
    path = tmp_path / LOCK_NAME
    first = WarehouseLock(path, "first")
    first.acquire()
    threading.Timer(0.3, first.release).start()
    second = WarehouseLock(path, "second")
    second.acquire(wait=10, poll=0.05)
    assert read_lock(path)["run_id"] == "second"
    second.release()


def test_wait_gives_up(tmp_path: Path) -> None:
    path = tmp_path / LOCK_NAME
    with WarehouseLock(path, "first"):
        with pytest.raises(LockError, match="gave up after waiting 0.2 s"):
            WarehouseLock(path, "second").acquire(wait=0.2, poll=0.05)


def test_stale_lock_of_dead_process_is_broken(tmp_path: Path) -> None:
    path = tmp_path / LOCK_NAME
    path.write_text(json.dumps({"run_id": "killed", "pid": _dead_pid(), "host": socket.gethostname(),
                                "started_at": "2026-01-01T00:00:00Z", "heartbeat": time.time()}))
    lock = WarehouseLock(path, "new")
    lock.acquire()
    assert read_lock(path)["run_id"] == "new"
    assert "killed" in lock.broke and "no longer running" in lock.broke
    lock.release()
    assert not any(p.name.startswith(LOCK_NAME + ".") for p in tmp_path.iterdir())  # no leftovers


def test_stale_lock_by_heartbeat_age_other_host(tmp_path: Path) -> None:
    path = tmp_path / LOCK_NAME
    old = {"run_id": "elsewhere", "pid": 1, "host": "another-host", "heartbeat": time.time() - 3600}
    path.write_text(json.dumps(old))
    lock = WarehouseLock(path, "new", stale_after_s=120)
    lock.acquire()
    assert "no heartbeat for" in lock.broke
    lock.release()
    # a recent heartbeat from another host is respected
    path.write_text(json.dumps({**old, "heartbeat": time.time()}))
    with pytest.raises(LockError, match="elsewhere"):
        WarehouseLock(path, "new2").acquire()


def test_heartbeat_keeps_a_live_lock_fresh(tmp_path: Path) -> None:
    path = tmp_path / LOCK_NAME
    lock = WarehouseLock(path, "beating", heartbeat_s=0.05)
    lock.acquire()
    first = read_lock(path)["heartbeat"]
    deadline = time.time() + 5
    while read_lock(path).get("heartbeat") == first and time.time() < deadline:
        time.sleep(0.02)
    assert read_lock(path)["heartbeat"] > first
    lock.release()


def test_release_never_removes_someone_elses_lock(tmp_path: Path) -> None:
    path = tmp_path / LOCK_NAME
    lock = WarehouseLock(path, "mine")
    lock.acquire()
    path.write_text(json.dumps({"run_id": "theirs", "pid": os.getpid(), "host": socket.gethostname()}))
    lock.release()
    assert read_lock(path)["run_id"] == "theirs"


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(_dead_pid())
    assert not pid_alive(0)
