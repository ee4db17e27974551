"""The run report: ``outputs/runs/<run_id>/index.html``, one page a person can open from disk.

Every run writes it at its end (:func:`write_after_run`, called by the runner and by rollback)
and ``ridelake report [RUN_ID] [--no-code]`` rebuilds it. For a notebook run the page shows the
run's status, parameters and duration, the DAG with each notebook coloured by status, a timeline
of the notebooks as they ran in parallel, and per notebook its table, the rows written, the
snapshot ids and the error, with links to the executed notebook rendered as HTML (nbconvert's
``lab`` template; charts are the notebooks' embedded PNGs). A notebook the run found up-to-date
links to the executed copy of the run that holds its data (``up_to_date_since``). A run without
notebooks (``command: rollback``) lists the tables it moved, from and to which snapshot.

The page is rendered from jinja2 templates with autoescaping (package data under
``ridelake/core/templates/``: ``report.html.j2``, ``dag.svg.j2``, ``gantt.svg.j2``,
``nav.html.j2``, ``ridelake_notebook.html.j2`` and the stylesheets). The run folder is
self-contained: no script, font or stylesheet is fetched from the network (nbconvert's
require.js, MathJax and mermaid tags are left out), every link is relative, so the folder still
works when zipped and opened elsewhere (links to an earlier run's pages need that run's folder
beside it). What the report adds::

    index.html                                  the report
    html/<layer>/<table>.html                   each executed notebook, with code
    html/<layer>/<table>.attempt-N.html         an earlier, failed attempt (when kept)
    html/notebook.css                           the notebook pages' stylesheet (shared)
    html-no-code/...                            the same pages without code (``--no-code``)

``--no-code`` writes the pages without input cells and prompts (code cells that printed nothing
are left out) *beside* the full ones, for readers who do not read code; markdown, tables, charts
and errors stay. The index links every variant present.

For sharing, values are shown relative to the project root (``data/x.csv``, not
``/home/me/ridelake/data/x.csv``) and the home folder as ``~``: in the parameters, the command,
papermill's injected-parameters cell and the notebooks' printed output (the executed notebooks
themselves are not changed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TextIO
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from ridelake.core.dag import Pipeline, execution_deps, key_month, layered, load_pipeline
from ridelake.core.kernel_log import has_content
from ridelake.core.manifest import (
    RUN_FILE,
    effective_status,
    log_file,
    output_file,
    parse_iso,
    read_manifest,
    resolve_run,
    runs_dir,
    write_atomic,
)
from ridelake.core.progress import format_rows, format_seconds, reason_text
from ridelake.core.project import project_root
from ridelake.core.redact import redact
from ridelake.core.scheduler import FAILED, SKIPPED, SUCCEEDED, UP_TO_DATE
from ridelake.errors import ConfigError, RidelakeError

__all__ = [
    "REPORT_FILE",
    "HTML_DIR",
    "NO_CODE_DIR",
    "NOTEBOOK_CSS",
    "TEMPLATES",
    "STATUS_COLOURS",
    "Shareable",
    "build_report",
    "render_notebook",
    "notebook_exporter",
    "page_fingerprint",
    "page_nav",
    "page_title",
    "split_styles",
    "warm_templates",
    "AHEAD_DIR",
    "dag_svg",
    "gantt_svg",
    "write_after_run",
    "register",
]

REPORT_FILE = "index.html"
HTML_DIR = "html"
NO_CODE_DIR = "html-no-code"
NOTEBOOK_CSS = "notebook.css"
#: Where pages rendered while the run went on wait for the report (:mod:`ridelake.core.pages`).
AHEAD_DIR = ".pages-ahead"
#: The templates and stylesheets (package data).
TEMPLATES = Path(__file__).with_name("templates")
_NOTEBOOK_TEMPLATE = "ridelake_notebook.html.j2"

#: status -> (strong colour, light tint); anything else (running, pending, killed...) is amber.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    SUCCEEDED: ("#1f9d55", "#e4f5eb"),
    FAILED: ("#d64545", "#fbe7e7"),
    SKIPPED: ("#8a94a0", "#eef0f3"),
    UP_TO_DATE: ("#3273dc", "#e5eefc"),
}
_OTHER = ("#d99a00", "#fdf3d6")
_RUN_COLOURS = {"killed": FAILED}

_env = Environment(loader=PackageLoader("ridelake.core", "templates"), autoescape=True,
                   undefined=StrictUndefined, trim_blocks=False, keep_trailing_newline=True)


def _colour(status: Any) -> tuple[str, str]:
    return STATUS_COLOURS.get(str(status), _OTHER)


def _href(rel: str | Path) -> str:
    """A relative URL for a relative path (``@`` and spaces escaped, slashes kept)."""
    return quote(Path(rel).as_posix(), safe="/")


def _variant_dir(no_code: bool) -> str:
    return NO_CODE_DIR if no_code else HTML_DIR


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _seconds(value: Any) -> str:
    """:func:`~ridelake.core.progress.format_seconds` with a unit on short times; ``–`` for no number."""
    if not isinstance(value, (int, float)):
        return "–"
    text = format_seconds(value)
    return f"{text} s" if value < 600 else text


# -- shareable text ------------------------------------------------------------------------------

class Shareable:
    """Rewrites local paths in displayed text: the project root goes (``data/x.csv``), the home
    folder becomes ``~``.

    Args:
        root: the project root (None: only the home folder is rewritten).
        home: the home folder (default the user's).
    """

    def __init__(self, root: str | Path | None, home: str | Path | None = None) -> None:
        self.root = str(Path(root).resolve()) if root is not None else None
        home_dir = str(Path(home).resolve()) if home is not None else os.path.expanduser("~")
        self.home = home_dir if home_dir not in ("/", "") and home_dir != self.root else None
        prefixes = [p for p in (self.root, self.home) if p]
        self._pattern = re.compile("|".join(f"(?:{re.escape(p)})(?![\\w.-])/?" for p in
                                            sorted(prefixes, key=len, reverse=True))) if prefixes else None

    def _swap(self, match: re.Match[str]) -> str:
        text = match.group(0)
        base = text.rstrip("/")
        if base == self.root:
            return "" if text.endswith("/") else "."
        return "~/" if text.endswith("/") else "~"

    def text(self, value: Any) -> Any:
        """The value with local path prefixes rewritten (non-strings unchanged)."""
        if not isinstance(value, str) or self._pattern is None:
            return value
        return self._pattern.sub(self._swap, value)

    def notebook(self, nb: Any) -> bool:
        """Rewrite a notebook node in memory: papermill's injected-parameters cell and the
        text of outputs (streams, errors, plain text). Returns True when something changed."""
        changed = False

        def swap(value: Any) -> Any:
            nonlocal changed
            if isinstance(value, list):
                return [swap(v) for v in value]
            new = self.text(value)
            changed |= new != value
            return new

        for cell in nb.get("cells", []):
            if "injected-parameters" in (cell.get("metadata", {}).get("tags") or []):
                before = changed
                changed = False
                cell["source"] = swap(cell.get("source", ""))
                if changed:
                    text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                    cell["source"] = text.replace("# Parameters\n", "# Parameters (paths relative to the project "
                                                                     "root)\n", 1)
                changed |= before
            for out in cell.get("outputs", []) or []:
                if "text" in out:
                    out["text"] = swap(out["text"])
                if "evalue" in out:
                    out["evalue"] = swap(out["evalue"])
                if "traceback" in out:
                    out["traceback"] = swap(out["traceback"])
                data = out.get("data") or {}
                if "text/plain" in data:
                    data["text/plain"] = swap(data["text/plain"])
        return changed


def _project_of(folder: Path, run: Mapping[str, Any]) -> Path | None:
    """The project root a run folder belongs to: the folder minus the record's ``run_folder``
    (``outputs/runs/<id>``), else the ``<root>/outputs/runs/<id>`` layout."""
    resolved = folder.resolve()
    rel = Path(str(run.get("run_folder") or ""))
    if rel.parts and not rel.is_absolute() and resolved.parts[-len(rel.parts):] == rel.parts:
        return resolved.parents[len(rel.parts) - 1]
    if resolved.parent.name == "runs" and resolved.parent.parent.name == "outputs":
        return resolved.parents[2]
    return None


# -- notebook pages ------------------------------------------------------------------------------

def split_styles(head: str) -> tuple[list[str], str]:
    """The contents of a page head's ``<style>`` elements, and the head without them (plain
    ``str.find``: a regular expression over the ~300 KB of nbconvert's styles, 22 pages a run,
    was most of the report's own time)."""
    lower = head.lower()
    styles: list[str] = []
    kept: list[str] = []
    pos = 0
    while True:
        start = lower.find("<style", pos)
        if start < 0:
            break
        open_end = lower.find(">", start)
        close = lower.find("</style>", open_end + 1) if open_end >= 0 else -1
        if close < 0:
            break
        kept.append(head[pos:start])
        styles.append(head[open_end + 1:close])
        pos = close + len("</style>")
    kept.append(head[pos:])
    return styles, "".join(kept)


_IMG_WITHOUT_ALT = re.compile(r"<img(?![^>]*\balt=)")
_FOCUSABLE = re.compile(r'(<div class="(?:[^"]*\s)?(?:jp-Cell-inputWrapper|jp-OutputArea-output)(?:\s[^"]*)?")')


def notebook_exporter(no_code: bool) -> Any:
    """nbconvert's HTML exporter as the report configures it (``lab`` template, offline).

    Its last step, alt text for images without one and ``tabindex`` on input and output areas,
    is done here on the text instead of through a BeautifulSoup parse and re-serialisation of
    the whole page (a third of a page's rendering time)."""
    # nbconvert is heavy (about a second to import) and needed only when pages are rendered
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    class LeanHTMLExporter(HTMLExporter):
        def from_notebook_node(self, nb: Any, resources: Any = None, **kw: Any) -> tuple[str, Any]:
            info = nb.metadata.get("language_info", {})
            lexer = info.get("pygments_lexer", info.get("name", None))
            self.register_filter("highlight_code",
                                 self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
            resources = self._init_resources(resources)
            self.register_filter("filter_data_type", WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources))
            html, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
            html = _IMG_WITHOUT_ALT.sub('<img alt="No description has been provided for this image"', html)
            return _FOCUSABLE.sub(r'\1 tabindex="0"', html), resources

    return LeanHTMLExporter(
        template_name="lab",
        template_file=_NOTEBOOK_TEMPLATE,
        extra_template_paths=[str(TEMPLATES)],
        embed_images=True,
        exclude_input=no_code,
        exclude_input_prompt=no_code,
        exclude_output_prompt=no_code,
    )


def render_notebook(src: str | Path, *, no_code: bool = False, title: str | None = None, nav: str = "",
                    exporter: Any = None, shareable: Shareable | None = None) -> str:
    """Render one executed notebook as a standalone HTML page (no network needed).

    Args:
        src: the ``.ipynb`` file.
        no_code: leave out input cells and prompts, and code cells that printed nothing.
        title: the page title (default the file name).
        nav: HTML put at the top of the page (the report's navigation bar).
        exporter: a configured ``HTMLExporter`` to reuse (default a new one).
        shareable: rewrite local paths in the parameters cell and the outputs (the file is not changed).

    Returns:
        The page.

    Raises:
        ConfigError: the file is not a readable notebook or cannot be rendered.
    """
    # nbformat comes with nbconvert; imported here with it
    import nbformat

    path = Path(src)
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # a torn file of a killed run, a file that is not JSON
        raise ConfigError(f"cannot read the notebook {path}: {exc}") from None
    if no_code:
        nb.cells = [c for c in nb.cells if not (c.get("cell_type") == "code" and not c.get("outputs"))]
    if shareable is not None:
        shareable.notebook(nb)
    exp = exporter or notebook_exporter(no_code)
    resources = {"metadata": {"name": title or path.stem}, "ridelake_nav": Markup(nav)}
    try:
        body, _ = exp.from_notebook_node(nb, resources=resources)
    except Exception as exc:  # nbconvert raises many kinds; the report names the file instead
        raise ConfigError(f"cannot render the notebook {path}: {exc}") from None
    return str(body)


def warm_templates() -> None:
    """Compile the report's own templates now (a run does it while its notebooks run, so that the
    report at its end does not)."""
    for name in ("report.html.j2", "nav.html.j2", "dag.svg.j2", "gantt.svg.j2"):
        _env.get_template(name)


def page_fingerprint(src: Path, nav: str, title: str, no_code: bool, share: Shareable | None) -> str:
    """What a rendered page depends on: the notebook file (size, mtime), its navigation bar,
    title, variant and the path rewriting (a page rendered ahead is used only when all match)."""
    try:
        st = src.stat()
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        stamp = "missing"
    parts = [str(src.resolve()), stamp, nav, title, str(no_code),
             str(share.root if share else None), str(share.home if share else None)]
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


@dataclass
class _Pages:
    """The notebook pages of one report build (one variant: with or without code)."""

    out_dir: Path
    no_code: bool
    shareable: Shareable | None = None
    exporter: Any = None
    css: str | None = None
    problems: dict[str, str] = field(default_factory=dict)    # key -> why there is no page
    ahead: Path | None = None                                 # pages rendered while the run went on

    def _rendered_ahead(self, rel: str, fingerprint: str) -> str | None:
        if self.ahead is None:
            return None
        page = self.ahead / rel
        try:
            if (self.ahead / f"{rel}.fp").read_text(encoding="utf-8") == fingerprint:
                return page.read_text(encoding="utf-8")
        except OSError:
            pass
        return None

    def render(self, key: str, src: Path, rel: str, nav: Callable[[Path], str], title: str) -> bool:
        """Render ``src`` to ``<out_dir>/<rel>`` (``nav`` gets the page's path); False on failure."""
        dest = self.out_dir / rel
        nav_html = nav(dest)
        page = self._rendered_ahead(rel, page_fingerprint(src, nav_html, title, self.no_code, self.shareable))
        if page is None:
            if self.exporter is None:
                self.exporter = notebook_exporter(self.no_code)
            try:
                page = render_notebook(src, no_code=self.no_code, title=title, nav=nav_html,
                                       exporter=self.exporter, shareable=self.shareable)
            except ConfigError as exc:
                self.problems[key] = str(exc)
                return False
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(self._share_css(page, dest), encoding="utf-8")
        return True

    def _share_css(self, page: str, dest: Path) -> str:
        """Move the page's head styles (the same ~300 KB for every page) into notebook.css."""
        head, sep, rest = page.partition("</head>")
        if not sep:
            return page
        styles, bare = split_styles(head)
        css = "\n".join(styles)
        if self.css is None:
            self.css = css
            (self.out_dir / NOTEBOOK_CSS).write_text(css, encoding="utf-8")
        if css != self.css:
            return page  # a page with styles of its own keeps them inline
        link = _href(os.path.relpath(self.out_dir / NOTEBOOK_CSS, dest.parent))
        return bare.rstrip() + f'\n<link rel="stylesheet" href="{link}">\n' + sep + rest


def _nav(run: Mapping[str, Any], nb: Mapping[str, Any], back: str, no_code: bool, attempt: int | None = None,
         other: Mapping[str, str] | None = None, source_run: str | None = None) -> str:
    status = FAILED if attempt is not None else str(nb.get("status"))
    facts: list[str] = []
    if attempt is not None:
        facts.append(f"attempt {attempt} of {nb.get('attempts')} (kept for the record)")
    elif source_run:
        facts.append(f"executed in run {source_run}; this run kept its result")
    else:
        if nb.get("duration_s") is not None:
            facts.append(_seconds(nb.get("duration_s")))
        if nb.get("table"):
            facts.append(f"writes {nb.get('table')}")
        if isinstance(nb.get("rows_written"), int):
            facts.append(f"{nb['rows_written']:,} rows")
    if no_code:
        facts.append("without code")
    return _env.get_template("nav.html.j2").render(
        back=back, run_id=run.get("run_id", "?"), key=nb.get("key") or nb.get("name"), status=status,
        colour=_colour(status)[0], facts=facts, other=other)


# -- the graph -----------------------------------------------------------------------------------

def _name(nb: Mapping[str, Any]) -> str:
    return str(nb.get("name") or str(nb.get("key", "?")).split("@", 1)[0])


def _key(nb: Mapping[str, Any]) -> str:
    return str(nb.get("key") or _name(nb))


def _dependencies(notebooks: Sequence[Mapping[str, Any]], pipeline: Pipeline | None) -> dict[str, set[str]]:
    """Key -> the keys it waited for, reduced to direct edges (as the scheduler links them)."""
    keys = [_key(nb) for nb in notebooks]
    names = {_key(nb): _name(nb) for nb in notebooks}
    deps: dict[str, set[str]] = {k: set() for k in keys}
    if pipeline is not None and all(n in pipeline.notebooks for n in names.values()):
        deps.update(execution_deps(pipeline, [(k, names[k], key_month(k)) for k in keys]))
    else:  # the run's own record: B read a table A wrote
        writers: dict[str, list[str]] = {}
        for nb, k in zip(notebooks, keys):
            for table in list(nb.get("writes") or {}) + ([nb["table"]] if nb.get("table") else []):
                writers.setdefault(str(table), []).append(k)
        for nb, k in zip(notebooks, keys):
            for table in nb.get("reads") or {}:
                deps[k].update(w for w in writers.get(str(table), []) if w != k)
    # transitive reduction: drop a -> b when a is reached through another dependency of b
    ancestors: dict[str, set[str]] = {}

    def reach(k: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if k not in ancestors:
            out: set[str] = set()
            for d in deps[k]:
                if d not in seen:
                    out |= {d} | reach(d, seen | {k})
            ancestors[k] = out
        return ancestors[k]

    return {k: {a for a in ds if not any(a in reach(o) for o in ds if o != a)} for k, ds in deps.items()}


def _waves(keys: Sequence[str], deps: Mapping[str, set[str]]) -> list[list[str]]:
    try:
        return layered(list(keys), deps)
    except RidelakeError:  # a cycle in a hand-edited record: one column
        return [list(keys)]


def dag_svg(notebooks: Sequence[Mapping[str, Any]], pages: Mapping[str, str] | None = None,
            pipeline: Pipeline | None = None) -> str:
    """The run's DAG as inline SVG: one column per wave, nodes coloured by status.

    Args:
        notebooks: the ``run.json`` notebook entries.
        pages: key -> href of its rendered notebook (nodes link to it).
        pipeline: the DAG (default: edges from the tables the notebooks read and wrote).

    Returns:
        An ``<svg>`` element.
    """
    pages = pages or {}
    by_key = {_key(nb): nb for nb in notebooks}
    keys = list(by_key)
    if not keys:
        return str(Markup('<p class="muted">No notebooks in this run.</p>'))
    deps = _dependencies(notebooks, pipeline)
    waves = _waves(keys, deps)
    # order inside a column by the mean position of the parents (fewer crossings)
    pos: dict[str, float] = {}
    for w, wave in enumerate(waves):
        if w:
            index = {k: i for i, k in enumerate(wave)}
            wave.sort(key=lambda k: (sum(pos[d] for d in deps[k]) / len(deps[k]) if deps[k] else 1e9, index[k]))
        for i, k in enumerate(wave):
            pos[k] = i - (len(wave) - 1) / 2
    node_w, node_h, gap_x, pitch_y, pad, top = 220, 40, 50, 50, 14, 26
    rows = max(len(w) for w in waves)
    xy: dict[str, tuple[float, float]] = {}
    for w, wave in enumerate(waves):
        for k in wave:
            xy[k] = (pad + w * (node_w + gap_x), top + (rows - 1) / 2 * pitch_y + pos[k] * pitch_y)
    edges = []
    for b in keys:
        for a in sorted(deps[b], key=keys.index):
            (x1, y1), (x2, y2) = xy[a], xy[b]
            x1, y1, y2 = x1 + node_w, y1 + node_h / 2, y2 + node_h / 2
            dx = max(20.0, (x2 - x1) / 2)
            edges.append({"d": f"M{x1:.1f},{y1:.1f} C{x1 + dx:.1f},{y1:.1f} {x2 - dx:.1f},{y2:.1f} {x2 - 2:.1f},{y2:.1f}",
                          "dashed": by_key[b].get("status") == SKIPPED})
    nodes = []
    for k in keys:
        nb, (x, y) = by_key[k], xy[k]
        status = str(nb.get("status", "?"))
        strong, tint = _colour(status)
        meta = [status]
        if status == UP_TO_DATE:
            meta.append("not rerun")
        else:
            if nb.get("duration_s") is not None and status != SKIPPED:
                meta.append(_seconds(nb.get("duration_s")))
            if isinstance(nb.get("rows_written"), int):
                meta.append(f"{nb['rows_written']:,} rows")
        tip = f"{k}: {status}" + (f"\n{nb['error']}" if nb.get("error") else "")
        if nb.get("up_to_date_since"):
            tip += f"\nkept the result of run {nb['up_to_date_since']}"
        nodes.append({"key": k, "status": status, "strong": strong, "tint": tint, "x": x, "y": y, "tip": tip,
                      "label": _fit(k, 27), "meta": " · ".join(meta), "href": pages.get(k)})
    return _env.get_template("dag.svg.j2").render(
        width=pad * 2 + len(waves) * node_w + (len(waves) - 1) * gap_x, height=top + pad + rows * pitch_y,
        node_w=node_w, node_h=node_h, edges=edges, nodes=nodes,
        waves=[{"x": pad + w * (node_w + gap_x) + node_w / 2} for w in range(len(waves))]).strip()


# -- the timeline --------------------------------------------------------------------------------

def _tick_step(span: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400):
        if span / step <= 12:
            return float(step)
    return 3600.0 * (int(span / 3600 / 12) + 1)


def gantt_svg(run: Mapping[str, Any], pages: Mapping[str, str] | None = None) -> str:
    """The notebooks on a time axis (seconds since the run started), one bar each.

    Earlier failed attempts are drawn hatched under the bar; notebooks that never started are
    listed without a bar.

    Args:
        run: the ``run.json`` record.
        pages: key -> href of its rendered notebook (labels link to it).

    Returns:
        An ``<svg>`` element.
    """
    pages = pages or {}
    notebooks = list(run.get("notebooks") or [])
    if not notebooks:
        return str(Markup('<p class="muted">No notebooks in this run.</p>'))
    starts = [parse_iso(nb.get("started_at")) for nb in notebooks]
    known = [s for s in starts if s is not None]
    t0 = parse_iso(run.get("started_at")) or (min(known) if known else 0.0)
    ends = [parse_iso(nb.get("finished_at")) for nb in notebooks]
    run_end = parse_iso(run.get("finished_at"))
    horizon = max([t for t in [run_end, *ends, *known] if t is not None] or [t0 + 1]) - t0
    horizon = max(horizon, 1.0)
    order = sorted(range(len(notebooks)), key=lambda i: (starts[i] is None, starts[i] or 0, i))
    label_w, chart_w, right, pitch, bar_h, top = 230, 990, 70, 22, 14, 30
    scale = chart_w / horizon

    def x_of(t: float) -> float:
        return round(label_w + max(0.0, t - t0) * scale, 1)

    step, ticks, tick = _tick_step(horizon), [], 0.0
    while tick <= horizon + 1e-9:
        ticks.append({"x": round(label_w + tick * scale, 1), "label": f"{tick:g} s"})
        tick += step
    rows = []
    for row, i in enumerate(order):
        nb = notebooks[i]
        key, status = _key(nb), str(nb.get("status", "?"))
        entry: dict[str, Any] = {"key": key, "y": top + row * pitch, "band": bool(row % 2), "label": _fit(key, 32),
                                 "href": pages.get(key), "colour": _colour(status)[0], "failed": [], "bar": None,
                                 "note": None}
        rows.append(entry)
        start, end = starts[i], ends[i]
        if start is None or (status == UP_TO_DATE and not nb.get("attempts")):
            entry["note"] = (f"up-to-date: kept from run {nb['up_to_date_since']}" if nb.get("up_to_date_since")
                             else f"{status} (not run)")
            continue
        open_end = end is None
        end = end if end is not None else (run_end or t0 + horizon)
        attempts = int(nb.get("attempts") or 0)
        retried = [a for a in nb.get("attempt_log") or []
                   if a.get("status") == FAILED and int(a.get("attempt", 0)) < attempts]
        for attempt in retried:
            a0, a1 = parse_iso(attempt.get("started_at")), parse_iso(attempt.get("finished_at"))
            if a0 is not None and a1 is not None:
                entry["failed"].append({"x": x_of(a0), "w": round(max(1.5, (a1 - a0) * scale), 1),
                                        "tip": f"{key}: attempt {attempt.get('attempt')} failed after {_seconds(a1 - a0)}"})
        final = [a for a in nb.get("attempt_log") or [] if int(a.get("attempt", 0)) == attempts]
        bar0 = parse_iso(final[0].get("started_at")) if retried and final else start
        bar0 = bar0 if bar0 is not None and start <= bar0 <= end else start
        w = max(2.0, (end - bar0) * scale)
        tip = f"{key}: {status}, {_seconds(nb.get('duration_s'))}" + (f", {attempts} attempts" if attempts > 1 else "")
        entry["bar"] = {"x": x_of(bar0), "w": round(w, 1), "open": open_end, "tip": tip,
                        "text_x": round(x_of(bar0) + w + 5, 1),
                        "text": _seconds(nb.get("duration_s")) if not open_end else f"{status}…"}
    return _env.get_template("gantt.svg.j2").render(
        width=label_w + chart_w + right, height=top + pitch * len(notebooks) + 8, top=top, pitch=pitch,
        bar_h=bar_h, label_w=label_w, ticks=ticks, rows=rows).strip()


# -- the page ------------------------------------------------------------------------------------

def _when(text: Any) -> str:
    ts = parse_iso(text) if isinstance(text, str) else None
    if ts is None:
        return "–"
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _value(value: Any, share: Shareable) -> Any:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(share.text(str(v))) for v in value)
    return None if value is None else share.text(str(value))


def _command(run: Mapping[str, Any], share: Shareable) -> str:
    argv = run.get("argv")
    if isinstance(argv, list) and argv:
        return "python -m ridelake " + shlex.join(str(share.text(str(a))) for a in argv)
    params = run.get("params") or {}
    if run.get("command") == "rollback" and params.get("rolled_back_run"):
        return f"python -m ridelake rollback {params['rolled_back_run']}" + (" --force" if run.get("force") else "")
    return f"python -m ridelake {run.get('command', 'run')}"


def _duration(run: Mapping[str, Any]) -> str:
    duration = run.get("duration_s")
    if duration is not None:
        return _seconds(duration)
    t0 = parse_iso(run.get("started_at"))
    ends = [parse_iso(nb.get("finished_at")) for nb in run.get("notebooks") or []]
    last = max([t for t in ends if t is not None], default=None)
    return f"≥ {_seconds(last - t0)}" if t0 is not None and last is not None else "–"


@dataclass
class _Build:
    """What one report build knows: the run, its folder, the project root and the pages."""

    run: Mapping[str, Any]
    folder: Path
    share: Shareable
    no_code: bool
    pages: dict[str, dict[str, str]] = field(default_factory=dict)   # variant dir -> key -> href
    attempts: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)             # key -> run the page comes from

    def page(self, key: str, variant: str | None = None) -> str | None:
        return self.pages.get(variant or _variant_dir(self.no_code), {}).get(key)


