"""The table checks: each kind passes on good data, fails on bad data and names offending keys."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pandera.pandas as pa
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
        names = [c.name for c in spec.checks]
        assert len(names) == len(set(names)), ident  # failures are mapped back by name


def _dimension(ids, names):
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    return pd.DataFrame({"vehicle_type_id": ids, "name": names, "created_at": ts, "updated_at": ts})


def test_one_lazy_pass_reports_every_failing_check():
    frame = pd.DataFrame({"id": [1, 2, 2, 4], "v": ["x", None, "z", "q"], "r": [0.5, 3.0, 9.0, None],
                          "s": ["a", "b", "c", "a"]})
    checks = [quality.Unique("id"), quality.NotNull("v"), quality.InRange("r", 1, 5),
              quality.AcceptedValues("s", ("a", "b")), quality.NotNull("id")]
    report = quality.run_checks(checks, frame, key=("id",)).set_index("check")
    assert report["passed"].tolist() == [False, False, False, False, True]
    assert report.loc["unique(id)", "failures"] == 2 and report.loc["unique(id)", "sample"] == "id=2"
    assert report.loc["not_null(v)", "sample"] == "id=2"
    assert report.loc["range(1 <= r <= 5)", "failures"] == 2  # one row below, one above
    assert report.loc["range(1 <= r <= 5)", "sample"] == "id=1; id=2"
    assert report.loc["accepted_values(s in ['a', 'b'])", "sample"] == "id=2"


def test_validate_reports_two_failing_checks_of_one_table():
    with pytest.raises(CheckError) as err:
        quality.validate("silver.vehicle_type", _dimension([1, 1, 2], ["Auto", "Bike", None]), show=False)
    report = err.value.report.set_index("check")
    assert err.value.args[0].startswith("silver.vehicle_type: 2 of 3 checks failed")
    assert not report.loc["unique(vehicle_type_id)", "passed"]
    assert not report.loc["not_null(vehicle_type_id, name, created_at, updated_at)", "passed"]
    assert report.loc["not_null(vehicle_type_id, name, created_at, updated_at)", "sample"] == "vehicle_type_id=2"
    assert report.loc["unique(name)", "passed"]


def test_table_schema_is_one_pandera_schema_with_the_frames_given():
    schema = quality.table_schema("silver.ride")
    assert isinstance(schema, pa.DataFrameSchema)
    assert not schema.columns["booking_id"].nullable and schema.columns["booking_id"].unique
    names = [c.name for c in schema.checks]
    assert "rows = silver.booking rows with status Completed" not in names  # its frames are absent
    refs = {"silver.booking": pd.DataFrame({"booking_id": ["B1"], "booking_status_id": [1]}),
            "silver.booking_status": pd.DataFrame({"booking_status_id": [1], "name": ["Completed"]})}
    with_refs = quality.table_schema("silver.ride", refs)
    assert "rows = silver.booking rows with status Completed" in [c.name for c in with_refs.checks]


def test_multi_column_unique_ignores_rows_with_a_null_key():
    check = quality.Unique("a", "b")
    frame = pd.DataFrame({"id": [1, 2, 3, 4], "a": [1, 1, 1, 1], "b": [None, None, 5, 5]})
    bad = run(check, frame)
    assert not bad["passed"] and bad["failures"] == 2 and bad["sample"] == "id=3; id=4"
    assert run(check, frame.iloc[:3])["passed"]


def test_relationship_to_a_reference_with_repeated_and_null_values():
    check = quality.Relationship("fk", "fact", "ref")
    ref = pd.DataFrame({"ref": pd.Series(["B1", "B1", None, "B2"], dtype="str")})
    frame = pd.DataFrame({"id": [1, 2, 3, 4], "fk": pd.Series(["B2", "B1", None, "B1"], dtype="str")})
    assert run(check, frame, {"fact": ref})["passed"]
    bad = run(check, frame.assign(fk=pd.Series(["B2", "B9", None, "B1"], dtype="str")), {"fact": ref})
    assert not bad["passed"] and bad["failures"] == 1 and bad["sample"] == "id=2"


def test_multi_column_unique_of_strings_finds_the_repeated_rows():
    check = quality.Unique("f", "m", "r")
    frame = pd.DataFrame({"id": range(5), "f": pd.Series(["x.csv"] * 5, dtype="str"),
                          "m": pd.Series(["2024-01", "2024-01", "2024-02", "2024-02", "2024-01"], dtype="str"),
                          "r": [1, 2, 1, 2, 3]})
    assert run(check, frame)["passed"]
    bad = run(check, frame.assign(r=[1, 2, 1, 2, 2]))
    assert not bad["passed"] and bad["failures"] == 2 and bad["sample"] == "id=1; id=4"


def test_missing_column_fails_the_checks_on_it():
    frame = pd.DataFrame({"id": [1, 2]})
    report = quality.run_checks([quality.NotNull("v"), quality.Unique("id", "v"), quality.Unique("id")],
                                frame, key=("id",))
    assert report["passed"].tolist() == [False, False, True]
    assert report["sample"].iloc[0] == "column 'v' is missing" == report["sample"].iloc[1]


def test_an_invariant_that_raises_fails_with_the_error():
    check = quality.Invariant("needs x", lambda f, r: None if f["x"].sum() else "zero")
    bad = run(check, pd.DataFrame({"id": [1]}))
    assert not bad["passed"] and bad["failures"] == 1 and "KeyError" in bad["sample"]


def test_shown_report_has_a_sample_column_only_when_a_check_failed():
    passed = quality.run_checks([quality.Unique("id")], pd.DataFrame({"id": [1, 2]}))
    assert list(quality._shown(passed).columns) == ["check", "passed", "failures"]
    mixed = quality.run_checks([quality.Unique("id"), quality.NotNull("id")], pd.DataFrame({"id": [1, 1]}),
                               key=("id",))
    shown = quality._shown(mixed)
    assert list(shown.columns) == ["check", "passed", "failures", "sample"]
    assert shown["sample"].tolist() == ["id=1", "–"]


def test_declarations_need_neither_quality_nor_pandera():
    code = ("import sys, ridelake.tables.schemas; "
            "print('ridelake.tables.quality' in sys.modules, 'pandera' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
