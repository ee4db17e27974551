"""How a project plugs into the core: the :class:`Project` adapter and the project root.

The core runs notebooks; everything it must know about what they compute comes through this
narrow interface, which a project implements (``ridelake.tables.adapter.RideBookings``). The
core never imports a project's modules.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

from ridelake.core.protocol import ENV
from ridelake.errors import ConfigError

__all__ = ["MARKER", "project_root", "Partitions", "SnapshotSource", "Project", "file_identity"]

#: The file that marks a project root (and describes its DAG).
MARKER = Path("notebooks") / "pipeline.yaml"


def project_root() -> Path:
    """The project root: ``RIDELAKE_HOME`` when set, else the nearest folder at or above the
    working directory that holds ``notebooks/pipeline.yaml``, else the checkout this package was
    installed from (editable install)."""
    env = os.environ.get(ENV.HOME)
    if env:
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / MARKER).is_file():
            return folder
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / MARKER).is_file():
        return checkout
    raise ConfigError("cannot find the ridelake project root: set RIDELAKE_HOME or run inside the checkout")


@dataclass(frozen=True)
class Partitions:
    """How a partition-aware stage expands: ``values`` (None: run each notebook once, whole) and
    a line saying why, for the console."""

    values: tuple[str, ...] | None
    note: str = ""


class SnapshotSource(Protocol):
    """Where the current version of each table comes from (for freshness)."""

    def current(self, tables: Iterable[str]) -> dict[str, int | None]:
        """Table -> its current snapshot id (None: absent or never written)."""
        ...


def file_identity(value: Any) -> dict[str, Any] | None:
    """The identity of a file parameter: resolved path, size and ``mtime_ns``.

    Returns:
        ``{"path": None}`` for no file, ``{"path": ..., "missing": True}`` for a missing one, or
        None for an object-store URL (it cannot be checked cheaply, so the notebook always runs).
    """
    if value is None:
        return {"path": None}
    text = str(value)
    if "://" in text and not text.startswith("file://"):
        return None
    path = Path(text[len("file://"):] if text.startswith("file://") else text).expanduser().resolve()
    try:
        st = path.stat()
    except OSError:
        return {"path": str(path), "missing": True}
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class Project(Protocol):
    """What the core asks of a project.

    Attributes:
        root: the project root (``notebooks/``, ``params/``, ``outputs/``).
        partition_param: the parameter a partition-aware stage sets per execution
            (``extraction_month``); notebooks that declare it can run once per partition.
        file_params: parameters whose value names a file; freshness tracks the file's identity.
        partitions_after: notebooks whose run makes the partitions known (they run whole, first).
    """

    root: Path
    partition_param: str
    file_params: tuple[str, ...]
    partitions_after: tuple[str, ...]

    def warehouse(self) -> str:
        """Where the tables live (a folder or URL): the lock and the freshness state key on it."""
        ...

    def kernel_env(self) -> dict[str, str]:
        """Variables every kernel of a run receives (where the warehouse and catalog are)."""
        ...

    def process_env(self) -> dict[str, str]:
        """Variables a kernel *process* needs from its start (read when a library loads, e.g. an
        allocator's): the runner sets each one not already set before it starts kernels, so
        they reach every engine and the warm-kernel pool's identity. Optional."""
        ...

    def catalog(self) -> str | None:
        """The catalog as run records show it, credentials masked (None: the project's default)."""
        ...

    def lock(self, run_id: str) -> Any:
        """The warehouse lock ``run_id`` takes (a :class:`~ridelake.core.lock.RunLock`): one that
        every machine running against the warehouse sees. Optional: without this method the core
        uses a lock file (:func:`ridelake.core.lock.lock_for`)."""
        ...

    def state(self) -> Any:
        """The warehouse's up-to-date state (a :class:`~ridelake.core.uptodate.StateStore`), shared
        like the lock. Optional: without it the core uses a file (:func:`ridelake.core.uptodate.state_for`)."""
        ...

    def bootstrap(self) -> None:
        """Prepare the storage once before the first notebook (catalog, namespaces, tables)."""
        ...

    def snapshots(self) -> SnapshotSource:
        """Where freshness reads the current version of each table."""
        ...

    def resolve_params(self, params: Mapping[str, Any], overrides: Mapping[str, Any],
                       today: dt.date | None = None) -> dict[str, Any]:
        """Validate and complete a run's parameters (file values plus ``-p`` overrides).

        Args:
            params: values from the parameters file (or a previous run's).
            overrides: values from the command line, as text.
            today: the date to use for "today" defaults.
        """
        ...

    def check_params(self, params_by_key: Mapping[str, Mapping[str, Any]]) -> None:
        """Refuse, before anything runs, parameters that cannot work (a missing source file).

        Raises:
            RidelakeError: with a message naming the problem and what to do.
        """
        ...

    def partitions(self, params: Mapping[str, Any], max_partitions: int | None) -> Partitions:
        """The partitions a partition-aware stage runs over, given the run's parameters (for a
        delivery: the booking months it touched), or ``values=None`` to run whole: beyond
        ``max_partitions``, or, when that is None, when the data is small enough to run whole."""
        ...

    def is_table(self, dataset: str) -> bool:
        """Whether a dataset named in pipeline.yaml is a versioned table (else a hand-off file)."""
        ...


def declared(datasets: Sequence[str]) -> str:
    """The value of :attr:`~ridelake.core.protocol.Env.READS` / ``WRITES`` for a list of datasets."""
    return ",".join(datasets)
