"""The package's shape: the import-linter contracts hold, and no module imports itself in a circle."""

from __future__ import annotations

import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def _cycles(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        return list(exc.args[1])
    return None


def test_no_import_cycles_between_modules() -> None:
    g = grimp.build_graph("ridelake")
    graph = {m: set(g.find_modules_directly_imported_by(m)) for m in g.modules}
    # a package's __init__ importing its own submodules is not a cycle worth failing on
    for m, deps in graph.items():
        graph[m] = {d for d in deps if not m.startswith(d + ".")}
    assert _cycles(graph) is None, " -> ".join(_cycles(graph) or [])


def test_the_cycle_check_can_fail() -> None:
    assert _cycles({"a": {"b"}, "b": {"a"}}) is not None
    with pytest.raises(AssertionError):
        assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is None
