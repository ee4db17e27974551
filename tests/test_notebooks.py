"""The notebooks under nbval, on a small generated sample, in pipeline order.

Each notebook is executed as a user would open it: its `parameters` cell defaults, the project
root and the warehouse taken from RIDELAKE_HOME / RIDELAKE_WAREHOUSE (a temporary copy here).
nbval's lax mode fails a notebook on any cell error, so a failed table check fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ridelake.tables.generate import write_csv

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _ordered_notebooks(project: Path) -> list[str]:
    names = list(yaml.safe_load((project / "notebooks" / "pipeline.yaml").read_text())["notebooks"])
    return [str(project / "notebooks" / f"{name}.ipynb") for name in names]


def test_every_notebook_runs_under_nbval(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT / "notebooks", project / "notebooks")
    shutil.copytree(ROOT / "params", project / "params")
    write_csv(project / "data" / "ncr_ride_bookings.csv", rows=500, seed=7, bad_rows=5)
    env = {**os.environ, "RIDELAKE_HOME": str(project), "RIDELAKE_WAREHOUSE": str(tmp_path / "warehouse"),
           "MPLBACKEND": "Agg"}
    for var in ("RIDELAKE_CATALOG_URI", "RIDELAKE_RUN_ID", "RIDELAKE_NOTEBOOK", "RIDELAKE_RECEIPT_FILE"):
        env.pop(var, None)
    notebooks = _ordered_notebooks(project)
    assert len(notebooks) == 22  # prepare, 9 bronze, 5 dimensions, 4 facts, 3 gold
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
         "--nbval-cell-timeout=300", "-o", "addopts=", "--rootdir", str(project), *notebooks],
        cwd=project, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " failed" not in proc.stdout.splitlines()[-1]
