"""The single exception hierarchy of ridelake.

Every error the package raises on purpose derives from :class:`RidelakeError`, so callers
(the CLI, the runner, a notebook) can catch one type and print a message a person can act on.
"""

from __future__ import annotations

__all__ = [
    "RidelakeError",
    "FinalError",
    "final_error_names",
    "ConfigError",
    "SourceError",
    "CheckError",
    "CatalogError",
    "SelectionError",
    "ParameterError",
    "LockError",
    "ExecutionError",
]


class RidelakeError(Exception):
    """Root of every error ridelake raises deliberately."""


class FinalError(RidelakeError):
    """An error another attempt cannot fix (a failed check, an unreadable delivery, a bad
    parameter): a notebook failing with one is not retried."""


def final_error_names() -> frozenset[str]:
    """Class names of every :class:`FinalError` subclass defined so far.

    A notebook's failure reaches the runner as the exception's class name only (the kernel is
    another process), so the runner matches names; a project's own subclasses count once imported.
    """
    names, stack = set(), [FinalError]
    while stack:
        cls = stack.pop()
        names.add(cls.__name__)
        stack.extend(cls.__subclasses__())
    return frozenset(names)


class ConfigError(FinalError):
    """A setting, a path or a parameter file is missing or malformed."""


class SourceError(FinalError):
    """A delivery cannot be read at all (missing file, missing header columns)."""


class CheckError(FinalError):
    """One or more table checks failed; nothing was written.

    Attributes:
        table: Iceberg identifier of the table that was being written.
        report: DataFrame with one row per check (``check``, ``passed``, ``failures``, ``sample``).
    """

    def __init__(self, message: str, table: str = "", report: object | None = None) -> None:
        super().__init__(message)
        self.table = table
        self.report = report


class CatalogError(FinalError):
    """The Iceberg catalog or a table is not in the expected state."""


class SelectionError(FinalError):
    """A notebook selector names nothing known."""


class ParameterError(FinalError):
    """A run parameter is unknown or has a malformed value."""


class LockError(RidelakeError):
    """The warehouse is locked by another run."""


class ExecutionError(RidelakeError):
    """A notebook failed to execute."""
