"""The ride-bookings adapter's fast paths: table versions and bootstrap read a SQLite catalog
without pyiceberg, and agree with pyiceberg."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ridelake.tables import catalog
from ridelake.tables.adapter import CatalogSnapshots, RideBookings
from ridelake.tables.schemas import TABLES, table_spec

ROOT = Path(__file__).resolve().parents[1]


def _fresh_process(code: str, warehouse: Path) -> dict:
    env_code = (f"import os, sys, json; os.environ['RIDELAKE_WAREHOUSE'] = {str(warehouse)!r}\n"
                "os.environ.pop('RIDELAKE_CATALOG_URI', None)\n" + code +
                "\nprint(json.dumps({'out': out, 'pyiceberg': 'pyiceberg' in sys.modules}))")
    proc = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_versions_and_bootstrap_without_pyiceberg(warehouse: Path) -> None:
    catalog.bootstrap()
    empty = table_spec("silver.customer").arrow_schema().empty_table().to_pandas()
    snap = catalog.write_table("silver.customer", empty, replace_all=True).snapshot_id
    got = _fresh_process(
        "from ridelake.tables.adapter import CatalogSnapshots, RideBookings\n"
        f"RideBookings(root=__import__('pathlib').Path({str(ROOT)!r})).bootstrap()\n"
        f"out = CatalogSnapshots({str(warehouse)!r}).current(['silver.customer', 'gold.customer_analytics'])",
        warehouse)
    assert got["out"] == {"silver.customer": snap, "gold.customer_analytics": None}
    assert got["pyiceberg"] is False  # a ready catalog needs no pyiceberg for either
    # the same ids as pyiceberg reads them
    assert CatalogSnapshots(str(warehouse)).current(TABLES) == {t: catalog.snapshot_id(t) for t in TABLES}


def test_bootstrap_falls_back_to_pyiceberg_when_something_is_missing(warehouse: Path) -> None:
    catalog.bootstrap(["silver.customer"])
    RideBookings(root=ROOT).bootstrap()  # creates the rest
    assert all(catalog.get_catalog().table_exists(t) for t in TABLES)
    # a table whose columns differ from its spec is not "ready": the full bootstrap refuses it
    cat = catalog.get_catalog()
    cat.drop_table("gold.customer_analytics")
    other = table_spec("silver.customer")
    cat.create_table("gold.customer_analytics", schema=other.iceberg_schema())
    with pytest.raises(Exception, match="exists with columns"):
        RideBookings(root=ROOT).bootstrap()
