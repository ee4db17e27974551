"""The run report: ``outputs/runs/<run_id>/index.html``, one page a person can open from disk.

Every run writes it at its end (:func:`write_after_run`, called by the runner) and
``ridelake report [RUN_ID] [--no-code]`` rebuilds it. The page shows the run's status,
parameters and duration, the DAG with each notebook coloured by status, a timeline of the
notebooks as they ran in parallel, and per notebook its table, the rows written, the snapshot
ids and the error, with a link to the executed notebook rendered as HTML (nbconvert's ``lab``
template; charts are the notebooks' embedded PNGs).

The run folder is self-contained: no script, no font and no stylesheet is fetched from the
network (nbconvert's require.js, MathJax and mermaid tags are left out), every link is relative,
so the folder still works when zipped and opened elsewhere. What the report adds::

    index.html                              the report
    html/<layer>/<table>.html               each executed notebook
    html/<layer>/<table>.attempt-N.html     an earlier, failed attempt (when kept)
    html/notebook.css                       the notebook pages' stylesheet (shared)

``--no-code`` renders the notebook pages without input cells and prompts (code cells that
printed nothing are left out), for readers who do not read code; markdown, tables, charts and
errors stay. The report is ``index.html`` either way, and says which variant it is; rebuilding
replaces the other variant.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, TextIO
from urllib.parse import quote

from ridelake.core.dag import Pipeline, execution_deps, key_month, layered
from ridelake.errors import ConfigError, RidelakeError
from ridelake.core.manifest import (
    RUN_FILE,
    effective_status,
    log_file,
    output_file,
    parse_iso,
    read_manifest,
    write_atomic,
)
from ridelake.core.progress import format_seconds

__all__ = [
    "REPORT_FILE",
    "HTML_DIR",
    "NOTEBOOK_CSS",
    "STATUS_COLOURS",
    "build_report",
    "render_notebook",
    "dag_svg",
    "gantt_svg",
    "write_after_run",
    "register",
]

REPORT_FILE = "index.html"
HTML_DIR = "html"
NOTEBOOK_CSS = "notebook.css"

#: status -> (strong colour, light tint); anything else (running, pending, killed...) is amber.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "succeeded": ("#1f9d55", "#e4f5eb"),
    "failed": ("#d64545", "#fbe7e7"),
    "skipped": ("#8a94a0", "#eef0f3"),
    "up-to-date": ("#3273dc", "#e5eefc"),
}
_OTHER = ("#d99a00", "#fdf3d6")
_RUN_COLOURS = {"succeeded": "succeeded", "failed": "failed", "killed": "failed"}


def _colour(status: str | None) -> tuple[str, str]:
    return STATUS_COLOURS.get(str(status), _OTHER)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _href(rel: str | Path) -> str:
    """A relative URL for a relative path (``@`` and spaces escaped, slashes kept)."""
    return quote(Path(rel).as_posix(), safe="/")


# -- notebook pages ------------------------------------------------------------------------------

_TEMPLATE_NAME = "ridelake_notebook.html.j2"
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{#- offline: none of the lab template's CDN scripts (require.js, MathJax, mermaid, widgets) -#}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block extra_css -%}<style type="text/css">
.rl-nav { position: sticky; top: 0; z-index: 10; display: flex; flex-wrap: wrap; gap: 6px 14px;
  align-items: center; padding: 9px 20px; margin: 0 0 6px; border-radius: 8px; background: #1d2733; color: #dfe6ee;
  font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
.rl-nav a { color: #fff; text-decoration: none; font-weight: 600; }
.rl-nav a:hover { text-decoration: underline; }
.rl-nav .rl-name { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
.rl-nav .rl-badge { display: inline-block; padding: 1px 9px; border-radius: 10px; font-weight: 600;
  font-size: 12px; color: #fff; }
.rl-nav .rl-dim { color: #9fb0c2; }
main { padding-top: 8px; }
</style>{%- endblock extra_css -%}
{%- block body_header -%}{{ super() }}
{{ resources.ridelake_nav }}
{%- endblock body_header -%}
"""
_HEAD_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S | re.I)


def _exporter(no_code: bool) -> Any:
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="lab",
        template_file=_TEMPLATE_NAME,
        extra_loaders=[DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        embed_images=True,
        exclude_input=no_code,
        exclude_input_prompt=no_code,
        exclude_output_prompt=no_code,
    )


