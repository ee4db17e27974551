"""Skipping up-to-date notebooks (ridelake.core.uptodate and its hook in the scheduler and runner).

All but the last test run on a fake engine and a fake catalog (a dict of snapshot ids the fake
notebooks bump when they write): no kernels. The last one (slow) runs the real 22 notebooks on a
tiny generated file in a temporary copy of the project.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fake_project import PARAMS, fake, make_project, write_notebook

from ridelake.core import uptodate
from ridelake.core.dag import load_pipeline
from ridelake.core.engine import Outcome, Task, ThreadExecutor, read_receipts
from ridelake.core.runner import RunRequest, Stage, execute
from ridelake.core.scheduler import SKIPPED, SUCCEEDED, UP_TO_DATE, Listener, Node, Scheduler
from ridelake.core.codehash import ModuleGraph, notebook_hash
from ridelake.core.project import file_identity as source_identity
from ridelake.core.uptodate import StateStore, state_path
from ridelake.tables.adapter import CatalogSnapshots


def is_iceberg(dataset: str) -> bool:
    return dataset != "staging.delivery"

ROOT = Path(__file__).resolve().parents[1]

ALL = set(PARAMS)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # a fixed extraction_date, so two runs on different days compare equal
    root = make_project(tmp_path / "proj", extraction_date="2024-12-31", markdown="# title\n")
    monkeypatch.delenv("RIDELAKE_WAREHOUSE", raising=False)
    monkeypatch.delenv("RIDELAKE_CATALOG_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return root


class FakeCatalog:
    """Current snapshot ids by table; a write gives a table a new id (a SnapshotSource)."""

    def __init__(self) -> None:
        self.tables: dict[str, int] = {}
        self._next = 1000
        self._lock = threading.Lock()

    def bump(self, table: str) -> int:
        with self._lock:
            self._next += 1
            self.tables[table] = self._next
            return self._next

    def current(self, tables):
        with self._lock:
            return {t: self.tables.get(t) for t in tables}


class FakeEngine:
    """Reads and writes the fake catalog as pipeline.yaml says, with receipts; fails as told
    (before writing anything)."""

    def __init__(self, root: Path, cat: FakeCatalog, fail: set[str] | None = None,
                 months: list[str] | None = None) -> None:
        self.pipe = load_pipeline(root)
        self.cat = cat
        self.fail = fail or set()
        self.months = months or ["2024-01", "2024-02"]
        self.tasks: list[Task] = []
        self._lock = threading.Lock()

    def execute(self, task: Task) -> Outcome:
        start = time.time()
        with self._lock:
            self.tasks.append(task)
        task.output_path.parent.mkdir(parents=True, exist_ok=True)
        task.output_path.write_text("{}")
        if task.key in self.fail:
            return Outcome(False, start, time.time(), "cell 3: KeyError: 'x'", 3)
        spec = self.pipe.spec(task.name)
        records = [{"op": "read", "table": t, "snapshot_id": self.cat.current([t])[t], "rows": 1}
                   for t in spec.reads if is_iceberg(t)]
        records += [{"op": "write", "table": t, "rows_written": 2, "rows_deleted": 0,
                     "snapshot_id": self.cat.bump(t), "operation": "overwrite"} for t in spec.writes if is_iceberg(t)]
        with open(task.receipt_path, "a") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in records)
        if task.name == "bronze/prepare":  # stage the delivery like the real prepare step does
            wh = Path(task.env["RIDELAKE_HOME"]) / "warehouse"
            key = f"{Path(task.parameters['source_file']).name}__{task.parameters['extraction_date']}__all"
            (wh / "_staging").mkdir(parents=True, exist_ok=True)
            (wh / "_staging" / f"{key}.json").write_text(json.dumps({"months": self.months, "rows": 3}))
        return Outcome(True, start, time.time(), receipts=read_receipts(task.receipt_path))


class Harness:
    """Runs the fake project again and again against one fake catalog."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cat = FakeCatalog()
        self.probe: object | None = None  # what the check reads (default the same fake catalog)
        self.out = ""

    def run(self, fail: set[str] | None = None, **kw):
        engine = FakeEngine(self.root, self.cat, fail)
        kw.setdefault("retry_delay", 0)
        kw.setdefault("retries", 0)
        kw.setdefault("jobs", 2)
        out, err = io.StringIO(), io.StringIO()
        result = execute(RunRequest(**kw), fake(self.root, self.probe or self.cat), engine=engine, out=out, err=err,
                         live=False)
        self.out = out.getvalue()
        ran = {t.key for t in engine.tasks}
        return result, ran, {nb["key"]: nb for nb in result.manifest.get("notebooks", [])}