def _first_page(build: _Build, key: str) -> str | None:
    """The page to open for a key: this build's variant, else the other one."""
    return build.page(key) or build.page(key, _variant_dir(not build.no_code))


def _common_reason(notebooks: Sequence[Mapping[str, Any]]) -> str | None:
    """The one reason every notebook that ran shares (said once, above the table), if any."""
    ran = [nb for nb in notebooks if nb.get("attempts")]
    reasons = {reason_text(nb.get("run_reason")) for nb in ran}
    return next(iter(reasons)) if len(ran) > 1 and len(reasons) == 1 and "" not in reasons else None


def _rows(build: _Build, common: str | None) -> list[dict[str, Any]]:
    run, folder = build.run, build.folder
    out = []
    for nb in run.get("notebooks") or []:
        key, status = _key(nb), str(nb.get("status", "?"))
        page = _first_page(build, key)
        links: list[tuple[str, str]] = []
        for variant, label in ((HTML_DIR, "view"), (NO_CODE_DIR, "no code")):
            if build.page(key, variant):
                links.append((label, build.page(key, variant) or ""))
        for attempt, href in build.attempts.get(key, []):
            links.append((f"attempt {attempt}", href))
        if (folder / output_file(key)).is_file():
            links.append((".ipynb", _href(output_file(key))))
        attempts = int(nb.get("attempts") or 0)
        for n in range(1, attempts + 1):
            log = log_file(key, n)
            if has_content(folder / log):
                links.append((f"log {n}" if attempts > 1 else "log", _href(log)))
        muted: list[tuple[str, str]] = []
        if key in build.problems:
            muted.append(("not rendered", build.problems[key]))
        elif not page:
            muted.append(("not run" if status == SKIPPED else
                          "no executed copy found" if status == UP_TO_DATE else
                          "run by hand: no executed copy" if run.get("command") == "interactive" else "no output", ""))
        kept = None
        if status == UP_TO_DATE and nb.get("up_to_date_since"):
            source = str(nb["up_to_date_since"])
            index = folder.parent / source / REPORT_FILE
            kept = {"run": source, "href": _href(os.path.relpath(index, folder)) if index.is_file() else None}
        reason = reason_text(nb.get("run_reason"))
        why = "" if status == UP_TO_DATE or reason == common else reason
        writes = nb.get("writes") or {}
        rows_written = nb.get("rows_written")
        error = build.share.text(str(nb["error"])) if nb.get("error") else ""
        out.append({
            "key": key, "status": status, "colour": _colour(status)[0], "page": page, "kept": kept, "why": why,
            "attempts": nb.get("attempts", 0), "time": _seconds(nb.get("duration_s")) if attempts else "–",
            "table": nb.get("table"), "rows": format_rows(rows_written) if attempts else "–",
            "snapshots": [(sid, t if len(writes) > 1 or t != nb.get("table") else None) for t, sid in writes.items()],
            "reads": list((nb.get("reads") or {}).items()),
            "error": error if len(error) <= 400 else error[:399] + "…",
            "error_cell": nb.get("error_cell"),
            "error_href": f"{page}#papermill-error-cell" if page and status == FAILED and
            nb.get("error_cell") is not None and build.sources.get(key) is None else None,
            "links": links, "muted": muted,
            "seconds": float(nb.get("duration_s") or 0) if attempts else 0.0,
            "written": int(rows_written or 0) if attempts else 0,
        })
    return out


