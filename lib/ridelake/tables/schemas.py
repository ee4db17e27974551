"""Every table of the warehouse: Iceberg schema, partitioning, key and checks (docs/contract.md §2-§5).

One :class:`TableSpec` per Iceberg identifier. The catalog bootstrap creates the tables from
these specs; :func:`ridelake.tables.quality.validate` runs the checks declared here before each write.

A check is declared as plain data (:class:`Unique`, :class:`NotNull`, :class:`AcceptedValues`,
:class:`InRange`, :class:`Relationship`, :class:`Invariant`: which rule, on which columns, with
which parameters); :mod:`ridelake.tables.quality` turns a table's declarations into one pandera
schema. This module knows nothing of pandera and never imports :mod:`~ridelake.tables.quality`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ridelake.errors import CatalogError

if TYPE_CHECKING:  # the declarations import nothing heavy: the runner reads them (bootstrap check)
    import pandas as pd

__all__ = [
    "Check",
    "Unique",
    "NotNull",
    "AcceptedValues",
    "InRange",
    "Relationship",
    "Invariant",
    "Column",
    "TableSpec",
    "STATUSES",
    "CANCELLED_BY",
    "LOCATION_TYPES",
    "NAMESPACES",
    "TABLES",
    "table_spec",
    "DIMENSIONS",
    "OTHER_MONTHS",
    "WHOLE_BOUNDS",
]

STATUSES = ("Completed", "Cancelled by Driver", "Cancelled by Customer", "No Driver Found", "Incomplete")
CANCELLED_BY = ("customer", "driver")
LOCATION_TYPES = ("pickup", "drop")
NAMESPACES = ("bronze", "silver", "gold")

#: Columns whose data-file bounds are kept whole, not truncated to 16 characters: a load
#: replaces the rows of one ``source_file`` (docs/contract.md §3), and only whole bounds let
#: Iceberg see that a data file holds that file's rows alone and drop it without reading it.
WHOLE_BOUNDS = ("source_file",)

#: Silver dimensions keyed by name: table -> (bronze source table, bronze name column).
DIMENSIONS = {
    "silver.vehicle_type": ("bronze.vehicle_type", "vehicle_type_name"),
    "silver.location": ("bronze.location", "location_name"),
    "silver.booking_status": ("bronze.booking_status", "booking_status_name"),
    "silver.payment_method": ("bronze.payment_method", "payment_method_name"),
}


# ----------------------------------------------------------------------------- check declarations

#: Other frames a check may read, by name: Iceberg identifiers or names such as ``delivery``.
Refs = Mapping[str, "pd.DataFrame"]

#: The ref naming a partitioned table's rows outside the month being written (their key columns;
#: empty when the whole table is rebuilt), e.g. ``silver.booking:other_months``.
OTHER_MONTHS = "{}:other_months"


@dataclass(frozen=True)
class Check:
    """A declared table check: what must hold, on which columns (see the subclasses)."""

    @property
    def name(self) -> str:  # pragma: no cover - every subclass names itself
        """The check's name as the reports show it, e.g. ``unique(booking_id)``."""
        raise NotImplementedError

    @property
    def needs(self) -> tuple[str, ...]:
        """The other frames (``refs``) this check reads."""
        return ()

    @property
    def columns_used(self) -> tuple[str, ...]:
        """The frame's columns this check looks at (empty when it does not say, as invariants)."""
        return ()


@dataclass(frozen=True, init=False)
class Unique(Check):
    """No two rows share the values of ``columns`` (rows with a null among them are not compared)."""

    columns: tuple[str, ...]

    def __init__(self, *columns: str) -> None:
        object.__setattr__(self, "columns", tuple(columns))

    @property
    def name(self) -> str:
        return f"unique({', '.join(self.columns)})"

    @property
    def columns_used(self) -> tuple[str, ...]:
        return self.columns


@dataclass(frozen=True, init=False)
class NotNull(Check):
    """None of ``columns`` is null."""

    columns: tuple[str, ...]

    def __init__(self, *columns: str) -> None:
        object.__setattr__(self, "columns", tuple(columns))

    @property
    def name(self) -> str:
        return f"not_null({', '.join(self.columns)})"

    @property
    def columns_used(self) -> tuple[str, ...]:
        return self.columns


