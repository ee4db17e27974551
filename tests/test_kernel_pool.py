"""Warm kernels kept between commands (ridelake.core.engines.pool): taken over clean by the next
engine of the same pool, never from another pool, never when left mid-notebook, ended when idle
or stopped. Real kernels, so ``slow``; no timing is asserted."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from fake_project import write_notebook
from ridelake.core.engine import Task, WarmEngine
from ridelake.core.engines import pool

pytestmark = pytest.mark.slow

LOOK = """
import json, os
print(json.dumps({"pid": os.getpid(), "leaky": "leaky_variable" in globals(),
                  "env": os.environ.get("LEAKY_ENV")}))
"""
DIRTY = "import os\nleaky_variable = 1\nos.environ['LEAKY_ENV'] = '1'\n"


@pytest.fixture
def pool_base(monkeypatch: pytest.MonkeyPatch):
    base = Path(tempfile.mkdtemp(prefix="rlp-", dir="/tmp"))  # short: IPC socket paths live here
    monkeypatch.setenv("RIDELAKE_KERNEL_POOL_DIR", str(base / "pools"))
    monkeypatch.setenv("RIDELAKE_KERNEL_IDLE", "120")
    yield base / "pools"
    pool.stop_pools()
    shutil.rmtree(base, ignore_errors=True)


def _task(folder: Path, name: str, i: int) -> Task:
    out = folder / "out"
    return Task(key=name, name=name, input_path=folder / f"{name}.ipynb", output_path=out / f"{name}.{i}.ipynb",
                parameters={}, attempt=1, env={}, cwd=folder, receipt_path=None, log_path=out / f"{name}.{i}.log")


def _printed(path: Path) -> dict:
    nb = json.loads(path.read_text(encoding="utf-8"))
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")
    return json.loads(text.strip().splitlines()[-1])


def _run(spec: pool.PoolSpec | None, folder: Path, names: list[str], start: int = 0) -> WarmEngine:
    engine = WarmEngine(1, pool=spec, preload=("json",))
    try:
        for i, name in enumerate(names, start):
            outcome = engine.execute(_task(folder, name, i))
            assert outcome.ok, outcome.error
    finally:
        engine.close()
    return engine


def _spec(identity: list[str]) -> pool.PoolSpec:
    spec = pool.pool_spec(identity, "ridelake", ("json",), label="test")
    assert spec is not None
    return spec


def _wait_gone(pid: int, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not pool._alive(pid):
            return True
        time.sleep(0.2)
    return False


def test_the_next_engine_takes_the_kernel_over_clean(tmp_path: Path, pool_base: Path) -> None:
    write_notebook(tmp_path / "look.ipynb", None, body=LOOK)
    write_notebook(tmp_path / "dirty.ipynb", None, body=DIRTY)
    spec = _spec(["project", "warehouse"])
    first = _run(spec, tmp_path, ["dirty", "look"])
    assert first.kernels_started() == 1 and first.kernels_reused() == 0
    pid = _printed(tmp_path / "out" / "look.1.ipynb")["pid"]
    assert pool._alive(pid)  # the command ended; its kernel did not
    second = _run(spec, tmp_path, ["look"], start=2)
    seen = _printed(tmp_path / "out" / "look.2.ipynb")
    assert second.kernels_reused() == 1 and second.kernels_started() == 0
    assert seen == {"pid": pid, "leaky": False, "env": None}  # the same process, as fresh as a new one
    assert [k["state"] for p in pool.pools() for k in p["kernels"]] == ["idle"]


def test_another_warehouse_or_code_gets_another_pool(tmp_path: Path, pool_base: Path) -> None:
    write_notebook(tmp_path / "look.ipynb", None, body=LOOK)
    _run(_spec(["project", "warehouse-a"]), tmp_path, ["look"])
    a = _printed(tmp_path / "out" / "look.0.ipynb")["pid"]
    other = _run(_spec(["project", "warehouse-b"]), tmp_path, ["look"], start=1)
    assert other.kernels_reused() == 0 and _printed(tmp_path / "out" / "look.1.ipynb")["pid"] != a
    env = dict(os.environ, SOMETHING_NEW="1")
    assert pool.pool_key(["p"], "ridelake", ["json"], env) != pool.pool_key(["p"], "ridelake", ["json"])
    assert pool.pool_key(["p"], "ridelake", ["json"], dict(os.environ, PWD="/elsewhere")) == \
        pool.pool_key(["p"], "ridelake", ["json"], dict(os.environ, PWD="/here"))


def test_a_kernel_left_mid_notebook_is_killed_not_reused(tmp_path: Path, pool_base: Path) -> None:
    write_notebook(tmp_path / "look.ipynb", None, body=LOOK)
    spec = _spec(["project", "warehouse"])
    _run(spec, tmp_path, ["look"])
    pid = _printed(tmp_path / "out" / "look.0.ipynb")["pid"]
    slot = pool.lease(spec)  # a command that then dies mid-notebook: dirty, lease dropped by its death
    slot.dirty(True)
    slot.release()
    engine = _run(spec, tmp_path, ["look"], start=1)
    log = (tmp_path / "out" / "look.1.log").read_text() if (tmp_path / "out" / "look.1.log").exists() else ""
    assert engine.kernels_reused() == 0 and engine.kernels_started() >= 1, log
    assert _printed(tmp_path / "out" / "look.1.ipynb")["pid"] != pid
    assert _wait_gone(pid, 10)


def test_idle_kernels_end_and_stop_ends_them_now(tmp_path: Path, pool_base: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    write_notebook(tmp_path / "look.ipynb", None, body=LOOK)
    monkeypatch.setenv("RIDELAKE_KERNEL_IDLE", "1")
    spec = _spec(["project", "idle"])
    _run(spec, tmp_path, ["look"])
    pid = _printed(tmp_path / "out" / "look.0.ipynb")["pid"]
    assert _wait_gone(pid), "an idle pooled kernel outlived its idle timeout"
    assert not any(pool._slots(spec.folder))  # the reaper removed its slot
    monkeypatch.setenv("RIDELAKE_KERNEL_IDLE", "120")
    spec = _spec(["project", "stop"])
    _run(spec, tmp_path, ["look"], start=1)
    pid = _printed(tmp_path / "out" / "look.1.ipynb")["pid"]
    assert pool.stop_pools() == 1 and _wait_gone(pid, 10)
    assert pool.pools() == []


def test_no_pool_when_off_or_unsafe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIDELAKE_KERNEL_POOL_DIR", str(tmp_path / "pools"))
    monkeypatch.setenv("RIDELAKE_KERNEL_IDLE", "0")
    assert pool.pool_spec(["p"], "ridelake", ()) is None
    monkeypatch.setenv("RIDELAKE_KERNEL_IDLE", "60")
    (tmp_path / "pools").mkdir(mode=0o777)
    os.chmod(tmp_path / "pools", 0o777)  # others may write: never used
    assert pool.base_dir() is None and pool.pool_spec(["p"], "ridelake", ()) is None