#: The status a group of month nodes shows: its worst member's.
_WORST = (FAILED, SKIPPED, "retrying", "running", "pending", SUCCEEDED, UP_TO_DATE)


def _groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in run order, numbered; the month nodes of one notebook (``silver/booking@2024-03``),
    when there are several, gathered under a summary (statuses counted, attempts, time and rows added up)."""
    groups: list[dict[str, Any]] = []
    by_name: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(rows, 1):
        row["index"] = i
        name = str(row["key"]).split("@", 1)[0]
        if "@" not in str(row["key"]):
            groups.append({"name": name, "summary": None, "rows": [row]})
        elif name in by_name:
            by_name[name]["rows"].append(row)
        else:
            by_name[name] = {"name": name, "summary": None, "rows": [row]}
            groups.append(by_name[name])
    for g in by_name.values():
        members = g["rows"]
        if len(members) < 2:
            continue  # one month alone needs no summary
        statuses = [str(r["status"]) for r in members]
        worst = min(statuses, key=lambda st: _WORST.index(st) if st in _WORST else 0)
        counts = ", ".join(f"{statuses.count(st)} {st}" for st in dict.fromkeys(statuses))
        seconds = sum(r["seconds"] for r in members)
        written = sum(r["written"] for r in members)
        g["summary"] = {"parts": len(members), "status": worst, "colour": _colour(worst)[0], "counts": counts,
                        "attempts": sum(int(r["attempts"] or 0) for r in members),
                        "time": _seconds(seconds) if seconds else "–", "table": members[0]["table"],
                        "rows": format_rows(written) if written else "–"}
    return groups


def _moved(run: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    entries = run.get("tables")
    if entries is None and run.get("notebooks"):
        return None
    return [{"table": e.get("table", "?"), "action": e.get("action", "?"), "from_snapshot": e.get("from_snapshot"),
             "to_snapshot": e.get("to_snapshot"), "rows_before": format_rows(e.get("rows_before")),
             "rows_after": format_rows(e.get("rows_after")), "note": e.get("note", "")}
            for e in entries or [] if isinstance(e, Mapping)]


def _notes(build: _Build, status: str, common: str | None) -> list[dict[str, Any]]:
    run, folder = build.run, build.folder
    notebooks = list(run.get("notebooks") or [])
    notes: list[dict[str, Any]] = []
    fresh = [nb for nb in notebooks if nb.get("status") == UP_TO_DATE]
    if notebooks and len(fresh) == len(notebooks):
        notes.append({"kind": "", "html": Markup(
            "<b>Nothing needed to run.</b> All {} notebooks were up-to-date: each one links to the executed "
            "notebook of the run that holds its data.").format(len(notebooks))})
    elif fresh:
        notes.append({"kind": "", "html": Markup(
            "{} of {} notebooks were up-to-date and did not run; they link to the run that holds their data.")
            .format(len(fresh), len(notebooks))})
    if common:
        ran = sum(1 for nb in notebooks if nb.get("attempts"))
        notes.append({"kind": "", "html": Markup("Why the {} notebooks ran: <b>{}</b>.").format(
            ran, "first run on this warehouse" if common == "first run" else common)})
    params = run.get("params") or {}
    target = params.get("rolled_back_run")
    if run.get("command") == "rollback" and target:
        index = folder.parent / str(target) / REPORT_FILE
        link = (Markup('<a href="{}">{}</a>').format(_href(os.path.relpath(index, folder)), target)
                if index.is_file() else Markup("<code>{}</code>").format(target))
        notes.append({"kind": "", "html": Markup("This rollback put the tables run {} changed back to their "
                                                 "snapshots before it.").format(link)})
    for warning in run.get("warnings") or []:
        notes.append({"kind": "warn", "html": Markup("Warning: {}").format(build.share.text(str(warning)))})
    if run.get("error"):
        notes.append({"kind": "bad", "html": Markup("Error: {}").format(build.share.text(str(run["error"])))})
    if status == "killed":
        notes.append({"kind": "bad", "html": Markup("The run's process is gone: it was killed before it finished.")})
    return notes


def _context(build: _Build, pipeline: Pipeline | None) -> dict[str, Any]:
    run, share = build.run, build.share
    status = effective_status(dict(run))
    notebooks = list(run.get("notebooks") or [])
    counts: dict[str, int] = {}
    for nb in notebooks:
        counts[str(nb.get("status", "?"))] = counts.get(str(nb.get("status", "?")), 0) + 1
    moved = _moved(run)
    common = _common_reason(notebooks)
    hrefs = {k: v for k in (_key(nb) for nb in notebooks) if (v := _first_page(build, k))}
    cards = [("Started (UTC)", _when(run.get("started_at"))), ("Finished (UTC)", _when(run.get("finished_at"))),
             ("Duration", _duration(run))]
    if notebooks or moved is None:
        done = ", ".join(f"{n} {s}" for s, n in counts.items())
        cards += [("Notebooks", f"{len(notebooks)}" + (f" ({done})" if done else "")),
                  ("Jobs", str(run.get("jobs", "–")) + (f" · peak {run['peak_parallelism']}"
                                                         if run.get("peak_parallelism") else ""))]
    if moved is not None:
        cards.append(("Tables moved", str(len(moved))))
    cards.append(("Exit status", str(run.get("exit_code") if run.get("exit_code") is not None else "–")))
    params = run.get("params") or {}
    shown = ["succeeded", "failed", "skipped", "up-to-date"]
    shown += sorted({s for s in counts if s not in shown})
    variants = [v for v in (HTML_DIR, NO_CODE_DIR) if build.pages.get(v)]
    settings = [("command", _command(run, share))] + [
        (label, _value(run.get(field) or ([] if field in ("selectors", "stages") else None), share))
        for label, field in (("params file", "params_file"), ("selectors", "selectors"), ("stages", "stages"),
                             ("rerun of", "from_failure"), ("warehouse", "warehouse"), ("retries", "retries"))
        if field in run  # a rollback's record has no params file, selectors, stages...
    ] + [
        ("catalog", _value(redact(run.get("catalog_uri")) or "SQLite in the warehouse", share)),
        ("host · pid", f"{run.get('host', '?')} · {run.get('pid', '?')}"),
        ("run folder", _value(run.get("run_folder"), share)),
    ]
    return {
        "run_id": run.get("run_id", "?"), "status": status,
        "status_colour": _colour(_RUN_COLOURS.get(status, status))[0],
        "kind": "rollback" if run.get("command") == "rollback" else "run",
        "command_name": run.get("command", "run"), "command": _command(run, share),
        "chips": [(k, _fit(str(share.text(str(v))), 60)) for k, v in params.items() if v is not None],
        "cards": cards, "notes": _notes(build, status, common), "has_notebooks": bool(notebooks),
        "dag": Markup(dag_svg(notebooks, hrefs, pipeline)) if notebooks else "",
        "gantt": Markup(gantt_svg(run, hrefs)) if any(nb.get("attempts") for nb in notebooks) else "",
        "legend": [(s, _colour(s)[0]) for s in shown], "groups": _groups(_rows(build, common)),
        "moved": moved, "moved_title": "Tables moved" if run.get("command") == "rollback" else "Tables written",
        "left_alone": [(e.get("table", "?"), e.get("reason", "")) for e in run.get("skipped") or []],
        "params": [(k, _value(v, share)) for k, v in params.items()], "settings": settings,
        "variants": variants,
        "variant_text": " and ".join({"html": "with code", "html-no-code": "without code"}[v] for v in variants),
        "generated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "run_file": RUN_FILE,
        "css": Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")),
    }


# -- building ------------------------------------------------------------------------------------

def _pipeline_for(root: Path | None) -> Pipeline | None:
    """The project's DAG, when the run folder belongs to a project."""
    if root is None:
        return None
    try:
        return load_pipeline(root, strict=False)
    except (RidelakeError, OSError, ValueError):
        return None