@dataclass(frozen=True)
class AcceptedValues(Check):
    """Every non-null value of ``column`` is one of ``values``."""

    column: str
    values: tuple[Any, ...]

    @property
    def name(self) -> str:
        return f"accepted_values({self.column} in {list(self.values)})"

    @property
    def columns_used(self) -> tuple[str, ...]:
        return (self.column,)


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

    @property
    def columns_used(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True)
class Relationship(Check):
    """Every non-null ``column`` value exists in ``ref_table.ref_column`` (a foreign key)."""

    column: str
    ref_table: str
    ref_column: str

    @property
    def name(self) -> str:
        return f"relationships({self.column} -> {self.ref_table}.{self.ref_column})"

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.ref_table,)

    @property
    def columns_used(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True)
class Invariant(Check):
    """A rule over the whole frame and other frames (e.g. a reconciliation count).

    ``fn(frame, refs)`` returns None when the rule holds, else a sentence saying what differs.
    """

    description: str
    fn: Callable[[pd.DataFrame, Refs], str | None] = field(compare=False)
    requires: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.description

    @property
    def needs(self) -> tuple[str, ...]:
        return self.requires


@dataclass(frozen=True)
class Column:
    """One column: name, Iceberg primitive type name, whether it may be null, and a doc string."""

    name: str
    type: str
    required: bool = False
    doc: str = ""


@dataclass(frozen=True)
class TableSpec:
    """A table's contract.

    Attributes:
        identifier: ``<namespace>.<table>``.
        columns: the columns in order.
        partition_by: columns partitioned by identity (``extraction_month`` or none).
        key: the columns that identify a row (used to name offending rows in check reports).
        checks: the checks run before every write.
        doc: one line saying what a row is.
    """

    identifier: str
    columns: tuple[Column, ...]
    partition_by: tuple[str, ...]
    key: tuple[str, ...]
    checks: tuple[Check, ...]
    doc: str = ""

    @property
    def namespace(self) -> str:
        """The namespace (layer)."""
        return self.identifier.split(".", 1)[0]

    @property
    def name(self) -> str:
        """The table name without namespace."""
        return self.identifier.split(".", 1)[1]

    @property
    def column_names(self) -> list[str]:
        """Column names in order."""
        return [c.name for c in self.columns]

    def properties(self) -> dict[str, str]:
        """The Iceberg table properties ridelake sets (besides the format version): whole
        data-file bounds for the columns in :data:`WHOLE_BOUNDS`."""
        return {f"write.metadata.metrics.column.{c}": "full" for c in WHOLE_BOUNDS if c in self.column_names}

    def iceberg_schema(self) -> Any:
        """Build the pyiceberg ``Schema`` (field ids 1..N in column order)."""
        from pyiceberg import types as t  # heavy (pyiceberg): only where used
        from pyiceberg.schema import Schema  # heavy (pyiceberg): only where used

        kinds = {
            "string": t.StringType(),
            "int": t.IntegerType(),
            "long": t.LongType(),
            "double": t.DoubleType(),
            "boolean": t.BooleanType(),
            "date": t.DateType(),
            "time": t.TimeType(),
            "timestamptz": t.TimestamptzType(),
        }
        fields = [
            t.NestedField(i, c.name, kinds[c.type], required=c.required, doc=c.doc or None)
            for i, c in enumerate(self.columns, start=1)
        ]
        return Schema(*fields)

    def partition_spec(self) -> Any:
        """Build the pyiceberg ``PartitionSpec`` (identity transforms)."""
        from pyiceberg.partitioning import PartitionField, PartitionSpec  # heavy (pyiceberg): only where used
        from pyiceberg.transforms import IdentityTransform  # heavy (pyiceberg): only where used

        ids = {c.name: i for i, c in enumerate(self.columns, start=1)}
        fields = [
            PartitionField(source_id=ids[c], field_id=1000 + n, transform=IdentityTransform(), name=c)
            for n, c in enumerate(self.partition_by)
        ]
        return PartitionSpec(*fields)

    def arrow_schema(self) -> Any:
        """The pyarrow schema that written frames are cast to."""
        from pyiceberg.io.pyarrow import schema_to_pyarrow  # heavy (pyiceberg): only where used

        return schema_to_pyarrow(self.iceberg_schema(), include_field_ids=False)


