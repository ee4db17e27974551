"""Choosing notebooks with dbt-like selectors.

Forms (several may be given; the result is their union, in dependency order):

- ``silver/customer``            one notebook (``notebooks/silver/customer.ipynb`` also works)
- ``silver/customer+``           it and everything downstream of it
- ``+gold/customer_analytics``   it and everything upstream of it
- ``+silver/booking+``           both directions
- ``silver``                     a whole layer (``silver+``, ``+gold`` expand every notebook in it)

No selector selects everything. An unknown name is a :class:`~ridelake.errors.SelectionError`
that lists close matches.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable

from ridelake.core.dag import Pipeline
from ridelake.errors import SelectionError

__all__ = [
    "named", "Selector", "parse_selector", "select"]


@dataclass(frozen=True)
class Selector:
    """One parsed selector.

    Attributes:
        base: a notebook name (``silver/customer``) or a layer (``silver``).
        upstream: also select everything upstream (leading ``+``).
        downstream: also select everything downstream (trailing ``+``).
    """

    base: str
    upstream: bool = False
    downstream: bool = False


def parse_selector(text: str) -> Selector:
    """Parse one selector.

    Args:
        text: e.g. ``+gold/customer_analytics`` or ``notebooks/silver/customer.ipynb+``.

    Returns:
        The :class:`Selector`.

    Raises:
        SelectionError: empty or malformed text.
    """
    raw = text.strip()
    up = raw.startswith("+")
    down = raw.endswith("+") and len(raw) > 1
    base = raw[1 if up else 0: len(raw) - (1 if down else 0)].strip()
    base = base.replace("\\", "/").strip("/")
    if base.startswith("notebooks/"):
        base = base[len("notebooks/"):]
    if base.endswith(".ipynb"):
        base = base[: -len(".ipynb")]
    if not base or "+" in base or base.count("/") > 1 or any(c.isspace() for c in base):
        raise SelectionError(
            f"malformed selector {text!r}: use layer/table, layer/table+, +layer/table or a layer"
        )
    return Selector(base, up, down)


def _resolve_base(pipeline: Pipeline, sel: Selector, text: str) -> list[str]:
    if "/" in sel.base:
        if sel.base in pipeline.notebooks:
            return [sel.base]
    else:
        layer = [n for n in pipeline.names if pipeline.notebooks[n].layer == sel.base]
        if layer:
            return layer
    candidates = list(pipeline.notebooks) + pipeline.layers
    close = difflib.get_close_matches(sel.base, candidates, n=5, cutoff=0.5)
    if not close and "/" in sel.base:
        # a known table in the wrong layer (``gold/customer``) or a bare table name
        table = sel.base.split("/", 1)[1]
        close = [n for n in pipeline.notebooks if n.split("/", 1)[1] == table]
    elif not close:
        close = [n for n in pipeline.notebooks if n.split("/", 1)[1] == sel.base]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise SelectionError(f"unknown notebook or layer {text!r}{hint} (known layers: {', '.join(pipeline.layers)})")


def select(pipeline: Pipeline, selectors: Iterable[str] = ()) -> list[str]:
    """Resolve selectors to notebook names.

    Args:
        pipeline: the pipeline.
        selectors: selector strings; none means every notebook.

    Returns:
        The selected names in dependency order.

    Raises:
        SelectionError: a selector is malformed or names nothing known.
    """
    texts = [s for s in selectors]
    if not texts:
        return pipeline.names
    chosen: set[str] = set()
    for text in texts:
        sel = parse_selector(text)
        for name in _resolve_base(pipeline, sel, text):
            chosen.add(name)
            if sel.upstream:
                chosen |= pipeline.upstream(name)
            if sel.downstream:
                chosen |= pipeline.downstream(name)
    return pipeline.ordered(chosen)


def named(pipeline: Pipeline, selectors: Iterable[str] = ()) -> set[str]:
    """The notebooks a selection names on their own (``silver/customer``, not ``silver/customer+``
    nor a layer): the runner runs these even when they are up-to-date."""
    out: set[str] = set()
    for text in selectors:
        sel = parse_selector(text)
        if "/" in sel.base and not sel.upstream and not sel.downstream and sel.base in pipeline.notebooks:
            out.add(sel.base)
    return out