def _edit(path: Path, cell: str, text: str) -> None:
    nb = json.loads(path.read_text())
    for c in nb["cells"]:
        if c["id"] == cell:
            c["source"] = text
    path.write_text(json.dumps(nb))


def _downstream(root: Path, name: str) -> set[str]:
    return {name} | load_pipeline(root).downstream(name)


# -- the runner on the fake project ----------------------------------------------------------

def test_second_run_skips_all(project: Path) -> None:
    h = Harness(project)
    first, ran, nbs = h.run()
    assert first.exit_code == 0 and ran == ALL
    assert {nb["run_reason"] for nb in nbs.values()} == {"no successful run recorded for this warehouse"}
    second, ran, nbs = h.run()
    assert second.exit_code == 0 and ran == set()
    assert second.manifest["status"] == "succeeded"
    for nb in nbs.values():
        assert nb["status"] == UP_TO_DATE and nb["attempts"] == 0 and nb["duration_s"] == 0
        assert nb["output"] is None and nb["rows_written"] == 0 and nb["writes"] == {}
        assert nb["up_to_date_since"] == first.run_id and nb["run_reason"] == "up-to-date"
    assert "up-to-date" in h.out and "7 of 7 did not need to run" in h.out and "exit status 0" in h.out
    # a third run still keeps the first run's results
    third, ran, nbs = h.run()
    assert ran == set() and {nb["up_to_date_since"] for nb in nbs.values()} == {first.run_id}
    state = json.loads(state_path(str(project / "warehouse"), project).read_text())
    assert set(state["entries"]) == ALL and state["entries"]["silver/booking"]["run_id"] == first.run_id


def test_runs_listing_counts_up_to_date(project: Path) -> None:
    from ridelake.core.manifest import list_runs, runs_dir
    from ridelake.core.progress import runs_table

    h = Harness(project)
    first = h.run()[0].run_id
    second = h.run()[0].run_id
    lines = runs_table(list_runs(runs_dir(project))).splitlines()
    assert lines[0].split()[-4:] == ["notebooks", "ran", "up-to-date", "notes"]
    rows = {ln.split()[0]: ln.split() for ln in lines[2:]}  # two runs in one second: order by id is random
    assert rows[first][-4:-1] == ["7", "7", "0"] and rows[second][-4:-1] == ["7", "0", "7"]


def test_a_named_notebook_runs_although_up_to_date(project: Path) -> None:
    h = Harness(project)
    h.run()
    _, ran, nbs = h.run(stages=(Stage("run", ("silver/customer",)),))
    assert ran == {"silver/customer"} and nbs["silver/customer"]["run_reason"] == "named on the command line"
    # neighbours and layers still skip what is up-to-date: the downstream reruns because the named
    # notebook wrote new snapshots, the named notebook itself (no longer named alone) does not
    _, ran, nbs = h.run(stages=(Stage("run", ("silver/customer+",)),))
    assert ran == {"silver/booking", "silver/ride", "gold/customer_analytics"}
    assert nbs["silver/customer"]["status"] == UP_TO_DATE
    _, ran, nbs = h.run(stages=(Stage("run", ("silver/customer+",)),))
    assert ran == set()
    _, ran, _ = h.run(stages=(Stage("run", ("silver",)),))
    assert ran == set()
    _, ran, nbs = h.run(stages=(Stage("run", ("silver/customer", "silver/booking+")),))
    assert ran == {"silver/customer", "silver/booking", "silver/ride", "gold/customer_analytics"}
    assert nbs["silver/booking"]["run_reason"] == "silver.customer changed"


