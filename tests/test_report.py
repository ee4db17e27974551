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
from ridelake.core import kernel_log
from ridelake.core.report import HTML_DIR, NO_CODE_DIR, REPORT_FILE, Shareable, build_report, dag_svg, write_after_run
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


def pages(run: Path, variant: str = HTML_DIR) -> list[Path]:
    return sorted((run / variant).rglob("*.html"))


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
    for variant in (HTML_DIR, NO_CODE_DIR):
        assert len(pages(run_dir, variant)) == 6  # 5 notebooks + 1 earlier attempt
        for page in pages(run_dir, variant):
            assert_offline(page)
        assert_offline(run_dir / variant / "notebook.css")


#: nbconvert's classes of a code cell's input area (markdown cells use jp-InputArea too)
CODE_INPUT = {"jp-InputPrompt", "jp-CodeMirrorEditor", "jp-InputArea-editor"}


def test_no_code_pages_are_written_beside_the_full_ones(run_dir: Path) -> None:
    build_report(run_dir)
    with_code = parse(run_dir / HTML_DIR / "bronze" / "prepare.html")
    assert CODE_MARK in "".join(with_code.text) and CODE_INPUT <= with_code.classes  # the contrast
    assert not (run_dir / NO_CODE_DIR).exists()

    index = build_report(run_dir, no_code=True)
    assert 'data-variants="html html-no-code"' in index.read_text(encoding="utf-8")
    for page in pages(run_dir, NO_CODE_DIR):
        found = parse(page)
        text = "".join(found.text)
        assert CODE_MARK not in text, page
        assert not CODE_INPUT & found.classes, page
        assert "without code" in text
    prepare = "".join(parse(run_dir / NO_CODE_DIR / "bronze" / "prepare.html").text)
    assert "prepared 3 rows" in prepare and "bronze.rejected_row" in prepare  # outputs and markdown stay
    assert "data:image/png;base64" in (run_dir / NO_CODE_DIR / "gold" / "chart.html").read_text(encoding="utf-8")
    # the full pages are still there, untouched, and the index links both variants
    assert CODE_MARK in "".join(parse(run_dir / HTML_DIR / "bronze" / "prepare.html").text)
    hrefs = {unquote(url) for _, _, url in parse(index).urls}
    for key in set(KEYS) - NOT_RUN:
        assert {f"{HTML_DIR}/{key}.html", f"{NO_CODE_DIR}/{key}.html"} <= hrefs, key
    assert_links_resolve(index)
    # a no-code page links its full page (built before it) and back to the report
    nav = {unquote(url) for _, _, url in parse(run_dir / NO_CODE_DIR / "bronze" / "prepare.html").urls}
    assert {"../../html/bronze/prepare.html", "../../index.html"} <= nav
    for page in pages(run_dir, NO_CODE_DIR):
        assert_links_resolve(page)

    build_report(run_dir)  # rebuilding with code keeps the no-code pages
    assert len(pages(run_dir, NO_CODE_DIR)) == 6
    assert f"{NO_CODE_DIR}/gold/chart.html" in {unquote(u) for _, _, u in parse(run_dir / REPORT_FILE).urls}


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


# -- runs that did not execute every notebook ------------------------------------------------------

EARLIER = "20240104T090000Z-cafe"  # the run the fixture's up-to-date bronze/customer kept


def _earlier_run(root: Path, *, report: bool = True) -> Path:
    """The run that executed bronze/customer (and gold/summary), as the fixture's up-to-date entry names."""
    run = root / "outputs" / "runs" / EARLIER
    for key, text in (("bronze/customer", "customers written"), ("gold/summary", "summary written")):
        path = run / f"{key}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(_nb(key, f"print('{text}')", [_stream(f"{text}\n")]), str(path))
    write_manifest(run, {
        "run_id": EARLIER, "command": "run", "status": "succeeded", "exit_code": 0, "started_at": _iso(-86400),
        "finished_at": _iso(-86390), "duration_s": 10.0, "params": {}, "run_folder": f"outputs/runs/{EARLIER}",
        "notebooks": [{**_entry("bronze/customer", "succeeded", -86400, -86395, table="bronze.customer", rows=7,
                                snapshot=99), "output": f"outputs/runs/{EARLIER}/bronze/customer.ipynb"},
                      _entry("gold/summary", "succeeded", -86395, -86390, table="gold.summary", rows=1, snapshot=98)]})
    if report:
        build_report(run)
    return run


