"""Table checks: declared next to each table's schema, run on the frame before it is written.

A check looks at the frame that is about to become the table (the whole table as it will be
after the write) and, where it needs them, at other tables passed in ``refs``. Column checks
(unique, not null, accepted values, ranges, relationships) run through pandera; cross-table
invariants (reconciliation counts) are small functions. :func:`validate` runs every check of a
table, shows the pass/fail table in a notebook, and raises :class:`~ridelake.errors.CheckError`
naming the table, the failed checks and a few offending keys, so nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from ridelake.errors import CheckError

__all__ = [
    "Check",
    "Unique",
    "NotNull",
    "AcceptedValues",
    "InRange",
    "Relationship",
    "Invariant",
    "CheckResult",
    "run_checks",
    "validate",
]

_SAMPLE = 5


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check.

    Attributes:
        check: the check's name, e.g. ``unique(booking_id)``.
        passed: True when no row failed.
        failures: number of failing rows (or 1 for a failed invariant).
        sample: a few offending keys or a sentence saying what differs.
    """

    check: str
    passed: bool
    failures: int
    sample: str


def _sample_keys(frame: pd.DataFrame, index: pd.Index, key: Sequence[str]) -> str:
    rows = frame.loc[frame.index.isin(index)]
    cols = [c for c in key if c in rows.columns] or list(rows.columns[:1])
    shown = rows[cols].drop_duplicates().head(_SAMPLE)
    parts = [", ".join(f"{c}={v!r}" for c, v in zip(cols, rec)) for rec in shown.itertuples(index=False)]
    return "; ".join(parts)


class Check:
    """Base class of a declared table check."""

    #: Other tables this check needs in ``refs`` (Iceberg identifiers or other ref names).
    needs: tuple[str, ...] = ()

    @property
    def name(self) -> str:  # pragma: no cover - overridden
        """Human-readable name of the check."""
        raise NotImplementedError

    def _schema(self, refs: Mapping[str, pd.DataFrame]) -> Any:  # pragma: no cover
        raise NotImplementedError

    def run(self, frame: pd.DataFrame, refs: Mapping[str, pd.DataFrame], key: Sequence[str]) -> CheckResult:
        """Run the check.

        Args:
            frame: the table as it will be after the write.
            refs: other tables by name, for relationships and invariants.
            key: the table's key columns, used to name offending rows.

        Returns:
            The :class:`CheckResult`.
        """
        import pandera.errors

        schema = self._schema(refs)
        try:
            schema.validate(frame, lazy=True)
        except pandera.errors.SchemaErrors as exc:
            cases = exc.failure_cases
            index = pd.Index(cases["index"].dropna().unique()) if "index" in cases else pd.Index([])
            if len(index):
                return CheckResult(self.name, False, len(index), _sample_keys(frame, index, key))
            sample = ", ".join(str(v) for v in cases["failure_case"].head(_SAMPLE))
            return CheckResult(self.name, False, max(len(cases), 1), sample)
        except pandera.errors.SchemaError as exc:  # pragma: no cover - lazy=True collects
            return CheckResult(self.name, False, 1, str(exc).splitlines()[0])
        return CheckResult(self.name, True, 0, "")


def _columns(cols: str | Sequence[str]) -> tuple[str, ...]:
    return (cols,) if isinstance(cols, str) else tuple(cols)


@dataclass(frozen=True)
class Unique(Check):
    """No two rows share the values of ``columns``."""

    columns: tuple[str, ...]

    def __init__(self, *columns: str) -> None:
        object.__setattr__(self, "columns", tuple(columns))

    @property
    def name(self) -> str:
        return f"unique({', '.join(self.columns)})"

    def _schema(self, refs: Mapping[str, pd.DataFrame]) -> Any:
        import pandera.pandas as pa

        return pa.DataFrameSchema(unique=list(self.columns), report_duplicates="all")


@dataclass(frozen=True)
class NotNull(Check):
    """None of ``columns`` is null."""

    columns: tuple[str, ...]

    def __init__(self, *columns: str) -> None:
        object.__setattr__(self, "columns", tuple(columns))

    @property
    def name(self) -> str:
        return f"not_null({', '.join(self.columns)})"

    def _schema(self, refs: Mapping[str, pd.DataFrame]) -> Any:
        import pandera.pandas as pa

        return pa.DataFrameSchema({c: pa.Column(nullable=False) for c in self.columns})


@dataclass(frozen=True)
class AcceptedValues(Check):
    """Every non-null value of ``column`` is one of ``values``."""

    column: str
    values: tuple[Any, ...]

    @property
    def name(self) -> str:
        return f"accepted_values({self.column} in {list(self.values)})"

    def _schema(self, refs: Mapping[str, pd.DataFrame]) -> Any:
        import pandera.pandas as pa

        return pa.DataFrameSchema(
            {self.column: pa.Column(nullable=True, checks=pa.Check.isin(list(self.values)))}
        )