def _existing_pages(build: _Build, variant: str) -> None:
    """Note the pages of ``variant`` already on disk (built by an earlier ``report`` call)."""
    base = build.folder / variant
    for nb in build.run.get("notebooks") or []:
        key = _key(nb)
        if (base / f"{key}.html").is_file():
            build.pages.setdefault(variant, {})[key] = _href(Path(variant) / f"{key}.html")
        for n in range(1, int(nb.get("attempts") or 0)):
            if variant == _variant_dir(build.no_code) and (base / f"{key}.attempt-{n}.html").is_file():
                build.attempts.setdefault(key, []).append((n, _href(Path(variant) / f"{key}.attempt-{n}.html")))


def _kept_pages(build: _Build, variant: str) -> None:
    """Up-to-date notebooks: link the page of the run that executed them (``up_to_date_since``)."""
    for nb in build.run.get("notebooks") or []:
        key, source = _key(nb), nb.get("up_to_date_since")
        if nb.get("status") != UP_TO_DATE or not source or build.page(key, variant):
            continue
        page = build.folder.parent / str(source) / variant / f"{key}.html"
        if page.is_file():
            build.pages.setdefault(variant, {})[key] = _href(os.path.relpath(page, build.folder))
            build.sources[key] = str(source)


def page_title(run: Mapping[str, Any], key: str) -> str:
    """A notebook page's title."""
    return f"{key} · run {run.get('run_id', '?')}"


