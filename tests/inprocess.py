"""Run the project's notebooks' code in this process, one notebook at a time, with chosen parameters.

What a kernel would run (papermill's parameter injection, the runner's environment, the
declared reads and writes), without kernels, so tests can run the pipeline in many shapes
(whole file, month by month, tiny batches) quickly and compare the tables.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from ridelake.bench.floor import code_of
from ridelake.core.dag import load_pipeline
from ridelake.core.protocol import ENV
from ridelake.tables import catalog
from ridelake.tables.schemas import TABLES

ROOT = Path(__file__).resolve().parents[1]
AUDIT = ("created_at", "updated_at")


def run_notebook(name: str, params: Mapping[str, Any], root: Path = ROOT) -> dict[str, Any]:
    """Execute ``notebooks/<name>.ipynb``'s code cells with ``params`` (and ``write=True``).

    Returns:
        The notebook's namespace after its last cell.
    """
    import matplotlib
    from papermill.iorw import load_notebook_node

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = load_pipeline(root).notebooks[name]
    saved, cwd = dict(os.environ), os.getcwd()
    os.environ.update({ENV.RUN_ID: "inprocess", ENV.NOTEBOOK: name, ENV.KEY: name, ENV.HOME: str(root),
                       ENV.PARAMS_HASH: "-", ENV.ATTEMPT: "1", ENV.READS: ",".join(spec.reads),
                       ENV.WRITES: ",".join(spec.writes)})
    os.environ.pop(ENV.RECEIPT_FILE, None)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    try:
        os.chdir(spec.path.parent)
        for source in code_of(load_notebook_node(str(spec.path)), {**params, "write": True}):
            exec(compile(source, f"{name}.ipynb", "exec"), namespace)  # noqa: S102 - the notebook's own code
            plt.close("all")
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)
    return namespace


BRONZE = ["bronze/customer", "bronze/vehicle_type", "bronze/location", "bronze/booking_status",
          "bronze/payment_method", "bronze/booking", "bronze/ride", "bronze/cancelled_ride", "bronze/incompleted_ride"]
DIMENSIONS = ["silver/vehicle_type", "silver/location", "silver/booking_status", "silver/payment_method",
              "silver/customer"]
FACTS = ["silver/booking", "silver/ride", "silver/cancelled_ride", "silver/incompleted_ride"]
GOLD = ["gold/daily_booking_summary", "gold/customer_analytics", "gold/location_analytics"]


def load(source_file: Path, extraction_date: str, months: Sequence[str | None] = (None,),
         prepare_per_month: bool = True) -> None:
    """One delivery through bronze and silver and gold: the bronze notebooks and the facts once per
    month of ``months`` (None: the whole file), in ascending order; dimensions and gold whole."""
    delivery = {"source_file": str(source_file), "extraction_date": extraction_date}
    if not prepare_per_month:
        run_notebook("bronze/prepare", {**delivery, "extraction_month": None})
    for month in months:
        if prepare_per_month:
            run_notebook("bronze/prepare", {**delivery, "extraction_month": month})
        for name in BRONZE:
            run_notebook(name, {**delivery, "extraction_month": month})
    for name in DIMENSIONS:
        run_notebook(name, {})
    for name in FACTS:
        for month in months:
            run_notebook(name, {"extraction_month": month})
    for name in GOLD:
        run_notebook(name, {"target_date": None})


def tables() -> dict[str, pd.DataFrame]:
    """Every table without its audit columns, sorted by all columns, as comparable frames."""
    out = {}
    for name in TABLES:
        frame = catalog.read_table(name)
        frame = frame[[c for c in frame.columns if c not in AUDIT]]
        frame = frame.astype({c: "str" for c in frame.columns if frame[c].dtype == object})
        out[name] = frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)
    return out