@dataclass(frozen=True)
class InRange(Check):
    """Every non-null value of ``column`` lies in ``[low, high]`` (either bound may be None)."""

    column: str
    low: float | None = None
    high: float | None = None

    @property
    def name(self) -> str:
        lo = "" if self.low is None else f"{self.low} <= "
        hi = "" if self.high is None else f" <= {self.high}"
        return f"range({lo}{self.column}{hi})"

    def _schema(self, refs: Mapping[str, pd.DataFrame]) -> Any:
        import pandera.pandas as pa

        checks = []
        if self.low is not None:
            checks.append(pa.Check.ge(self.low))
        if self.high is not None:
            checks.append(pa.Check.le(self.high))
        return pa.DataFrameSchema({self.column: pa.Column(nullable=True, checks=checks)})


@dataclass(frozen=True)
class Relationship(Check):
    """Every non-null ``column`` value exists in ``ref_table.ref_column`` (a foreign key)."""

    column: str
    ref_table: str
    ref_column: str

    @property
    def needs(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.ref_table,)

    @property
    def name(self) -> str:
        return f"relationships({self.column} -> {self.ref_table}.{self.ref_column})"

    def _schema(self, refs: Mapping[str, pd.DataFrame]) -> Any:
        import pandera.pandas as pa

        allowed = pd.Index(refs[self.ref_table][self.ref_column].dropna().unique())
        check = pa.Check(lambda s: s.isin(allowed), element_wise=False, name="exists_in_ref")
        return pa.DataFrameSchema({self.column: pa.Column(nullable=True, checks=check)})


@dataclass(frozen=True)
class Invariant(Check):
    """A cross-table rule (e.g. a reconciliation count).

    ``fn(frame, refs)`` returns None when the rule holds, else a sentence saying what differs.
    """

    description: str
    fn: Callable[[pd.DataFrame, Mapping[str, pd.DataFrame]], str | None] = field(compare=False)
    requires: tuple[str, ...] = ()

    @property
    def needs(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.requires

    @property
    def name(self) -> str:
        return self.description

    def run(self, frame: pd.DataFrame, refs: Mapping[str, pd.DataFrame], key: Sequence[str]) -> CheckResult:
        problem = self.fn(frame, refs)
        return CheckResult(self.name, problem is None, 0 if problem is None else 1, problem or "")


def run_checks(
    checks: Sequence[Check],
    frame: pd.DataFrame,
    refs: Mapping[str, pd.DataFrame] | None = None,
    key: Sequence[str] = (),
) -> pd.DataFrame:
    """Run checks and collect their results.

    Args:
        checks: the declared checks.
        frame: the table as it will be after the write.
        refs: other tables by name; a check whose ``needs`` are absent fails with that reason.
        key: the table's key columns, to name offending rows.

    Returns:
        A DataFrame with columns ``check``, ``passed``, ``failures``, ``sample``, one row a check.
    """
    refs = refs or {}
    frame = frame.reset_index(drop=True)
    results = []
    for check in checks:
        missing = [n for n in check.needs if n not in refs]
        if missing:
            results.append(CheckResult(check.name, False, 1, f"not checked: needs {', '.join(missing)}"))
            continue
        results.append(check.run(frame, refs, key))
    return pd.DataFrame(
        [r.__dict__ for r in results], columns=["check", "passed", "failures", "sample"]
    )


def _show(table: str, report: pd.DataFrame) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is always there in a kernel
        return
    if get_ipython() is None:
        return
    styled = report.style.hide(axis="index").set_caption(f"Checks on {table}").map(
        lambda v: "background-color:#d4edda" if v is True else ("background-color:#f8d7da" if v is False else ""),
        subset=["passed"],
    ).set_properties(subset=["check", "sample"], **{"text-align": "left"})
    display(styled)


def validate(
    table: str,
    frame: pd.DataFrame,
    refs: Mapping[str, pd.DataFrame] | None = None,
    show: bool = True,
) -> pd.DataFrame:
    """Run the checks declared for ``table`` and stop loudly when one fails.

    Args:
        table: Iceberg identifier, e.g. ``silver.booking``.
        frame: the table as it will be after the write.
        refs: other tables (or named frames such as ``delivery``) the checks need.
        show: display the pass/fail table when running inside a notebook.

    Returns:
        The report (see :func:`run_checks`) when every check passed.

    Raises:
        CheckError: naming the table, each failed check and a few offending keys.
    """
    from ridelake.tables.schemas import table_spec

    spec = table_spec(table)
    report = run_checks(spec.checks, frame, refs, spec.key)
    if show:
        _show(table, report)
    failed = report[~report["passed"]]
    if len(failed):
        lines = [f"{table}: {len(failed)} of {len(report)} checks failed; nothing was written"]
        lines += [f"  - {r.check}: {r.failures} failing, e.g. {r.sample}" for r in failed.itertuples()]
        raise CheckError("\n".join(lines), table=table, report=report)
    return report