def page_nav(folder: Path, run: Mapping[str, Any], nb: Mapping[str, Any], dest: Path, no_code: bool,
             attempt: int | None = None, source_run: str | None = None) -> str:
    """The navigation bar of the page at ``dest`` (under ``<folder>/<variant>/`` or a sibling
    folder of the same depth) of one notebook entry of ``run.json``."""
    key = _key(nb)
    back = _href(os.path.relpath(folder / REPORT_FILE, dest.parent))
    other = folder / _variant_dir(not no_code) / (f"{key}.html" if attempt is None else f"{key}.attempt-{attempt}.html")
    link = ({"href": _href(os.path.relpath(other, dest.parent)),
             "label": "with code" if no_code else "without code"} if other.is_file() else None)
    return _nav(run, nb, back, no_code, attempt, link, source_run)


def _render_pages(build: _Build, pages: _Pages, variant: str) -> None:
    run, folder = build.run, build.folder
    for nb in run.get("notebooks") or []:
        key = _key(nb)
        src, source_run = folder / output_file(key), None
        if not src.is_file() and nb.get("status") == UP_TO_DATE and nb.get("up_to_date_since"):
            if build.page(key, variant):
                continue  # the page of the run that executed it is linked
            source_run = str(nb["up_to_date_since"])
            src = folder.parent / source_run / output_file(key)  # no page there: render its notebook here
        if not src.is_file():
            continue
        title = page_title(run, key)

        def nav(dest: Path, nb: Mapping[str, Any] = nb, attempt: int | None = None,
                source_run: str | None = source_run) -> str:
            return page_nav(folder, run, nb, dest, build.no_code, attempt, source_run)

        if pages.render(key, src, f"{key}.html", nav, title):
            build.pages.setdefault(variant, {})[key] = _href(Path(variant) / f"{key}.html")
            if source_run:
                build.sources[key] = source_run
        for n in range(1, int(nb.get("attempts") or 0)):
            old = folder / output_file(key, n)
            if old.is_file() and pages.render(f"{key}#{n}", old, f"{key}.attempt-{n}.html",
                                              lambda dest, n=n, nb=nb: nav(dest, nb, n),
                                              f"{title} · attempt {n}"):
                build.attempts.setdefault(key, []).append((n, _href(Path(variant) / f"{key}.attempt-{n}.html")))
    build.problems.update(pages.problems)


