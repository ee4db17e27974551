"""The code a warm kernel runs between notebooks (imported *inside* the kernel, never by the runner).

The warm engine (:mod:`ridelake.core.engines.warm`) keeps one IPython kernel per worker and runs
notebook after notebook in it. Between two notebooks it calls, in the kernel:

1. :func:`warm_up` once, right after the kernel started: import the heavy modules (binding no
   user name);
2. :func:`baseline` once: what the kernel looks like then, which is what a fresh kernel looks
   like once it imported those modules (user namespace names, working directory, environment --
   an import may set variables, pandera sets two --, ``sys.argv``, ``sys.path``, matplotlib's
   rcParams, pandas' options, the warning filters);
3. :func:`begin` before each notebook: the task's environment variables and working directory,
   execution counts from 1;
4. :func:`reset` after each notebook: everything above put back, memory handed back;
5. :func:`check`: raises :class:`DirtyKernel` naming what is not as a fresh kernel has it (the
   engine then replaces the kernel).

Every function binds no name in the user namespace: the engine calls them as
``__import__("ridelake.core.engines.kernelside", fromlist=["_"]).reset()`` with ``silent=True``.
"""

from __future__ import annotations

import ctypes
import fcntl
import gc
import importlib
import os
import shutil
import sys
import threading
import time
import warnings
from typing import Any, Iterable, Mapping

from IPython import get_ipython

__all__ = ["DirtyKernel", "baseline", "warm_up", "begin", "reset", "check", "pandas_options", "reap_when_idle"]


class DirtyKernel(RuntimeError):
    """The kernel is not in the state of a fresh one (the message says how)."""


#: What a fresh kernel had; filled by :func:`baseline` and :func:`warm_up`.
_BASE: dict[str, Any] = {}


def _shell() -> Any:
    shell = get_ipython()
    if shell is None:
        raise DirtyKernel("not running inside IPython")
    return shell


#: Names IPython's reset keeps in the user namespace without marking them hidden again.
_KEPT = frozenset({"__builtin__", "__builtins__", "__name__"})


def _user_names(shell: Any) -> set[str]:
    hidden = set(shell.user_ns_hidden) | _KEPT
    return {k for k in shell.user_ns if k not in hidden}


def baseline() -> None:
    """Record the state of the kernel, freshly started and warmed up (call once, before any
    notebook runs)."""
    shell = _shell()
    _BASE.update(
        names=_user_names(shell),
        cwd=os.getcwd(),
        environ=dict(os.environ),
        argv=list(sys.argv),
        path=list(sys.path),
        warnings=list(warnings.filters),
    )
    if "matplotlib" in sys.modules:
        _BASE["rc"] = _rc_snapshot(sys.modules["matplotlib"])
        _BASE["backend"] = sys.modules["matplotlib"].get_backend()
    if "pandas" in sys.modules:
        _BASE["pandas"] = pandas_options(sys.modules["pandas"])
    gc.collect()
    gc.freeze()  # the warm-up's objects live as long as the kernel: later collections skip them


def pandas_options(pd: Any) -> dict[str, Any]:
    """Every pandas option and its value, walking the public ``pd.options`` tree."""
    out: dict[str, Any] = {}
    wrapper = type(pd.options)

    def walk(node: Any, prefix: str) -> None:
        for key in dir(node):
            value = getattr(node, key)
            if isinstance(value, wrapper):
                walk(value, f"{prefix}{key}.")
            else:
                out[f"{prefix}{key}"] = value

    walk(pd.options, "")
    return out


def _rc_snapshot(mpl: Any) -> dict[str, Any]:
    return {k: v for k, v in mpl.rcParams.items() if k != "backend"}


def warm_up(modules: Iterable[str]) -> None:
    """Import ``modules`` (paid once per kernel); :func:`baseline` then notes the state.

    Args:
        modules: dotted module names; one that fails to import is skipped (the notebook that
            needs it will fail with the real error).
    """
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module is the notebook's business
            continue


def begin(env: Mapping[str, str], cwd: str | None) -> None:
    """Prepare one notebook: its environment variables, working directory, counts from 1."""
    os.environ.update({str(k): str(v) for k, v in env.items()})
    if cwd:
        os.chdir(cwd)
    _shell().execution_count = 1


