"""``ridelake sql``: DuckDB SQL over the catalog's tables, by their Iceberg names, for analysts.

``ridelake sql "SELECT ... FROM gold.daily_booking_summary"`` finds the tables the query
references (DuckDB's parser), reads each with a pyiceberg scan (only the columns the query names
when it names them all, i.e. no ``*`` and no natural join), and registers it in an in-memory DuckDB
as a view ``<namespace>.<table>`` (schemas ``bronze``, ``silver``, ``gold``: every namespace of the
catalog). DuckDB's own Iceberg extension is not used: it cannot be downloaded here, and pyiceberg
already reads every catalog ridelake supports.

``--as-of RUN_ID`` reads the tables as that run left them (time travel): a table the run wrote at
the snapshot it wrote last (``run.json`` records each notebook's snapshots); any other table at
the snapshot that was current when the run finished (the table's snapshot log). The result is
printed as a table, or written with ``--out FILE`` as CSV (``.csv``) or Parquet (``.parquet``).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ridelake.core.files import parse_iso
from ridelake.core.manifest import read_manifest, resolve_run, runs_dir
from ridelake.core.progress import plain_table, render_text
from ridelake.errors import RidelakeError
from ridelake.ops.lineage import use_warehouse, open_catalog
from ridelake.tables import config

__all__ = [
    "QueryError",
    "TableRef",
    "Result",
    "referenced_tables",
    "referenced_columns",
    "load_run",
    "as_of_snapshots",
    "run_query",
    "write_result",
    "format_result",
    "register",
]

#: File extensions ``--out`` understands, to the writer's format.
OUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_ALIAS = re.compile(r"\s+AS\s+.*$", re.IGNORECASE | re.DOTALL)


class QueryError(RidelakeError):
    """The query cannot be run: a SQL error, an unknown table, an unusable ``--as-of`` run."""


@dataclass(frozen=True)
class TableRef:
    """One catalog table a query reads.

    Attributes:
        identifier: ``<namespace>.<table>`` as the catalog names it.
        snapshot_id: the snapshot read (None: the current one; also None for a never-written table).
        columns: the columns read (None: every column).
    """

    identifier: str
    snapshot_id: int | None = None
    columns: tuple[str, ...] | None = None


@dataclass
class Result:
    """A query's answer.

    Attributes:
        table: the rows, as a ``pyarrow.Table``.
        tables: what was read for it.
        as_of: the run whose snapshots were read (None: the current ones).
    """

    table: Any
    tables: list[TableRef] = field(default_factory=list)
    as_of: str | None = None


# -- what a query reads ------------------------------------------------------------------------

def _split_name(name: str) -> tuple[str, ...]:
    """``gold.daily_booking_summary AS d`` or ``"Gold"."x"`` -> lower-case name parts."""
    bare = _ALIAS.sub("", name.strip())
    return tuple(p.strip().strip('"').lower() for p in bare.split("."))


def _walk(node: Any) -> Iterable[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _syntax_tree(query: str) -> dict[str, Any] | None:
    """DuckDB's parse tree of a SELECT statement (``json_serialize_sql``); None for any other
    statement or a query that does not parse."""
    import duckdb  # heavy (0.1 s): only the sql command needs it

    con = duckdb.connect()
    try:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [query]).fetchone()[0])
    except duckdb.Error:
        return None
    finally:
        con.close()
    return None if tree.get("error") else tree


def referenced_tables(query: str, known: Iterable[str]) -> list[str]:
    """The catalog tables a query references, by ``<namespace>.<table>`` (CTE names excluded).

    Args:
        query: one DuckDB SQL statement.
        known: the catalog's table identifiers.

    Returns:
        The identifiers of ``known`` the query names, sorted.

    Raises:
        QueryError: the query does not parse, or names ``<namespace>.<table>`` where the
            namespace is the catalog's but the table is not (the message lists close matches).
    """
    import duckdb  # heavy (0.1 s): only the sql command needs it

    tree = _syntax_tree(query)
    if tree is not None:  # the parse tree's table references (nothing is bound yet)
        names = [(n.get("schema_name") or "", n.get("table_name") or "") for n in _walk(tree)
                 if n.get("type") == "BASE_TABLE"]
        parts_list = [tuple(p.lower() for p in name if p) for name in names]
    else:  # another statement (PIVOT, DESCRIBE...): DuckDB's own extraction
        try:
            parts_list = [_split_name(n) for n in duckdb.get_table_names(query, qualified=True)]
        except duckdb.Error as exc:
            raise QueryError(f"cannot parse the query: {exc}") from None
    tables = {t.lower(): t for t in known}
    namespaces = {t.split(".")[0] for t in tables}
    out = set()
    for parts in parts_list:
        ident = ".".join(parts[-2:])
        if ident in tables:
            out.add(tables[ident])
        elif len(parts) >= 2 and parts[-2] in namespaces:
            close = difflib.get_close_matches(ident, list(tables), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(tables[c] for c in close)}?" if close else ""
            raise QueryError(f"the catalog has no table {ident}.{hint} Its tables: {', '.join(sorted(tables.values()))}")
    return sorted(out)


def referenced_columns(query: str) -> set[str] | None:
    """Every column name the query mentions (lower case), or None when it may use columns it does
    not name (``*``, ``COLUMNS(...)``, a natural join, a statement other than a plain SELECT).

    The set is a superset of what each table needs (names are not tied to tables; a table alias
    may be among them): reading a column too many is harmless, one too few is not.
    """
    tree = _syntax_tree(query)
    if tree is None:
        return None
    names: set[str] = set()
    for node in _walk(tree):
        if node.get("class") == "STAR" or node.get("type") == "STAR" or node.get("ref_type") == "NATURAL":
            return None
        if node.get("class") == "COLUMN_REF":
            names.update(str(n).lower() for n in node.get("column_names") or [])
        for col in node.get("using_columns") or []:
            names.add(str(col).lower())
    return names


# -- time travel -------------------------------------------------------------------------------

def _run_end_ms(record: Mapping[str, Any]) -> int:
    """When a run finished, in epoch milliseconds (a killed run's record: its last notebook's end)."""
    end = parse_iso(record.get("finished_at"))
    if end is None:
        if record.get("status") == "running":
            raise QueryError(f"run {record.get('run_id')} is still running: nothing to read as of its end yet")
        ends = [parse_iso(nb.get("finished_at")) for nb in record.get("notebooks") or []]
        end = max((e for e in ends if e is not None), default=None)
    if end is None:
        raise QueryError(f"run {record.get('run_id')} has no finish time in its record")
    return int(end * 1000)


def load_run(run_id: str, root: Path | None = None) -> dict[str, Any]:
    """The record (``run.json``) of a run of this warehouse, for ``--as-of``.

    Args:
        run_id: a run id, a unique prefix of one, or ``latest``.
        root: the project root (default :func:`ridelake.tables.config.project_root`).

    Raises:
        QueryError: no such run, or it ran on another warehouse than the configured one.
    """
    try:
        record = read_manifest(resolve_run(runs_dir(root or config.project_root()), run_id))
    except RidelakeError as exc:
        raise QueryError(f"--as-of {run_id}: {exc}") from None
    here = config.warehouse_location()
    if record.get("warehouse") and record["warehouse"] != here:
        raise QueryError(f"run {record.get('run_id', run_id)} ran on the warehouse {record['warehouse']}, not {here}: "
                         f"pass --warehouse {record['warehouse']}")
    return record


def as_of_snapshots(record: Mapping[str, Any], cat: Any, tables: Iterable[str]) -> dict[str, int | None]:
    """The snapshot of each table as a run left it.

    Args:
        record: the run's ``run.json`` (:func:`load_run`).
        cat: the catalog.
        tables: the identifiers wanted.

    Returns:
        Table -> snapshot id: the last snapshot the run wrote to it, else the one current when the
        run finished (None: the table had no snapshot then).

    Raises:
        QueryError: the run is still running, or a snapshot it wrote has since been expired.
    """
    rid = record.get("run_id", "?")
    written: dict[str, list[int]] = {}
    for nb in record.get("notebooks") or []:
        for table, snap in (nb.get("writes") or {}).items():
            if snap is not None:
                written.setdefault(table, []).append(int(snap))
    end_ms: int | None = None
    out: dict[str, int | None] = {}
    for ident in tables:
        table = cat.load_table(ident)
        if ident in written:
            snaps = [table.snapshot_by_id(s) for s in written[ident]]
            gone = [s for s, snap in zip(written[ident], snaps) if snap is None]
            if gone:  # (the one gone may be its last)
                raise QueryError(f"snapshot(s) {', '.join(map(str, gone))} that run {rid} wrote to {ident} are gone "
                                 "(expired by `ridelake maintain`): cannot read the table as that run left it")
            last = max(snaps, key=lambda s: (s.sequence_number or 0, s.timestamp_ms))
            out[ident] = last.snapshot_id
            continue
        if end_ms is None:
            end_ms = _run_end_ms(record)
        snap = table.snapshot_as_of_timestamp(end_ms, inclusive=True)
        out[ident] = snap.snapshot_id if snap is not None else None
    return out


# -- running -----------------------------------------------------------------------------------

def _scan(table: Any, ref: TableRef, empty: bool = False) -> Any:
    """The Arrow rows of one table at ``ref``'s snapshot (None: the current one) with ``ref``'s
    columns; ``empty``: none (the table had no snapshot at the time asked for)."""
    if empty:
        data = table.schema().as_arrow().empty_table()
        return data.select(list(ref.columns)) if ref.columns else data
    scan = table.scan(selected_fields=ref.columns or ("*",), snapshot_id=ref.snapshot_id)
    return scan.to_arrow()


def _projection(table: Any, wanted: set[str] | None) -> tuple[str, ...] | None:
    if wanted is None:
        return None
    names = [f.name for f in table.schema().fields]
    cols = tuple(n for n in names if n.lower() in wanted)
    return cols or (names[0],)  # e.g. count(*): one column keeps the row count


def run_query(query: str, as_of: str | None = None, cat: Any = None) -> Result:
    """Run one DuckDB SQL statement over the catalog's tables.

    Args:
        query: the SQL; tables are named ``<namespace>.<table>`` (``gold.daily_booking_summary``).
        as_of: a run id: read the tables as that run left them (see :func:`as_of_snapshots`).
        cat: the catalog (default the configured one, see :func:`ridelake.ops.lineage.open_catalog`).

    Returns:
        A :class:`Result`.

    Raises:
        QueryError: a parse or execution error (DuckDB's message), an unknown table, a bad run.
    """
    import duckdb  # heavy (0.1 s): only the sql command needs it
    import pyarrow as pa  # only where Arrow is used

    cat = cat if cat is not None else open_catalog()
    known = [".".join(ident) for ns in cat.list_namespaces() for ident in cat.list_tables(ns)]
    idents = referenced_tables(query, known)
    wanted = referenced_columns(query)
    record = load_run(as_of) if as_of else None
    snapshots = as_of_snapshots(record, cat, idents) if record is not None else {}
    con = duckdb.connect()
    refs: list[TableRef] = []
    try:
        for ns in sorted({k.split(".")[0] for k in known}):
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{ns}"')
        for ident in idents:
            table = cat.load_table(ident)
            ref = TableRef(ident, snapshots.get(ident), _projection(table, wanted))
            # as of a run that ended before the table's first snapshot: no rows
            data = _scan(table, ref, empty=bool(as_of) and ref.snapshot_id is None)
            ns, name = ident.split(".", 1)
            source = f"__ridelake_{ns}__{name}"
            con.register(source, data)
            con.execute(f'CREATE VIEW "{ns}"."{name}" AS SELECT * FROM "{source}"')
            refs.append(ref)
        try:
            relation = con.sql(query)  # None for a statement that returns no rows
            answer = relation.to_arrow_table() if relation is not None else pa.table({})
        except duckdb.Error as exc:
            raise QueryError(_explain(str(exc), known)) from None
    finally:
        con.close()
    return Result(answer, refs, record.get("run_id", as_of) if record is not None else None)


def _explain(message: str, known: list[str]) -> str:
    """DuckDB's message; for a table it does not know, how ridelake names the tables."""
    if "does not exist" in message and "Table" in message:
        return f"{message}\n(the catalog's tables are named <namespace>.<table>: {', '.join(sorted(known))})"
    return message


# -- output ------------------------------------------------------------------------------------

def write_result(result: Result, path: str | Path) -> Path:
    """Write the rows as CSV or Parquet, chosen by the file's extension.

    Raises:
        QueryError: an extension other than ``.csv``, ``.parquet`` or ``.pq``.
    """
    import pyarrow.csv as pacsv  # only where Arrow is used
    import pyarrow.parquet as pq  # only where Arrow is used

    out = Path(path)
    kind = OUT_FORMATS.get(out.suffix.lower())
    if kind is None:
        raise QueryError(f"--out {out}: unknown extension {out.suffix or '(none)'}; use .csv or .parquet")
    out.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        pacsv.write_csv(result.table, out)
    else:
        pq.write_table(result.table, out)
    return out


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e15 else repr(value)
    return str(value)


def format_result(result: Result, max_rows: int | None = 100) -> str:
    """The rows as a plain text table (at most ``max_rows``; None or 0: all), and a footer line."""
    import pyarrow as pa  # only where Arrow is used

    table = result.table
    shown = table if not max_rows or table.num_rows <= max_rows else table.slice(0, max_rows)
    numeric = [i for i, f in enumerate(table.schema)
               if pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_decimal(f.type)]
    rows = [[_cell(v) for v in row.values()] for row in shown.to_pylist()]
    text = render_text(plain_table(table.column_names, rows, right=numeric)) if table.num_columns else ""
    footer = f"({table.num_rows:,} row{'s' if table.num_rows != 1 else ''}"
    if shown.num_rows < table.num_rows:
        footer += f", first {shown.num_rows:,} shown: --max-rows 0 for all, or --out FILE"
    if result.as_of:
        footer += f"; as of run {result.as_of}"
    return f"{text}\n{footer})" if text else f"{footer})"


# -- command line ------------------------------------------------------------------------------

def _cmd_sql(args: argparse.Namespace) -> int:
    use_warehouse(args.warehouse)
    query = sys.stdin.read() if args.query == "-" else args.query
    result = run_query(query, as_of=args.as_of)
    if args.out:
        out = write_result(result, args.out)
        print(f"wrote {result.table.num_rows:,} rows to {out}", file=sys.stderr)
    else:
        print(format_result(result, args.max_rows))
    return 0


def register(subparsers: Any) -> None:
    """Add ``sql QUERY [--as-of RUN_ID] [--out FILE] [--max-rows N] [--warehouse PATH]``."""
    s = subparsers.add_parser(
        "sql", help="run DuckDB SQL over the catalog's tables (gold.daily_booking_summary...)",
        description="Run one DuckDB SQL statement over the catalog's Iceberg tables, named "
                    "<namespace>.<table> (bronze.booking, silver.customer, gold.daily_booking_summary...). "
                    "Only the tables (and, where the query names them, the columns) it references are read.")
    s.add_argument("query", metavar="QUERY", help="the SQL statement ('-': read it from standard input)")
    s.add_argument("--as-of", metavar="RUN_ID",
                   help="read the tables as run RUN_ID left them: the snapshots it wrote, else those current "
                        "when it finished (a unique prefix or 'latest' works)")
    s.add_argument("--out", metavar="FILE", help="write the rows to FILE (.csv or .parquet) instead of printing them")
    s.add_argument("--max-rows", type=int, default=100, metavar="N",
                   help="rows to print (default 100; 0: all)")
    s.add_argument("--warehouse", metavar="PATH", help="warehouse folder or URL (sets RIDELAKE_WAREHOUSE)")
    s.set_defaults(func=_cmd_sql)
