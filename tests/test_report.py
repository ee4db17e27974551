"""The run report (``outputs/runs/<run_id>/index.html``): contents, the no-code variant, offline
self-containment, the ``report`` command, the runner's hook, and (slow) headless Chromium.

The report is built from a synthetic run folder: a ``run.json`` and tiny executed notebooks made
with nbformat (one with a chart, one failed with papermill's error banner, one retried, one
per-month execution, one skipped without output).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import zlib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from fake_project import fake
from ridelake.cli import main
from ridelake.core.dag import NotebookSpec, Pipeline
from ridelake.core.engine import Outcome, Task
from ridelake.core.manifest import update_latest, write_manifest
from ridelake.core.report import HTML_DIR, REPORT_FILE, build_report, dag_svg, write_after_run
from ridelake.core.runner import RunRequest, execute

RUN_ID = "20240105T101500Z-beef"
T0 = 1704449700.0  # 2024-01-05T10:15:00Z


def _png(size: int = 4) -> str:
    """A small, valid, red PNG (base64): the "chart" of the gold notebook."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * size for _ in range(size))
    raw = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return base64.b64encode(raw).decode()


PNG = _png()
CODE_MARK = "SOURCE_ONLY_IN_CODE_CELLS"   # appears in code cells' source only, never in an output

KEYS = ["bronze/prepare", "bronze/booking", "bronze/customer", "silver/booking", "silver/ride@2024-03", "gold/summary",
        "gold/chart"]
NOT_RUN = {"bronze/customer", "gold/summary"}  # up-to-date and skipped: no executed notebook in this run


def _iso(offset: float | None) -> str | None:
    if offset is None:
        return None
    import datetime as dt

    return dt.datetime.fromtimestamp(T0 + offset, dt.timezone.utc).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def _nb(title: str, code: str, outputs: list, *, failed: bool = False) -> nbformat.NotebookNode:
    cells = [new_markdown_cell(f"# `{title}`\n\nWhat this notebook does."),
             new_code_cell(f"{CODE_MARK} = 1  # parameters", metadata={"tags": ["parameters"]}, execution_count=1),
             new_code_cell(f"{CODE_MARK}_body = 2\n{code}", outputs=outputs, execution_count=2)]
    if failed:  # as papermill leaves a failed notebook: a banner on top and an anchor above the cell
        banner = ('<span style="color:red; font-family:Helvetica Neue, Helvetica, Arial, sans-serif; font-size:2em;">'
                  "An Exception was encountered at '<a href=\"#papermill-error-cell\">In [2]</a>'.</span>")
        anchor = ('<span id="papermill-error-cell" style="color:red; font-family:Helvetica Neue, Helvetica, Arial, '
                  'sans-serif; font-size:2em;">Execution using papermill encountered an exception here and '
                  "stopped:</span>")
        cells.insert(0, new_markdown_cell(banner, metadata={"tags": ["papermill-error-cell-tag"]}))
        cells.insert(3, new_markdown_cell(anchor, metadata={"tags": ["papermill-error-cell-tag"]}))
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "ridelake", "display_name": "Python (ridelake)",
                                                              "language": "python"}})


def _stream(text: str) -> nbformat.NotebookNode:
    return new_output("stream", name="stdout", text=text)


def _entry(key: str, status: str, start: float | None, end: float | None, *, table: str | None = None,
           rows: int | None = None, attempts: int = 1, error: str | None = None, error_cell: int | None = None,
           snapshot: int | None = None, reads: dict | None = None, log: list | None = None) -> dict:
    return {"name": key.split("@")[0], "key": key, "stage": "run", "status": status, "attempts": attempts,
            "started_at": _iso(start), "finished_at": _iso(end),
            "duration_s": None if start is None or end is None else round(end - start, 3),
            "output": f"outputs/runs/{RUN_ID}/{key}.ipynb" if start is not None else None,
            "table": table, "rows_written": rows, "error": error, "error_cell": error_cell, "params": {},
            "writes": {table: snapshot} if snapshot else {}, "reads": reads or {}, "attempt_log": log or []}