def _no_op_run(root: Path, run_id: str = "20240106T080000Z-0a0a") -> Path:
    """A run in which both notebooks of the earlier run were up-to-date."""
    run = root / "outputs" / "runs" / run_id
    entries = [{**_entry(k, "up-to-date", None, None, table=t, rows=0, attempts=0), "run_reason": "up-to-date",
                "up_to_date_since": EARLIER, "started_at": _iso(172800), "finished_at": _iso(172800)}
               for k, t in (("bronze/customer", "bronze.customer"), ("gold/summary", "gold.summary"))]
    write_manifest(run, {"run_id": run_id, "command": "run", "status": "succeeded", "exit_code": 0,
                         "started_at": _iso(172800), "finished_at": _iso(172800.1), "duration_s": 0.1,
                         "params": {}, "run_folder": f"outputs/runs/{run_id}", "notebooks": entries})
    return run


def test_up_to_date_notebooks_link_the_executed_copy_of_the_run_they_came_from(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    _earlier_run(root)
    run = _no_op_run(root)
    index = build_report(run)
    text = index.read_text(encoding="utf-8")
    hrefs = {unquote(url) for _, _, url in parse(index).urls}
    for key in ("bronze/customer", "gold/summary"):
        assert f"../{EARLIER}/{HTML_DIR}/{key}.html" in hrefs, key   # the page of the run that ran it
    assert f"../{EARLIER}/{REPORT_FILE}" in hrefs                    # and that run's report
    assert "kept from run" in text and "Nothing needed to run." in text
    assert 'id="timeline"' not in text  # nothing ran: no empty time axis
    assert not (run / HTML_DIR).exists()  # nothing rendered again
    assert assert_links_resolve(index) >= 5
    target = run.parent / EARLIER / HTML_DIR / "bronze" / "customer.html"
    assert "customers written" in "".join(parse(target).text)


def test_up_to_date_notebook_without_a_page_is_rendered_from_the_earlier_run(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    _earlier_run(root, report=False)  # its executed notebooks, but no report
    run = _no_op_run(root)
    index = build_report(run)
    page = run / HTML_DIR / "bronze" / "customer.html"
    assert page.is_file()
    found = parse(page)
    assert "customers written" in "".join(found.text)
    assert f"executed in run {EARLIER}; this run kept its result" in "".join(found.text)
    assert f"{HTML_DIR}/bronze/customer.html" in {unquote(u) for _, _, u in parse(index).urls}
    assert_links_resolve(index)
    assert_links_resolve(page)


def test_up_to_date_notebook_whose_run_is_gone_says_so(run_dir: Path) -> None:
    text = build_report(run_dir).read_text(encoding="utf-8")
    row = text[text.index('data-key="bronze/customer"><td'):]
    row = row[:row.index("</tr>")]
    assert "kept from run <code>20240104T090000Z-cafe</code>" in row and "no executed copy found" in row


ROLLBACK_ID = "20240107T120000Z-b0b0"


def _rollback_run(root: Path) -> Path:
    """A rollback's record, as ops.maintenance writes it."""
    run = root / "outputs" / "runs" / ROLLBACK_ID
    write_manifest(run, {
        "run_id": ROLLBACK_ID, "status": "succeeded", "exit_code": 0, "started_at": _iso(259200),
        "finished_at": _iso(259200.4), "duration_s": 0.4, "command": "rollback",
        "params": {"rolled_back_run": RUN_ID}, "force": False, "warehouse": str(root / "warehouse"),
        "catalog_uri": None, "host": "h", "pid": 1, "run_folder": f"outputs/runs/{ROLLBACK_ID}", "notebooks": [],
        "tables": [{"table": "gold.chart", "action": "set-current", "from_snapshot": 66, "to_snapshot": 65,
                    "rows_before": 2, "rows_after": 1},
                   {"table": "silver.ride", "action": "emptied", "from_snapshot": 44, "to_snapshot": 45,
                    "rows_before": 5, "rows_after": 0, "note": "forced: changed after run"}],
        "skipped": [{"table": "bronze.booking", "reason": "already at its snapshot before the run"}],
        "warnings": ["silver.ride: changed after the run; rolled back anyway (--force)"], "error": None})
    return run


def test_a_rollback_report_lists_the_tables_it_moved(run_dir: Path) -> None:
    build_report(run_dir)
    run = _rollback_run(run_dir.parents[2])
    index = build_report(run)
    text = index.read_text(encoding="utf-8")
    assert 'data-command="rollback"' in text and "ridelake rollback" in text
    assert '<tr data-table="gold.chart"><td><code>gold.chart</code></td><td>set-current</td>' in text
    for snippet in ("<code>66</code>", "<code>65</code>", "<code>44</code>", "<code>45</code>", "emptied",
                    "forced: changed after run", "bronze.booking", "rolled back anyway (--force)",
                    f"python -m ridelake rollback {RUN_ID}", "warehouse"):
        assert snippet in text, snippet
    assert 'id="graph"' not in text and 'id="timeline"' not in text and "params file" not in text
    hrefs = {unquote(url) for _, _, url in parse(index).urls}
    assert f"../{RUN_ID}/{REPORT_FILE}" in hrefs  # the run it rolled back
    assert assert_links_resolve(index) >= 2
    assert write_after_run(run, io.StringIO()) == index  # as rollback calls it


def test_values_are_shown_relative_to_the_project_root(tmp_path: Path) -> None:
    root = (tmp_path / "proj").resolve()
    run = make_run(root)
    data = json.loads((run / "run.json").read_text())
    source = str(root / "data" / "rides.csv")
    data["params"]["source_file"] = source
    data["params_file"] = str(root / "params" / "default.yaml")
    data["warehouse"] = str(root / "warehouse")
    data["argv"] = ["run", "-p", f"source_file={source}"]
    write_manifest(run, data)
    executed = run / "bronze" / "prepare.ipynb"
    nb = nbformat.read(str(executed), as_version=4)
    nb.cells.insert(2, new_code_cell(f'# Parameters\nsource_file = "{source}"\nextraction_date = "2024-01-05"\n',
                                     metadata={"tags": ["injected-parameters"]}))
    nb.cells.append(new_code_cell("print(wh)", outputs=[_stream(f"staged at {root}/warehouse/_staging/x.parquet\n")]))
    nbformat.write(nb, str(executed))
    before = executed.read_text(encoding="utf-8")
    index = build_report(run).read_text(encoding="utf-8")
    page = (run / HTML_DIR / "bronze" / "prepare.html").read_text(encoding="utf-8")
    assert str(root) not in index and str(root) not in page
    for snippet in ("data/rides.csv", "params/default.yaml", "python -m ridelake run -p source_file=data/rides.csv"):
        assert snippet in index, snippet
    text = "".join(parse(run / HTML_DIR / "bronze" / "prepare.html").text)
    assert "# Parameters (paths relative to the project root)" in text and '"data/rides.csv"' in text
    assert "staged at warehouse/_staging/x.parquet" in text
    assert executed.read_text(encoding="utf-8") == before  # the executed notebook itself is unchanged


def test_shareable_rewrites_root_and_home_only() -> None:
    share = Shareable("/srv/proj", home="/home/ann")
    assert share.text("/srv/proj/data/x.csv") == "data/x.csv"
    assert share.text("/srv/proj") == "."
    assert share.text("cd /srv/proj && ls /srv/projects") == "cd . && ls /srv/projects"  # not a prefix of a name
    assert share.text("/home/ann/d.csv or /home/anne/d.csv") == "~/d.csv or /home/anne/d.csv"
    assert share.text("/tmp/elsewhere.csv") == "/tmp/elsewhere.csv" and share.text(3) == 3


def test_log_links_only_for_logs_with_more_than_kernel_noise(run_dir: Path) -> None:
    logs = run_dir / "logs"
    logs.mkdir()
    noise = "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.\n"
    (logs / "bronze__prepare.1.log").write_text(noise)                                  # shutdown chatter only
    (logs / "silver__booking.1.log").write_text("Segmentation fault in libfoo\n" + noise)  # a real problem
    hrefs = {unquote(u) for _, _, u in parse(build_report(run_dir)).urls}
    assert "logs/silver__booking.1.log" in hrefs and "logs/bronze__prepare.1.log" not in hrefs
    # and the engines keep the noise out of the logs themselves
    kernel_log.clean(logs / "bronze__prepare.1.log")
    kernel_log.clean(logs / "silver__booking.1.log")
    assert not (logs / "bronze__prepare.1.log").exists()
    assert (logs / "silver__booking.1.log").read_text() == "Segmentation fault in libfoo\n"
    kernel_log.clean(logs / "missing.log")  # never raises


def test_first_run_reason_is_said_once(run_dir: Path) -> None:
    data = json.loads((run_dir / "run.json").read_text())
    for nb in data["notebooks"]:
        if nb["attempts"]:
            nb["run_reason"] = "no successful run recorded for this warehouse"
    write_manifest(run_dir, data)
    text = build_report(run_dir).read_text(encoding="utf-8")
    assert "no successful run recorded" not in text
    assert text.count("first run on this warehouse") == 1
    data["notebooks"][0]["run_reason"] = "silver.customer changed"  # reasons differ: each row says its own
    write_manifest(run_dir, data)
    text = build_report(run_dir).read_text(encoding="utf-8")
    assert '<div class="why">first run</div>' in text and '<div class="why">silver.customer changed</div>' in text

# -- command line and runner ---------------------------------------------------------------------

def test_report_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proj"
    run = make_run(root)
    update_latest(root / "outputs" / "runs", RUN_ID)
    monkeypatch.setenv("RIDELAKE_HOME", str(root))
    assert main(["report"]) == 0
    assert capsys.readouterr().out.strip() == str(run / REPORT_FILE)
    assert main(["report", RUN_ID[:10], "--no-code"]) == 0
    assert 'data-variants="html html-no-code"' in (run / REPORT_FILE).read_text(encoding="utf-8")
    assert (run / HTML_DIR / "gold" / "chart.html").is_file() and (run / NO_CODE_DIR / "gold" / "chart.html").is_file()
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


def _three_notebook_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
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
    return root


def test_every_run_writes_its_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _three_notebook_project(tmp_path, monkeypatch)
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


def test_pages_are_rendered_while_the_run_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pages come from the low-priority worker (ridelake.core.pages): the run's own process
    renders none of them (here it cannot), and the hand-over folder is gone afterwards."""
    from ridelake.core import report

    def not_here(*args: object, **kwargs: object) -> str:
        raise report.ConfigError("rendered in the run's process")

    root = _three_notebook_project(tmp_path, monkeypatch)
    monkeypatch.setattr(report, "render_notebook", not_here)
    result = execute(RunRequest(retries=0, jobs=1), fake(root), engine=_NotebookEngine(), out=io.StringIO(),
                     err=io.StringIO(), live=False)
    for page in ("bronze/a.html", "silver/b.html"):
        text = (result.run_dir / HTML_DIR / page).read_text(encoding="utf-8")
        assert "rendered in the run" not in text, text[-3000:]
        assert f"{page[:-5]} ran" in text or "ValueError" in text  # the executed notebook's output
        assert 'href="../../index.html"' in text  # the navigation bar of the page's final place
    assert not (result.run_dir / report.AHEAD_DIR).exists()


def test_a_page_rendered_ahead_is_used_only_while_it_matches(run_dir: Path) -> None:
    from ridelake.core import report

    ahead = run_dir / report.AHEAD_DIR / HTML_DIR / "bronze"
    ahead.mkdir(parents=True)
    (ahead / "booking.html").write_text("<html><head></head><body>STALE PAGE</body></html>", encoding="utf-8")
    (ahead / "booking.html.fp").write_text("not the fingerprint", encoding="utf-8")
    build_report(run_dir)
    assert "STALE PAGE" not in (run_dir / HTML_DIR / "bronze" / "booking.html").read_text(encoding="utf-8")
    assert not (run_dir / report.AHEAD_DIR).exists()


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


@pytest.mark.slow
def test_latest_opens_usefully_after_a_no_op_run_and_after_a_rollback(chromium: str, run_dir: Path,
                                                                      tmp_path: Path) -> None:
    """``outputs/runs/latest/index.html`` (through the ``latest`` link) after a run where everything was
    up-to-date, and after a rollback: Chromium loads it and every page it links to."""
    from urllib.parse import urljoin

    root = run_dir.parents[2]
    runs = root / "outputs" / "runs"
    build_report(run_dir)
    _earlier_run(root)
    profile = tmp_path / "chromium-profile"
    for run, expect in ((_no_op_run(root), ["Nothing needed to run.", "kept from run", EARLIER]),
                        (_rollback_run(root), ["Tables moved", "gold.chart", "set-current", "silver.ride"])):
        build_report(run)
        update_latest(runs, run.name)
        latest = runs / "latest" / REPORT_FILE
        assert latest.resolve() == (run / REPORT_FILE).resolve()
        dom = _chrome(chromium, profile, "--dump-dom", latest.as_uri()).stdout
        for snippet in expect:
            assert snippet in dom, (run.name, snippet)
        linked = [url for tag, _, url in parse(latest).urls if tag == "a" and url.endswith(".html")]
        assert linked, run.name
        for url in sorted(set(linked)):
            target = urljoin(latest.as_uri(), url)
            assert Path(unquote(urlsplit(target).path)).is_file(), target
            page = _chrome(chromium, profile, "--dump-dom", target).stdout
            assert "<body" in page and ("ridelake run" in page or "rl-nav" in page), target
    # the pages the no-op run links are the earlier run's executed notebooks
    page = _chrome(chromium, profile, "--dump-dom",
                   urljoin((runs / "latest" / REPORT_FILE).as_uri(), f"../{EARLIER}/{HTML_DIR}/bronze/customer.html"))
    assert "customers written" in page.stdout


def test_month_nodes_are_grouped_under_their_notebook(tmp_path: Path) -> None:
    run_id = "20240107T080000Z-0b0b"
    run = tmp_path / "proj" / "outputs" / "runs" / run_id
    entries = [_entry("bronze/prepare", "succeeded", 0, 2, table="bronze.rejected_row", rows=0)]
    entries += [_entry(f"bronze/booking@2024-0{m}", "succeeded", 2 + m, 3 + m, table="bronze.booking", rows=100 * m)
                for m in (1, 2, 3)]
    entries.append(_entry("bronze/booking@2024-04", "failed", 6, 7, table="bronze.booking", rows=0,
                          error="cell 3: OSError: disk"))
    entries.append(_entry("gold/summary", "skipped", None, None, table="gold.summary", attempts=0))
    write_manifest(run, {"run_id": run_id, "command": "run", "status": "failed", "exit_code": 1,
                         "started_at": _iso(0), "finished_at": _iso(8), "duration_s": 8.0,
                         "params": {}, "run_folder": f"outputs/runs/{run_id}", "notebooks": entries})
    html = build_report(run).read_text(encoding="utf-8")
    assert html.count('<tbody class="group"') == 1 and 'data-notebook="bronze/booking"' in html
    group = html.split('data-notebook="bronze/booking"', 1)[1].split("</tbody>", 1)[0]
    assert "4 months" in group and "3 succeeded, 1 failed" in group
    assert group.count('class="succeeded month"') == 3 and group.count('class="failed month"') == 1
    assert ">600<" in group  # rows of the four months added up (100 + 200 + 300 + 0)
    head = group.split("</tr>", 1)[0]
    assert 'style="--c:' in head and ">failed</span>" in head  # the group shows its worst month
    assert "bronze/prepare" not in group and "gold/summary" not in group


def test_head_styles_are_split_off_whatever_their_case_and_number() -> None:
    from ridelake.core.report import split_styles

    head = '<head><meta charset="utf-8"><STYLE type="text/css">a { }</STYLE>\n<title>t</title><style>b{}</style>'
    assert split_styles(head) == (["a { }", "b{}"], '<head><meta charset="utf-8">\n<title>t</title>')
    assert split_styles("<head><title>no styles</title>") == ([], "<head><title>no styles</title>")
    assert split_styles("<head><style>never closed") == ([], "<head><style>never closed")