def _trim_memory() -> None:
    """Hand freed memory back to the system (Arrow's pool, then glibc's heap)."""
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        try:
            pa.default_memory_pool().release_unused()
        except Exception:  # noqa: BLE001 - best effort
            pass
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def reset() -> None:
    """Put the kernel back as :func:`baseline` and :func:`warm_up` found it: user namespace and
    module aliases, figures and rcParams, pandas options, warning filters, ``sys.path``,
    working directory and environment, matplotlib's backend. ``sys.argv`` is left alone
    (:func:`check` verifies it)."""
    shell = _shell()
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")
        if "backend" in _BASE and plt.get_backend() != _BASE["backend"]:
            plt.switch_backend(_BASE["backend"])
    mpl = sys.modules.get("matplotlib")
    if mpl is not None and "rc" in _BASE:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mpl.rcParams.update(_BASE["rc"])
    pd = sys.modules.get("pandas")
    if pd is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pd.reset_option("all")
    if "warnings" in _BASE:
        warnings.resetwarnings()  # also forgets which warnings were already shown
        warnings.filters[:] = _BASE["warnings"]
    shell.reset(new_session=True)  # user namespace (names and module aliases), counts, history
    if "path" in _BASE:
        sys.path[:] = _BASE["path"]
    if "cwd" in _BASE:
        os.chdir(_BASE["cwd"])
    if "environ" in _BASE:
        for key in set(os.environ) - set(_BASE["environ"]):
            del os.environ[key]
        os.environ.update(_BASE["environ"])
    gc.collect()
    _trim_memory()


def check() -> None:
    """Raise :class:`DirtyKernel` when the kernel differs from a fresh one.

    Raises:
        DirtyKernel: naming each difference (a leftover variable, an open figure, ...).
    """
    if not _BASE:
        raise DirtyKernel("no baseline recorded")
    shell = _shell()
    problems = []
    extra = _user_names(shell) - _BASE["names"]
    if extra:
        problems.append(f"user names left: {', '.join(sorted(extra)[:10])}")
    if os.getcwd() != _BASE["cwd"]:
        problems.append(f"working directory {os.getcwd()} (fresh: {_BASE['cwd']})")
    if dict(os.environ) != _BASE["environ"]:
        changed = {k for k in set(os.environ) | set(_BASE["environ"])
                   if os.environ.get(k) != _BASE["environ"].get(k)}
        problems.append(f"environment differs: {', '.join(sorted(changed)[:10])}")
    if sys.argv != _BASE["argv"]:
        problems.append(f"sys.argv is {sys.argv!r}")
    if sys.path != _BASE["path"]:
        problems.append("sys.path differs")
    mpl = sys.modules.get("matplotlib")
    if mpl is not None:
        if "rc" not in _BASE:
            problems.append("matplotlib was imported after the baseline: its rcParams cannot be restored")
        elif _rc_snapshot(mpl) != _BASE["rc"]:
            diff = [k for k, v in _rc_snapshot(mpl).items() if _BASE["rc"].get(k) != v]
            problems.append(f"matplotlib rcParams differ: {', '.join(diff[:10])}")
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None and plt.get_fignums():
            problems.append(f"{len(plt.get_fignums())} matplotlib figure(s) open")
        if "backend" in _BASE and mpl.get_backend() != _BASE["backend"]:
            problems.append(f"matplotlib backend {mpl.get_backend()} (fresh: {_BASE['backend']})")
    pd = sys.modules.get("pandas")
    if pd is not None and "pandas" in _BASE:
        now = pandas_options(pd)
        diff = [k for k in set(now) | set(_BASE["pandas"]) if now.get(k) != _BASE["pandas"].get(k)]
        if diff:
            problems.append(f"pandas options differ: {', '.join(sorted(diff)[:10])}")
    if "warnings" in _BASE and list(warnings.filters) != _BASE["warnings"]:
        problems.append("warning filters differ")
    if problems:
        raise DirtyKernel("; ".join(problems))


def _reaper(folder: str, idle: float) -> None:
    lease, mark = os.path.join(folder, "lease"), os.path.join(folder, "idle")
    while True:
        time.sleep(max(0.2, min(5.0, idle / 4)))
        if not os.path.isdir(folder):
            os._exit(0)  # the pool was stopped: nobody can reach this kernel any more
        try:
            last = os.stat(mark).st_mtime
        except OSError:
            continue  # never handed back yet: its command still has it
        if time.time() - last < idle:
            continue
        try:
            fd = os.open(lease, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a command holds it right now
        if time.time() - os.stat(mark).st_mtime < idle:  # handed back again meanwhile
            os.close(fd)
            continue
        shutil.rmtree(folder, ignore_errors=True)
        os._exit(0)  # the lock goes with the process


def reap_when_idle(folder: str, idle: float) -> None:
    """For a pooled kernel (:mod:`ridelake.core.engines.pool`): end this kernel, and remove its
    slot folder, once ``<folder>/idle`` is older than ``idle`` seconds while no command holds
    ``<folder>/lease``, or at once when the folder is gone. A daemon thread; started once."""
    if any(t.name == "ridelake-reaper" for t in threading.enumerate()):
        return
    threading.Thread(target=_reaper, args=(str(folder), float(idle)), name="ridelake-reaper", daemon=True).start()
