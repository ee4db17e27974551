"""Settings, paths and parameters."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ridelake.tables import config
from ridelake.errors import ConfigError, ParameterError


def test_warehouse_and_catalog_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("RIDELAKE_WAREHOUSE", raising=False)
    monkeypatch.delenv("RIDELAKE_CATALOG_URI", raising=False)
    monkeypatch.setenv("RIDELAKE_HOME", str(tmp_path))
    assert config.warehouse_location() == str(tmp_path / "warehouse")
    assert config.catalog_uri() == f"sqlite:///{tmp_path / 'warehouse' / 'catalog.db'}?timeout=30"


def test_env_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("RIDELAKE_WAREHOUSE", str(tmp_path / "wh"))
    assert config.catalog_uri().startswith(f"sqlite:///{tmp_path / 'wh'}")
    monkeypatch.setenv("RIDELAKE_CATALOG_URI", "postgresql+psycopg://u@h/db")
    assert config.catalog_uri() == "postgresql+psycopg://u@h/db"
    monkeypatch.setenv("RIDELAKE_WAREHOUSE", "s3://bucket/wh/")
    assert config.warehouse_location() == "s3://bucket/wh"
    assert not config.is_local_warehouse()
    monkeypatch.delenv("RIDELAKE_CATALOG_URI")
    with pytest.raises(ConfigError, match="RIDELAKE_CATALOG_URI"):
        config.catalog_uri()


def test_project_root_is_found_from_a_notebook_folder(monkeypatch):
    monkeypatch.delenv("RIDELAKE_HOME", raising=False)
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root / "notebooks" / "bronze")
    assert config.project_root() == root
    assert config.resolve_path("data/x.csv") == root / "data" / "x.csv"


def test_validate_params():
    assert config.validate_params({"extraction_date": "2024-12-31", "extraction_month": "null"}) == {
        "extraction_date": "2024-12-31", "extraction_month": None}
    assert config.validate_params({"target_date": dt.date(2024, 1, 2)}) == {"target_date": "2024-01-02"}
    for bad in ({"extraction_date": "2024-02-30"}, {"extraction_date": "31/12/2024"},
                {"extraction_month": "2024-13"}, {"nope": 1}):
        with pytest.raises(ParameterError):
            config.validate_params(bad)


def test_run_parameters_defaults_to_today(monkeypatch, tmp_path):
    monkeypatch.setenv("RIDELAKE_HOME", str(tmp_path))
    p = config.run_parameters("data/f.csv")
    assert p.extraction_date == config.today_utc()
    assert p.source_file == tmp_path / "data" / "f.csv"
    assert p.as_dict()["extraction_month"] is None


def test_params_file(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("source_file: data/x.csv\nextraction_date: 2024-12-31\nextraction_month: null\n")
    assert config.load_params_file(f) == {"source_file": "data/x.csv", "extraction_date": "2024-12-31",
                                          "extraction_month": None}
    f.write_text("bogus: 1\n")
    with pytest.raises(ParameterError, match="p.yaml: unknown parameter"):
        config.load_params_file(f)
    with pytest.raises(ConfigError, match="not found"):
        config.load_params_file(tmp_path / "missing.yaml")


def test_default_params_file_is_valid():
    root = Path(__file__).resolve().parents[1]
    params = config.load_params_file(root / "params" / "default.yaml")
    assert set(params) == set(config.PARAMETER_NAMES)


def test_run_context(monkeypatch):
    monkeypatch.setenv("RIDELAKE_RUN_ID", "r1")
    monkeypatch.setenv("RIDELAKE_NOTEBOOK", "silver/customer")
    monkeypatch.delenv("RIDELAKE_PARAMS_HASH", raising=False)
    assert config.run_context() == {"ridelake.run-id": "r1", "ridelake.notebook": "silver/customer"}
