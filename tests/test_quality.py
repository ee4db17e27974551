"""The table checks: each kind passes on good data, fails on bad data and names offending keys."""

from __future__ import annotations

import pandas as pd
import pytest

from ridelake.tables import quality
from ridelake.errors import CheckError
from ridelake.tables.schemas import TABLES, table_spec


def run(check, frame, refs=None, key=("id",)):
    """One check's result as a dict (check, passed, failures, sample)."""
    return quality.run_checks([check], frame, refs, key).iloc[0].to_dict()


def test_unique():
    ok = run(quality.Unique("id"), pd.DataFrame({"id": [1, 2, 3]}))
    assert ok["passed"] and ok["failures"] == 0
    bad = run(quality.Unique("id"), pd.DataFrame({"id": [1, 2, 2]}))
    assert not bad["passed"] and bad["failures"] == 2 and "id=2" in bad["sample"]
    pair = run(quality.Unique("a", "b"), pd.DataFrame({"id": [1, 2], "a": [1, 1], "b": [1, 2]}))
    assert pair["passed"]


def test_not_null():
    bad = run(quality.NotNull("v"), pd.DataFrame({"id": [1, 2, 3], "v": ["x", None, "z"]}))
    assert not bad["passed"] and bad["failures"] == 1 and bad["sample"] == "id=2"
    assert bad["check"] == "not_null(v)"


def test_accepted_values_ignore_nulls():
    check = quality.AcceptedValues("s", ("a", "b"))
    assert run(check, pd.DataFrame({"id": [1, 2], "s": ["a", None]}))["passed"]
    bad = run(check, pd.DataFrame({"id": [1, 2], "s": ["a", "c"]}))
    assert not bad["passed"] and "id=2" in bad["sample"]


def test_in_range():
    check = quality.InRange("r", 1, 5)
    assert run(check, pd.DataFrame({"id": [1, 2], "r": [1.0, None]}))["passed"]
    assert not run(check, pd.DataFrame({"id": [1, 2], "r": [0.5, 5.0]}))["passed"]


def test_relationship():
    check = quality.Relationship("fk", "dim", "pk")
    dim = pd.DataFrame({"pk": [1, 2]})
    assert run(check, pd.DataFrame({"id": [1, 2, 3], "fk": [1, 2, None]}), {"dim": dim})["passed"]
    bad = run(check, pd.DataFrame({"id": [1, 2], "fk": [1, 9]}), {"dim": dim})
    assert not bad["passed"] and bad["sample"] == "id=2"
    missing = run(check, pd.DataFrame({"id": [1], "fk": [1]}), {})
    assert not missing["passed"] and "needs dim" in missing["sample"]


def test_invariant():
    check = quality.Invariant("two rows", lambda f, r: None if len(f) == 2 else f"found {len(f)}")
    assert run(check, pd.DataFrame({"id": [1, 2]}))["passed"]
    bad = run(check, pd.DataFrame({"id": [1]}))
    assert not bad["passed"] and bad["sample"] == "found 1"


def test_validate_raises_naming_table_check_and_keys():
    frame = pd.DataFrame({"vehicle_type_id": [1, 1], "name": ["Auto", "Bike"],
                          "created_at": pd.Timestamp("2024-01-01", tz="UTC"),
                          "updated_at": pd.Timestamp("2024-01-01", tz="UTC")})
    with pytest.raises(CheckError) as err:
        quality.validate("silver.vehicle_type", frame, show=False)
    msg = str(err.value)
    assert msg.startswith("silver.vehicle_type: 1 of 3 checks failed; nothing was written")
    assert "unique(vehicle_type_id)" in msg and "vehicle_type_id=1" in msg
    assert err.value.table == "silver.vehicle_type"
    assert len(err.value.report) == 3 and err.value.report["passed"].sum() == 2


def test_every_table_declares_checks_with_known_columns():
    assert len(TABLES) == 22
    for ident, spec in TABLES.items():
        assert spec.checks, ident
        cols = set(spec.column_names)
        for check in spec.checks:
            used = getattr(check, "columns", ()) or (getattr(check, "column", None),)
            assert set(c for c in used if c) <= cols, (ident, check.name)
        assert set(spec.key) <= cols and set(spec.partition_by) <= cols
        assert table_spec(ident) is spec