def make_run(root: Path, *, status: str = "failed", torn: bool = False) -> Path:
    """A run folder at ``<root>/outputs/runs/<RUN_ID>`` as the runner leaves it."""
    run = root / "outputs" / "runs" / RUN_ID
    notebooks = {
        "bronze/prepare": _nb("bronze.rejected_row", "print('prepared 3 rows')", [_stream("prepared 3 rows\n")]),
        "bronze/booking": _nb("bronze.booking", "print('wrote 3 rows')", [_stream("wrote 3 rows\n")]),
        "silver/booking": _nb("silver.booking", "raise ValueError('boom')", [new_output(
            "error", ename="ValueError", evalue="boom",
            traceback=["\x1b[0;31mValueError\x1b[0m: boom"])], failed=True),
        "silver/ride@2024-03": _nb("silver.ride", "print('month 2024-03')", [_stream("month 2024-03\n")]),
        "gold/chart": _nb("gold.chart", "fig", [new_output("display_data", data={
            "image/png": PNG, "text/plain": "<Figure size 640x480 with 1 Axes>"})]),
    }
    for key, nb in notebooks.items():
        path = run / f"{key}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
    nbformat.write(_nb("bronze.booking", "raise OSError('disk')", [new_output(
        "error", ename="OSError", evalue="disk", traceback=["OSError: disk"])], failed=True),
        str(run / "bronze" / "booking.attempt-1.ipynb"))
    if torn:
        (run / "gold" / "chart.ipynb").write_text('{"cells": [', encoding="utf-8")
    entries = [
        _entry("bronze/prepare", "succeeded", 0.1, 4.0, table="bronze.rejected_row", rows=0, snapshot=11),
        _entry("bronze/booking", "succeeded", 4.1, 12.0, table="bronze.booking", rows=3, snapshot=22, attempts=2,
               log=[{"attempt": 1, "status": "failed", "started_at": _iso(4.1), "finished_at": _iso(6.0),
                     "duration_s": 1.9, "error": "OSError: disk", "output": None},
                    {"attempt": 2, "status": "succeeded", "started_at": _iso(7.0), "finished_at": _iso(12.0),
                     "duration_s": 5.0, "error": None, "output": None}]),
        {**_entry("bronze/customer", "up-to-date", None, None, table="bronze.customer", rows=0, attempts=0),
         "run_reason": "up-to-date", "up_to_date_since": "20240104T090000Z-cafe"},
        _entry("silver/booking", "failed", 12.1, 15.0, table="silver.booking", rows=0,
               error="cell 2: ValueError: boom", error_cell=2, reads={"bronze.booking": 22}),
        _entry("silver/ride@2024-03", "succeeded", 12.1, 14.0, table="silver.ride", rows=5, snapshot=44,
               reads={"bronze.booking": 22}),
        _entry("gold/summary", "skipped", None, None, table="gold.summary", attempts=0,
               error="upstream silver/booking did not succeed"),
        _entry("gold/chart", "succeeded", 14.5, 18.0, table="gold.chart", rows=2, snapshot=66,
               reads={"silver.ride": 44}),
    ]
    write_manifest(run, {
        "run_id": RUN_ID, "command": "run", "argv": ["run", "-p", "extraction_date=2024-01-05"],
        "status": status, "exit_code": 1 if status == "failed" else None, "started_at": _iso(0),
        "finished_at": _iso(18.5) if status != "running" else None, "duration_s": 18.5 if status != "running" else None,
        "params": {"source_file": "/data/x.csv", "extraction_date": "2024-01-05", "extraction_month": None,
                   "target_date": None},
        "params_file": "params/default.yaml", "selectors": [], "stages": ["run"], "from_failure": None, "jobs": 2,
        "retries": 2, "retry_delay": 1.0, "warehouse": "/tmp/warehouse", "catalog_uri": None,
        "host": socket.gethostname(), "pid": _dead_pid(), "run_folder": f"outputs/runs/{RUN_ID}",
        "notebooks": entries, "peak_parallelism": 2,
    })
    return run


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