# ----------------------------------------------------------------------------- invariants

def _count_is(label: str, expected: int, actual: int) -> str | None:
    return None if expected == actual else f"{label}: expected {expected}, found {actual}"


def _rows_equal_delivery(kind: str) -> Invariant:
    """Bronze reconciliation: the table holds exactly the rows the delivery implies."""

    def fn(frame: pd.DataFrame, refs: Refs) -> str | None:
        d = refs["delivery"]
        if kind == "all":
            expected = len(d)
        elif kind == "two_per_row":
            expected = 2 * len(d)
        elif kind == "payment":
            expected = int(d["payment_method"].notna().sum())
        else:
            expected = int(d["booking_status"].isin(kind.split("|")).sum())
        return _count_is("rows vs. accepted delivery rows", expected, len(frame))

    label = {
        "all": "rows = accepted delivery rows",
        "two_per_row": "rows = 2 x accepted delivery rows",
        "payment": "rows = accepted rows with a payment method",
    }.get(kind, f"rows = accepted rows with status {kind.replace('|', ' or ')}")
    return Invariant(label, _scoped(fn), ("delivery",))


def _scoped(fn: Any) -> Any:
    """Restrict a bronze reconciliation to the rows of the current delivery (``source_file``)."""

    def wrapped(frame: pd.DataFrame, refs: Refs) -> str | None:
        d = refs["delivery"]
        if len(d) and "source_file" in frame.columns:
            files = set(d["source_file"].unique())
            months = set(d["extraction_month"].unique())
            frame = frame[frame["source_file"].isin(files) & frame["extraction_month"].isin(months)]
        return fn(frame, refs)

    return wrapped


def _status_count(status_names: tuple[str, ...], scope: str = "") -> Invariant:
    """Silver fact reconciliation: rows equal silver.booking's rows of those statuses."""

    def fn(frame: pd.DataFrame, refs: Refs) -> str | None:
        booking, status = refs["silver.booking"], refs["silver.booking_status"]
        ids = status.loc[status["name"].isin(status_names), "booking_status_id"]
        expected = int(booking["booking_status_id"].isin(ids).sum())
        return _count_is(f"rows vs. silver.booking with status {' or '.join(status_names)}", expected, len(frame))

    return Invariant(
        f"rows = silver.booking rows with status {' or '.join(status_names)}",
        fn,
        ("silver.booking", "silver.booking_status"),
    )


def _cancelled_by_matches() -> Invariant:
    def fn(frame: pd.DataFrame, refs: Refs) -> str | None:
        booking, status = refs["silver.booking"], refs["silver.booking_status"]
        problems = []
        for who in CANCELLED_BY:
            sid = status.loc[status["name"] == f"Cancelled by {who.title()}", "booking_status_id"]
            expected = int(booking["booking_status_id"].isin(sid).sum())
            actual = int((frame["cancelled_by"] == who).sum())
            if expected != actual:
                problems.append(f"cancelled_by={who}: expected {expected}, found {actual}")
        return "; ".join(problems) or None

    return Invariant(
        "cancelled_by counts = silver.booking counts per cancelling status",
        fn,
        ("silver.booking", "silver.booking_status"),
    )


def _customer_total_matches_winners() -> Invariant:
    def fn(frame: pd.DataFrame, refs: Refs) -> str | None:
        return _count_is("sum(total_bookings) vs. winning bookings", int(refs["winners"]["bookings"].sum()),
                         int(frame["total_bookings"].sum()))

    return Invariant("sum(total_bookings) = count(winning bookings)", fn, ("winners",))


def _rows_equal_winners() -> Invariant:
    """silver.booking holds one row per winning booking of the months it writes (with
    silver.customer's sum(total_bookings) = count(winning bookings), count(silver.booking) =
    sum(silver.customer.total_bookings) once every month is written, month runs or not)."""

    def fn(frame: pd.DataFrame, refs: Refs) -> str | None:
        return _count_is("rows vs. winning bookings of the months written", int(refs["winners"]["bookings"].sum()),
                         len(frame))

    return Invariant("rows = winning bookings of the months written", fn, ("winners",))