def test_touching_a_notebook_reruns_it_and_its_downstream_only(project: Path) -> None:
    h = Harness(project)
    h.run()
    path = project / "notebooks" / "silver" / "customer.ipynb"
    _edit(path, "md", "# a better title\n")  # prose is not a change
    assert h.run()[1] == set()
    _edit(path, "body", "x = 2\n")
    _, ran, nbs = h.run()
    assert ran == _downstream(project, "silver/customer") == {
        "silver/customer", "silver/booking", "silver/ride", "gold/customer_analytics"}
    assert nbs["silver/customer"]["run_reason"] == "notebook changed"
    assert nbs["silver/booking"]["run_reason"] == "silver.customer changed"
    assert all(nbs[k]["status"] == UP_TO_DATE for k in ALL - ran)
    # a new mtime, outputs or execution counts (a notebook run and saved in JupyterLab) are not changes
    nb = json.loads(path.read_text())
    nb["cells"][-1].update(execution_count=7, outputs=[{"output_type": "stream", "name": "stdout", "text": "1"}])
    nb["metadata"]["widgets"] = {"x": 1}
    path.write_text(json.dumps(nb))
    os.utime(project / "notebooks" / "gold" / "customer_analytics.ipynb")
    _, ran, _ = h.run()
    assert ran == set()