class _Links(HTMLParser):
    """Every href/src, the ids, the classes and the text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []   # (tag, attribute, value)
        self.ids: set[str] = set()
        self.classes: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "xlink:href") and value is not None:
                self.urls.append((tag, name, value))
            elif name == "id" and value:
                self.ids.add(value)
            elif name == "class" and value:
                self.classes.update(value.split())

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def local_target(page: Path, url: str) -> Path | None:
    """The file a relative link points at (None for an in-page anchor or a data: URL)."""
    parts = urlsplit(url)
    if parts.scheme == "data" or (not parts.scheme and not parts.path):
        return None
    assert not parts.scheme and not parts.netloc, f"{page.name}: not a relative link: {url}"
    return (page.parent / unquote(parts.path)).resolve()


def assert_links_resolve(page: Path) -> int:
    """Every href/src of ``page`` is relative and names a file that exists (and its #anchor)."""
    n = 0
    for _, _, url in parse(page).urls:
        target = local_target(page, url)
        if target is None:
            continue
        assert target.is_file(), f"{page}: link {url} -> {target} does not exist"
        fragment = urlsplit(url).fragment
        if fragment and target.suffix == ".html":
            assert fragment in parse(target).ids, f"{page}: {url}: no id {fragment!r} in {target.name}"
        n += 1
    return n


def assert_offline(page: Path) -> None:
    """No resource of ``page`` comes from the network."""
    text = page.read_text(encoding="utf-8")
    for tag, attr, url in parse(page).urls:
        if tag == "a" and page.name != REPORT_FILE:
            continue  # a link in a notebook's markdown is not a resource
        assert not url.lower().startswith(("http://", "https://", "//")), f"{page}: <{tag} {attr}={url}>"
    assert "url(http" not in text.replace(" ", "").lower(), f"{page}: a stylesheet imports from the network"
    assert "@import" not in text, page
    assert "<script src" not in text.lower(), page


def pages(run: Path) -> list[Path]:
    return sorted((run / HTML_DIR).rglob("*.html"))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path / "proj")


# -- contents ------------------------------------------------------------------------------------

def test_every_notebook_is_linked_and_links_resolve(run_dir: Path) -> None:
    index = build_report(run_dir)
    assert index == run_dir / REPORT_FILE
    found = parse(index)
    hrefs = {unquote(url) for tag, _, url in found.urls}
    for key in KEYS:
        if key in NOT_RUN:  # no output: named, not linked
            assert not any(key in h for h in hrefs)
            continue
        assert f"{HTML_DIR}/{key}.html" in hrefs, key
        assert (run_dir / HTML_DIR / f"{key}.html").is_file()
    assert f"{HTML_DIR}/bronze/booking.attempt-1.html" in hrefs  # the kept failed attempt
    assert f"{HTML_DIR}/silver/booking.html#papermill-error-cell" in hrefs  # straight to the failing cell
    assert "run.json" in hrefs
    assert assert_links_resolve(index) >= 12
    for page in pages(run_dir):  # the notebook pages link back to the report and to notebook.css
        assert assert_links_resolve(page) >= 2


def test_statuses_rows_snapshots_and_errors_are_shown(run_dir: Path) -> None:
    text = build_report(run_dir).read_text(encoding="utf-8")
    expected = {"bronze/prepare": "succeeded", "bronze/booking": "succeeded", "silver/booking": "failed",
                "silver/ride@2024-03": "succeeded", "gold/summary": "skipped", "gold/chart": "succeeded",
                "bronze/customer": "up-to-date"}
    for key, status in expected.items():
        assert f'<g class="node" data-key="{key}" data-status="{status}">' in text  # the DAG node
        assert f'<tr class="{status}" data-key="{key}">' in text                    # the table row
    assert 'data-run-status="failed"' in text
    assert "ridelake run <span class=\"id\">20240105T101500Z-beef</span>" in text
    for snippet in ("cell 2: ValueError: boom", "failing cell 2", "upstream silver/booking did not succeed",
                    "<code>22</code>", "<code>66</code>", "bronze.rejected_row", "extraction_date",
                    "python -m ridelake run -p extraction_date=2024-01-05", "/tmp/warehouse", "18.5 s"):
        assert snippet in text, snippet
    assert text.count('class="bar"') == 5          # one timeline bar per notebook that ran
    assert 'fill="url(#hatch)"' in text            # bronze/booking's failed first attempt
    assert "skipped (not run)" in text
    assert "up-to-date: kept from run 20240104T090000Z-cafe" in text


def test_gold_chart_is_embedded_in_its_page(run_dir: Path) -> None:
    build_report(run_dir)
    page = (run_dir / HTML_DIR / "gold" / "chart.html").read_text(encoding="utf-8")
    assert f'src="data:image/png;base64,{PNG}' in page.replace("\n", "")


def test_failed_notebook_page_keeps_papermill_banner(run_dir: Path) -> None:
    build_report(run_dir)
    page = run_dir / HTML_DIR / "silver" / "booking.html"
    found = parse(page)
    assert "papermill-error-cell" in found.ids
    assert "An Exception was encountered at" in "".join(found.text)
    assert "ValueError" in "".join(found.text)


def test_no_remote_resources(run_dir: Path) -> None:
    for no_code in (False, True):
        build_report(run_dir, no_code=no_code)
        assert_offline(run_dir / REPORT_FILE)
        index = (run_dir / REPORT_FILE).read_text(encoding="utf-8")
        assert "http://" not in index and "https://" not in index
        assert len(pages(run_dir)) == 6  # 5 notebooks + 1 earlier attempt
        for page in pages(run_dir):
            assert_offline(page)
        assert_offline(run_dir / HTML_DIR / "notebook.css")


