"""Warm kernels that outlive one command: a per-user, per-warehouse pool of idle kernels.

A warm kernel costs a process start and the heavy imports (about two seconds of a one-notebook
rerun). With the pool, a command that ends leaves its kernels running, clean (reset and checked
as between two notebooks), and the next command of the same user on the same warehouse, with
the same code and environment, takes them over instead of starting new ones.

Layout: ``<base>/<pool>/<slot>/`` where ``<base>`` is ``$RIDELAKE_KERNEL_POOL_DIR`` or
``/tmp/ridelake-<uid>`` (mode 0700, refused when another user owns it or others may write
it), ``<pool>`` is a digest of everything a kernel's state depends on (:func:`pool_key`: the
project and warehouse, the interpreter, the kernel, the modules it preloads, the package's code
and the environment) and each slot holds one kernel:

- ``lease``: the lock (``flock``) held by the command using the kernel; the system drops it
  when that command dies, however it dies;
- ``kernel.json``: its pid and connection file;
- ``dirty``: present while a notebook runs on it; a kernel found leased-free *and* dirty was
  left mid-notebook by a command that died, and is killed, never reused;
- ``idle``: touched when a command hands the kernel back.

No server process: each pooled kernel runs a small reaper thread
(:func:`ridelake.core.engines.kernelside.reap_when_idle`) that ends the kernel once ``idle`` is
older than the idle timeout (``RIDELAKE_KERNEL_IDLE`` seconds, default :data:`DEFAULT_IDLE_S`;
0 turns the pool off) and nobody holds the lease. ``ridelake kernels`` lists the pools and
``ridelake kernels stop`` ends them at once.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import shutil
import signal
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ridelake.core.lock import pid_alive

__all__ = [
    "DEFAULT_IDLE_S",
    "VOLATILE_ENV",
    "PoolSpec",
    "Slot",
    "AttachedKernelManager",
    "base_dir",
    "idle_seconds",
    "pool_key",
    "pool_spec",
    "lease",
    "pools",
    "stop_pools",
]

#: Seconds an idle pooled kernel waits for the next command before it ends.
DEFAULT_IDLE_S = 600.0
#: Environment variables that differ between two shells of one user without changing what a
#: kernel computes; every other variable is part of the pool key.
VOLATILE_ENV = frozenset({"_", "PWD", "OLDPWD", "SHLVL", "TERM", "TERM_PROGRAM", "TERM_PROGRAM_VERSION", "COLUMNS",
                          "LINES", "SSH_TTY", "SSH_CLIENT", "SSH_CONNECTION", "TMUX_PANE", "WINDOWID",
                          "PS1", "PROMPT_COMMAND", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKE_TERMOUT",
                          "MAKE_TERMERR", "COLORTERM", "LS_COLORS", "JPY_PARENT_PID"})


def idle_seconds() -> float:
    """The idle timeout from ``RIDELAKE_KERNEL_IDLE`` (seconds; 0 or less: no pool)."""
    raw = os.environ.get("RIDELAKE_KERNEL_IDLE", "").strip()
    if not raw:
        return DEFAULT_IDLE_S
    try:
        return float(raw)
    except ValueError:
        return DEFAULT_IDLE_S


def base_dir(create: bool = True) -> Path | None:
    """This user's pool folder, or None when it cannot be used safely (owned by another user,
    writable by others, not a folder)."""
    uid = os.getuid()
    base = Path(os.environ.get("RIDELAKE_KERNEL_POOL_DIR") or f"/tmp/ridelake-{uid}")
    try:
        if create:
            base.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(base)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        return None
    return base


def _code_stamp(packages: Iterable[str]) -> str:
    """Size and mtime of every Python file of the packages the kernels import (an edited module
    means a new pool: a pooled kernel still holds the old one)."""
    digest = hashlib.sha256()
    for name in sorted(set(packages)):
        spec = sys.modules.get(name)
        folder = Path(spec.__file__).parent if spec is not None and getattr(spec, "__file__", None) else None
        if folder is None:
            continue
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for fn in sorted(filenames):
                if fn.endswith(".py"):
                    try:
                        st = os.stat(os.path.join(dirpath, fn))
                    except OSError:
                        continue
                    digest.update(f"{dirpath}/{fn}:{st.st_size}:{st.st_mtime_ns};".encode())
    return digest.hexdigest()


def pool_key(identity: Sequence[str], kernel_name: str, preload: Sequence[str],
             env: Mapping[str, str] | None = None, packages: Iterable[str] = ("ridelake",)) -> str:
    """The pool a command may share: a digest of the project's identity (root, warehouse,
    catalog...), the interpreter, the kernel name, the preloaded modules, the code of
    ``packages`` and the environment less :data:`VOLATILE_ENV`."""
    environ = dict(os.environ if env is None else env)
    parts = {
        "identity": list(identity),
        "python": sys.executable,
        "kernel": kernel_name,
        "preload": list(preload),
        "code": _code_stamp(packages),
        "env": sorted((k, v) for k, v in environ.items() if k not in VOLATILE_ENV),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class PoolSpec:
    """Where a command's warm kernels come from and go back to.

    Attributes:
        folder: the pool's folder (``<base>/<key>``).
        idle: seconds a kernel waits for the next command.
        label: shown by ``ridelake kernels`` (the project and warehouse).
    """

    folder: Path
    idle: float
    label: str = ""


def pool_spec(identity: Sequence[str], kernel_name: str, preload: Sequence[str], label: str = "") -> PoolSpec | None:
    """The pool for a command, or None when pooling is off or unsafe here."""
    idle = idle_seconds()
    if idle <= 0:
        return None
    base = base_dir()
    if base is None:
        return None
    folder = base / pool_key(identity, kernel_name, preload)
    try:
        fresh = not folder.exists()
        folder.mkdir(mode=0o700, exist_ok=True)
        about = folder / "pool.json"
        if not about.exists():
            about.write_text(json.dumps({"label": label, "identity": list(identity)}), encoding="utf-8")
    except OSError:
        return None
    if fresh:
        _retire(base, folder, list(identity))
    return PoolSpec(folder, idle, label)


def _retire(base: Path, keep: Path, identity: list[str]) -> None:
    """End the idle kernels of older pools of the same project and warehouse (their code or
    environment changed: no command will take them over); a kernel in use is left to its reaper."""
    for folder in base.iterdir():
        if folder == keep or not folder.is_dir():
            continue
        try:
            if json.loads((folder / "pool.json").read_text(encoding="utf-8")).get("identity") != identity:
                continue
        except (OSError, ValueError):
            continue
        for slot in _slots(folder):
            fd = _try_lock(slot)
            if fd is None:
                continue
            Slot(slot, fd).clear()
            shutil.rmtree(slot, ignore_errors=True)
            os.close(fd)
        if not any(_slots(folder)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int | None) -> bool:
    """The process exists and is not a zombie."""
    if not pid or not pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def _info(slot: Path) -> dict[str, Any] | None:
    """A slot's ``kernel.json`` (pid, connection file), or None."""
    try:
        return json.loads((slot / "kernel.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_kernel(pid: int, connection_file: str) -> bool:
    """The process is still the kernel the slot names (a reused pid is never signalled)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return connection_file.encode() in fh.read()
    except OSError:
        return _alive(pid)


def _cmd(info: Mapping[str, Any]) -> str:
    """The connection file on the kernel's command line (how its process is recognised)."""
    return str(info.get("command_line") or info.get("connection_file") or "")


class Slot:
    """One kernel's folder in a pool, leased by this process (see the module doc)."""

    def __init__(self, folder: Path, fd: int) -> None:
        self.folder = folder
        self._fd: int | None = fd

    @property
    def leased(self) -> bool:
        return self._fd is not None

    def info(self) -> dict[str, Any] | None:
        """``kernel.json`` (pid, connection file), or None."""
        return _info(self.folder)

    def usable(self) -> dict[str, Any] | None:
        """The kernel left here, when it can be taken over: alive, the named kernel, not dirty."""
        info = self.info()
        if info is None or (self.folder / "dirty").exists():
            return None
        pid, conn = int(info.get("pid") or 0), str(info.get("connection_file") or "")
        if not conn or not os.path.isfile(conn) or not _alive(pid) or not _is_kernel(pid, _cmd(info)):
            return None
        return info

    def record(self, pid: int, connection_file: str) -> None:
        """Note the kernel started here (its idle clock starts now, held off by the lease).
        The connection file is copied: the kernel manager that wrote it removes it when it goes."""
        copy = self.folder / "attach.json"
        shutil.copyfile(connection_file, copy)
        os.chmod(copy, 0o600)
        (self.folder / "kernel.json").write_text(
            json.dumps({"pid": pid, "connection_file": str(copy), "command_line": connection_file,
                        "started": time.time()}), encoding="utf-8")
        (self.folder / "idle").touch()

    def dirty(self, on: bool) -> None:
        mark = self.folder / "dirty"
        if on:
            mark.touch()
        else:
            mark.unlink(missing_ok=True)

    def clear(self) -> None:
        """Kill the kernel left here, if any, and forget it (the lease is kept)."""
        info = self.info()
        if info is not None:
            pid = int(info.get("pid") or 0)
            if _alive(pid) and _is_kernel(pid, _cmd(info)):
                _kill_group(pid)
        for name in ("kernel.json", "dirty", "attach.json"):
            (self.folder / name).unlink(missing_ok=True)
        for left in (*self.folder.glob("k-*"), *self.folder.glob("connection-*.json")):  # its sockets, its file
            left.unlink(missing_ok=True)

    def release(self) -> None:
        """Hand the kernel back to the pool: idle from now on, lease dropped."""
        if self._fd is None:
            return
        try:
            (self.folder / "idle").touch()
        except OSError:
            pass
        fd, self._fd = self._fd, None
        os.close(fd)  # drops the flock


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # a kernel leads its own session (and its children)
    except OSError:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _try_lock(folder: Path) -> int | None:
    try:
        fd = os.open(folder / "lease", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    if not folder.is_dir():  # reaped between open and lock
        os.close(fd)
        return None
    return fd


def _slots(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        yield from sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("k"))


def lease(pool: PoolSpec) -> Slot:
    """Lease a slot: one whose kernel can be taken over first, else a free one whose kernel is
    gone or dirty (cleared), else a new one.

    Raises:
        OSError: the pool folder cannot be written.
    """
    spare: Slot | None = None
    for folder in _slots(pool.folder):
        fd = _try_lock(folder)
        if fd is None:
            continue  # in use by another command
        slot = Slot(folder, fd)
        if slot.usable() is not None:
            if spare is not None:
                spare.release()
            return slot
        if spare is None:
            spare = slot
        else:
            slot.release()
    if spare is not None:
        spare.clear()
        return spare
    for n in range(1000):
        folder = pool.folder / f"k{n}"
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        fd = _try_lock(folder)
        if fd is not None:
            return Slot(folder, fd)
    raise OSError(f"no free slot in {pool.folder}")


class AttachedKernelManager:
    """What nbclient and the warm engine need of a kernel manager, for a pooled kernel this
    process did not start: liveness, interrupt and kill by pid, a client from the connection
    file."""

    ipykernel = True
    has_kernel = True

    def __init__(self, info: Mapping[str, Any], kernel_name: str) -> None:
        self.pid = int(info["pid"])
        self.connection_file = str(info["connection_file"])
        self.kernel_name = kernel_name
        self.provisioner = self  # the warm engine reads ``provisioner.pid``

    def client(self) -> Any:
        from jupyter_client.asynchronous import AsyncKernelClient  # loaded with jupyter_client

        kc = AsyncKernelClient(connection_file=self.connection_file)
        kc.load_connection_file()
        return kc

    async def is_alive(self) -> bool:
        return _alive(self.pid)

    async def interrupt_kernel(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGINT)
        except OSError:
            pass

    async def shutdown_kernel(self, now: bool = True, restart: bool = False) -> None:
        _kill_group(self.pid)
        for _ in range(100):
            if not _alive(self.pid):
                return
            await asyncio.sleep(0.02)

    async def cleanup_resources(self, restart: bool = False) -> None:
        return None


def pools() -> list[dict[str, Any]]:
    """This user's pools: folder, label and per kernel its pid, state and idle seconds."""
    base = base_dir(create=False)
    out: list[dict[str, Any]] = []
    if base is None or not base.is_dir():
        return out
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        try:
            about = json.loads((folder / "pool.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            about = {}
        kernels = []
        for slot in _slots(folder):
            info = _info(slot)
            if info is None:
                continue
            pid = int(info.get("pid") or 0)
            fd = _try_lock(slot)
            state = "in use" if fd is None else ("dirty" if (slot / "dirty").exists() else "idle")
            if fd is not None:
                os.close(fd)
            if not _alive(pid):
                state = "dead"
            try:
                idle = time.time() - (slot / "idle").stat().st_mtime
            except OSError:
                idle = None
            kernels.append({"slot": slot.name, "pid": pid, "state": state, "idle_s": idle})
        out.append({"folder": str(folder), "label": about.get("label", ""), "kernels": kernels})
    return out


def stop_pools(only: Path | None = None, base: Path | None = None) -> int:
    """End this user's pooled kernels (those in use too: their command's next notebook gets a
    new kernel) and remove the pools (``only``: that one; ``base``: the pools under that folder
    instead of :func:`base_dir`). Returns how many kernels were ended."""
    base = base if base is not None else base_dir(create=False)
    if base is None or not base.is_dir():
        return 0
    ended = 0
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        if only is not None and folder != only:
            continue
        for slot in _slots(folder):
            info = _info(slot)
            if info is None:
                continue
            pid = int(info.get("pid") or 0)
            if _alive(pid) and _is_kernel(pid, _cmd(info)):
                _kill_group(pid)
                ended += 1
        shutil.rmtree(folder, ignore_errors=True)
    return ended