def test_changing_a_module_reruns_only_its_importers(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    lib = tmp_path / "lib" / "ridelake"
    (lib / "transforms").mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    (lib / "transforms" / "__init__.py").write_text("")
    (lib / "transforms" / "common.py").write_text("C = 1\n")
    (lib / "transforms" / "silver.py").write_text("from ridelake.transforms.common import C\nX = 1\n")
    (lib / "transforms" / "gold.py").write_text("from . import common\nY = 1\n")
    (lib / "report.py").write_text("R = 1\n")
    for name in ("silver/customer", "silver/booking", "silver/ride"):
        _edit(project / "notebooks" / f"{name}.ipynb", "body", "%matplotlib inline\nfrom ridelake.transforms import silver\n")
    _edit(project / "notebooks" / "gold" / "customer_analytics.ipynb", "body", "import ridelake.transforms.gold as g\n")
    monkeypatch.setattr(uptodate, "LIB_DIR", lib)
    h = Harness(project)
    h.run()
    assert h.run()[1] == set()
    (lib / "report.py").write_text("R = 2\n")  # imported by no notebook
    assert h.run()[1] == set()
    (lib / "transforms" / "gold.py").write_text("from . import common\nY = 2\n")
    _, ran, nbs = h.run()
    assert ran == {"gold/customer_analytics"} and nbs["gold/customer_analytics"]["run_reason"] == "lib/ changed"
    (lib / "transforms" / "silver.py").write_text("from ridelake.transforms.common import C\nX = 2\n")
    _, ran, nbs = h.run()
    assert ran == {"silver/customer", "silver/booking", "silver/ride", "gold/customer_analytics"}
    assert nbs["silver/customer"]["run_reason"] == "lib/ changed"
    (lib / "transforms" / "common.py").write_text("C = 2\n")  # imported by both, one through a relative import
    assert h.run()[1] == {"silver/customer", "silver/booking", "silver/ride", "gold/customer_analytics"}
    (lib / "transforms" / "__pycache__").mkdir()
    (lib / "transforms" / "__pycache__" / "silver.cpython-311.pyc").write_bytes(b"\0")  # not source
    assert h.run()[1] == set()


def test_changing_a_parameter_reruns_its_declarers_and_their_downstream(project: Path) -> None:
    h = Harness(project)
    h.run()
    _, ran, nbs = h.run(overrides={"target_date": "2024-03-05"})
    assert ran == {"gold/customer_analytics"}
    assert nbs["gold/customer_analytics"]["run_reason"] == "parameters changed"
    assert h.run(overrides={"target_date": "2024-03-05"})[1] == set()
    _, ran, _ = h.run(overrides={"target_date": "2024-03-05", "extraction_month": "2024-03"})
    declarers = {"bronze/prepare", "bronze/booking", "bronze/customer", "silver/booking", "silver/ride"}
    expected = set().union(*(_downstream(project, n) for n in declarers))
    assert ran == expected and "silver/customer" in ran  # it declares nothing but reads bronze
    # a new day's default extraction_date is a new parameter value: the bronze notebooks re-extract
    _, ran, _ = h.run(overrides={"target_date": "2024-03-05", "extraction_month": "2024-03",
                                 "extraction_date": "2025-01-01"})
    assert ran == ALL


def test_an_upstream_table_changed_outside_the_run_reruns_its_readers(project: Path) -> None:
    h = Harness(project)
    h.run()
    h.cat.bump("bronze.customer")  # e.g. someone appended to it by hand
    _, ran, nbs = h.run(stages=(Stage("sg", ("silver", "gold")),))
    assert ran == {"silver/customer", "silver/booking", "silver/ride", "gold/customer_analytics"}
    assert nbs["silver/customer"]["run_reason"] == "bronze.customer changed"


def test_a_notebook_whose_own_table_was_changed_reruns(project: Path) -> None:
    h = Harness(project)
    h.run()
    h.cat.bump("silver.booking")
    _, ran, nbs = h.run()
    assert ran == {"silver/booking", "silver/ride", "gold/customer_analytics"}
    assert nbs["silver/booking"]["run_reason"] == "silver.booking changed since its last run"


def test_a_failed_notebook_reruns_next_time(project: Path) -> None:
    h = Harness(project)
    h.run()
    # a forced run that fails before writing anything: the tables are as the first run left them
    failed, ran, nbs = h.run(fail={"silver/booking"}, force=True, stages=(Stage("one", ("silver/booking+",)),))
    assert failed.exit_code == 1 and ran == {"silver/booking"}
    assert nbs["silver/booking"]["run_reason"] == "forced"
    assert nbs["silver/ride"]["status"] == SKIPPED
    _, ran, nbs = h.run()
    assert ran == {"silver/booking", "silver/ride", "gold/customer_analytics"}
    assert nbs["silver/booking"]["run_reason"] == "no successful run recorded for this warehouse"
    assert h.run()[1] == set()


def test_force_runs_everything_selected(project: Path) -> None:
    h = Harness(project)
    h.run()
    result, ran, nbs = h.run(force=True)
    assert ran == ALL and result.manifest["force"] is True
    assert {nb["run_reason"] for nb in nbs.values()} == {"forced"}
    _, ran, nbs = h.run()
    assert ran == set() and {nb["up_to_date_since"] for nb in nbs.values()} == {result.run_id}


def test_a_new_delivery_reruns_what_depends_on_it(project: Path) -> None:
    h = Harness(project)
    h.run()
    (project / "data" / "x.csv").write_text("Date,Time\n2024-01-01,10:00:00\n")  # replaced in place
    _, ran, nbs = h.run()
    assert ran == ALL and nbs["bronze/customer"]["run_reason"] == "source file changed"
    assert h.run()[1] == set()
    # the prepare notebook changed: the bronze notebooks read what it stages, so they rerun too
    _edit(project / "notebooks" / "bronze" / "prepare.ipynb", "body", "x = 2\n")
    _, ran, nbs = h.run(stages=(Stage("b", ("bronze",)),))
    assert ran == {"bronze/prepare", "bronze/booking", "bronze/customer"}
    assert nbs["bronze/booking"]["run_reason"] == "staging.delivery changed"


def test_stages_and_selection_use_the_same_state(project: Path) -> None:
    h = Harness(project)
    h.run()
    # the layer commands
    assert h.run(stages=(Stage("silver", ("silver",)),))[1] == set()
    # incremental: the same delivery again leaves bronze and the dimensions up-to-date; the facts
    # run per month (each month's execution writes the table the other months' executions wrote)
    stages = (Stage("bronze", ("bronze",)),
              Stage("silver+gold", ("silver", "gold"), {"target_date": None}, per_month=True))
    result, ran, nbs = h.run(command="incremental", stages=stages)
    assert result.exit_code == 0
    assert not ran & {"bronze/prepare", "bronze/booking", "bronze/customer", "silver/customer"}
    assert {"silver/booking@2024-01", "silver/booking@2024-02"} <= ran
    assert nbs["bronze/booking"]["status"] == UP_TO_DATE
    # a full run afterwards: the facts' parameters differ from the per-month ones
    _, ran, _ = h.run()
    assert ran == {"silver/booking", "silver/ride", "gold/customer_analytics"}
    assert h.run()[1] == set()


def test_a_fresh_warehouse_runs_everything(project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    h = Harness(project)
    h.run()
    monkeypatch.setenv("RIDELAKE_WAREHOUSE", str(tmp_path / "other"))
    _, ran, _ = h.run()
    assert ran == ALL
    assert (tmp_path / "other" / "_ridelake" / "state.json").is_file()
    monkeypatch.delenv("RIDELAKE_WAREHOUSE")
    shutil.rmtree(project / "warehouse" / "_ridelake")  # `make clean-warehouse` removes it with the tables
    assert h.run()[1] == ALL


def test_problems_with_the_check_mean_run_never_fail(project: Path) -> None:
    h = Harness(project)
    h.run()

    class Broken(FakeCatalog):
        def current(self, tables):
            raise RuntimeError("catalog unreachable")

    h.probe = Broken()
    _, ran, nbs = h.run()
    assert ran == ALL and nbs["silver/customer"]["run_reason"].startswith("cannot check: RuntimeError")
    h.probe = None
    assert h.run()[1] == ALL  # nothing was recorded by the run that could not check
    assert h.run()[1] == set()
    shutil.rmtree(project / "warehouse" / "_ridelake")
    (project / "warehouse" / "_ridelake").write_text("in the way")  # the state cannot be written
    out = io.StringIO()
    err = io.StringIO()
    result = execute(RunRequest(retry_delay=0), fake(project, h.cat), engine=FakeEngine(project, h.cat), out=out,
                     err=err, live=False)
    assert result.exit_code == 0 and "could not record which notebooks are up-to-date" in err.getvalue()


def test_dry_run_tells_what_would_run(project: Path) -> None:
    h = Harness(project)
    h.run()
    _edit(project / "notebooks" / "silver" / "booking.ipynb", "body", "x = 3\n")
    result, ran, _ = h.run(dry_run=True)
    assert ran == set() and result.run_id is None
    assert "3 would run, 4 up-to-date" in h.out
    lines = {ln.split()[0]: ln for ln in h.out.splitlines() if ln.startswith("    ")}
    assert lines["silver/booking"].endswith("[runs: notebook changed]")
    assert lines["silver/ride"].endswith("[runs: upstream silver/booking runs]")
    assert lines["silver/customer"].endswith("[up-to-date]")
    assert sorted(result.manifest["up_to_date"]) == sorted(ALL - _downstream(project, "silver/booking"))
    # and the real run agrees
    assert h.run()[1] == _downstream(project, "silver/booking")


# -- the pieces -------------------------------------------------------------------------------

def test_scheduler_hook_marks_up_to_date_without_running() -> None:
    calls: list[str] = []
    events: list[str] = []

    class Engine:
        def execute(self, task: Task) -> Outcome:
            calls.append(task.key)
            now = time.time()
            return Outcome(task.key != "bad", now, now, None if task.key != "bad" else "boom")

    class Rec(Listener):
        def on_up_to_date(self, state):
            events.append(state.key)

    def task(key: str, attempt: int) -> Task:
        return Task(key=key, name=key, input_path=Path("i"), output_path=Path("o"), attempt=attempt)

    asked: list[str] = []

    def should_run(key: str) -> bool:
        asked.append(key)
        if key == "weird":
            raise RuntimeError("cannot tell")
        return key in {"b", "bad", "weird"}

    nodes = [Node("a"), Node("b", frozenset({"a"})), Node("c", frozenset({"a"})), Node("d", frozenset({"b", "c"})),
             Node("bad"), Node("after_bad", frozenset({"bad"})), Node("weird")]
    sched = Scheduler(nodes, ThreadExecutor(Engine(), 1), task, retries=0, listener=Rec(), should_run=should_run)
    states = sched.run()
    sched.executor.close()
    got = {k: s.status for k, s in states.items()}
    assert got == {"a": UP_TO_DATE, "b": SUCCEEDED, "c": UP_TO_DATE, "d": UP_TO_DATE, "bad": "failed",
                   "after_bad": SKIPPED, "weird": SUCCEEDED}
    assert sorted(calls) == ["b", "bad", "weird"] and sorted(events) == ["a", "c", "d"]
    assert "after_bad" not in asked  # never ready: its upstream failed
    assert asked.index("d") > asked.index("b")  # asked only once b had run
    assert states["a"].attempts == [] and states["a"].duration_s == 0


def test_notebook_hash_counts_sources_and_tags_only(tmp_path: Path) -> None:
    path = tmp_path / "n.ipynb"
    write_notebook(path, "a = 1\n", markdown="# title\n")
    base = notebook_hash(path)
    nb = json.loads(path.read_text())
    nb["cells"][2]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x"}]
    nb["cells"][2]["execution_count"], nb["cells"][2]["id"] = 4, "other-id"
    nb["metadata"]["language_info"] = {"version": "3.11.9"}
    path.write_text(json.dumps(nb, indent=2))
    assert notebook_hash(path) == base
    nb["cells"][0]["source"] = ["# title\n", "more words"]  # markdown: prose does not count
    path.write_text(json.dumps(nb))
    assert notebook_hash(path) == base
    nb["cells"][2]["source"] = "a = 2\n"
    path.write_text(json.dumps(nb))
    changed = notebook_hash(path)
    assert changed != base
    nb["cells"][1]["metadata"]["tags"] = []  # no longer the parameters cell
    path.write_text(json.dumps(nb))
    assert notebook_hash(path) not in (base, changed)
    path.write_text("not json")
    assert notebook_hash(path) != base and notebook_hash(tmp_path / "missing.ipynb") != base


def test_module_graph_and_source_identity(tmp_path: Path) -> None:
    lib = tmp_path / "pkg"
    (lib / "sub").mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    (lib / "sub" / "__init__.py").write_text("from .b import B\n")
    (lib / "a.py").write_text("import json\ndef f():\n    from pkg.sub import c  # a function-level import counts\n")
    (lib / "sub" / "b.py").write_text("B = 1\n")
    (lib / "sub" / "c.py").write_text("C = 1\n")
    (lib / "lone.py").write_text("L = 1\n")
    graph = ModuleGraph(lib)
    assert graph.closure(["pkg.a"]) == {"pkg", "pkg.a", "pkg.sub", "pkg.sub.b", "pkg.sub.c"}
    assert graph.closure(["pandas", "pkg.lone"]) == {"pkg", "pkg.lone"}
    h1 = graph.digest(graph.closure(["pkg.a"]))
    assert ModuleGraph(lib).digest(ModuleGraph(lib).closure(["pkg.a"])) == h1
    (lib / "lone.py").write_text("L = 2\n")
    assert ModuleGraph(lib).digest(ModuleGraph(lib).closure(["pkg.a"])) == h1  # not imported by a
    (lib / "sub" / "b.py").write_text("B = 2\n")
    assert ModuleGraph(lib).digest(ModuleGraph(lib).closure(["pkg.a"])) != h1
    real = ModuleGraph(ROOT / "lib" / "ridelake")
    gold = real.notebook_modules(ROOT / "notebooks" / "gold" / "customer_analytics.ipynb")
    silver = real.notebook_modules(ROOT / "notebooks" / "silver" / "customer.ipynb")
    assert "ridelake.tables.transforms.gold" in gold and "ridelake.tables.transforms.gold" not in silver
    assert not {"ridelake.core.report", "ridelake.cli", "ridelake.bench"} & (gold | silver)

    f = tmp_path / "d.csv"
    f.write_text("a\n")
    ident = source_identity(str(f))
    assert ident == {"path": str(f.resolve()), "size": 2, "mtime_ns": f.stat().st_mtime_ns}
    os.utime(f, ns=(1, 1))
    assert source_identity(str(f)) != ident  # a touched file may be a new delivery
    assert source_identity("s3://bucket/d.csv") is None
    assert source_identity(str(tmp_path / "gone.csv"))["missing"] is True


def test_state_path_and_store(tmp_path: Path) -> None:
    assert state_path(str(tmp_path / "wh"), tmp_path) == tmp_path / "wh" / "_ridelake" / "state.json"
    remote = state_path("s3://bucket/wh", tmp_path)
    assert remote.parent == tmp_path / "outputs" / "state" and remote.suffix == ".json"
    assert remote != state_path("s3://bucket/other", tmp_path)
    store = StateStore(tmp_path / "s" / "state.json", "wh")
    assert store.entries == {}
    store.entries["a/b"] = {"run_id": "r1"}
    store.save()
    assert StateStore(tmp_path / "s" / "state.json").entries == {"a/b": {"run_id": "r1"}}
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["state.json"]  # no temporary left
    (tmp_path / "s" / "state.json").write_text("{broken")
    assert StateStore(tmp_path / "s" / "state.json").entries == {}  # unreadable: everything runs
    (tmp_path / "s" / "state.json").write_text(json.dumps({"version": 999, "entries": {"a/b": {}}}))
    assert StateStore(tmp_path / "s" / "state.json").entries == {}


def test_catalog_snapshots_are_read_fresh_and_never_created(warehouse: Path) -> None:
    from ridelake.tables import catalog
    from ridelake.tables.schemas import table_spec

    probe = CatalogSnapshots(str(warehouse))
    assert probe.current(["silver.customer"]) == {"silver.customer": None}
    assert not (warehouse / "catalog.db").exists()  # a check never creates the catalog
    catalog.bootstrap(["silver.customer"])
    assert probe.current(["silver.customer", "gold.customer_analytics"]) == {
        "silver.customer": None, "gold.customer_analytics": None}
    assert not catalog.get_catalog().table_exists("gold.customer_analytics")  # nor a table
    empty = table_spec("silver.customer").arrow_schema().empty_table().to_pandas()
    first = catalog.write_table("silver.customer", empty, replace_all=True).snapshot_id
    assert probe.current(["silver.customer"]) == {"silver.customer": first}
    second = catalog.write_table("silver.customer", empty, replace_all=True).snapshot_id
    assert second != first and probe.current(["silver.customer"]) == {"silver.customer": second}


def test_cli_force_flag() -> None:
    from ridelake.cli import build_parser

    parser = build_parser()
    for argv in (["run"], ["bronze"], ["silver"], ["gold"], ["incremental", "--source-file", "f.csv"], ["backfill"]):
        assert parser.parse_args(argv).force is False
        assert parser.parse_args([*argv, "--force"]).force is True


# -- the real notebooks -------------------------------------------------------------------------

def _ridelake(project: Path, env: dict[str, str], *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "ridelake", "run", "-p", "extraction_date=2024-12-31", *args],
                          cwd=project, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads((project / "outputs" / "runs" / "latest" / "run.json").read_text())


@pytest.mark.slow
def test_real_notebooks_second_run_is_up_to_date(tmp_path: Path) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    from ridelake.tables.generate import write_csv

    try:
        KernelSpecManager().get_kernel_spec("ridelake")
    except NoSuchKernel:
        pytest.skip("the ridelake kernel is not installed (make venv)")
    project = tmp_path / "project"
    shutil.copytree(ROOT / "notebooks", project / "notebooks")
    shutil.copytree(ROOT / "params", project / "params")
    # a copy of lib/ imported first (runner and kernels): its hash cannot change under the test
    shutil.copytree(ROOT / "lib", project / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    write_csv(project / "data" / "ncr_ride_bookings.csv", rows=300, seed=5)
    env = {**os.environ, "RIDELAKE_HOME": str(project), "RIDELAKE_WAREHOUSE": str(tmp_path / "warehouse"),
           "PYTHONPATH": os.pathsep.join([str(project / "lib"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("RIDELAKE_CATALOG_URI", None)

    imported = subprocess.run([sys.executable, "-c", "import ridelake; print(ridelake.__file__)"], env=env,
                              capture_output=True, text=True, check=True).stdout.strip()
    assert Path(imported).is_relative_to(project / "lib")
    first = _ridelake(project, env)
    assert len(first["notebooks"]) == 22 and {nb["status"] for nb in first["notebooks"]} == {SUCCEEDED}

    second = _ridelake(project, env)
    assert [nb["status"] for nb in second["notebooks"]] == [UP_TO_DATE] * 22, {
        nb["key"]: nb["run_reason"] for nb in second["notebooks"]}
    assert {nb["up_to_date_since"] for nb in second["notebooks"]} == {first["run_id"]}

    path = project / "notebooks" / "silver" / "customer.ipynb"
    nb = json.loads(path.read_text())
    markdown = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    markdown["source"] = ["".join(markdown["source"]) + "\n\nEdited by a test."]  # a typo fix reruns nothing
    path.write_text(json.dumps(nb, indent=1))
    assert {nb["status"] for nb in _ridelake(project, env)["notebooks"]} == {UP_TO_DATE}
    code = [c for c in nb["cells"] if c["cell_type"] == "code"][-1]
    code["source"] = ["".join(code["source"]) + "\n# edited by a test"]
    path.write_text(json.dumps(nb, indent=1))
    third = _ridelake(project, env)
    ran = {nb["name"] for nb in third["notebooks"] if nb["status"] == SUCCEEDED}
    assert ran == {"silver/customer"} | load_pipeline(project).downstream("silver/customer"), {
        nb["key"]: nb["run_reason"] for nb in third["notebooks"]}
    assert ran == {"silver/customer", "silver/booking", "silver/ride", "silver/cancelled_ride",
                   "silver/incompleted_ride", "gold/daily_booking_summary", "gold/customer_analytics",
                   "gold/location_analytics"}
    assert {nb["status"] for nb in third["notebooks"] if nb["name"] not in ran} == {UP_TO_DATE}

    # editing a gold transform reruns the gold notebooks only; editing the report reruns nothing
    with open(project / "lib" / "ridelake" / "core" / "report.py", "a") as fh:
        fh.write("\n# edited by a test\n")
    assert {nb["status"] for nb in _ridelake(project, env)["notebooks"]} == {UP_TO_DATE}
    with open(project / "lib" / "ridelake" / "tables" / "transforms" / "gold.py", "a") as fh:
        fh.write("\n# edited by a test\n")
    fourth = _ridelake(project, env)
    ran = {nb["name"] for nb in fourth["notebooks"] if nb["status"] == SUCCEEDED}
    assert ran == {"gold/daily_booking_summary", "gold/customer_analytics", "gold/location_analytics"}, {
        nb["key"]: nb["run_reason"] for nb in fourth["notebooks"]}


def test_a_large_delivery_runs_month_by_month_and_stays_up_to_date(project: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIDELAKE_PARTITION_BYTES", "1")  # the fake delivery counts as large
    h = Harness(project)
    run_all = (Stage("run", (), per_month=True, max_months=None),)
    result, ran, nbs = h.run(stages=run_all)
    assert result.exit_code == 0
    months = ("2024-01", "2024-02")
    partitioned = {"bronze/booking", "bronze/customer", "silver/booking", "silver/ride"}  # declare extraction_month
    assert ran == ({"bronze/prepare", "silver/customer", "gold/customer_analytics"}
                   | {f"{n}@{m}" for n in partitioned for m in months})
    # every month of an upstream notebook comes first, so each month reads final tables
    last_bronze = max(nbs[f"bronze/booking@{m}"]["finished_at"] for m in months)
    assert all(nbs[f"silver/booking@{m}"]["started_at"] >= last_bronze for m in months)
    assert nbs["bronze/booking@2024-02"]["started_at"] >= nbs["bronze/booking@2024-01"]["finished_at"]
    # the next run finds every partition up-to-date, and a smaller delivery runs whole again
    _, ran, nbs = h.run(stages=run_all)
    assert ran == set(), {k: nb["run_reason"] for k, nb in nbs.items()}
    monkeypatch.setenv("RIDELAKE_PARTITION_BYTES", str(10**12))
    _, ran, _ = h.run(stages=run_all, force=True)
    assert ran == ALL


def test_saved_defaults_of_passed_parameters_are_not_a_change(project: Path) -> None:
    h = Harness(project)
    h.run()
    path = project / "notebooks" / "bronze" / "booking.ipynb"
    # a value saved in JupyterLab for a name the run passes (papermill injects the run's value)
    _edit(path, "params", PARAMS["bronze/booking"].replace("extraction_month = None", "extraction_month = '2024-03'"))
    assert h.run()[1] == set()
    # other code in the parameters cell still counts
    _edit(path, "params", PARAMS["bronze/booking"] + "print('hello')\n")
    _, ran, nbs = h.run()
    assert "bronze/booking" in ran and nbs["bronze/booking"]["run_reason"] == "notebook changed"
