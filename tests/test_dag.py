"""The DAG read from pipeline.yaml: specs, parameters, edges, waves, validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ridelake.core.dag import NotebookSpec, Pipeline, layered, load_pipeline, notebook_parameters
from ridelake.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path, params_source: str | None) -> None:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# title"]}]
    if params_source is not None:
        cells.append({"cell_type": "code", "metadata": {"tags": ["parameters"]}, "execution_count": None,
                      "outputs": [], "source": params_source.splitlines(keepends=True)})
    cells.append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                  "source": ["not_a_param = 1\n"]})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def _project(tmp: Path, yaml_text: str, notebooks: dict[str, str | None]) -> Path:
    (tmp / "notebooks").mkdir(parents=True)
    (tmp / "notebooks" / "pipeline.yaml").write_text(yaml_text)
    for name, src in notebooks.items():
        _notebook(tmp / "notebooks" / f"{name}.ipynb", src)
    return tmp


SMALL = """
handoffs: [staging.x]
notebooks:
  a/load: {reads: [], writes: [staging.x, a.load]}
  a/one: {reads: [staging.x], writes: [a.one]}
  a/two: {reads: [staging.x], writes: [a.two]}
  b/join: {reads: [a.one, a.two], writes: [b.join]}
"""


def test_notebook_parameters_parses_the_tagged_cell(tmp_path: Path) -> None:
    nb = tmp_path / "x.ipynb"
    # the names papermill itself finds and can override: plain and annotated assignments
    _notebook(nb, "%load_ext autoreload\nsource_file = 'f.csv'  # c\nextraction_date: str = None\n"
                  "a = 1\nb = 2  # help\n!echo hi\n")
    assert notebook_parameters(nb) == ("source_file", "extraction_date", "a", "b")
    _notebook(nb, None)
    assert notebook_parameters(nb) == ()
    _notebook(nb, "x = (\n")
    with pytest.raises(ConfigError, match="not valid Python"):
        notebook_parameters(nb)


def test_load_small_pipeline(tmp_path: Path) -> None:
    root = _project(tmp_path, SMALL, {"a/load": "source_file = None\nextraction_date = None",
                                      "a/one": "extraction_month = None", "a/two": None,
                                      "b/join": "target_date = None"})
    pipe = load_pipeline(root)
    assert pipe.names == ["a/load", "a/one", "a/two", "b/join"]
    assert pipe.spec("a/load").parameters == ("source_file", "extraction_date")
    assert pipe.spec("a/two").parameters == ()
    assert pipe.spec("a/load").table == "a.load"  # the hand-off staging.x is not a table
    assert not pipe.is_table("staging.x") and pipe.is_table("a.one")
    assert pipe.waves() == [["a/load"], ["a/one", "a/two"], ["b/join"]]
    assert pipe.upstream("b/join") == {"a/load", "a/one", "a/two"}
    assert pipe.downstream("a/one") == {"b/join"}
    assert pipe.dependencies("b/join") == {"a/one", "a/two"}
    # a selection waits for selected upstream notebooks even through unselected ones
    assert pipe.waves(["b/join", "a/load"]) == [["a/load"], ["b/join"]]


def test_table_is_the_first_iceberg_dataset() -> None:
    handoffs = frozenset({"staging.delivery"})
    spec = NotebookSpec("bronze/prepare", Path("x"), (), ("staging.delivery", "bronze.rejected_row"), (), handoffs)
    assert spec.table == "bronze.rejected_row"
    assert spec.layer == "bronze"
    assert NotebookSpec("x/y", Path("x"), (), ("staging.delivery",), (), handoffs).table is None


def test_cycle_is_reported(tmp_path: Path) -> None:
    text = """
notebooks:
  a/x: {reads: [a.z], writes: [a.x]}
  a/y: {reads: [a.x], writes: [a.y]}
  a/z: {reads: [a.y], writes: [a.z]}
"""
    root = _project(tmp_path, text, {"a/x": None, "a/y": None, "a/z": None})
    with pytest.raises(ConfigError, match="cycle: a/x -> a/z -> a/y -> a/x|cycle: .*a/"):
        load_pipeline(root)


def test_layered_rejects_cycles_and_orders_waves() -> None:
    assert layered(["a", "b", "c"], {"b": ["a"], "c": ["a"]}) == [["a"], ["b", "c"]]
    with pytest.raises(ConfigError, match="cycle"):
        layered(["a", "b"], {"a": ["b"], "b": ["a"]})


def test_validation_missing_and_undescribed(tmp_path: Path) -> None:
    root = _project(tmp_path, SMALL, {"a/load": None, "a/one": None, "a/two": None, "b/extra": None})
    with pytest.raises(ConfigError) as info:
        load_pipeline(root)
    assert "missing: notebooks/b/join.ipynb" in str(info.value)
    assert "not described in pipeline.yaml: notebooks/b/extra.ipynb" in str(info.value)
    assert load_pipeline(root, strict=False).names[-1] == "b/join"


def test_malformed_pipeline_yaml(tmp_path: Path) -> None:
    root = _project(tmp_path, "notebooks:\n  badname: {reads: [], writes: []}\n", {})
    with pytest.raises(ConfigError, match="<layer>/<table>"):
        load_pipeline(root)
    (root / "notebooks" / "pipeline.yaml").write_text("notebooks:\n  a/b: {reads: [], writes: [], oops: 1}\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_pipeline(root, strict=False)


def test_the_project_pipeline() -> None:
    pipe = load_pipeline(ROOT, strict=False)
    import yaml

    described = yaml.safe_load((ROOT / "notebooks" / "pipeline.yaml").read_text())["notebooks"]
    assert list(pipe.notebooks) == list(described)
    waves = pipe.waves()
    assert waves[0] == ["bronze/prepare"]
    assert len(waves[1]) == 9 and all(n.startswith("bronze/") for n in waves[1])
    assert "silver/booking" in pipe.upstream("gold/customer_analytics")
    assert pipe.spec("bronze/prepare").table == "bronze.rejected_row"
    assert pipe.downstream("silver/booking") >= {"silver/ride", "gold/daily_booking_summary"}
    assert isinstance(pipe, Pipeline)


def test_parameter_names_are_cached_by_cell_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ridelake.core import dag

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = _project(tmp_path, SMALL, {"a/load": "source_file = None\nextraction_date = None",
                                      "a/one": "extraction_month = None", "a/two": None,
                                      "b/join": "target_date = None"})
    first = load_pipeline(root)
    cache = json.loads(dag.parameters_cache().read_text())
    assert sorted(map(tuple, cache.values())) == [("extraction_month",), ("source_file", "extraction_date"),
                                                   ("target_date",)]
    # a cached cell is not parsed again: a poisoned entry shows it is used
    key = next(k for k, v in cache.items() if v == ["target_date"])
    dag.parameters_cache().write_text(json.dumps({**cache, key: ["from_cache"]}))
    assert load_pipeline(root).spec("b/join").parameters == ("from_cache",)
    # an edited cell is parsed (and cached) anew
    _notebook(root / "notebooks" / "b" / "join.ipynb", "target_date = None\nmore = 1")
    assert load_pipeline(root).spec("b/join").parameters == ("target_date", "more")
    assert first.spec("a/load").parameters == ("source_file", "extraction_date")
