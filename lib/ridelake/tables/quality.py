"""Table checks: one pandera schema per table, run on the frame before it is written.

The checks are declared as plain data next to each table's schema
(:class:`~ridelake.tables.schemas.TableSpec`). :func:`table_schema` turns a table's
declarations into one :class:`pandera.pandas.DataFrameSchema`: not-null as non-nullable
columns, single-column uniqueness as unique columns, accepted values, ranges and relationships
(foreign keys, checked against the referenced frame) as column checks, multi-column uniqueness
and invariants (reconciliation counts against other frames) as DataFrame-level checks built
with those frames. :func:`run_checks` validates the frame once with ``lazy=True``, collects
every failure and reports each declared check: passed or not, how many rows failed, a few
offending keys. :func:`validate` shows that report in a notebook and raises
:class:`~ridelake.errors.CheckError` naming the table, the failed checks and a few offending
keys, so nothing is written.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from pandera.errors import SchemaErrors

from ridelake.errors import CheckError
from ridelake.tables.schemas import (
    AcceptedValues,
    Check,
    InRange,
    Invariant,
    NotNull,
    Relationship,
    Unique,
    table_spec,
)

__all__ = [
    "Check",
    "Unique",
    "NotNull",
    "AcceptedValues",
    "InRange",
    "Relationship",
    "Invariant",
    "CheckResult",
    "REPORT_COLUMNS",
    "table_schema",
    "run_checks",
    "validate",
]

#: Columns of a check report, one row per declared check.
REPORT_COLUMNS = ("check", "passed", "failures", "sample")

_SAMPLE = 5
_NOT_NULL, _UNIQUE, _MISSING = "not_nullable", "field_uniqueness", "column_in_dataframe"


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one declared check.

    Attributes:
        check: the check's name, e.g. ``unique(booking_id)``.
        passed: True when no row failed.
        failures: number of failing rows (1 for a failed invariant or a check that could not run).
        sample: a few offending keys, or a sentence saying what differs; empty when passed.
    """

    check: str
    passed: bool
    failures: int
    sample: str


@dataclass
class _Plan:
    """A table's pandera schema and how its failures map back to the declared checks."""

    schema: pa.DataFrameSchema
    #: pandera check name -> indices of the declared checks it stands for.
    owners: dict[str, list[int]]
    #: (pandera reason, column) -> declared checks, for non-nullable and unique columns.
    by_column: dict[tuple[str, str], list[int]]
    #: column -> declared checks that look at it (all fail when it is missing).
    uses: dict[str, list[int]]
    #: declared check -> what differs, written by invariants while the schema runs.
    messages: dict[int, str] = field(default_factory=dict)


def _invariant(index: int, check: Invariant, refs: Mapping[str, pd.DataFrame],
               messages: dict[int, str]) -> pa.Check:
    def holds(frame: pd.DataFrame) -> bool:
        problem = check.fn(frame, refs)
        if problem is not None:
            messages[index] = problem
        return problem is None

    return pa.Check(holds, name=check.name)


def _unique_rows(columns: tuple[str, ...], name: str) -> pa.Check:
    def distinct(frame: pd.DataFrame) -> pd.Series:
        keys = frame[list(columns)]
        return ~(keys.duplicated(keep=False) & keys.notna().all(axis=1))

    return pa.Check(distinct, name=name)


def _isin(values: pd.Series, allowed: Any) -> pd.Series:
    """``values.isin(allowed)`` through Arrow, nulls of ``allowed`` left out: pandas' own isin of
    Arrow strings loops in Python (0.7 s for 100,000 booking ids). ``allowed`` may repeat values
    (Arrow's lookup set takes each once: no ``unique()`` pass first)."""
    try:
        arr = pyarrow.array(values, from_pandas=True)
        found = pc.is_in(arr, value_set=pyarrow.array(allowed, from_pandas=True).cast(arr.type), skip_nulls=True)
    except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError, pyarrow.ArrowNotImplementedError):
        return values.isin(pd.Index(pd.Series(allowed).dropna().unique()))
    return pd.Series(found.to_numpy(zero_copy_only=False), index=values.index)


