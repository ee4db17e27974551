"""The fault suite (``make reliability``): its pieces on tiny inputs, every check failing on the
outcome issue 12 reported (or another wrong one) and passing on the right one, and, ``slow``, every
scenario run for real at a small size (1,500 rows, input scenarios loading bronze only, one kill
point; ``make reliability`` runs the whole pipeline per input scenario and six kill points).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pandas as pd
import pytest

from ridelake.reliability import checks
from ridelake.reliability.deliveries import DEFECTS, Delivery, count_lines
from ridelake.reliability.model import KILL_POINTS, Observation, Rows
from ridelake.reliability.scenarios import scenarios
from ridelake.reliability.suite import Result, evaluate, exit_code, markdown, prepare, render
from ridelake.reliability.workspace import CliRun, compare_tables, stop_all
from ridelake.tables.generate import write_csv
from ridelake.tables.source import prepare_file

ROOT = Path(__file__).resolve().parents[1]


def _run(code: int | None = 0, stdout: str = "", stderr: str = "", manifest: dict | None = None,
         argv: list[str] | None = None) -> CliRun:
    return CliRun(argv or ["run"], code, stdout, stderr, manifest, 1.0)


def _nb(key: str, **kw) -> dict:
    return {"run_id": "r1", "notebooks": [{"key": key, **kw}]}


# -- the pieces -----------------------------------------------------------------------------------

def test_lines_are_counted_as_the_contract_defines_them(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_bytes(b"h1,h2\r\na,b\r\n\r\nc,d\ne,f\rg,h")
    assert count_lines(f) == (4, 1) and count_lines(f).total == 5
    f.write_bytes(gzip.compress(b"h\r\nx\r\ny\r\n"))  # gzip whatever the name
    assert count_lines(f).total == 2
    f.write_bytes(b"")
    assert count_lines(f).total == 0
    f.write_bytes(b"h\r\n")
    assert count_lines(f).total == 0


def test_defective_deliveries_are_rejected_exactly_where_the_suite_expects(tmp_path: Path) -> None:
    """The suite's own defect lines, through the real prepare step (in-process, no kernel)."""
    base = tmp_path / "base.csv"
    write_csv(base, rows=200, seed=3)
    delivery = Delivery.read(base)
    assert delivery.whole() == base.read_bytes()
    for key, defects in DEFECTS.items():
        content, expected = delivery.with_defects(defects, blank_lines=2)
        f = tmp_path / f"{key}.csv"
        f.write_bytes(content)
        prepared = prepare_file(f)
        got = dict(zip(prepared.rejected["source_row"], prepared.rejected["reason"]))
        assert set(got) == set(expected), key
        assert all(re.search(expected[r], got[r]) for r in got), (key, got)
        assert prepared.accepted_rows == 200 and count_lines(f) == (200 + len(defects), 2)
        assert len(set(prepared.accepted["booking_id"])) == 200


def test_tables_compare_by_sorted_rows_without_the_write_times() -> None:
    ref = {"t": pd.DataFrame({"a": [1, 2], "b": [0.1, None], "created_at": [1, 2], "source_row": [1, 2]})}
    same = {"t": pd.DataFrame({"a": [2, 1], "b": [None, 0.1], "created_at": [9, 9], "source_row": [1, 2]})}
    assert compare_tables(ref, same, ignore={"source_row"}) == []
    assert compare_tables(ref, same) != []  # source_row moved
    changed = {"t": pd.DataFrame({"a": [1, 2], "b": [0.1000001, None], "created_at": [1, 2], "source_row": [1, 2]})}
    assert re.match(r"t: 1 reference row\(s\) missing, 1 other row", compare_tables(ref, changed)[0])
    assert compare_tables(ref, {"t": None}) == ["t: 2 reference row(s) missing, 0 other row(s), e.g. ('1', '0.1', '1')"]
    assert compare_tables({"t": None}, {"t": None}) == []


def test_every_scenario_of_the_issue_is_there() -> None:
    keys = [s.key for s in scenarios()]
    assert len(keys) == len(set(keys))
    wanted = {"reference", "not_finite", "not_utf8", "unclosed_quote", "oversized_field", "gzip_named_csv", "csv_gz",
              "directory", "extra_column", "pipe", "written_then_failed", "params_selection", "kernel_kill",
              "two_runs", "same_file_twice", "forced_rerun", "missing_column", "header_only", "empty_file",
              "field_count", "bad_values", "code_param", "selector_outside"}
    assert wanted <= set(keys)
    assert sum(k.startswith("kill@") for k in keys) == len(KILL_POINTS) >= 4
    assert sum(s.key.startswith("kill@") for s in scenarios(kills=1)) == 1