def render_notebook(src: str | Path, *, no_code: bool = False, title: str | None = None, nav: str = "",
                    exporter: Any = None) -> str:
    """Render one executed notebook as a standalone HTML page (no network needed).

    Args:
        src: the ``.ipynb`` file.
        no_code: leave out input cells and prompts, and code cells that printed nothing.
        title: the page title (default the file name).
        nav: HTML put at the top of the page (the report's navigation bar).
        exporter: a configured ``HTMLExporter`` to reuse (default a new one).

    Returns:
        The page.

    Raises:
        ConfigError: the file is not a readable notebook or cannot be rendered.
    """
    import nbformat

    path = Path(src)
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # a torn file of a killed run, a file that is not JSON
        raise ConfigError(f"cannot read the notebook {path}: {exc}") from None
    if no_code:
        nb.cells = [c for c in nb.cells if not (c.get("cell_type") == "code" and not c.get("outputs"))]
    exp = exporter or _exporter(no_code)
    resources = {"metadata": {"name": title or path.stem}, "ridelake_nav": nav}
    try:
        body, _ = exp.from_notebook_node(nb, resources=resources)
    except Exception as exc:  # nbconvert raises many kinds; the report names the file instead
        raise ConfigError(f"cannot render the notebook {path}: {exc}") from None
    return str(body)


@dataclass
class _Pages:
    """The notebook pages of one report build."""

    out_dir: Path
    no_code: bool
    exporter: Any = None
    css: str | None = None
    pages: dict[str, str] = field(default_factory=dict)       # key -> href of the page
    attempts: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)    # key -> why there is no page

    def render(self, key: str, src: Path, rel: str, nav: str, title: str) -> str | None:
        """Render ``src`` to ``<out_dir>/<rel>``; return its href from index.html (None on failure)."""
        if self.exporter is None:
            self.exporter = _exporter(self.no_code)
        try:
            page = render_notebook(src, no_code=self.no_code, title=title, nav=nav, exporter=self.exporter)
        except ConfigError as exc:
            self.problems[key] = str(exc)
            return None
        dest = self.out_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(self._share_css(page, dest), encoding="utf-8")
        return _href(Path(HTML_DIR) / rel)

    def _share_css(self, page: str, dest: Path) -> str:
        """Move the page's head styles (the same ~300 KB for every page) into notebook.css."""
        head, sep, rest = page.partition("</head>")
        if not sep:
            return page
        css = "\n".join(m.group(1) for m in _HEAD_STYLE.finditer(head))
        if self.css is None:
            self.css = css
            (self.out_dir / NOTEBOOK_CSS).write_text(css, encoding="utf-8")
        if css != self.css:
            return page  # a page with styles of its own keeps them inline
        link = _href(os.path.relpath(self.out_dir / NOTEBOOK_CSS, dest.parent))
        head = _HEAD_STYLE.sub("", head).rstrip() + f'\n<link rel="stylesheet" href="{link}">\n'
        return head + sep + rest


def _nav(run: Mapping[str, Any], nb: Mapping[str, Any], back: str, no_code: bool, attempt: int | None = None) -> str:
    key = nb.get("key") or nb.get("name")
    status = str(nb.get("status"))
    if attempt is not None:
        status = "failed"
    strong, _ = _colour(status)
    bits = [f'<a href="{_e(back)}">&larr; run {_e(run.get("run_id", "?"))}</a>',
            f'<span class="rl-name">{_e(key)}</span>',
            f'<span class="rl-badge" style="background:{strong}">{_e(status)}</span>']
    if attempt is not None:
        bits.append(f'<span class="rl-dim">attempt {attempt} of {_e(nb.get("attempts"))} (kept for the record)</span>')
    else:
        if nb.get("duration_s") is not None:
            bits.append(f'<span class="rl-dim">{_seconds(nb.get("duration_s"))}</span>')
        if nb.get("table"):
            bits.append(f'<span class="rl-dim">writes {_e(nb.get("table"))}</span>')
        if isinstance(nb.get("rows_written"), int):
            bits.append(f'<span class="rl-dim">{nb["rows_written"]:,} rows</span>')
    if no_code:
        bits.append('<span class="rl-dim">without code</span>')
    return '<nav class="rl-nav">' + "".join(bits) + "</nav>"


# -- the graph -----------------------------------------------------------------------------------

def _name(nb: Mapping[str, Any]) -> str:
    return str(nb.get("name") or str(nb.get("key", "?")).split("@", 1)[0])


