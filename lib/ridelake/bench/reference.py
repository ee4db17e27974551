"""The DuckDB reference: every bronze, silver and gold table computed from the CSV into Parquet.

It follows the data contract (/work/shared/CONTRACT.md, §2-§5) in SQL, to show how long the data
work itself takes when nothing else is paid for: no kernels, no Iceberg commits, no checks, no
pictures. It is a yardstick for ``make bench``, not a second implementation the project uses.
Differences from the pipeline that the yardstick accepts: a row with the wrong number of fields
is padded, not rejected; ``raw_line`` is the fields joined again; ``created_at`` and
``updated_at`` are the time of this run (every id is a first assignment).

Usage: ``python -m ridelake.bench.reference CSV OUT_DIR [--extraction-date YYYY-MM-DD]``; prints
the rows of each table as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

__all__ = ["TABLES", "run", "main"]

_NUM = {  # column in the file -> (snake_case name, must be >= 0, rating 1..5)
    "Avg VTAT": ("avg_vtat", True, False),
    "Avg CTAT": ("avg_ctat", True, False),
    "Booking Value": ("booking_value", True, False),
    "Ride Distance": ("ride_distance", True, False),
    "Driver Ratings": ("driver_rating", False, True),
    "Customer Rating": ("customer_rating", False, True),
}
_REQUIRED = {"Date": "date_txt", "Time": "time_txt", "Booking ID": "booking_id", "Booking Status": "booking_status",
             "Customer ID": "customer_id", "Vehicle Type": "vehicle_type", "Pickup Location": "pickup_location",
             "Drop Location": "drop_location"}
_COMMON = "booking_id, source_row, source_file, extraction_date, extraction_month"


def _typed_sql(csv: str, source_file: str, extraction_date: str) -> str:
    nums = ",\n  ".join(f'clean("{c}") AS {n}_txt, TRY_CAST(clean("{c}") AS DOUBLE) AS {n}' for c, (n, _, _) in _NUM.items())
    missing = "\n    ".join(f"WHEN {n} IS NULL THEN '{c}: missing'" for c, n in _REQUIRED.items())
    bad_num = "\n    ".join(f"WHEN {n}_txt IS NOT NULL AND {n} IS NULL THEN '{c}: not a number: ''' || {n}_txt || ''''"
                           for c, (n, _, _) in _NUM.items())
    negative = "\n    ".join(f"WHEN {n} < 0 THEN '{c}: negative: ' || {n}_txt" for c, (n, neg, _) in _NUM.items() if neg)
    rating = "\n    ".join(f"WHEN {n} NOT BETWEEN 1 AND 5 THEN '{c}: outside 1..5: ' || {n}_txt"
                           for c, (n, _, r) in _NUM.items() if r)
    fields = ", ".join(f'"{c}"' for c in ("Date", "Time", "Booking ID", "Booking Status", "Customer ID"))
    return f"""
CREATE MACRO clean(x) AS NULLIF(NULLIF(trim(x, ' "'), 'null'), '');
CREATE TEMP TABLE raw AS
SELECT row_number() OVER () AS source_row, *
FROM read_csv('{csv}', header = true, all_varchar = true, null_padding = true);
CREATE TEMP TABLE typed AS
SELECT source_row, '{source_file}' AS source_file, DATE '{extraction_date}' AS extraction_date,
  concat_ws(',', {fields}) AS raw_line,
  clean("Date") AS date_txt, TRY_CAST(clean("Date") AS DATE) AS booking_date,
  clean("Time") AS time_txt, TRY_CAST(clean("Time") AS TIME) AS booking_time,
  clean("Booking ID") AS booking_id, clean("Booking Status") AS booking_status,
  clean("Customer ID") AS customer_id, clean("Vehicle Type") AS vehicle_type,
  clean("Pickup Location") AS pickup_location, clean("Drop Location") AS drop_location,
  clean("Reason for cancelling by Customer") AS customer_reason,
  clean("Driver Cancellation Reason") AS driver_reason,
  clean("Incomplete Rides Reason") AS incomplete_reason,
  clean("Payment Method") AS payment_method,
  {nums}