# -- every check can fail ---------------------------------------------------------------------------

def _defect_obs(**kw) -> Observation:
    base = dict(runs=[_run(0)], rows=Rows(1502, 1500, 2, 0), tables_equal=True,
                rejected={10: "Booking Value: not a finite number: '1e309'", 20: "Booking Value: not a finite number"},
                expected_rejected={10: r"not a finite number", 20: r"not a finite number"})
    base.update(kw)
    return Observation(**base)


def test_a_bad_line_must_be_rejected_on_its_own_and_the_rest_loaded() -> None:
    assert checks.check_defects(_defect_obs()) == []
    # issue 12, 1e309: accepted as inf
    accepted = _defect_obs(rows=Rows(1502, 1502, 0, 0), rejected={}, tables_equal=False, diffs=["gold: inf"])
    assert len(checks.check_defects(accepted)) == 3
    # issue 12, unclosed quote: the next line is swallowed, 11 lines counted as 10
    swallowed = _defect_obs(rows=Rows(1502, 1499, 2, 0), rejected={10: "unclosed double quote", 11: "…"},
                            expected_rejected={10: r"unclosed double quote", 20: r"unclosed double quote"})
    problems = checks.check_defects(swallowed)
    assert any("row 20 was not rejected" in p for p in problems)
    assert any("row 11 was rejected too" in p for p in problems)
    assert any("do not add up" in p for p in problems)
    # issue 12, a field over 128 KB: the whole delivery fails
    assert checks.check_defects(_defect_obs(runs=[_run(1, stderr="Error: field larger than field limit")]))
    wrong_reason = _defect_obs(rejected={10: "Booking Value: not a number", 20: "Booking Value: not a finite number"})
    assert checks.check_defects(wrong_reason) == [
        "row 10 rejected as 'Booking Value: not a number', expected /not a finite number/"]


def test_a_latin1_byte_must_never_be_replaced() -> None:
    good = _defect_obs(facts={"raw": {10: r"2024-01-01,Caf\xE9 Row"}})
    assert checks.check_latin1(good) == []
    replaced = _defect_obs(facts={"raw": {10: "2024-01-01,Caf\ufffd Row"}})
    assert len(checks.check_latin1(replaced)) == 2


def test_an_ignored_column_must_be_named_in_the_notebook_and_the_run_summary() -> None:
    said = {"notebook": "ignored columns: Surge Factor", "summary": "ignored columns: Surge Factor"}
    assert checks.check_ignored_column(_defect_obs(rejected={}, expected_rejected={}, rows=Rows(9, 9, 0, 0),
                                                   facts=said)) == []
    silent = {"notebook": "", "summary": "1,500 rows written"}
    assert len(checks.check_ignored_column(_defect_obs(rejected={}, expected_rejected={}, rows=Rows(9, 9, 0, 0),
                                                       facts=silent))) == 2


def test_a_refused_file_says_why_and_writes_nothing() -> None:
    check = checks.check_refused_file(r"is gzip-compressed")
    ok = Observation([_run(1, stderr="✗ bronze/prepare: SourceError: x.csv is gzip-compressed")], Rows(5, 0, 0, 5),
                     facts={"nothing_written": True, "attempts": 1})
    assert check(ok) == []
    # issue 12: "header lacks required column(s): Date, Time, …", retried
    old = Observation([_run(1, stderr="SourceError: header lacks required column(s): Date, Time")], Rows(5, 0, 0, 5),
                      facts={"nothing_written": False, "attempts": 3})
    assert len(check(old)) == 3
    assert check(Observation([_run(0, stderr="is gzip-compressed")], Rows(5, 0, 0, 5),
                             facts={"nothing_written": True, "attempts": 1})) == ["the run was not refused (exit 0)"]


