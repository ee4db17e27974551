"""The names the core shares with the notebooks it runs and with the tools that read its records.

One definition each: the statuses of a notebook execution, the environment variables a kernel
receives, and the version of the run record (``run.json``). A project reads the variables in its
kernels (:data:`ENV`); nothing else spells them out.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["Status", "RunStatus", "FINAL_STATUSES", "OK_STATUSES", "Env", "ENV", "RUN_SCHEMA_VERSION"]


class Status(str, Enum):
    """Where a notebook execution is; the value is what ``run.json`` and the report show."""

    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    #: the freshness check declined it: nothing ran, and its dependents may go on.
    UP_TO_DATE = "up-to-date"

    def __str__(self) -> str:  # f-strings and str() give the plain value, as JSON does
        return self.value


class RunStatus(str, Enum):
    """Where a whole run is (``run.json``'s ``status``)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    #: shown for a record that says running but whose process is gone (never written).
    KILLED = "killed"

    def __str__(self) -> str:
        return self.value


#: Statuses an execution ends in.
FINAL_STATUSES = frozenset({Status.SUCCEEDED, Status.FAILED, Status.SKIPPED, Status.UP_TO_DATE})
#: Final statuses that let dependents run.
OK_STATUSES = frozenset({Status.SUCCEEDED, Status.UP_TO_DATE})


class Env:
    """Environment variables the runner sets for a kernel (and the provenance a write records)."""

    HOME = "RIDELAKE_HOME"  #: the project root
    RUN_ID = "RIDELAKE_RUN_ID"  #: the run's id (``interactive-…`` for a JupyterLab write)
    NOTEBOOK = "RIDELAKE_NOTEBOOK"  #: ``<layer>/<table>``
    KEY = "RIDELAKE_KEY"  #: the execution key (``silver/booking@2024-03``)
    PARAMS_HASH = "RIDELAKE_PARAMS_HASH"  #: sha256 of the parameters the notebook receives
    ATTEMPT = "RIDELAKE_ATTEMPT"  #: 1 for the first attempt
    RECEIPT_FILE = "RIDELAKE_RECEIPT_FILE"  #: JSON lines: every table the notebook read or wrote
    READS = "RIDELAKE_READS"  #: comma-separated datasets the notebook may read (pipeline.yaml)
    WRITES = "RIDELAKE_WRITES"  #: comma-separated datasets the notebook may write (pipeline.yaml)


ENV = Env()

#: Version of the ``run.json`` layout (:class:`ridelake.core.manifest.RunRecord`).
RUN_SCHEMA_VERSION = 2
