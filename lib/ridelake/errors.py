"""The single exception hierarchy of ridelake.

Every error the package raises on purpose derives from :class:`RidelakeError`, so callers
(the CLI, the runner, a notebook) can catch one type and print a message a person can act on.
"""

from __future__ import annotations

__all__ = [
    "RidelakeError",
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


class ConfigError(RidelakeError):
    """A setting, a path or a parameter file is missing or malformed."""


class SourceError(RidelakeError):
    """A delivery cannot be read at all (missing file, missing header columns)."""


class CheckError(RidelakeError):
    """One or more table checks failed; nothing was written.

    Attributes:
        table: Iceberg identifier of the table that was being written.
        report: DataFrame with one row per check (``check``, ``passed``, ``failures``, ``sample``).
    """

    def __init__(self, message: str, table: str = "", report: object | None = None) -> None:
        super().__init__(message)
        self.table = table
        self.report = report


class CatalogError(RidelakeError):
    """The Iceberg catalog or a table is not in the expected state."""


class SelectionError(RidelakeError):
    """A notebook selector names nothing known."""


class ParameterError(RidelakeError):
    """A run parameter is unknown or has a malformed value."""


class LockError(RidelakeError):
    """The warehouse is locked by another run."""


class ExecutionError(RidelakeError):
    """A notebook failed to execute."""