def test_a_directory_is_refused_before_any_notebook() -> None:
    ok = Observation([_run(2, stderr="ridelake: error: source_file data is a directory, not a delivery file")],
                     facts={"new_run_folders": 0, "nothing_written": True})
    assert checks.check_directory(ok) == []
    # issue 12: passes the pre-check, then "source file not found" inside a kernel
    old = Observation([_run(1, stderr="✗ bronze/prepare: SourceError: source file not found: data")],
                      facts={"new_run_folders": 1, "nothing_written": True})
    assert len(checks.check_directory(old)) == 3


def test_code_in_a_parameter_must_not_run() -> None:
    check = checks.check_refused_command(r"must be")
    ok = Observation([_run(2, stderr="ridelake: error: extraction_month must be YYYY-MM")], tables_equal=True,
                     facts={"new_run_folders": 0, "marker_created": False})
    assert check(ok) == []
    ran = Observation([_run(0)], tables_equal=False, diffs=["x"], facts={"new_run_folders": 1, "marker_created": True})
    assert len(check(ran)) == 5


def test_a_closed_pipe_must_end_quietly() -> None:
    assert checks.check_quiet_pipe(Observation([_run(0, argv=["history", "t"])])) == []
    # issue 12: a BrokenPipeError traceback
    tb = "Traceback (most recent call last):\n  ...\nBrokenPipeError: [Errno 32] Broken pipe"
    assert len(checks.check_quiet_pipe(Observation([_run(1, stderr=tb, argv=["history", "t"])]))) == 2


def _failed_after_write(attempts: int, commits: int, error: str) -> Observation:
    failed = _run(1, stderr=f"✗ gold/location_analytics failed: {error}",
                  manifest=_nb("gold/location_analytics", status="failed", attempts=attempts, error=error))
    fixed = _run(0, stderr="note: ignoring extraction_date, source_file: none of the 1 selected notebook(s)")
    return Observation([failed, fixed], Rows(3, 3, 0, 0), True,
                       facts={"status": "failed", "attempts": attempts, "error": error, "commits": commits})


def test_a_notebook_failing_after_its_write_is_committed_once_and_not_retried() -> None:
    said = "cell 11: RuntimeError: chart (after writing gold.location_analytics; not retried)"
    assert checks.check_written_then_failed(_failed_after_write(1, 1, said)) == []
    # issue 12: marked failed, committed, retried: three snapshots from one run
    problems = checks.check_written_then_failed(_failed_after_write(3, 3, "cell 11: RuntimeError: chart"))
    assert len(problems) == 4


def test_a_deterministic_error_is_not_retried() -> None:
    ok = Observation([_run(1)], tables_equal=True,
                     facts={"attempts": 1, "error": "cell 6: KeyError: 'x'", "commits": 0})
    assert checks.check_failed_before_write(ok) == []
    retried = Observation([_run(1)], tables_equal=True, facts={"attempts": 3, "error": "cell 6: KeyError: 'x'",
                                                               "commits": 0})
    assert len(checks.check_failed_before_write(retried)) == 1


def test_parameters_of_unselected_notebooks_are_noted_and_typos_refused() -> None:
    ok = _run(0, stderr="note: ignoring extraction_date, source_file: none of the 8 selected notebook(s) declares them")
    typo = _run(2, stderr="ridelake: error: parameter(s) extraction_dat not declared by any notebook of the pipeline")
    assert checks.check_params(Observation([ok, typo], tables_equal=True)) == []
    # issue 12: refused because the selected notebooks do not declare them
    refused = _run(2, stderr="ridelake: error: parameter(s) source_file not declared by the selected notebooks")
    assert len(checks.check_params(Observation([refused, typo], tables_equal=True))) == 2


def test_a_killed_run_must_rerun_to_the_reference() -> None:
    ok = Observation([_run(None), _run(0)], Rows(9, 9, 0, 0), True, facts={"reached": True, "point": "p"})
    assert checks.check_kill(ok) == []
    assert checks.check_kill(Observation([_run(None), _run(0)], Rows(9, 9, 0, 0), False, ["silver.booking: 3 missing"],
                                         facts={"reached": True}))
    missed = Observation([_run(0), _run(0)], Rows(9, 9, 0, 0), True, facts={"reached": False, "point": "p"})
    assert len(checks.check_kill(missed)) == 2
    assert checks.check_kill(Observation([_run(None)], facts={"reached": True})) == ["no rerun"]
    orphans = Observation([_run(None), _run(0)], Rows(9, 9, 0, 0), True, facts={"reached": True, "survivors": [42]})
    assert checks.check_kill(orphans) == ["process(es) [42] survived the kill"]