def build_report(run_dir: str | Path, no_code: bool = False, *, pipeline: Pipeline | None = None) -> Path:
    """Write ``<run_dir>/index.html`` and the notebook pages of one variant: ``html/`` with
    code, or ``html-no-code/`` without (the other variant, when present, stays and is linked).

    Args:
        run_dir: the run folder (it holds ``run.json``).
        no_code: render the pages without input cells (for readers who do not read code).
        pipeline: the DAG to draw (default read from the project the run folder belongs to; when
            unavailable, edges come from the tables the notebooks read and wrote).

    Returns:
        The ``index.html`` written.

    Raises:
        ConfigError: no readable ``run.json`` in ``run_dir``.
    """
    folder = Path(run_dir)
    run = read_manifest(folder)
    root = _project_of(folder, run)
    if pipeline is None:
        pipeline = _pipeline_for(root)
    build = _Build(run, folder, Shareable(root), no_code)
    variant, other = _variant_dir(no_code), _variant_dir(not no_code)
    _existing_pages(build, other)
    _kept_pages(build, other)
    _kept_pages(build, variant)
    tmp = folder / f".{variant}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _render_pages(build, _Pages(tmp, no_code, build.share, ahead=folder / AHEAD_DIR / variant), variant)
        target = folder / variant
        shutil.rmtree(target, ignore_errors=True)
        if any(tmp.iterdir()):
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(folder / AHEAD_DIR, ignore_errors=True)
    page = _env.get_template("report.html.j2").render(**_context(build, pipeline))
    return write_atomic(folder / REPORT_FILE, page)


