"""Database URLs are shown with their passwords masked (core.redact), wherever they are shown."""

from __future__ import annotations

import json

import pytest

from ridelake.core.redact import redact, redact_text


@pytest.mark.parametrize("uri, shown", [
    ("postgresql+psycopg://user:s3cret@db.example:5432/ridelake",
     "postgresql+psycopg://user:***@db.example:5432/ridelake"),
    ("postgresql+psycopg://user:p%40ss%2Fw@host/db", "postgresql+psycopg://user:***@host/db"),
    ("postgresql+psycopg://user:p@ss@host/db", "postgresql+psycopg://user:***@host/db"),  # a raw "@" in it
    ("postgresql+psycopg://user:a:b@host/db", "postgresql+psycopg://user:***@host/db"),
    ("postgresql+psycopg://user@host/db?password=s3cret&sslmode=require",
     "postgresql+psycopg://user@host/db?password=***&sslmode=require"),
    ("postgresql+psycopg://user@host/db", "postgresql+psycopg://user@host/db"),
    ("sqlite:////tmp/wh/catalog.db?timeout=30", "sqlite:////tmp/wh/catalog.db?timeout=30"),
    (None, None),
])
def test_redact(uri, shown):
    assert redact(uri) == shown


def test_redact_masks_what_it_cannot_parse():
    assert redact("weird://u:s3cret@[not a host") == "weird://u:***@[not a host"
    assert "s3cret" not in redact("postgresql+psycopg://u:s3cret@h:notaport/db")


def test_redact_text_masks_every_url_and_dsn_password_in_a_message():
    text = ("cannot reach postgresql+psycopg://app:s3cret@10.0.0.1/db (also mysql://x:y2@h/d); "
            "dsn: host=h password=hunter2 user=app; mail root@host")
    out = redact_text(text)
    assert "s3cret" not in out and "y2@" not in out and "hunter2" not in out
    assert "postgresql+psycopg://app:***@10.0.0.1/db" in out and "mail root@host" in out
    assert redact_text(None) is None


def test_the_run_header_and_the_adapter_never_carry_the_password(monkeypatch, tmp_path):
    from ridelake.tables.adapter import RideBookings

    monkeypatch.setenv("RIDELAKE_HOME", str(tmp_path))
    monkeypatch.setenv("RIDELAKE_CATALOG_URI", "postgresql+psycopg://app:s3cret@127.0.0.1:5432/db")
    project = RideBookings(root=tmp_path)
    assert project.catalog() == "postgresql+psycopg://app:***@127.0.0.1:5432/db"
    assert project.kernel_env()["RIDELAKE_CATALOG_URI"].endswith(":s3cret@127.0.0.1:5432/db")  # kernels need it
    monkeypatch.delenv("RIDELAKE_CATALOG_URI")
    assert project.catalog() is None


def test_a_rollback_record_shows_the_catalog_masked(monkeypatch, tmp_path):
    from ridelake.ops import maintenance

    monkeypatch.setenv("RIDELAKE_HOME", str(tmp_path))
    monkeypatch.setenv("RIDELAKE_CATALOG_URI", "postgresql+psycopg://app:s3cret@127.0.0.1:5432/db")
    result = maintenance.RollbackResult(run_id="r2", rolled_back_run="r1")
    record = maintenance._rollback_record(result, "succeeded", 0.0, str(tmp_path / "wh"))
    text = json.dumps(record.to_json())
    assert "s3cret" not in text and "app:***@127.0.0.1" in text