def _unique_across_months(identifier: str, column: str) -> Invariant:
    """A month's write: no ``column`` value of the partition also sits in another month."""
    other_ref = OTHER_MONTHS.format(identifier)

    def fn(frame: pd.DataFrame, refs: Refs) -> str | None:
        other = refs[other_ref]
        if not len(other) or not len(frame):
            return None
        import pyarrow as pa  # where a check runs (the declarations stay light)
        import pyarrow.compute as pc  # where a check runs

        mine = pa.array(frame[column], from_pandas=True)
        seen = pc.is_in(mine, value_set=pa.array(other[column], from_pandas=True).cast(mine.type))
        twice = frame.loc[seen.to_numpy(zero_copy_only=False), column]  # Arrow: pandas' isin loops over strings
        return None if twice.empty else (f"{len(twice)} value(s) also in another month, e.g. "
                                         f"{twice.head(5).tolist()}: rebuild those months together or all")

    return Invariant(f"{column} unique across months", fn, (other_ref,))


def _row_count_equals(ref: str) -> Invariant:
    def fn(frame: pd.DataFrame, refs: Refs) -> str | None:
        return _count_is(f"rows vs. {ref}", len(refs[ref]), len(frame))

    return Invariant(f"one row per {ref} row", fn, (ref,))


def _rows(ref: Any) -> int:
    """A ref's rows: a frame's length, or the count itself (a table too big to pass whole)."""
    return len(ref) if hasattr(ref, "__len__") else int(ref)  # an int or a numpy integer


def _sum_equals_bookings(column: str) -> Invariant:
    def fn(frame: pd.DataFrame, refs: Refs) -> str | None:
        return _count_is(f"sum({column}) vs. count(silver.booking)", _rows(refs["silver.booking"]),
                         int(frame[column].sum()))

    return Invariant(f"sum({column}) = count(silver.booking)", fn, ("silver.booking",))


def _activity_is_sum() -> Invariant:
    def fn(frame: pd.DataFrame, refs: Refs) -> str | None:
        bad = frame[frame["total_activity"] != frame["pickups"] + frame["dropoffs"]]
        return None if bad.empty else f"{len(bad)} rows, e.g. location_id {bad['location_id'].head(5).tolist()}"

    return Invariant("total_activity = pickups + dropoffs", fn)


def _lifetime_consistent() -> Invariant:
    def fn(frame: pd.DataFrame, refs: Refs) -> str | None:
        import pandas as pd  # where a check runs (the declarations stay light)

        days = (pd.to_datetime(frame["last_booking_date"]) - pd.to_datetime(frame["first_booking_date"])).dt.days
        bad = frame[days.to_numpy() != frame["lifetime_days"].to_numpy()]
        return None if bad.empty else f"{len(bad)} rows, e.g. customer_id {bad['customer_id'].head(5).tolist()}"

    return Invariant("lifetime_days = last_booking_date - first_booking_date", fn)


# ----------------------------------------------------------------------------- columns

def _c(name: str, type_: str, required: bool = False, doc: str = "") -> Column:
    return Column(name, type_, required, doc)


_BRONZE_COMMON = (
    _c("booking_id", "string", True, "clean Booking ID (quotes stripped)"),
    _c("source_row", "long", True, "1-based position among the file's data rows"),
    _c("source_file", "string", True, "base name of the delivery file"),
    _c("extraction_date", "date", True, "the delivery's extraction date"),
    _c("extraction_month", "string", True, "YYYY-MM of the booking date; the partition key"),
)
_AUDIT = (
    _c("created_at", "timestamptz", True, "when the row first appeared; survives rebuilds"),
    _c("updated_at", "timestamptz", True, "when the row was last refreshed"),
)
_BRONZE_NOT_NULL = NotNull("booking_id", "source_row", "source_file", "extraction_date", "extraction_month")
_BRONZE_UNIQUE = Unique("source_file", "extraction_month", "source_row")
_BRONZE_KEY = ("source_file", "source_row")


def _bronze(name: str, cols: tuple[Column, ...], doc: str, checks: tuple[Check, ...], unique: Check | None = None) -> TableSpec:
    return TableSpec(
        f"bronze.{name}",
        _BRONZE_COMMON + cols,
        ("extraction_month",),
        _BRONZE_KEY,
        (_BRONZE_NOT_NULL, unique or _BRONZE_UNIQUE) + checks,
        doc,
    )