FROM raw;
CREATE TEMP TABLE checked AS
SELECT *, strftime(booking_date, '%Y-%m') AS extraction_month,
  CASE
    {missing}
    WHEN booking_date IS NULL THEN 'Date: not a date: ''' || date_txt || ''''
    WHEN booking_time IS NULL THEN 'Time: not a time: ''' || time_txt || ''''
    {bad_num}
    {rating}
    {negative}
  END AS reason
FROM typed;
CREATE TEMP TABLE accepted AS SELECT * FROM checked WHERE reason IS NULL;
CREATE TEMP TABLE win AS SELECT * FROM accepted
QUALIFY row_number() OVER (PARTITION BY booking_id ORDER BY extraction_date DESC, source_file DESC, source_row DESC) = 1;
"""


def _dimension(name: str, values: str) -> str:
    return (f"SELECT CAST(row_number() OVER (ORDER BY name) AS BIGINT) AS {name}_id, name, now() AS created_at, "
            f"now() AS updated_at FROM (SELECT DISTINCT name FROM ({values}) WHERE name IS NOT NULL)")


#: Table -> the query that computes it (in dependency order; silver and gold read earlier ones).
TABLES: dict[str, str] = {
    "bronze.rejected_row": "SELECT source_file, source_row, extraction_date, extraction_month, booking_id, reason, "
                           "raw_line FROM checked WHERE reason IS NOT NULL",
    "bronze.customer": f"SELECT {_COMMON}, customer_id, booking_date FROM accepted",
    "bronze.vehicle_type": f"SELECT {_COMMON}, vehicle_type AS vehicle_type_name FROM accepted",
    "bronze.location": f"SELECT {_COMMON}, pickup_location AS location_name, 'pickup' AS location_type FROM accepted "
                       f"UNION ALL SELECT {_COMMON}, drop_location, 'drop' FROM accepted",
    "bronze.booking_status": f"SELECT {_COMMON}, booking_status AS booking_status_name FROM accepted",
    "bronze.payment_method": f"SELECT {_COMMON}, payment_method AS payment_method_name FROM accepted "
                             "WHERE payment_method IS NOT NULL",
    "bronze.booking": f"SELECT {_COMMON}, customer_id, vehicle_type, pickup_location, drop_location, booking_status, "
                      "payment_method, booking_value, booking_date, booking_time FROM accepted",
    "bronze.ride": f"SELECT {_COMMON}, ride_distance, driver_rating, customer_rating, avg_vtat, avg_ctat, "
                   "booking_value, booking_date FROM accepted WHERE booking_status = 'Completed'",
    "bronze.cancelled_ride": f"SELECT {_COMMON}, CASE booking_status WHEN 'Cancelled by Customer' THEN 'customer' "
                             "ELSE 'driver' END AS cancelled_by, coalesce(customer_reason, driver_reason) AS reason, "
                             "booking_date FROM accepted WHERE booking_status IN ('Cancelled by Customer', "
                             "'Cancelled by Driver')",
    "bronze.incompleted_ride": f"SELECT {_COMMON}, incomplete_reason AS reason, booking_date FROM accepted "
                               "WHERE booking_status = 'Incomplete'",
    "silver.vehicle_type": _dimension("vehicle_type", "SELECT vehicle_type AS name FROM accepted"),
    "silver.location": _dimension("location", "SELECT pickup_location AS name FROM accepted "
                                              "UNION ALL SELECT drop_location FROM accepted"),
    "silver.booking_status": _dimension("booking_status", "SELECT booking_status AS name FROM accepted"),
    "silver.payment_method": _dimension("payment_method", "SELECT payment_method AS name FROM accepted"),
    "silver.customer": "SELECT customer_id, min(booking_date) AS first_seen_date, max(booking_date) AS last_seen_date, "
                       "count(*) AS total_bookings, now() AS created_at, now() AS updated_at FROM win "
                       "GROUP BY customer_id",
    "silver.booking": "SELECT w.booking_id, w.customer_id, vt.vehicle_type_id, p.location_id AS pickup_location_id, "
                      "d.location_id AS drop_location_id, bs.booking_status_id, pm.payment_method_id, w.booking_value, "
                      "w.booking_date, w.booking_time, w.extraction_month, now() AS created_at, now() AS updated_at "
                      'FROM win w JOIN "silver.vehicle_type" vt ON vt.name = w.vehicle_type '
                      'JOIN "silver.location" p ON p.name = w.pickup_location '
                      'JOIN "silver.location" d ON d.name = w.drop_location '
                      'JOIN "silver.booking_status" bs ON bs.name = w.booking_status '
                      'LEFT JOIN "silver.payment_method" pm ON pm.name = w.payment_method',
    "silver.ride": "SELECT booking_id, booking_date, ride_distance, driver_rating, customer_rating, avg_vtat, avg_ctat, "
                   "booking_value, extraction_month, now() AS created_at, now() AS updated_at FROM win "
                   "WHERE booking_status = 'Completed'",
    "silver.cancelled_ride": "SELECT CAST(row_number() OVER (ORDER BY booking_id) AS BIGINT) AS cancellation_id, "
                             "booking_id, booking_date, CASE booking_status WHEN 'Cancelled by Customer' THEN "
                             "'customer' ELSE 'driver' END AS cancelled_by, coalesce(customer_reason, driver_reason) "
                             "AS reason, extraction_month, now() AS created_at, now() AS updated_at FROM win "
                             "WHERE booking_status IN ('Cancelled by Customer', 'Cancelled by Driver')",
    "silver.incompleted_ride": "SELECT CAST(row_number() OVER (ORDER BY booking_id) AS BIGINT) AS incompleted_id, "
                               "booking_id, booking_date, incomplete_reason AS reason, extraction_month, "
                               "now() AS created_at, now() AS updated_at FROM win WHERE booking_status = 'Incomplete'",
    "gold.daily_booking_summary": "SELECT b.booking_date, vt.name AS vehicle_type_name, bs.name AS booking_status_name, "
                                  "count(*) AS total_bookings, coalesce(sum(b.booking_value), 0.0) AS total_revenue, "
                                  "avg(b.booking_value) AS avg_booking_value, now() AS created_at, now() AS updated_at "
                                  'FROM "silver.booking" b JOIN "silver.vehicle_type" vt USING (vehicle_type_id) '
                                  'JOIN "silver.booking_status" bs USING (booking_status_id) GROUP BY ALL',
    "gold.customer_analytics": "SELECT c.customer_id, count(b.booking_id) AS total_bookings, "
                               "coalesce(sum(b.booking_value), 0.0) AS total_spent, avg(b.booking_value) AS "
                               "avg_booking_value, min(b.booking_date) AS first_booking_date, max(b.booking_date) AS "
                               "last_booking_date, datediff('day', min(b.booking_date), max(b.booking_date)) AS "
                               "lifetime_days, now() AS created_at, now() AS updated_at "
                               'FROM "silver.customer" c LEFT JOIN "silver.booking" b USING (customer_id) '
                               "GROUP BY c.customer_id",
    "gold.location_analytics": "WITH touch AS (SELECT pickup_location_id AS location_id, 1 AS pickup, 0 AS dropoff, "
                               'booking_id, booking_value FROM "silver.booking" UNION ALL SELECT drop_location_id, 0, 1, '
                               'booking_id, booking_value FROM "silver.booking") '
                               "SELECT l.location_id, l.name AS location_name, coalesce(sum(t.pickup), 0) AS pickups, "
                               "coalesce(sum(t.dropoff), 0) AS dropoffs, coalesce(sum(t.pickup + t.dropoff), 0) AS "
                               "total_activity, avg(t.booking_value) AS avg_booking_value, now() AS created_at, "
                               'now() AS updated_at FROM "silver.location" l LEFT JOIN touch t USING (location_id) '
                               "GROUP BY l.location_id, l.name",
}


def run(csv: Path, out: Path, extraction_date: str = "2024-12-31", threads: int | None = None) -> dict[str, int]:
    """Compute every table into ``out/<layer>/<table>.parquet``.

    Args:
        csv: the delivery file.
        out: the output folder (created).
        extraction_date: the delivery's extraction date.
        threads: DuckDB threads (default DuckDB's: all cores).

    Returns:
        Table -> rows written.
    """
    import duckdb  # the bench's reference only: not needed by the pipeline

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads TO {int(threads)}")
    con.execute(_typed_sql(str(csv).replace("'", "''"), Path(csv).name.replace("'", "''"), extraction_date))
    rows = {}
    for table, query in TABLES.items():
        con.execute(f'CREATE TEMP TABLE "{table}" AS {query}')
        layer, name = table.split(".")
        (out / layer).mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY \"{table}\" TO '{(out / layer / f'{name}.parquet').as_posix()}' (FORMAT parquet)")
        rows[table] = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    con.close()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Command line (see the module doc)."""
    parser = argparse.ArgumentParser(prog="python -m ridelake.bench.reference", description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--extraction-date", default="2024-12-31")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.csv, args.out, args.extraction_date, args.threads)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