def _plan(checks: Sequence[Check], refs: Mapping[str, pd.DataFrame]) -> _Plan:
    """Build the pandera schema for the declared checks whose ``needs`` are all in ``refs``."""
    nullable: dict[str, bool] = {}
    unique: dict[str, bool] = {}
    column_checks: dict[str, list[pa.Check]] = defaultdict(list)
    frame_checks: list[pa.Check] = []
    owners: dict[str, list[int]] = defaultdict(list)
    by_column: dict[tuple[str, str], list[int]] = defaultdict(list)
    uses: dict[str, list[int]] = defaultdict(list)
    messages: dict[int, str] = {}
    for i, check in enumerate(checks):
        for col in check.columns_used:
            nullable.setdefault(col, True)
            uses[col].append(i)
        if isinstance(check, NotNull):
            for col in check.columns:
                nullable[col] = False
                by_column[(_NOT_NULL, col)].append(i)
        elif isinstance(check, Unique) and len(check.columns) == 1:
            unique[check.columns[0]] = True
            by_column[(_UNIQUE, check.columns[0])].append(i)
        elif isinstance(check, Unique):
            frame_checks.append(_unique_rows(check.columns, check.name))
            owners[check.name].append(i)
        elif isinstance(check, AcceptedValues):
            column_checks[check.column].append(pa.Check.isin(list(check.values), name=check.name))
            owners[check.name].append(i)
        elif isinstance(check, InRange):
            if check.low is not None:
                column_checks[check.column].append(pa.Check.ge(check.low, name=check.name))
            if check.high is not None:
                column_checks[check.column].append(pa.Check.le(check.high, name=check.name))
            owners[check.name].append(i)
        elif isinstance(check, Relationship):
            allowed = refs[check.ref_table][check.ref_column]
            column_checks[check.column].append(
                pa.Check(lambda s, allowed=allowed: _isin(s, allowed), name=check.name))
            owners[check.name].append(i)
        elif isinstance(check, Invariant):
            frame_checks.append(_invariant(i, check, refs, messages))
            owners[check.name].append(i)
        else:
            raise TypeError(f"no pandera translation for the check {check!r}")
    columns = {
        col: pa.Column(nullable=nullable[col], unique=unique.get(col, False), report_duplicates="all",
                       checks=column_checks.get(col, []))
        for col in nullable
    }
    schema = pa.DataFrameSchema(columns, checks=frame_checks)
    return _Plan(schema, dict(owners), dict(by_column), dict(uses), messages)


def table_schema(table: str, refs: Mapping[str, pd.DataFrame] | None = None) -> pa.DataFrameSchema:
    """The pandera schema of one table's declared checks.

    Args:
        table: Iceberg identifier, e.g. ``silver.booking``.
        refs: the other frames the checks need; checks whose frames are absent are left out.

    Returns:
        A :class:`pandera.pandas.DataFrameSchema` (validate it with ``lazy=True`` to see every
        failure at once).
    """
    refs = refs or {}
    spec = table_spec(table)
    return _plan([c for c in spec.checks if all(n in refs for n in c.needs)], refs).schema


def _sample_keys(frame: pd.DataFrame, index: pd.Index, key: Sequence[str]) -> str:
    rows = frame.loc[frame.index.isin(index)]
    cols = [c for c in key if c in rows.columns] or list(rows.columns[:1])
    shown = rows[cols].drop_duplicates().head(_SAMPLE)
    return "; ".join(", ".join(f"{c}={v!r}" for c, v in zip(cols, rec)) for rec in shown.itertuples(index=False))