def _dimension(name: str, doc: str, extra: tuple[Check, ...] = ()) -> TableSpec:
    key = f"{name}_id"
    return TableSpec(
        f"silver.{name}",
        (_c(key, "int", True, "stable surrogate id"), _c("name", "string", True)) + _AUDIT,
        (),
        (key,),
        (Unique(key), Unique("name"), NotNull(key, "name", "created_at", "updated_at")) + extra,
        doc,
    )


_FACT_BOOKING_FK = Relationship("booking_id", "silver.booking", "booking_id")

_SPECS = [
    TableSpec(
        "bronze.rejected_row",
        (
            _c("source_file", "string", True),
            _c("source_row", "long", True),
            _c("extraction_date", "date", True),
            _c("extraction_month", "string", False, "YYYY-MM of the row's Date when it parses"),
            _c("booking_id", "string", False, "Booking ID when present"),
            _c("reason", "string", True, "why the row was rejected, field by field"),
            _c("raw_line", "string", True, "the row exactly as it stood in the file"),
        ),
        (),
        ("source_file", "source_row"),
        (
            NotNull("source_file", "source_row", "extraction_date", "reason", "raw_line"),
            Unique("source_file", "source_row"),
        ),
        "source rows refused by the prepare step, with the reason",
    ),
    _bronze("customer", (_c("customer_id", "string", True), _c("booking_date", "date", True)),
            "one row per accepted source row", (NotNull("customer_id", "booking_date"), _rows_equal_delivery("all"))),
    _bronze("vehicle_type", (_c("vehicle_type_name", "string", True),),
            "one row per accepted source row", (NotNull("vehicle_type_name"), _rows_equal_delivery("all"))),
    _bronze(
        "location",
        (_c("location_name", "string", True), _c("location_type", "string", True, "pickup or drop")),
        "two rows per accepted source row: its pickup and its drop",
        (NotNull("location_name", "location_type"), AcceptedValues("location_type", LOCATION_TYPES),
         _rows_equal_delivery("two_per_row")),
        Unique("source_file", "extraction_month", "source_row", "location_type"),
    ),
    _bronze("booking_status", (_c("booking_status_name", "string", True),),
            "one row per accepted source row",
            (NotNull("booking_status_name"), AcceptedValues("booking_status_name", STATUSES),
             _rows_equal_delivery("all"))),
    _bronze("payment_method", (_c("payment_method_name", "string", True),),
            "one row per accepted source row that has a payment method",
            (NotNull("payment_method_name"), _rows_equal_delivery("payment"))),
    _bronze(
        "booking",
        (
            _c("customer_id", "string", True),
            _c("vehicle_type", "string", True),
            _c("pickup_location", "string", True),
            _c("drop_location", "string", True),
            _c("booking_status", "string", True),
            _c("payment_method", "string"),
            _c("booking_value", "double"),
            _c("booking_date", "date", True),
            _c("booking_time", "time", True),
        ),
        "one row per accepted source row",
        (NotNull("customer_id", "vehicle_type", "pickup_location", "drop_location", "booking_status",
                 "booking_date", "booking_time"),
         AcceptedValues("booking_status", STATUSES), InRange("booking_value", 0), _rows_equal_delivery("all")),
    ),
    _bronze(
        "ride",
        (
            _c("ride_distance", "double"),
            _c("driver_rating", "double"),
            _c("customer_rating", "double"),
            _c("avg_vtat", "double"),
            _c("avg_ctat", "double"),
            _c("booking_value", "double"),
            _c("booking_date", "date", True),
        ),
        "one row per accepted source row with status Completed",
        (InRange("driver_rating", 1, 5), InRange("customer_rating", 1, 5), InRange("ride_distance", 0),
         _rows_equal_delivery("Completed")),
    ),
    _bronze(
        "cancelled_ride",
        (_c("cancelled_by", "string", True, "customer or driver"), _c("reason", "string"),
         _c("booking_date", "date", True)),
        "one row per accepted source row cancelled by the customer or the driver",
        (AcceptedValues("cancelled_by", CANCELLED_BY),
         _rows_equal_delivery("Cancelled by Customer|Cancelled by Driver")),
    ),
    _bronze(
        "incompleted_ride",
        (_c("reason", "string"), _c("booking_date", "date", True)),
        "one row per accepted source row with status Incomplete",
        (_rows_equal_delivery("Incomplete"),),
    ),
    _dimension("vehicle_type", "one row per distinct vehicle type"),
    _dimension("location", "one row per distinct pickup or drop location"),
    _dimension("booking_status", "one row per distinct booking status",
               (AcceptedValues("name", STATUSES),)),
    _dimension("payment_method", "one row per distinct payment method"),
    TableSpec(
        "silver.customer",
        (
            _c("customer_id", "string", True),
            _c("first_seen_date", "date", True),
            _c("last_seen_date", "date", True),
            _c("total_bookings", "long", True),
        ) + _AUDIT,
        (),
        ("customer_id",),
        (Unique("customer_id"), NotNull("customer_id", "first_seen_date", "last_seen_date", "total_bookings",
                                        "created_at", "updated_at"),
         InRange("total_bookings", 1), _customer_total_matches_winners()),
        "one row per customer over the winning bookings",
    ),
    TableSpec(
        "silver.booking",
        (
            _c("booking_id", "string", True),
            _c("customer_id", "string", True),
            _c("vehicle_type_id", "int", True),
            _c("pickup_location_id", "int", True),
            _c("drop_location_id", "int", True),
            _c("booking_status_id", "int", True),
            _c("payment_method_id", "int", False, "null when the booking has no payment method"),
            _c("booking_value", "double"),
            _c("booking_date", "date", True),
            _c("booking_time", "time", True),
            _c("extraction_month", "string", True),
        ) + _AUDIT,
        ("extraction_month",),
        ("booking_id",),
        (
            Unique("booking_id"),
            NotNull("booking_id", "customer_id", "vehicle_type_id", "pickup_location_id", "drop_location_id",
                    "booking_status_id", "booking_date", "booking_time", "extraction_month"),
            Relationship("customer_id", "silver.customer", "customer_id"),
            Relationship("vehicle_type_id", "silver.vehicle_type", "vehicle_type_id"),
            Relationship("pickup_location_id", "silver.location", "location_id"),
            Relationship("drop_location_id", "silver.location", "location_id"),
            Relationship("booking_status_id", "silver.booking_status", "booking_status_id"),
            Relationship("payment_method_id", "silver.payment_method", "payment_method_id"),
            InRange("booking_value", 0),
            _rows_equal_winners(),
            _unique_across_months("silver.booking", "booking_id"),
        ),
        "one row per winning booking",
    ),
    TableSpec(
        "silver.ride",
        (
            _c("booking_id", "string", True),
            _c("booking_date", "date", True),
            _c("ride_distance", "double"),
            _c("driver_rating", "double"),
            _c("customer_rating", "double"),
            _c("avg_vtat", "double"),
            _c("avg_ctat", "double"),
            _c("booking_value", "double"),
            _c("extraction_month", "string", True),
        ) + _AUDIT,
        ("extraction_month",),
        ("booking_id",),
        (Unique("booking_id"), NotNull("booking_id", "booking_date", "extraction_month"), _FACT_BOOKING_FK,
         InRange("driver_rating", 1, 5), InRange("customer_rating", 1, 5), _status_count(("Completed",)),
         _unique_across_months("silver.ride", "booking_id")),
        "one row per winning booking with status Completed",
    ),
    TableSpec(
        "silver.cancelled_ride",
        (
            _c("cancellation_id", "long", True, "stable surrogate id"),
            _c("booking_id", "string", True),
            _c("booking_date", "date", True),
            _c("cancelled_by", "string", True, "customer or driver"),
            _c("reason", "string"),
            _c("extraction_month", "string", True),
        ) + _AUDIT,
        ("extraction_month",),
        ("cancellation_id", "booking_id"),
        (Unique("cancellation_id"), Unique("booking_id"),
         NotNull("cancellation_id", "booking_id", "booking_date", "cancelled_by", "extraction_month"),
         AcceptedValues("cancelled_by", CANCELLED_BY), _FACT_BOOKING_FK,
         _status_count(("Cancelled by Customer", "Cancelled by Driver")), _cancelled_by_matches(),
         _unique_across_months("silver.cancelled_ride", "booking_id"),
         _unique_across_months("silver.cancelled_ride", "cancellation_id")),
        "one row per winning booking cancelled by the customer or the driver",
    ),
    TableSpec(
        "silver.incompleted_ride",
        (
            _c("incompleted_id", "long", True, "stable surrogate id"),
            _c("booking_id", "string", True),
            _c("booking_date", "date", True),
            _c("reason", "string"),
            _c("extraction_month", "string", True),
        ) + _AUDIT,
        ("extraction_month",),
        ("incompleted_id", "booking_id"),
        (Unique("incompleted_id"), Unique("booking_id"),
         NotNull("incompleted_id", "booking_id", "booking_date", "extraction_month"), _FACT_BOOKING_FK,
         _status_count(("Incomplete",)), _unique_across_months("silver.incompleted_ride", "booking_id"),
         _unique_across_months("silver.incompleted_ride", "incompleted_id")),
        "one row per winning booking with status Incomplete",
    ),
    TableSpec(
        "gold.daily_booking_summary",
        (
            _c("booking_date", "date", True),
            _c("vehicle_type_name", "string", True),
            _c("booking_status_name", "string", True),
            _c("total_bookings", "long", True),
            _c("total_revenue", "double", True, "sum of non-null booking_value; 0.0 when none"),
            _c("avg_booking_value", "double", False, "mean of non-null booking_value; null when none"),
        ) + _AUDIT,
        (),
        ("booking_date", "vehicle_type_name", "booking_status_name"),
        (Unique("booking_date", "vehicle_type_name", "booking_status_name"),
         NotNull("booking_date", "vehicle_type_name", "booking_status_name", "total_bookings", "total_revenue"),
         AcceptedValues("booking_status_name", STATUSES), InRange("total_bookings", 1),
         _sum_equals_bookings("total_bookings")),
        "bookings per day, vehicle type and status",
    ),
    TableSpec(
        "gold.customer_analytics",
        (
            _c("customer_id", "string", True),
            _c("total_bookings", "long", True),
            _c("total_spent", "double", True, "sum of non-null booking_value; 0.0 when none"),
            _c("avg_booking_value", "double", False, "mean of non-null booking_value; null when none"),
            _c("first_booking_date", "date", True),
            _c("last_booking_date", "date", True),
            _c("lifetime_days", "int", True, "last_booking_date - first_booking_date in days"),
        ) + _AUDIT,
        (),
        ("customer_id",),
        (Unique("customer_id"), NotNull("customer_id", "total_bookings", "total_spent", "first_booking_date",
                                        "last_booking_date", "lifetime_days"),
         Relationship("customer_id", "silver.customer", "customer_id"), _row_count_equals("silver.customer"),
         InRange("lifetime_days", 0), _lifetime_consistent(), _sum_equals_bookings("total_bookings")),
        "one row per silver customer",
    ),
    TableSpec(
        "gold.location_analytics",
        (
            _c("location_id", "int", True),
            _c("location_name", "string", True),
            _c("pickups", "long", True),
            _c("dropoffs", "long", True),
            _c("total_activity", "long", True),
            _c("avg_booking_value", "double", False, "over bookings starting or ending here, each once"),
        ) + _AUDIT,
        (),
        ("location_id",),
        (Unique("location_id"), NotNull("location_id", "location_name", "pickups", "dropoffs", "total_activity"),
         Relationship("location_id", "silver.location", "location_id"), _row_count_equals("silver.location"),
         _activity_is_sum(), _sum_equals_bookings("pickups"), _sum_equals_bookings("dropoffs")),
        "one row per silver location",
    ),
]

TABLES: dict[str, TableSpec] = {s.identifier: s for s in _SPECS}


def table_spec(identifier: str) -> TableSpec:
    """Look up a table's spec.

    Args:
        identifier: ``<namespace>.<table>``.

    Returns:
        The :class:`TableSpec`.
    """
    try:
        return TABLES[identifier]
    except KeyError:
        raise CatalogError(f"unknown table {identifier!r}; known: {', '.join(TABLES)}") from None
