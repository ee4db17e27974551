"""Notebook pages rendered while the run goes on, so that the report is ready when the run ends.

Rendering an executed notebook as HTML (nbconvert) costs about a tenth of a second a page and a
second to import; done after the last notebook it was the whole tail of a run. :class:`PagesAhead`
is a scheduler listener: as each notebook ends it hands the page to one worker process
(``python -m ridelake.core.pages``) that runs at low priority (``nice``), so it uses the cores the
kernels leave idle (while ``bronze/prepare`` runs alone, for one) rather than slowing them. The
worker writes ``<run>/.pages-ahead/<variant>/<page>`` with a fingerprint of what the page depends
on (:func:`~ridelake.core.report.page_fingerprint`); :func:`~ridelake.core.report.build_report`
uses a page only when its fingerprint still matches and renders the rest itself, so a page
rendered ahead is an optimisation, never a different result.

The worker reads one JSON job per line on its standard input and answers one line per job on
its standard output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any, Mapping

from ridelake.core.files import write_atomic
from ridelake.core.manifest import output_file
from ridelake.core.report import (
    AHEAD_DIR,
    HTML_DIR,
    Shareable,
    page_fingerprint,
    page_nav,
    page_title,
    notebook_exporter,
    render_notebook,
    warm_templates,
)
from ridelake.core.scheduler import FAILED, SUCCEEDED, Listener, NodeState

__all__ = ["PagesAhead", "serve", "main"]

#: The worker's ``nice`` increment: it gets the CPU the kernels leave.
NICENESS = 10


class PagesAhead(Listener):
    """Hand each finished notebook's page to a low-priority worker (see the module doc).

    Args:
        folder: the run folder.
        run: the live ``run.json`` content (read when a notebook ends, after the run record
            has saved its entry).
        root: the project root (for the pages' path rewriting).
        python: the interpreter for the worker (default this one).
    """

    def __init__(self, folder: Path, run: Any, root: Path | None, python: str | None = None) -> None:
        self.folder = Path(folder)
        self.run = run
        self.share = Shareable(root)
        self.root = root
        self._proc: subprocess.Popen[str] | None = None
        try:
            # the worker's answers (one line a page) go nowhere: the report checks each page itself
            self._proc = subprocess.Popen(
                [python or sys.executable, "-m", "ridelake.core.pages"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                text=True, encoding="utf-8", bufsize=1, cwd=str(self.folder),
            )
        except OSError:
            self._proc = None  # no worker: the report renders every page at the end
            return
        threading.Thread(target=warm_templates, daemon=True, name="ridelake-templates").start()


    def on_finish(self, state: NodeState) -> None:
        """Queue the page of a notebook that ended (succeeded or failed)."""
        if self._proc is None or self._proc.poll() is not None or state.status not in (SUCCEEDED, FAILED):
            return
        data = self.run() if callable(self.run) else self.run
        nb = next((n for n in data.get("notebooks") or [] if (n.get("key") or n.get("name")) == state.key), None)
        src = self.folder / output_file(state.key)
        if nb is None or not src.is_file():
            return
        rel = f"{state.key}.html"
        title = page_title(data, state.key)
        nav = page_nav(self.folder, data, nb, self.folder / HTML_DIR / rel, False)
        job = {"src": str(src), "dest": str(self.folder / AHEAD_DIR / HTML_DIR / rel), "nav": nav, "title": title,
               "no_code": False, "root": str(self.root) if self.root else None,
               "fingerprint": page_fingerprint(src, nav, title, False, self.share)}
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps(job) + "\n")
            self._proc.stdin.flush()
        except (OSError, ValueError):
            self.close(wait=0)

    def close(self, wait: float = 30.0) -> None:
        """No more pages: let the worker finish the queued ones (up to ``wait`` seconds, then it
        is killed and the report renders what is missing)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            if wait <= 0:
                raise subprocess.TimeoutExpired(proc.args, 0)
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _render(job: Mapping[str, Any], exporters: dict[bool, Any]) -> None:
    no_code = bool(job.get("no_code"))
    if no_code not in exporters:
        exporters[no_code] = notebook_exporter(no_code)
    page = render_notebook(job["src"], no_code=no_code, title=job["title"], nav=job["nav"],
                           exporter=exporters[no_code], shareable=Shareable(job.get("root")))
    dest = Path(job["dest"])
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(dest, page)
    write_atomic(Path(f"{dest}.fp"), str(job["fingerprint"]))  # last: a page with a fingerprint is whole


def _warm_up(exporter: Any) -> None:
    """Compile nbconvert's templates on a one-cell notebook before the first page is due."""
    import nbformat  # comes with nbconvert

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# warm-up"),
                                         nbformat.v4.new_code_cell("1", outputs=[])])
    try:
        exporter.from_notebook_node(nb, resources={"metadata": {"name": "warm-up"}, "ridelake_nav": ""})
    except Exception:  # noqa: BLE001 - only a warm-up; a real page reports its own error
        pass


def serve(stdin: IO[str], stdout: IO[str]) -> int:
    """The worker: render each job of ``stdin`` and answer ``ok <dest>`` or ``error <dest>: why``."""
    try:
        os.nice(NICENESS)
    except OSError:
        pass
    exporters: dict[bool, Any] = {False: notebook_exporter(False)}
    _warm_up(exporters[False])
    for line in stdin:
        if not line.strip():
            continue
        try:
            job = json.loads(line)
            _render(job, exporters)
            stdout.write(f"ok {job['dest']}\n")
        except Exception as exc:  # noqa: BLE001 - the report renders that page itself
            stdout.write(f"error {type(exc).__name__}: {exc}\n".replace("\n", " ").rstrip() + "\n")
        stdout.flush()
    return 0


def main() -> int:
    """``python -m ridelake.core.pages`` (started by :class:`PagesAhead`)."""
    from ridelake.core.startup import lean_imports

    lean_imports()
    return serve(sys.stdin, sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