def _failed(exc: SchemaErrors, plan: _Plan) -> tuple[dict[int, set[Any]], dict[int, list[str]]]:
    """Failing row indices and failure texts per declared check, from a lazy validation.

    A missing column is reported as such: it replaces whatever else the checks on it said.
    """
    rows: dict[int, set[Any]] = defaultdict(set)
    notes: dict[int, list[str]] = defaultdict(list)
    for err in exc.schema_errors:
        reason = err.check if isinstance(err.check, str) else getattr(err.check, "name", str(err.check))
        cases = err.failure_cases
        if reason == _MISSING:
            missing = str(cases)
            owners = plan.uses.get(missing, [])
            text = f"column {missing!r} is missing"
        elif isinstance(err.check, str):
            owners = plan.by_column.get((reason, str(err.column_name)), [])
            text = reason
        else:
            owners = plan.owners.get(reason, [])
            text = str(cases) if not isinstance(cases, pd.DataFrame) else ""
        if not owners:  # a failure no declaration accounts for must not pass silently
            raise CheckError(f"unexpected check failure {reason!r} on {err.column_name!r}: {cases}")
        index = cases["index"].dropna() if isinstance(cases, pd.DataFrame) and "index" in cases else None
        for i in owners:
            if index is not None and len(index):
                rows[i].update(index.tolist())
            elif i not in plan.messages and text not in notes[i]:
                notes[i].append(text or ", ".join(str(v) for v in cases["failure_case"].head(_SAMPLE)))
    for i, texts in notes.items():
        gone = [n for n in texts if n.endswith(" is missing")]
        if gone:
            notes[i] = gone
            rows.pop(i, None)
    return rows, notes


def run_checks(
    checks: Sequence[Check],
    frame: pd.DataFrame,
    refs: Mapping[str, pd.DataFrame] | None = None,
    key: Sequence[str] = (),
) -> pd.DataFrame:
    """Run declared checks as one pandera schema and collect every failure.

    Args:
        checks: the declared checks.
        frame: the table as it will be after the write.
        refs: other frames by name; a check whose ``needs`` are absent fails with that reason.
        key: the table's key columns, to name offending rows.

    Returns:
        A DataFrame with columns :data:`REPORT_COLUMNS`, one row per declared check, in order.
    """
    refs = refs or {}
    frame = frame.reset_index(drop=True)
    missing = {i: [n for n in c.needs if n not in refs] for i, c in enumerate(checks)}
    runnable = [i for i, m in missing.items() if not m]
    plan = _plan([checks[i] for i in runnable], refs)
    rows: dict[int, set[Any]] = {}
    notes: dict[int, list[str]] = {}
    try:
        plan.schema.validate(frame, lazy=True, inplace=True)
    except SchemaErrors as exc:
        rows, notes = _failed(exc, plan)
    results = []
    for i, check in enumerate(checks):
        if missing[i]:
            results.append(CheckResult(check.name, False, 1, f"not checked: needs {', '.join(missing[i])}"))
            continue
        j = runnable.index(i)
        if rows.get(j):
            index = pd.Index(sorted(rows[j]))
            results.append(CheckResult(check.name, False, len(index), _sample_keys(frame, index, key)))
        elif j in plan.messages or notes.get(j):
            results.append(CheckResult(check.name, False, 1, plan.messages.get(j) or "; ".join(notes[j])))
        else:
            results.append(CheckResult(check.name, True, 0, ""))
    return pd.DataFrame([r.__dict__ for r in results], columns=list(REPORT_COLUMNS))


def _shown(report: pd.DataFrame) -> pd.DataFrame:
    """The report as a notebook shows it: no sample column when no check has one, else a dash."""
    if not (report["sample"] != "").any():
        return report.drop(columns="sample")
    return report.assign(sample=report["sample"].where(report["sample"] != "", "–"))


def _show(table: str, report: pd.DataFrame) -> None:
    try:
        from IPython import get_ipython  # optional: only a notebook kernel displays the report
        from IPython.display import display  # optional: only inside a kernel
    except ImportError:  # pragma: no cover - IPython is always there in a kernel
        return
    if get_ipython() is None:
        return
    shown = _shown(report)
    styled = shown.style.hide(axis="index").set_caption(f"Checks on {table}").map(
        lambda v: "background-color:#d4edda" if v is True else ("background-color:#f8d7da" if v is False else ""),
        subset=["passed"],
    ).set_properties(subset=[c for c in ("check", "sample") if c in shown.columns], **{"text-align": "left"})
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