def write_after_run(run_dir: str | Path, err: TextIO | None = None, pipeline: Pipeline | None = None) -> Path | None:
    """Build a finished run's report; a failure is a warning, never an error.

    Args:
        run_dir: the run folder.
        err: where the report's path or the warning goes (default stderr).
        pipeline: the run's DAG.

    Returns:
        The ``index.html`` written, or None when it could not be.
    """
    stream = err or sys.stderr
    try:
        path = build_report(run_dir, pipeline=pipeline)
    except KeyboardInterrupt:
        stream.write("warning: the run report was interrupted; rebuild it with `ridelake report`\n")
        return None
    except Exception as exc:  # the run's outcome must not depend on its report
        stream.write(f"warning: could not write the run report: {type(exc).__name__}: {exc}\n")
        return None
    stream.write(f"report: {path}\n")
    return path


# -- command line --------------------------------------------------------------------------------

def _cmd_report(args: argparse.Namespace) -> int:
    run_dir = resolve_run(runs_dir(project_root()), args.run_id)
    print(build_report(run_dir, no_code=args.no_code))
    return 0


def register(subparsers: Any) -> None:
    """Add ``report [RUN_ID] [--no-code]`` to the ``ridelake`` command line.

    Args:
        subparsers: the object ``ArgumentParser.add_subparsers`` returned.
    """
    p = subparsers.add_parser("report", help="(re)build a run's HTML report: outputs/runs/<run_id>/index.html",
                              description="Write outputs/runs/<run_id>/index.html and the executed notebooks "
                                          "as HTML under html/ (or html-no-code/ with --no-code); the folder "
                                          "opens from disk or a zip.")
    p.add_argument("run_id", nargs="?", default="latest", metavar="RUN_ID",
                   help="a run id or a unique prefix (default: latest)")
    p.add_argument("--no-code", action="store_true",
                   help="also write the notebook pages without code cells, beside the full ones "
                        "(html-no-code/; for readers who do not read code)")
    p.set_defaults(func=_cmd_report)
