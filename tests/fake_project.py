"""A small fake ridelake project (pipeline.yaml, notebooks, params, data) for runner tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ridelake.tables.adapter import RideBookings

PIPELINE = """
handoffs: [staging.delivery]
notebooks:
  bronze/prepare: {reads: [], writes: [bronze.rejected_row, staging.delivery]}
  bronze/booking: {reads: [staging.delivery], writes: [bronze.booking]}
  bronze/customer: {reads: [staging.delivery], writes: [bronze.customer]}
  silver/customer: {reads: [bronze.customer, bronze.booking], writes: [silver.customer]}
  silver/booking: {reads: [bronze.booking, silver.customer], writes: [silver.booking]}
  silver/ride: {reads: [silver.booking], writes: [silver.ride]}
  gold/customer_analytics: {reads: [silver.customer, silver.booking], writes: [gold.customer_analytics]}
"""
BRONZE_PARAMS = "source_file = 'data/x.csv'\nextraction_date = None\nextraction_month = None\n"
#: Notebook name -> its parameters cell (None: no parameters cell).
PARAMS = {
    "bronze/prepare": BRONZE_PARAMS,
    "bronze/booking": BRONZE_PARAMS,
    "bronze/customer": BRONZE_PARAMS,
    "silver/customer": None,
    "silver/booking": "extraction_month = None\n",
    "silver/ride": "extraction_month = None\n",
    "gold/customer_analytics": "target_date = None\n",
}


def write_notebook(path: Path, params: str | None, body: str = "x = 1\n", markdown: str | None = None,
                   kernel: str = "ridelake") -> None:
    """Write a notebook: an optional markdown cell, an optional `parameters` cell, one code cell."""
    cells = []
    if markdown is not None:
        cells.append({"id": "md", "cell_type": "markdown", "metadata": {}, "source": markdown})
    if params is not None:
        cells.append({"id": "params", "cell_type": "code", "metadata": {"tags": ["parameters"]},
                      "execution_count": None, "outputs": [], "source": params})
    cells.append({"id": "body", "cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                  "source": body})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "cells": cells,
        "metadata": {"kernelspec": {"name": kernel, "display_name": "Python (ridelake)", "language": "python"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }))


def make_project(root: Path, extraction_date: str = "null", markdown: str | None = None) -> Path:
    """Create the fake project under ``root`` and return it."""
    (root / "notebooks").mkdir(parents=True)
    (root / "notebooks" / "pipeline.yaml").write_text(PIPELINE)
    for name, params in PARAMS.items():
        write_notebook(root / "notebooks" / f"{name}.ipynb", params, markdown=markdown)
    (root / "params").mkdir()
    (root / "params" / "default.yaml").write_text(
        f"source_file: data/x.csv\nextraction_date: {extraction_date}\nextraction_month: null\ntarget_date: null\n")
    (root / "data").mkdir()
    (root / "data" / "x.csv").write_text("Date,Time\n")
    return root


@dataclass
class FakeProject(RideBookings):
    """The ride-bookings adapter on a fake project: no catalog is bootstrapped unless asked."""

    create_catalog: bool = False

    def bootstrap(self) -> None:
        if self.create_catalog:
            super().bootstrap()


def fake(root: Path, snapshots=None, create_catalog: bool = False) -> FakeProject:
    """The adapter the runner tests pass to ``execute`` (``snapshots``: a fake snapshot source)."""
    return FakeProject(root=Path(root), snapshot_source=snapshots, create_catalog=create_catalog)
