"""The warm-kernel engine: isolation between notebooks, dead and hung kernels, the same document
as papermill's fresh kernels, and the same tables from the whole pipeline in both modes.

Each test runs real kernels on small synthetic notebooks (the pipeline test on a generated
sample), so they are ``slow``. No timing is asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from fake_project import write_notebook
from ridelake.core.engine import PapermillEngine, Task, ThreadExecutor, WarmEngine, notebook_imports
from ridelake.core.scheduler import SUCCEEDED, Node, Scheduler

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

#: What the first notebook leaves behind, one of each kind of state.
DIRTY = """
import os, sys, json as leaky_alias
import matplotlib
matplotlib.use("agg")
import matplotlib.pyplot as plt
import pandas as pd
leaky_variable = 42
fig = plt.figure()
plt.rcParams["lines.linewidth"] = 7.5
pd.set_option("display.max_rows", 3)
os.environ["LEAKY_ENV"] = "1"
os.environ["HOME"] = "/nowhere"
os.chdir("/")
sys.path.append("/leaky/path")
print(leaky_alias.dumps({"argv": sys.argv}))
"""

#: What the next notebook reports about the kernel it finds.
LOOK = """
import json, os, sys
import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
print(json.dumps({
    "names": sorted(k for k in ("leaky_variable", "leaky_alias", "fig") if k in globals()),
    "figures": plt.get_fignums(),
    "linewidth": matplotlib.rcParams["lines.linewidth"],
    "backend": matplotlib.get_backend(),
    "max_rows": pd.get_option("display.max_rows"),
    "leaky_env": os.environ.get("LEAKY_ENV"),
    "home": os.environ.get("HOME"),
    "run_id": os.environ.get("RIDELAKE_RUN_ID"),
    "cwd": os.getcwd(),
    "leaky_path": "/leaky/path" in sys.path,
    "argv": sys.argv,
}))
"""


def _task(folder: Path, name: str, i: int = 0, env: dict | None = None, params: dict | None = None,
          attempt: int = 1) -> Task:
    out = folder / "out"
    return Task(key=name, name=name, input_path=folder / f"{name}.ipynb", output_path=out / f"{name}.{i}.ipynb",
                parameters=params or {}, attempt=attempt, env=env or {}, cwd=folder,
                receipt_path=out / f"{name}.{i}.jsonl", log_path=out / f"{name}.{i}.log")


def _read(path: Path) -> dict:
    """An executed notebook, multi-line strings joined (nbformat stores them as lists of lines)."""
    return json.loads(json.dumps(nbformat.read(path, as_version=4)))


def _printed(path: Path) -> dict:
    nb = _read(path)
    text = "".join(o.get("text", "") for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c["outputs"] if o.get("output_type") == "stream")
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture
def engine():
    eng = WarmEngine(1)
    yield eng
    eng.close()


def test_nothing_one_notebook_changes_is_visible_in_the_next(tmp_path: Path, engine: WarmEngine) -> None:
    write_notebook(tmp_path / "look.ipynb", None, body=LOOK)
    write_notebook(tmp_path / "dirty.ipynb", None, body=DIRTY)
    first = engine.execute(_task(tmp_path, "look", 0))
    assert first.ok, first.error
    fresh = _printed(tmp_path / "out" / "look.0.ipynb")
    dirty = engine.execute(_task(tmp_path, "dirty", 1, env={"RIDELAKE_RUN_ID": "run-a"}))
    assert dirty.ok, dirty.error
    after = engine.execute(_task(tmp_path, "look", 2))
    assert after.ok, after.error
    seen = _printed(tmp_path / "out" / "look.2.ipynb")
    assert engine.kernels_started() == 1  # the same kernel, reset (not replaced)
    assert seen == fresh
    assert seen["names"] == [] and seen["figures"] == [] and seen["leaky_env"] is None
    assert seen["linewidth"] != 7.5 and seen["max_rows"] != 3 and "inline" in seen["backend"]
    assert seen["home"] != "/nowhere" and seen["run_id"] is None and not seen["leaky_path"]
    assert seen["cwd"] == str(tmp_path)  # the task's working directory, not the "/" of the last one


def test_task_environment_and_counts_start_fresh(tmp_path: Path, engine: WarmEngine) -> None:
    write_notebook(tmp_path / "env.ipynb", "x = 1\n", body="import os\nprint(os.environ.get('RIDELAKE_RUN_ID'), x)")
    for i, run in enumerate(["r1", "r2"]):
        outcome = engine.execute(_task(tmp_path, "env", i, env={"RIDELAKE_RUN_ID": run}, params={"x": i + 5}))
        assert outcome.ok, outcome.error
        nb = _read(tmp_path / "out" / f"env.{i}.ipynb")
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert [c["execution_count"] for c in code] == [1, 2, 3]  # counts restart in every notebook
        assert code[-1]["outputs"][0]["text"] == f"{run} {i + 5}\n"
        assert nb["metadata"]["papermill"]["parameters"] == {"x": i + 5}


def test_a_kernel_that_changes_sys_argv_is_replaced(tmp_path: Path, engine: WarmEngine) -> None:
    write_notebook(tmp_path / "argv.ipynb", None, body="import sys\nsys.argv.append('--leak')")
    write_notebook(tmp_path / "look.ipynb", None, body=LOOK)
    assert engine.execute(_task(tmp_path, "argv", 0)).ok
    assert engine.execute(_task(tmp_path, "look", 1)).ok
    assert "--leak" not in _printed(tmp_path / "out" / "look.1.ipynb")["argv"]
    assert engine.kernels_started() == 2  # failed its clean-state check: a new kernel
    assert "not clean" in (tmp_path / "out" / "argv.0.log").read_text()


def test_a_killed_kernel_is_replaced_and_the_notebook_retried(tmp_path: Path) -> None:
    marker = tmp_path / "killed-once"
    body = (f"import os, signal, pathlib\nm = pathlib.Path({str(marker)!r})\n"
            "if not m.exists():\n    m.touch()\n    os.kill(os.getpid(), signal.SIGKILL)\nprint('second try')")
    write_notebook(tmp_path / "die.ipynb", None, body=body)
    engine = WarmEngine(1)
    pool = ThreadExecutor(engine, 1)
    try:
        sched = Scheduler([Node("die")], pool, lambda key, attempt: _task(tmp_path, key, attempt, attempt=attempt),
                          retries=1, retry_delay=0)
        states = sched.run()
    finally:
        pool.close()
    state = states["die"]
    assert state.status == SUCCEEDED and len(state.attempts) == 2
    first = state.attempts[0]
    assert not first.ok and "DeadKernelError" in (first.error or "")
    assert engine.kernels_started() == 2
    assert "second try" in (tmp_path / "out" / "die.2.ipynb").read_text()


def test_a_hung_cell_times_out_and_its_kernel_is_replaced(tmp_path: Path) -> None:
    write_notebook(tmp_path / "hang.ipynb", None, body="import time\ntime.sleep(600)")
    write_notebook(tmp_path / "quick.ipynb", None, body="print('ok')")
    engine = WarmEngine(1, execution_timeout=3)
    try:
        hung = engine.execute(_task(tmp_path, "hang", 0))
        pid_gone = engine._kernels[0].pid is None
        quick = engine.execute(_task(tmp_path, "quick", 1))
    finally:
        engine.close()
    assert not hung.ok and hung.retryable and "Timeout" in (hung.error or "")
    assert pid_gone and quick.ok and engine.kernels_started() == 2


def _comparable(path: Path) -> dict:
    """An executed notebook without what differs from run to run (times, kernel ids, paths)."""
    nb = _read(path)
    pm = dict(nb["metadata"]["papermill"])
    for key in ("start_time", "end_time", "duration", "input_path", "output_path"):
        pm.pop(key, None)
    cells = []
    for c in nb["cells"]:
        meta = {k: v for k, v in c.get("metadata", {}).items() if k not in ("papermill", "execution")}
        status = c.get("metadata", {}).get("papermill", {}).get("status")
        outputs = [{k: v for k, v in o.items() if k != "metadata"} for o in c.get("outputs", [])]
        cells.append({"type": c["cell_type"], "source": c["source"], "meta": meta, "status": status,
                      "count": c.get("execution_count"), "outputs": outputs})
    return {"papermill": pm, "cells": cells, "kernelspec": nb["metadata"].get("kernelspec"),
            "language": nb["metadata"].get("language_info", {}).get("name"),
            "ridelake": {k: v for k, v in nb["metadata"].get("ridelake", {}).items()}}


@pytest.mark.parametrize("fails", [False, True])
def test_both_modes_write_the_same_document(tmp_path: Path, fails: bool) -> None:
    body = ("import pandas as pd\nfrom IPython.display import display\nprint('rows', rows)\n"
            "display(pd.DataFrame({'a': [1, 2]}))\nrows * 2")
    if fails:
        body += "\nraise ValueError('boom')"
    write_notebook(tmp_path / "doc.ipynb", "rows = 10\n", body=body, markdown="# doc")
    params = {"rows": 3}
    warm = WarmEngine(1)
    try:
        a = warm.execute(_task(tmp_path, "doc", 0, params=params))
    finally:
        warm.close()
    b = PapermillEngine().execute(_task(tmp_path, "doc", 1, params=params))
    assert (a.ok, a.error, a.error_cell, a.retryable) == (b.ok, b.error, b.error_cell, b.retryable)
    assert a.ok is not fails
    one, two = _comparable(tmp_path / "out" / "doc.0.ipynb"), _comparable(tmp_path / "out" / "doc.1.ipynb")
    assert one == two
    sources = [c["source"] for c in one["cells"]]
    assert any("rows = 3" in s for s in sources)  # papermill's injected parameters
    if fails:
        assert "An Exception was encountered" in sources[0]  # papermill's banner


def test_notebook_imports_are_read_from_the_code_cells(tmp_path: Path) -> None:
    write_notebook(tmp_path / "a.ipynb", None, body="%matplotlib inline\nimport os.path\nfrom ridelake.tables import catalog, config\nfrom . import x\nimport json as j")
    write_notebook(tmp_path / "b.ipynb", None, body="def broken(:\n")
    names = notebook_imports([tmp_path / "a.ipynb", tmp_path / "b.ipynb", tmp_path / "missing.ipynb"])
    assert names == ["os.path", "ridelake.tables", "ridelake.tables.catalog", "ridelake.tables.config", "json"]


# -- the whole pipeline in both modes --------------------------------------------------------------

TIMESTAMPS = ("created_at", "updated_at")


def _pipeline(tmp: Path, mode: str, extra: list[str]) -> dict[str, pd.DataFrame]:
    from ridelake.tables import catalog
    from ridelake.tables.schemas import TABLES

    project = tmp / mode
    shutil.copytree(ROOT / "notebooks", project / "notebooks")
    shutil.copytree(ROOT / "params", project / "params")
    shutil.copytree(tmp / "data", project / "data")
    env = {**os.environ, "RIDELAKE_HOME": str(project), "RIDELAKE_WAREHOUSE": str(project / "warehouse")}
    env.pop("RIDELAKE_CATALOG_URI", None)
    proc = subprocess.run([sys.executable, "-m", "ridelake", "run", "-j", "2", "-p", "extraction_date=2024-12-31",
                           *extra], cwd=project, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    tables = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RIDELAKE_WAREHOUSE", str(project / "warehouse"))
        mp.delenv("RIDELAKE_RECEIPT_FILE", raising=False)
        mp.delenv("RIDELAKE_READS", raising=False)
        for name in TABLES:
            frame = catalog.read_table(name)
            frame = frame.drop(columns=[c for c in TIMESTAMPS if c in frame.columns])
            tables[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return tables


def test_the_pipeline_gives_the_same_tables_in_both_modes(tmp_path: Path) -> None:
    from ridelake.tables.generate import write_csv

    write_csv(tmp_path / "data" / "ncr_ride_bookings.csv", rows=1500, seed=5, bad_rows=5)
    warm = _pipeline(tmp_path, "warm", [])
    fresh = _pipeline(tmp_path, "fresh", ["--fresh-kernels"])
    assert set(warm) == set(fresh)
    assert sum(len(f) for f in warm.values()) > 1500
    for name in warm:
        pd.testing.assert_frame_equal(warm[name], fresh[name], obj=name)


def test_a_kernel_holding_too_much_memory_after_a_notebook_is_replaced(tmp_path: Path) -> None:
    """Past ``max_rss_mib`` resident after its reset, the kernel is replaced before the next
    notebook (each notebook's peak is in its outcome); under it, the same kernel goes on."""
    write_notebook(tmp_path / "pid.ipynb", None, body="import os\nprint(os.getpid())")
    engine = WarmEngine(1, max_rss_mib=1)  # every kernel holds more than 1 MiB
    try:
        first = engine.execute(_task(tmp_path, "pid", 0))
        second = engine.execute(_task(tmp_path, "pid", 1))
        assert first.ok and second.ok, (first.error, second.error)
        pids = [_read(tmp_path / "out" / f"pid.{i}.ipynb")["cells"][-1]["outputs"][0]["text"] for i in (0, 1)]
        assert pids[0] != pids[1]
        assert "held" in (tmp_path / "out" / "pid.0.log").read_text()
        assert first.peak_rss_mib is not None and first.peak_rss_mib > 1
    finally:
        engine.close()