def _dependencies(notebooks: Sequence[Mapping[str, Any]], pipeline: Pipeline | None) -> dict[str, set[str]]:
    """Key -> the keys it waited for, reduced to direct edges (as the scheduler links them)."""
    keys = [str(nb.get("key") or _name(nb)) for nb in notebooks]
    names = {str(nb.get("key") or _name(nb)): _name(nb) for nb in notebooks}
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


def _seconds(value: Any) -> str:
    """:func:`~ridelake.core.progress.format_seconds` with a unit on short times; ``–`` for no number."""
    if not isinstance(value, (int, float)):
        return "–"
    text = format_seconds(value)
    return f"{text} s" if value < 600 else text


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
    by_key = {str(nb.get("key") or _name(nb)): nb for nb in notebooks}
    keys = list(by_key)
    if not keys:
        return '<p class="muted">No notebooks in this run.</p>'
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
    width = pad * 2 + len(waves) * node_w + (len(waves) - 1) * gap_x
    height = top + pad + rows * pitch_y
    xy: dict[str, tuple[float, float]] = {}
    for w, wave in enumerate(waves):
        for k in wave:
            xy[k] = (pad + w * (node_w + gap_x), top + (rows - 1) / 2 * pitch_y + pos[k] * pitch_y)
    parts = [f'<svg class="dag" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="pipeline graph">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#9aa5b1"/></marker></defs>']
    for w in range(len(waves)):
        parts.append(f'<text class="wave" x="{pad + w * (node_w + gap_x) + node_w / 2}" y="14" '
                     f'text-anchor="middle">wave {w + 1}</text>')
    for b in keys:
        for a in sorted(deps[b], key=keys.index):
            (x1, y1), (x2, y2) = xy[a], xy[b]
            x1, y1, y2 = x1 + node_w, y1 + node_h / 2, y2 + node_h / 2
            dx = max(20.0, (x2 - x1) / 2)
            dash = ' stroke-dasharray="4 3"' if by_key[b].get("status") == "skipped" else ""
            parts.append(f'<path class="edge" d="M{x1:.1f},{y1:.1f} C{x1 + dx:.1f},{y1:.1f} {x2 - dx:.1f},{y2:.1f} '
                         f'{x2 - 2:.1f},{y2:.1f}" marker-end="url(#arrow)"{dash}/>')
    for k in keys:
        nb, (x, y) = by_key[k], xy[k]
        status = str(nb.get("status", "?"))
        strong, tint = _colour(status)
        meta = [status]
        if status == "up-to-date":
            meta.append("not rerun")
        else:
            if nb.get("duration_s") is not None and status != "skipped":
                meta.append(_seconds(nb.get("duration_s")))
            if isinstance(nb.get("rows_written"), int):
                meta.append(f"{nb['rows_written']:,} rows")
        tip = f"{k}: {status}" + (f"\n{nb['error']}" if nb.get("error") else "")
        if nb.get("up_to_date_since"):
            tip += f"\nkept the result of run {nb['up_to_date_since']}"
        node = (f'<g class="node" data-key="{_e(k)}" data-status="{_e(status)}"><title>{_e(tip)}</title>'
                f'<rect x="{x}" y="{y}" width="{node_w}" height="{node_h}" rx="6" fill="{tint}" stroke="{strong}"/>'
                f'<rect x="{x}" y="{y}" width="6" height="{node_h}" rx="3" fill="{strong}"/>'
                f'<text class="label" x="{x + 14}" y="{y + 17}">{_e(_fit(k, 27))}</text>'
                f'<text class="meta" x="{x + 14}" y="{y + 32}">{_e(" · ".join(meta))}</text></g>')
        parts.append(f'<a href="{_e(pages[k])}">{node}</a>' if k in pages else node)
    parts.append("</svg>")
    return "".join(parts)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


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
        return '<p class="muted">No notebooks in this run.</p>'
    starts = [parse_iso(nb.get("started_at")) for nb in notebooks]
    known = [s for s in starts if s is not None]
    t0 = parse_iso(run.get("started_at")) or (min(known) if known else 0.0)
    ends = [parse_iso(nb.get("finished_at")) for nb in notebooks]
    run_end = parse_iso(run.get("finished_at"))
    horizon = max([t for t in [run_end, *ends, *known] if t is not None] or [t0 + 1]) - t0
    horizon = max(horizon, 1.0)
    order = sorted(range(len(notebooks)), key=lambda i: (starts[i] is None, starts[i] or 0, i))
    label_w, chart_w, right, pitch, bar_h, top = 230, 990, 70, 22, 14, 30
    width, height = label_w + chart_w + right, top + pitch * len(notebooks) + 8
    scale = chart_w / horizon

    def x_of(t: float) -> float:
        return label_w + max(0.0, t - t0) * scale

    parts = [f'<svg class="gantt" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="timeline">',
             '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fbe7e7"/>'
             '<line x1="0" y1="0" x2="0" y2="6" stroke="#d64545" stroke-width="2.5"/></pattern></defs>']
    step = _tick_step(horizon)
    tick = 0.0
    while tick <= horizon + 1e-9:
        x = label_w + tick * scale
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 6}"/>'
                     f'<text class="tick" x="{x:.1f}" y="{top - 12}" text-anchor="middle">{tick:g} s</text>')
        tick += step
    for row, i in enumerate(order):
        nb = notebooks[i]
        key = str(nb.get("key") or _name(nb))
        status = str(nb.get("status", "?"))
        strong, tint = _colour(status)
        y = top + row * pitch
        if row % 2:
            parts.append(f'<rect class="band" x="0" y="{y}" width="{width}" height="{pitch}"/>')
        label = f'<text class="row" x="{label_w - 10}" y="{y + 15}" text-anchor="end">{_e(_fit(key, 32))}</text>'
        parts.append(f'<a href="{_e(pages[key])}">{label}</a>' if key in pages else label)
        start, end = starts[i], ends[i]
        if start is None or (status == "up-to-date" and not nb.get("attempts")):
            note = (f"up-to-date: kept from run {nb['up_to_date_since']}" if nb.get("up_to_date_since")
                    else f"{status} (not run)")
            parts.append(f'<text class="note" x="{label_w + 6}" y="{y + 15}">{_e(note)}</text>')
            continue
        open_end = end is None
        end = end if end is not None else (run_end or t0 + horizon)
        for attempt in nb.get("attempt_log") or []:
            a0, a1 = parse_iso(attempt.get("started_at")), parse_iso(attempt.get("finished_at"))
            if attempt.get("status") == "failed" and a0 is not None and a1 is not None and \
                    int(attempt.get("attempt", 0)) < int(nb.get("attempts") or 0):
                parts.append(f'<rect x="{x_of(a0):.1f}" y="{y + 4}" width="{max(1.5, (a1 - a0) * scale):.1f}" '
                             f'height="{bar_h}" fill="url(#hatch)" rx="2"><title>{_e(key)}: attempt '
                             f'{_e(attempt.get("attempt"))} failed after {_seconds(a1 - a0)}</title></rect>')
        retried = [a for a in nb.get("attempt_log") or [] if a.get("status") == "failed"
                   and int(a.get("attempt", 0)) < int(nb.get("attempts") or 0)]
        final = [a for a in nb.get("attempt_log") or [] if int(a.get("attempt", 0)) == int(nb.get("attempts") or 0)]
        bar0 = parse_iso(final[0].get("started_at")) if retried and final else start
        bar0 = bar0 if bar0 is not None and start <= bar0 <= end else start
        w = max(2.0, (end - bar0) * scale)
        tip = f"{key}: {status}, {_seconds(nb.get('duration_s'))}" + (f", {nb['attempts']} attempts" if
                                                                       (nb.get("attempts") or 0) > 1 else "")
        style = ' stroke-dasharray="3 2" fill-opacity="0.55"' if open_end else ""
        parts.append(f'<rect class="bar" data-key="{_e(key)}" x="{x_of(bar0):.1f}" y="{y + 4}" width="{w:.1f}" '
                     f'height="{bar_h}" rx="2" fill="{strong}" stroke="{strong}"{style}>'
                     f'<title>{_e(tip)}</title></rect>')
        text = _seconds(nb.get("duration_s")) if not open_end else f"{status}…"
        parts.append(f'<text class="dur" x="{x_of(bar0) + w + 5:.1f}" y="{y + 15}">{_e(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# -- the page ------------------------------------------------------------------------------------

_CSS = """
:root { --ink: #1d2733; --muted: #66737f; --line: #e3e7ec; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header.top { background: #1d2733; color: #fff; padding: 22px 32px 18px; }
header.top h1 { margin: 0 0 4px; font-size: 22px; font-weight: 650; letter-spacing: .2px; }
header.top h1 .id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-weight: 500; }
header.top .sub { color: #a9b7c6; font-size: 13px; }
main { max-width: 1420px; margin: 0 auto; padding: 18px 32px 40px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px 18px;
  margin: 0 0 18px; box-shadow: 0 1px 2px rgba(16,24,40,.04); }
section h2 { margin: 0 0 12px; font-size: 16px; font-weight: 650; }
.badge { display: inline-block; padding: 1px 10px; border-radius: 11px; color: #fff; font-weight: 600;
  font-size: 12px; line-height: 20px; vertical-align: middle; white-space: nowrap; }
header.top .badge { font-size: 13px; padding: 2px 12px; margin-left: 10px; }
.chips { margin: 10px 0 0; display: flex; flex-wrap: wrap; gap: 6px; }
.chip { background: rgba(255,255,255,.1); border-radius: 6px; padding: 2px 9px; font-size: 12.5px;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.chip .k { color: #a9b7c6; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin: 16px 0 0; }
.card { background: rgba(255,255,255,.07); border-radius: 8px; padding: 8px 12px; }
.card .k { color: #a9b7c6; font-size: 11.5px; text-transform: uppercase; letter-spacing: .5px; }
.card .v { font-size: 15px; font-weight: 600; }
.grid2 { display: grid; grid-template-columns: minmax(0, 1.1fr) minmax(0, 1fr); gap: 18px; }
.grid2 > section { margin: 0 0 18px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .4px;
  background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { width: 34%; text-transform: none; letter-spacing: 0; font-size: 13px; background: none; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.muted, .null { color: var(--muted); }
a { color: #2160c4; text-decoration: none; }
a:hover { text-decoration: underline; }
.scroll { overflow-x: auto; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
svg.dag, svg.gantt { max-width: 100%; height: auto; display: block; }
svg .label { font-size: 12px; font-weight: 600; fill: #1d2733; }
svg .meta { font-size: 11px; fill: #56626e; }
svg .wave { font-size: 11px; fill: #8b97a3; text-transform: uppercase; letter-spacing: .6px; }
svg .edge { fill: none; stroke: #aab4bf; stroke-width: 1.3; }
svg a:hover rect { stroke-width: 2.2; }
svg .grid { stroke: #e6e9ee; stroke-width: 1; }
svg .tick { font-size: 11px; fill: #7b8794; }
svg .row { font-size: 12px; fill: #1d2733; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
svg a .row { fill: #2160c4; }
svg .band { fill: #f7f8fa; }
svg .dur, svg .note { font-size: 11px; fill: #66737f; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 10px 0 0; font-size: 12.5px; color: var(--muted); }
.legend span.plain::before { display: none; }
.legend span::before { content: ""; display: inline-block; width: 12px; height: 12px; border-radius: 3px;
  margin-right: 6px; vertical-align: -1px; background: var(--c); }
tr.failed td { background: #fff8f8; }
.err { color: #a32424; white-space: pre-wrap; word-break: break-word; max-width: 460px; }
.err.note { color: var(--muted); }
.why { color: var(--muted); font-size: 11.5px; margin-top: 3px; max-width: 220px; }
.err-cell { font-size: 12px; }
details summary { cursor: pointer; color: var(--muted); font-size: 12px; }
.snap { white-space: nowrap; }
.links a { margin-right: 8px; white-space: nowrap; }
.variant { background: #fff4d6; border: 1px solid #f0d88a; border-radius: 8px; padding: 8px 14px; margin: 0 0 18px;
  font-size: 13px; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 8px 0 24px; }
"""


_HATCH = "repeating-linear-gradient(45deg,#d64545 0 2px,#fbe7e7 2px 5px)"


def _badge(status: str) -> str:
    strong, _ = _colour(_RUN_COLOURS.get(status, status))
    return f'<span class="badge" style="background:{strong}">{_e(status)}</span>'


def _when(text: Any) -> str:
    ts = parse_iso(text) if isinstance(text, str) else None
    if ts is None:
        return "–"
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _value(value: Any) -> str:
    if value is None:
        return '<span class="null">null</span>'
    if isinstance(value, (list, tuple)):
        return _e(", ".join(map(str, value))) if value else '<span class="null">none</span>'
    return f"<code>{_e(value)}</code>"


def _kv(rows: Iterable[tuple[str, str]]) -> str:
    return '<table class="kv">' + "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _command(run: Mapping[str, Any]) -> str:
    argv = run.get("argv")
    if isinstance(argv, list) and argv:
        return "python -m ridelake " + shlex.join(str(a) for a in argv)
    return f"python -m ridelake {run.get('command', 'run')}"


def _header(run: Mapping[str, Any], status: str, counts: Mapping[str, int]) -> str:
    duration = run.get("duration_s")
    if duration is None:
        t0 = parse_iso(run.get("started_at"))
        ends = [parse_iso(nb.get("finished_at")) for nb in run.get("notebooks") or []]
        last = max([t for t in ends if t is not None], default=None)
        duration_text = f"≥ {_seconds(last - t0)}" if t0 is not None and last is not None else "–"
    else:
        duration_text = _seconds(duration)
    total = sum(counts.values())
    done = ", ".join(f"{n} {s}" for s, n in counts.items())
    cards = [("Started (UTC)", _when(run.get("started_at"))), ("Finished (UTC)", _when(run.get("finished_at"))),
             ("Duration", duration_text), ("Notebooks", f"{total}" + (f" ({done})" if done else "")),
             ("Jobs", str(run.get("jobs", "–"))
              + (f" · peak {run['peak_parallelism']}" if run.get("peak_parallelism") else "")),
             ("Exit status", str(run.get("exit_code") if run.get("exit_code") is not None else "–"))]
    params = [(k, v) for k, v in (run.get("params") or {}).items() if v is not None]
    chips = "".join(f'<span class="chip"><span class="k">{_e(k)}</span> {_e(_fit(str(v), 60))}</span>'
                    for k, v in params)
    return (f'<header class="top"><h1>ridelake run <span class="id">{_e(run.get("run_id", "?"))}</span>'
            f'{_badge(status)}</h1><div class="sub mono">{_e(_command(run))}</div>'
            + (f'<div class="chips">{chips}</div>' if chips else "") +
            '<div class="cards">' + "".join(f'<div class="card"><div class="k">{_e(k)}</div>'
                                            f'<div class="v">{_e(v)}</div></div>' for k, v in cards) +
            "</div></header>")


def _legend(statuses: Iterable[str]) -> str:
    shown = ["succeeded", "failed", "skipped", "up-to-date"]
    shown += sorted({s for s in statuses if s not in shown})
    spans = [f'<span style="--c:{_colour(s)[0]}">{_e(s)}</span>' for s in shown]
    return '<div class="legend">' + "".join(spans) + "</div>"


def _snapshots(nb: Mapping[str, Any]) -> str:
    writes = nb.get("writes") or {}
    if not writes:
        return '<span class="muted">–</span>'
    return "<br>".join(f'<span class="snap"><code>{_e(sid)}</code></span>'
                       + (f' <span class="muted">({_e(t)})</span>' if len(writes) > 1 or t != nb.get("table") else "")
                       for t, sid in writes.items())


def _reads(nb: Mapping[str, Any]) -> str:
    reads = nb.get("reads") or {}
    if not reads:
        return ""
    items = "".join(f"<div><code>{_e(t)}</code> @ <code>{_e(s)}</code></div>" for t, s in reads.items())
    return f"<details><summary>read {len(reads)} table{'s' if len(reads) != 1 else ''}</summary>{items}</details>"


def _error(nb: Mapping[str, Any], page: str | None) -> str:
    err = nb.get("error")
    if not err:
        return ""
    text = str(err)
    short = text if len(text) <= 400 else text[:399] + "…"
    kind = "err" if nb.get("status") == "failed" else "err note"
    out = f'<div class="{kind}">{_e(short)}</div>'
    cell = nb.get("error_cell")
    if cell is not None:
        where = f"failing cell {_e(cell)}"
        if page and nb.get("status") == "failed":
            where = f'<a href="{_e(page)}#papermill-error-cell">{where}</a>'
        out += f'<div class="err-cell">{where}</div>'
    return out


def _why(nb: Mapping[str, Any]) -> str:
    """Why it ran, or which run's result an up-to-date notebook kept (when the record says)."""
    if nb.get("up_to_date_since"):
        return f'<div class="why">kept from run <code>{_e(nb["up_to_date_since"])}</code></div>'
    reason = nb.get("run_reason")
    if reason and reason != "up-to-date":
        return f'<div class="why">{_e(reason)}</div>'
    return ""


def _notebook_rows(run: Mapping[str, Any], pages: _Pages, run_dir: Path) -> str:
    rows = []
    for i, nb in enumerate(run.get("notebooks") or [], 1):
        key = str(nb.get("key") or _name(nb))
        status = str(nb.get("status", "?"))
        page = pages.pages.get(key)
        name = f'<a href="{_e(page)}">{_e(key)}</a>' if page else _e(key)
        links = []
        if page:
            links.append(f'<a href="{_e(page)}">view</a>')
        for attempt, href in pages.attempts.get(key, []):
            links.append(f'<a href="{_e(href)}">attempt {attempt}</a>')
        if not pages.no_code:
            if (run_dir / output_file(key)).is_file():
                links.append(f'<a href="{_e(_href(output_file(key)))}">.ipynb</a>')
            attempts = int(nb.get("attempts") or 0)
            log = log_file(key, attempts)
            if attempts and (run_dir / log).is_file() and (run_dir / log).stat().st_size:
                links.append(f'<a href="{_e(_href(log))}">log</a>')
        if key in pages.problems:
            links.append(f'<span class="muted" title="{_e(pages.problems[key])}">not rendered</span>')
        elif not page:
            links.append('<span class="muted">{}</span>'.format(
                "not run" if status in ("skipped", "up-to-date") else "no output"))
        rows_written = nb.get("rows_written")
        rows.append(
            f'<tr class="{_e(status)}" data-key="{_e(key)}"><td class="num muted">{i}</td><td class="mono">{name}</td>'
            f'<td>{_badge(status)}{_why(nb)}</td><td class="num">{_e(nb.get("attempts", 0))}</td>'
            f'<td class="num">{_seconds(nb.get("duration_s"))}</td>'
            f'<td><code>{_e(nb.get("table") or "–")}</code></td>'
            f'<td class="num">{f"{rows_written:,}" if isinstance(rows_written, int) else "–"}</td>'
            f'<td>{_snapshots(nb)}{_reads(nb)}</td><td>{_error(nb, page)}</td>'
            f'<td class="links">{"".join(links)}</td></tr>')
    head = ("<tr><th class='num'>#</th><th>notebook</th><th>status</th><th class='num'>attempts</th>"
            "<th class='num'>time</th><th>table</th><th class='num'>rows written</th><th>snapshot id</th>"
            "<th>error</th><th>open</th></tr>")
    return f'<div class="scroll"><table class="notebooks">{head}{"".join(rows)}</table></div>'


def _page(run: Mapping[str, Any], run_dir: Path, pages: _Pages, pipeline: Pipeline | None) -> str:
    status = effective_status(dict(run))
    notebooks = list(run.get("notebooks") or [])
    counts: dict[str, int] = {}
    for nb in notebooks:
        counts[str(nb.get("status", "?"))] = counts.get(str(nb.get("status", "?")), 0) + 1
    params = run.get("params") or {}
    param_rows = [(k, _value(v)) for k, v in params.items()] or [("(none)", "")]
    setting_rows = [
        ("command", f"<code>{_e(_command(run))}</code>"),
        ("params file", _value(run.get("params_file"))),
        ("selectors", _value(run.get("selectors") or [])),
        ("stages", _value(run.get("stages") or [])),
        ("rerun of", _value(run.get("from_failure"))),
        ("warehouse", _value(run.get("warehouse"))),
        ("catalog", _value(run.get("catalog_uri") or "SQLite in the warehouse")),
        ("retries", _value(run.get("retries"))),
        ("host · pid", _value(f"{run.get('host', '?')} · {run.get('pid', '?')}")),
        ("run folder", _value(run.get("run_folder"))),
    ]
    variant = ""
    if pages.no_code:
        variant = ('<div class="variant"><b>Without code.</b> The notebook pages of this report show text, '
                   "tables, charts and errors but no code cells. Rebuild with "
                   f"<code>ridelake report {_e(run.get('run_id', ''))}</code> to include the code.</div>")
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="ridelake-report" content="{'no-code' if pages.no_code else 'code'}">
<title>ridelake run {_e(run.get('run_id', '?'))} · {_e(status)}</title>
<style>{_CSS}</style>
</head>
<body data-run-status="{_e(status)}" data-variant="{'no-code' if pages.no_code else 'code'}">
{_header(run, status, counts)}
<main>
{variant}
<section id="graph"><h2>Pipeline</h2><div class="scroll">{dag_svg(notebooks, pages.pages, pipeline)}</div>
{_legend(counts)}</section>
<section id="timeline"><h2>Timeline</h2><div class="scroll">{gantt_svg(run, pages.pages)}</div>
<div class="legend"><span style="--c:{_HATCH}">failed attempt, retried</span>
<span class="plain">seconds since the run started</span></div></section>
<section id="notebooks"><h2>Notebooks and tables</h2>{_notebook_rows(run, pages, run_dir)}</section>
<div class="grid2">
<section id="parameters"><h2>Parameters</h2>{_kv(param_rows)}</section>
<section id="settings"><h2>Run</h2>{_kv(setting_rows)}</section>
</div>
</main>
<footer>Generated by <code>ridelake report</code> on {generated} ·
<a href="{RUN_FILE}">run.json</a> · notebook pages {'without code' if pages.no_code else 'with code'}</footer>
</body>
</html>
"""



# -- building ------------------------------------------------------------------------------------

def _pipeline_for(run_dir: Path) -> Pipeline | None:
    """The project's DAG when the run folder sits at ``<root>/outputs/runs/<id>``."""
    from ridelake.core.dag import load_pipeline

    folder = run_dir.resolve()
    if folder.parent.name != "runs" or folder.parent.parent.name != "outputs":
        return None
    try:
        return load_pipeline(folder.parents[2], strict=False)
    except (RidelakeError, OSError, ValueError):
        return None


def build_report(run_dir: str | Path, no_code: bool = False, *, pipeline: Pipeline | None = None) -> Path:
    """Write ``<run_dir>/index.html`` and the notebook pages under ``<run_dir>/html/``.

    Args:
        run_dir: the run folder (it holds ``run.json``).
        no_code: render the notebook pages without input cells (for readers who do not read code).
        pipeline: the DAG to draw (default read from the project the run folder belongs to; when
            unavailable, edges come from the tables the notebooks read and wrote).

    Returns:
        The ``index.html`` written.

    Raises:
        ConfigError: no readable ``run.json`` in ``run_dir``.
    """
    folder = Path(run_dir)
    run = read_manifest(folder)
    if pipeline is None:
        pipeline = _pipeline_for(folder)
    tmp = folder / f".{HTML_DIR}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    pages = _Pages(tmp, no_code)
    try:
        for nb in run.get("notebooks") or []:
            key = str(nb.get("key") or _name(nb))
            back = _href(os.path.relpath(folder / REPORT_FILE, (folder / HTML_DIR / key).parent))
            title = f"{key} · run {run.get('run_id', '?')}"
            src = folder / output_file(key)
            if src.is_file():
                href = pages.render(key, src, f"{key}.html", _nav(run, nb, back, no_code), title)
                if href:
                    pages.pages[key] = href
            for n in range(1, int(nb.get("attempts") or 0)):
                old = folder / output_file(key, n)
                if old.is_file():
                    href = pages.render(f"{key}#{n}", old, f"{key}.attempt-{n}.html",
                                        _nav(run, nb, back, no_code, attempt=n), f"{title} · attempt {n}")
                    if href:
                        pages.attempts.setdefault(key, []).append((n, href))
        html_dir = folder / HTML_DIR
        shutil.rmtree(html_dir, ignore_errors=True)
        os.replace(tmp, html_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return write_atomic(folder / REPORT_FILE, _page(run, folder, pages, pipeline))


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
    from ridelake.core.manifest import resolve_run, runs_dir
    from ridelake.core.project import project_root

    root = project_root()
    run_dir = resolve_run(runs_dir(root), args.run_id)
    print(build_report(run_dir, no_code=args.no_code))
    return 0


def register(subparsers: Any) -> None:
    """Add ``report [RUN_ID] [--no-code]`` to the ``ridelake`` command line.

    Args:
        subparsers: the object ``ArgumentParser.add_subparsers`` returned.
    """
    p = subparsers.add_parser("report", help="(re)build a run's HTML report: outputs/runs/<run_id>/index.html",
                              description="Write outputs/runs/<run_id>/index.html and the executed notebooks "
                                          "as HTML under html/; the folder opens from disk or a zip.")
    p.add_argument("run_id", nargs="?", default="latest", metavar="RUN_ID",
                   help="a run id or a unique prefix (default: latest)")
    p.add_argument("--no-code", action="store_true",
                   help="render the notebooks without their code cells (for readers who do not read code)")
    p.set_defaults(func=_cmd_report)