def test_a_killed_kernel_must_be_retried() -> None:
    ok = Observation([_run(0)], Rows(9, 9, 0, 0), True, facts={"kernels_killed": 1, "retried": ["silver/booking"]})
    assert checks.check_kernel_kill(ok) == []
    assert checks.check_kernel_kill(Observation([_run(0)], Rows(9, 9, 0, 0), True,
                                                facts={"kernels_killed": 1, "retried": []}))


def test_two_runs_at_once_one_refused() -> None:
    refused = _run(3, stderr="ridelake: the warehouse /w is locked by run r1")
    assert checks.check_two_runs(Observation([_run(0), refused], Rows(9, 9, 0, 0), True)) == []
    assert checks.check_two_runs(Observation([_run(0), _run(0)], Rows(9, 9, 0, 0), True))


def test_reruns_and_the_reference() -> None:
    check, want = checks.check_rerun, {"expected": 22}
    assert check(Observation([_run(0)], Rows(9, 9, 0, 0), True, facts={"succeeded": 22, **want})) == []
    assert len(check(Observation([_run(0)], Rows(9, 18, 0, 0), True, facts={"succeeded": 22, **want}))) == 1  # twice
    assert len(check(Observation([_run(0)], Rows(9, 9, 0, 0), True, facts={"succeeded": 3, **want}))) == 1
    good = _run(0, manifest=_nb("bronze/prepare", status="succeeded", attempts=1))
    assert checks.check_reference(Observation([good], Rows(9, 9, 0, 0))) == []
    retried = _run(0, manifest=_nb("bronze/prepare", status="succeeded", attempts=2))
    assert checks.check_reference(Observation([retried], Rows(9, 9, 0, 0)))


def test_the_header_only_and_the_mixed_file() -> None:
    assert checks.check_header_only(Observation([_run(0)], Rows(0, 0, 0, 0))) == []
    assert checks.check_header_only(Observation([_run(1)], Rows(0, 0, 0, 0)))
    mixed = Observation([_run(0), _run(0)], Rows(1524, 1500, 24, 0), True, rejected={1: "x"},
                        facts={"expected_rejected": 24})
    assert checks.check_mixed(mixed) == []
    mixed.facts["expected_rejected"] = 23
    assert checks.check_mixed(mixed) == ["24 rows rejected, the generator expects 23"]


def test_the_table_and_the_exit_status() -> None:
    passed = Result("a", "scenario a", Rows(3, 2, 1, 0), True, [], "1 rejected")
    failed = Result("b", "scenario b", None, False, ["tables differ"], "")
    assert exit_code([passed]) == 0 and exit_code([passed, failed]) == 1 and exit_code([]) == 1
    text = render([passed, failed])
    assert "scenario a" in text and "FAILED: tables differ" in text and "1 passed, 1 failed" in text
    md = markdown([passed, failed]).splitlines()
    assert md[0].startswith("| scenario | rows in | accepted | rejected | otherwise |")
    assert md[2] == "| scenario a | 3 | 2 | 1 | 0 | yes | passed | 1 rejected |"


def test_a_scenario_that_breaks_is_a_failure(tmp_path: Path) -> None:
    from ridelake.reliability.model import Scenario

    from ridelake.reliability.workspace import Workspace

    class Ctx:  # evaluate only needs the workspace, to shorten paths in messages
        ws = Workspace(tmp_path, ROOT)

    def act(ctx):
        raise OSError(f"disk full under {tmp_path}/project/data")

    result = evaluate(Scenario("x", "x", act, lambda obs: []), Ctx())
    assert not result.passed and result.problems == ["the scenario broke: OSError: disk full under data"]


# -- every scenario, for real ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def context(tmp_path_factory):
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("ridelake")
    except NoSuchKernel:
        pytest.skip("the ridelake kernel is not installed (make venv)")
    try:
        yield prepare(tmp_path_factory.mktemp("reliability"), ROOT, rows=1500, seed=7, quick=True, jobs=2)
    finally:
        stop_all()


@pytest.mark.slow
@pytest.mark.parametrize("scenario", scenarios(kills=1), ids=lambda s: s.key)
def test_scenario(context, scenario) -> None:
    result = evaluate(scenario, context)
    assert result.passed, f"{result.verdict}\nwhat happened: {result.happened}"