#: nbconvert's classes of a code cell's input area (markdown cells use jp-InputArea too)
CODE_INPUT = {"jp-InputPrompt", "jp-CodeMirrorEditor", "jp-InputArea-editor"}


def test_no_code_variant_has_no_input_cells(run_dir: Path) -> None:
    build_report(run_dir)
    with_code = parse(run_dir / HTML_DIR / "bronze" / "prepare.html")
    assert CODE_MARK in "".join(with_code.text) and CODE_INPUT <= with_code.classes  # the contrast

    index = build_report(run_dir, no_code=True)
    assert 'data-variant="no-code"' in index.read_text(encoding="utf-8")
    for page in pages(run_dir):
        found = parse(page)
        text = "".join(found.text)
        assert CODE_MARK not in text, page
        assert not CODE_INPUT & found.classes, page
        assert "without code" in text
    prepare = "".join(parse(run_dir / HTML_DIR / "bronze" / "prepare.html").text)
    assert "prepared 3 rows" in prepare and "bronze.rejected_row" in prepare  # outputs and markdown stay
    assert "data:image/png;base64" in (run_dir / HTML_DIR / "gold" / "chart.html").read_text(encoding="utf-8")
    assert ".ipynb" not in "".join(parse(index).text)  # no links to code for readers who do not read it

    build_report(run_dir)  # rebuilding with code replaces the no-code pages
    assert CODE_MARK in "".join(parse(run_dir / HTML_DIR / "bronze" / "prepare.html").text)


def test_killed_run_with_a_torn_notebook(tmp_path: Path) -> None:
    run = make_run(tmp_path / "proj", status="running", torn=True)
    data = json.loads((run / "run.json").read_text())
    chart = next(nb for nb in data["notebooks"] if nb["key"] == "gold/chart")
    chart.update(status="running", finished_at=None, duration_s=None)
    write_manifest(run, data)
    text = build_report(run).read_text(encoding="utf-8")
    assert 'data-run-status="killed"' in text
    assert "not rendered" in text and not (run / HTML_DIR / "gold" / "chart.html").exists()
    assert "running…" in text  # its open-ended bar on the timeline
    assert_links_resolve(run / REPORT_FILE)


def test_dag_edges_follow_the_pipeline(tmp_path: Path) -> None:
    def spec(name: str, reads: tuple[str, ...], writes: tuple[str, ...]) -> NotebookSpec:
        return NotebookSpec(name, tmp_path / f"{name}.ipynb", reads, writes)

    pipe = Pipeline(tmp_path, {
        "bronze/a": spec("bronze/a", (), ("bronze.a",)),
        "silver/b": spec("silver/b", ("bronze.a",), ("silver.b",)),
        "gold/c": spec("gold/c", ("bronze.a", "silver.b"), ("gold.c",)),  # a -> c is implied by a -> b -> c
    })
    nbs = [{"key": k, "name": k, "status": "succeeded"} for k in ("bronze/a", "silver/b", "gold/c")]
    svg = dag_svg(nbs, {"silver/b": "html/silver/b.html"}, pipe)
    assert svg.count('class="edge"') == 2
    assert svg.count("wave ") == 3
    assert '<a href="html/silver/b.html"><g class="node" data-key="silver/b"' in svg
    # without a pipeline the edges come from the tables read and written
    nbs[1]["reads"], nbs[2]["reads"] = {"bronze.a": 1}, {"silver.b": 2}
    for nb in nbs:
        nb["table"] = nb["key"].replace("/", ".")
    assert dag_svg(nbs).count('class="edge"') == 2


def test_report_works_from_a_copy_of_the_folder(run_dir: Path, tmp_path: Path) -> None:
    build_report(run_dir)
    copy = tmp_path / "unzipped" / "somewhere"
    shutil.copytree(run_dir, copy)
    assert assert_links_resolve(copy / REPORT_FILE) >= 12
    for page in pages(copy):
        assert_links_resolve(page)


# -- command line and runner ---------------------------------------------------------------------

def test_report_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proj"
    run = make_run(root)
    update_latest(root / "outputs" / "runs", RUN_ID)
    monkeypatch.setenv("RIDELAKE_HOME", str(root))
    assert main(["report"]) == 0
    assert capsys.readouterr().out.strip() == str(run / REPORT_FILE)
    assert main(["report", RUN_ID[:10], "--no-code"]) == 0
    assert 'data-variant="no-code"' in (run / REPORT_FILE).read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["report", "nope"]) == 2
    assert "no run 'nope'" in capsys.readouterr().err


def test_a_report_failure_only_warns(tmp_path: Path) -> None:
    err = io.StringIO()
    assert write_after_run(tmp_path / "no-such-run", err) is None
    assert "warning: could not write the run report" in err.getvalue()


class _NotebookEngine:
    """Writes a one-cell executed notebook; fails ``silver/b``."""

    def execute(self, task: Task) -> Outcome:
        start = time.time()
        ok = task.name != "silver/b"
        out = new_output("stream", name="stdout", text=f"{task.name} ran\n") if ok else new_output(
            "error", ename="ValueError", evalue="no", traceback=["ValueError: no"])
        task.output_path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(new_notebook(cells=[new_markdown_cell(f"# {task.name}"),
                                           new_code_cell("x = 1", outputs=[out], execution_count=1)]),
                       str(task.output_path))
        return Outcome(ok, start, time.time(), None if ok else "cell 1: ValueError: no", None if ok else 1, [])


def test_every_run_writes_its_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "notebooks" / "pipeline.yaml").write_text(
        "notebooks:\n  bronze/a: {writes: [bronze.a]}\n  silver/b: {reads: [bronze.a], writes: [silver.b]}\n"
        "  gold/c: {reads: [silver.b], writes: [gold.c]}\n")
    for name in ("bronze/a", "silver/b", "gold/c"):
        path = root / "notebooks" / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), str(path))
    monkeypatch.setenv("RIDELAKE_WAREHOUSE", str(tmp_path / "wh"))
    monkeypatch.delenv("RIDELAKE_CATALOG_URI", raising=False)
    err = io.StringIO()
    result = execute(RunRequest(retries=0, jobs=1), fake(root), engine=_NotebookEngine(), out=io.StringIO(),
                     err=err, live=False)
    assert result.exit_code == 1  # the report does not change it
    index = result.run_dir / REPORT_FILE
    assert f"report: {index}" in err.getvalue()
    text = index.read_text(encoding="utf-8")
    assert 'data-key="bronze/a" data-status="succeeded"' in text
    assert 'data-key="silver/b" data-status="failed"' in text
    assert 'data-key="gold/c" data-status="skipped"' in text
    assert text.count('class="edge"') == 2  # from the project's pipeline.yaml
    assert (result.run_dir / HTML_DIR / "silver" / "b.html").is_file()


# -- headless Chromium ---------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--mute-audio"]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's ``chromium``, installed with apt-get when missing (root only; else the test is skipped)."""
    exe = shutil.which("chromium")
    if exe:
        return exe
    apt = shutil.which("apt-get")
    if apt is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("chromium is not installed and cannot be installed here (needs root and apt-get); "
                    "install Debian's package: apt-get install chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in ([apt, "update", "-qq"],
                [apt, "install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=300", "chromium"]):
        print(f"test set-up: {' '.join(cmd)}", flush=True)
        started = time.monotonic()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        print(f"  exit status {proc.returncode} after {time.monotonic() - started:.0f} s", flush=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            pytest.skip(f"could not install chromium: `{' '.join(cmd)}` exited {proc.returncode}: {' | '.join(tail)}")
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("apt-get installed chromium but there is no `chromium` on PATH")
    return exe


def _chrome(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow
def test_report_renders_in_headless_chromium(chromium: str, run_dir: Path, tmp_path: Path) -> None:
    index = build_report(run_dir)
    profile = tmp_path / "chromium-profile"
    dom = _chrome(chromium, profile, "--dump-dom", index.as_uri()).stdout
    assert RUN_ID in dom and "<svg" in dom and 'class="dag"' in dom and 'class="gantt"' in dom
    for key in KEYS:
        assert key in dom, key
    assert "failing cell 2" in dom

    shot = tmp_path / "report.png"
    _chrome(chromium, profile, f"--screenshot={shot}", "--window-size=1400,1800", index.as_uri())
    data = shot.read_bytes()
    assert _png_size(data) == (1400, 1800)
    assert len(data) > 20_000  # not a blank page

    # the links resolve, and a linked notebook page renders with its title
    assert assert_links_resolve(index) >= 12
    page = run_dir / HTML_DIR / "silver" / "ride@2024-03.html"
    dom = _chrome(chromium, profile, "--dump-dom", page.as_uri()).stdout
    assert "silver.ride" in dom and "month 2024-03" in dom and f"run {RUN_ID}" in dom
