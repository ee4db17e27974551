"""The fault suite's scenarios: what each one does to the pipeline (the ``act`` half; the judging
is :mod:`ridelake.reliability.checks`), and :func:`scenarios`, the list the suite runs."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import nbformat
import pandas as pd

from ridelake.reliability import checks
from ridelake.reliability.checks import short as _short
from ridelake.reliability.deliveries import DEFECTS, Delivery, count_lines
from ridelake.reliability.model import KILL_POINTS, Context, KillPoint, Observation, Rows, Scenario
from ridelake.reliability.workspace import EXTRACTION_DATE, CliRun, compare_tables
from ridelake.tables.schemas import TABLES

__all__ = ["scenarios"]

_ED = ["-p", f"extraction_date={EXTRACTION_DATE}"]
_BASE = "data/ncr_ride_bookings.csv"
_DATA_TABLES = [t for t in TABLES if t != "bronze.rejected_row"]


# -- observing --------------------------------------------------------------------------------

def _count(frame: pd.DataFrame | None) -> int:
    return 0 if frame is None else len(frame)


def _loaded_rows(ctx: Context, file: Path) -> tuple[Rows, dict[int, str], dict[int, str]]:
    """Rows accounting of the warehouse's load of ``file``; its rejected rows' reasons and raw lines."""
    lines = count_lines(file)
    tables = ctx.ws.tables(["bronze.booking", "bronze.rejected_row"])
    rejected = tables["bronze.rejected_row"]
    reasons = {} if rejected is None else dict(zip(rejected["source_row"].astype(int), rejected["reason"]))
    raw = {} if rejected is None else dict(zip(rejected["source_row"].astype(int), rejected["raw_line"].str[:300]))
    rows = Rows(lines.total, _count(tables["bronze.booking"]), len(reasons), lines.blank)
    return rows, reasons, raw


def _nothing_written(ctx: Context) -> bool:
    return all(frame is None for frame in ctx.ws.tables().values())


def _attempts(run: CliRun, key: str) -> int:
    return int(run.notebooks().get(key, {}).get("attempts", 0))


def _reasons(reasons: dict[int, str]) -> str:
    kinds = sorted({re.sub(r":\s*'.*$|\s*\(.*\)$|at byte \d+ of the line", "", r).strip() for r in reasons.values()})
    return "; ".join(kinds)


# -- acting -----------------------------------------------------------------------------------

def _deliver(ctx: Context, key: str, content: bytes, expected: dict[int, str] | None = None,
             name: str = "ncr_ride_bookings.csv",
             ignore: frozenset[str] = frozenset({"source_row"})) -> tuple[Observation, Path]:
    """Load one delivery into an empty warehouse and observe: quick, ``bronze/prepare`` and
    ``bronze/booking``; else the whole pipeline. The same base name as the reference's file keeps
    ``source_file`` comparable; ``source_row`` moves with inserted lines, so it is left out."""
    ctx.ws.reset(reference=False)
    folder = ctx.ws.data / key
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / name
    file.write_bytes(content)
    whole = not ctx.quick
    selection = [] if whole else ["bronze/prepare", "bronze/booking"]
    run = ctx.ws.cli("run", *selection, "-p", f"source_file=data/{key}/{name}", *_ED,
                     "-j", str(ctx.jobs if whole else 1))
    rows, reasons, raw = _loaded_rows(ctx, file)
    names = _DATA_TABLES if whole else ["bronze.booking"]
    diffs = compare_tables(ctx.reference, ctx.ws.tables(names), names, ignore=ignore)
    happened = (f"{rows.rejected} rejected ({_reasons(reasons)}), " if reasons else "none rejected, ")
    happened += f"{rows.accepted:,} loaded"
    if run.code != 0:
        happened += f"; run exit {run.code}: {_short(run.first_error(), 90)}"
    return Observation([run], rows, not diffs, diffs, reasons, dict(expected or {}), {"raw": raw},
                       happened), file


def _defects(key: str, blank_lines: int = 0, check: Callable[[Observation], list[str]] = checks.check_defects,
             title: str = "") -> Scenario:
    def act(ctx: Context) -> Observation:
        content, expected = ctx.delivery.with_defects(DEFECTS[key], blank_lines)
        obs, _ = _deliver(ctx, key, content, expected)
        obs.facts["raw"] = {r: obs.facts["raw"][r] for r in expected if r in obs.facts["raw"]}
        if blank_lines:
            obs.happened += f"; {blank_lines} blank lines skipped"
        return obs
    return Scenario(key, title, act, check)


def _act_gz(ctx: Context) -> Observation:
    obs, _ = _deliver(ctx, "gz", gzip.compress(ctx.delivery.whole(), mtime=0), name="ncr_ride_bookings.csv.gz",
                      ignore=frozenset({"source_row", "source_file"}))
    obs.happened = "read directly: " + obs.happened
    return obs


def _act_extra_column(ctx: Context) -> Observation:
    obs, _ = _deliver(ctx, "extra_column", ctx.delivery.with_column("Surge Factor", "1.0"))
    run = obs.runs[0]
    output = run.notebooks().get("bronze/prepare", {}).get("output")
    notebook = (ctx.ws.project / output).read_text(encoding="utf-8") if output else ""
    obs.facts["notebook"] = "\n".join(line for line in notebook.splitlines() if "ignored" in line)
    obs.facts["summary"] = run.text + json.dumps(run.manifest or {})
    said = [where for where, text in (("notebook", obs.facts["notebook"]), ("run summary", obs.facts["summary"]))
            if "Surge Factor" in text]
    obs.happened += f"; 'Surge Factor' named as ignored in: {', '.join(said) or 'nothing'}"
    return obs


def _act_mixed(ctx: Context) -> Observation:
    ctx.ws.reset(reference=False)
    out = "data/mixed/ncr_ride_bookings.csv"
    gen = ctx.ws.cli("generate", "--rows", str(ctx.rows), "--seed", str(ctx.seed), "--bad-rows", "24", "--out", out)
    found = re.search(r"expected: (\d+) rejected rows", gen.stdout)
    obs, _ = _deliver(ctx, "mixed", (ctx.ws.project / out).read_bytes())
    obs.runs.insert(0, gen)
    obs.facts["expected_rejected"] = int(found.group(1)) if found else None
    obs.happened = f"generator expects {obs.facts['expected_rejected']} rejected; " + obs.happened
    return obs


def _refused_file(key: str, content: Callable[[Delivery], bytes]) -> Callable[[Context], Observation]:
    def act(ctx: Context) -> Observation:
        ctx.ws.reset(reference=False)
        file = ctx.ws.data / key / "ncr_ride_bookings.csv"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(content(ctx.delivery))
        run = ctx.ws.cli("run", "-p", f"source_file=data/{key}/ncr_ride_bookings.csv", *_ED, "-j", "1")
        lines = count_lines(file)
        nothing = _nothing_written(ctx)
        rows = Rows(lines.total, 0, 0, lines.total) if nothing else _loaded_rows(ctx, file)[0]
        facts = {"nothing_written": nothing, "attempts": _attempts(run, "bronze/prepare")}
        happened = f"refused (exit {run.code}): {_short(_error_text(run), 100)}; nothing written" if nothing \
            else f"exit {run.code}; something was written"
        return Observation([run], rows, None, [], {}, {}, facts, happened)
    return act


def _error_text(run: CliRun) -> str:
    """The failure as the run states it: the notebook's error, or the command's."""
    for nb in run.notebooks().values():
        if nb.get("error"):
            return f"{nb['key']}: {re.sub(r'^cell [0-9]+: ', '', nb['error'])}"
    return re.sub(r"^ridelake: (error: )?", "", run.first_error())


def _act_header_only(ctx: Context) -> Observation:
    obs, _ = _deliver(ctx, "header_only", ctx.delivery.header_only())
    obs.tables_equal, obs.diffs = None, []
    obs.happened = f"run exit {obs.runs[0].code}: 0 rows in, nothing loaded, nothing rejected"
    return obs


def _commands(ctx: Context, argvs: Sequence[Sequence[str]], reference: bool = True,
              marker: Path | None = None) -> Observation:
    ctx.ws.reset(reference=reference)
    before = ctx.ws.run_folders()
    runs = [ctx.ws.cli(*argv) for argv in argvs]
    diffs = compare_tables(ctx.reference, ctx.ws.tables()) if reference else []
    facts = {"new_run_folders": ctx.ws.run_folders() - before,
             "marker_created": bool(marker and marker.exists())}
    said = list(dict.fromkeys(_gist(ctx.ws.relative(r.first_error()), 100 if len(runs) == 1 else 48) for r in runs))
    codes = "/".join(sorted({str(r.code) for r in runs}))
    happened = f"refused before any notebook (exit {codes}): " + " | ".join(said)
    return Observation(runs, None, not diffs if reference else None, diffs, facts=facts, happened=happened)


def _gist(error: str, n: int) -> str:
    """The heart of a refusal: without ``ridelake: error:``, a leading file name, what was given."""
    text = re.sub(r"^ridelake: (error: )?", "", error)
    text = re.sub(r"^\S*/\S*: ", "", text)  # "params/default.yaml: ..." (the file the value was checked for)
    return _short(re.split(r", got |: use ", text)[0], n)


def _act_directory(ctx: Context) -> Observation:
    obs = _commands(ctx, [["run", "-p", "source_file=data", *_ED]], reference=False)
    obs.facts["nothing_written"] = _nothing_written(ctx)
    return obs


def _stat(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _act_code(ctx: Context) -> Observation:
    """Code in each parameter; the issue's own ``touch /tmp/pwned`` too (judged by that file not
    appearing or changing), the others touching a file of the workspace."""
    marker, pwned = ctx.ws.root / "pwned", Path("/tmp/pwned")
    touch = f"import os; os.system('touch {marker}')"
    values = [
        ("extraction_month", "'; import os; os.system('touch /tmp/pwned')"),
        ("extraction_month", f"'; {touch}"),
        ("extraction_date", f"2024-12-31'); {touch}; ('"),
        ("target_date", f'"); __import__("os").system("touch {marker}"); ("'),
        ("source_file", f"data/x.csv'; {touch}; '"),
    ]
    before = _stat(pwned)
    obs = _commands(ctx, [["run", "-p", f"{k}={v}", *([] if k == "extraction_date" else _ED)] for k, v in values],
                    marker=marker)
    obs.facts["marker_created"] = obs.facts["marker_created"] or _stat(pwned) != before
    obs.happened += "; no file created" if not obs.facts["marker_created"] else "; the injected code RAN"
    return obs


def _act_selector(ctx: Context) -> Observation:
    return _commands(ctx, [["run", sel, *_ED] for sel in ("../../etc/passwd", "/etc/passwd",
                                                           "bronze/../../../etc/passwd", "notebooks/../../x")])


def _act_params(ctx: Context) -> Observation:
    ctx.ws.reset(reference=True)
    ok = ctx.ws.cli("run", "silver/customer+", "-p", f"source_file={_BASE}", *_ED)
    typo = ctx.ws.cli("run", "silver/customer+", "-p", f"extraction_dat={EXTRACTION_DATE}")
    diffs = compare_tables(ctx.reference, ctx.ws.tables())
    note = next((ln.strip() for ln in ok.stderr.splitlines() if ln.startswith("note:")), "no note")
    happened = (f"exit {ok.code}, {_short(note, 80)}; typo: exit {typo.code}, "
                f"{_short(re.sub(r'^ridelake: (error: )?', '', typo.first_error()), 70)}")
    return Observation([ok, typo], None, not diffs, diffs, happened=happened)


def _act_pipe(ctx: Context) -> Observation:
    ctx.ws.reset(reference=True)
    runs = []
    for argv in (["history", "silver.booking"], ["runs"]):
        read, write = os.pipe()
        os.close(read)  # the reader is gone before the first line, as `| head -0`; any write fails
        began = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "ridelake", *argv], cwd=ctx.ws.project, env=ctx.ws.env(),
                              stdout=write, stderr=subprocess.PIPE, timeout=300)
        os.close(write)
        runs.append(CliRun(argv, proc.returncode, "", proc.stderr.decode("utf-8", "replace"), None,
                           time.monotonic() - began))
    quiet = all(not r.stderr.strip() for r in runs)
    happened = f"exit {'/'.join(str(r.code) for r in runs)}, " + ("nothing on stderr" if quiet else
                                                                  _short(runs[0].stderr or runs[-1].stderr, 80))
    return Observation(runs, happened=happened)


def _rows_now(ctx: Context) -> Rows:
    return _loaded_rows(ctx, ctx.ws.base_file)[0]


def _kill(point: KillPoint) -> Scenario:
    def act(ctx: Context) -> Observation:
        ctx.ws.reset(reference=False)
        started = ctx.ws.start("run", *_ED, "-j", str(ctx.jobs))
        reached = (started.wait_for(rf"▸ {re.escape(point.notebook)} started") if point.cell is None
                   else started.wait_for_cell(point.notebook, point.cell, point.before))
        if reached:
            time.sleep(point.delay)
        done = started.finished_notebooks()
        kernels = len(started.kernels())
        started.kill()
        killed = started.finish()
        rerun = ctx.ws.cli("run", *_ED, "-j", str(ctx.jobs))
        diffs = compare_tables(ctx.reference, ctx.ws.tables())
        ran = sum(1 for nb in rerun.notebooks().values() if nb.get("status") == "succeeded")
        again = [(k, nb.get("run_reason")) for k, nb in rerun.notebooks().items()
                 if k in done and nb.get("status") == "succeeded"]  # done before the kill, yet run again
        facts = {"reached": reached, "point": f"{point.notebook} {point.label}", "done_before": done, "again": again,
                 "kernels": kernels, "survivors": started.survivors}
        happened = (f"killed with {kernels} kernel(s), {len(done)} notebook(s) done; "
                    f"rerun: exit {rerun.code}, {ran} ran, {len(rerun.notebooks()) - ran} up-to-date"
                    + (f" ({len(again)} done before ran again, e.g. {again[0][0]}: {_short(str(again[0][1]), 60)})"
                       if again else ""))
        return Observation([killed, rerun], _rows_now(ctx), not diffs, diffs, facts=facts, happened=happened)
    return Scenario(point.key, f"kill the run (SIGKILL, kernels too) in {point.notebook}'s {point.label}; rerun",
                    act, checks.check_kill)


def _act_kernel_kill(ctx: Context) -> Observation:
    ctx.ws.reset(reference=True)
    selection = "silver/booking" if ctx.quick else "silver/booking+"
    started = ctx.ws.start("run", "--force", selection, *_ED, "-j", "1")
    killed = 0
    if started.wait_for_cell("silver/booking", "replace_rows(", before=1):  # the transform, before the write
        killed = started.kill_kernels()
    run = started.finish()
    retried = [k for k, nb in run.notebooks().items() if int(nb.get("attempts", 0)) > 1
               and re.search(r"DeadKernel|died|KernelProblem", str((nb.get("attempt_log") or [{}])[0].get("error")))]
    diffs = compare_tables(ctx.reference, ctx.ws.tables())
    first = run.notebooks().get(retried[0], {}).get("attempt_log", [{}])[0].get("error", "") if retried else ""
    happened = (f"{killed} kernel killed in silver/booking's transform; {', '.join(retried) or 'nothing'} retried"
                f"{f' after {_short(first, 60)}' if first else ''}; exit {run.code}")
    return Observation([run], _rows_now(ctx), not diffs, diffs,
                       facts={"kernels_killed": killed, "retried": retried}, happened=happened)


def _act_two_runs(ctx: Context) -> Observation:
    ctx.ws.reset(reference=True)
    selection = "gold/daily_booking_summary" if ctx.quick else "gold"
    first = ctx.ws.start("run", "--force", selection, *_ED, "-j", "1")
    first.run_id()  # it holds the lock once it names its run
    second = ctx.ws.start("run", "--force", selection, *_ED, "-j", "1")
    runs = [first.finish(), second.finish()]
    diffs = compare_tables(ctx.reference, ctx.ws.tables())
    refused = next((r for r in runs if r.code == 3), None)
    happened = (f"exit {' and '.join(str(r.code) for r in runs)}"
                + (f"; refused: {_short(re.sub(r'^ridelake: ', '', refused.first_error()), 80)}" if refused else ""))
    return Observation(runs, _rows_now(ctx), not diffs, diffs, happened=happened)


def _act_rerun(selection: Sequence[str], quick_selection: Sequence[str], expected: int,
               quick_expected: int) -> Callable[[Context], Observation]:
    """Run ``run --force SELECTION`` on the reference's warehouse (quick: ``QUICK_SELECTION``):
    ``expected`` notebooks must run again and leave the tables as they were."""
    def act(ctx: Context) -> Observation:
        ctx.ws.reset(reference=True)
        chosen = quick_selection if ctx.quick else selection
        run = ctx.ws.cli("run", "--force", *chosen, "-p", f"source_file={_BASE}", *_ED, "-j", str(ctx.jobs))
        diffs = compare_tables(ctx.reference, ctx.ws.tables())
        ran = sum(1 for nb in run.notebooks().values() if nb.get("status") == "succeeded")
        facts = {"succeeded": ran, "expected": quick_expected if ctx.quick else expected}
        happened = f"exit {run.code}, {ran} notebook(s) ran again"
        return Observation([run], _rows_now(ctx), not diffs, diffs, facts=facts, happened=happened)
    return act


def _edit_notebook(ctx: Context, name: str, source: str, before: str | None = None) -> None:
    """Add a code cell to the project's copy of a notebook: before the first cell whose source
    holds ``before`` (e.g. the write, ``replace_rows(``), or at the end.

    Raises:
        LookupError: no cell holds ``before``.
    """
    path = ctx.ws.project / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    at = len(nb.cells) if before is None else next(
        (i for i, c in enumerate(nb.cells) if before in "".join(c.source)), None)
    if at is None:
        raise LookupError(f"no cell of {name} holds {before!r}")
    nb.cells.insert(at, nbformat.v4.new_code_cell(source))
    nbformat.write(nb, path)


def _commits(ctx: Context, table: str, run: CliRun) -> int:
    """The run's writes of the table: its snapshots that add rows (a replace is one transaction of a
    ``delete`` snapshot and an ``append`` one)."""
    run_id = (run.manifest or {}).get("run_id")
    return sum(1 for props, op in ctx.ws.snapshots(table)
               if run_id and props.get("ridelake.run-id") == run_id and op != "delete")


def _act_written_then_failed(ctx: Context) -> Observation:
    ctx.ws.reset(reference=True)
    _edit_notebook(ctx, "gold/location_analytics",  # a last cell, after the write and the chart
                   'raise RuntimeError("the chart failed (injected by the reliability suite)")')
    failed = ctx.ws.cli("run", "gold/location_analytics", *_ED)
    nb = failed.notebooks().get("gold/location_analytics", {})
    facts = {"status": nb.get("status"), "attempts": nb.get("attempts"), "error": nb.get("error") or "",
             "commits": _commits(ctx, "gold.location_analytics", failed)}
    ctx.ws.reset_notebooks()
    fixed = ctx.ws.cli("run", "--from-failure", "-p", f"source_file={_BASE}", *_ED)
    diffs = compare_tables(ctx.reference, ctx.ws.tables())
    happened = (f"{facts['status']} after {facts['attempts']} attempt(s), committed {facts['commits']}x: "
                f"{_short(re.sub(r'^cell [0-9]+: ', '', facts['error']), 140)}; "
                f"fixed, `run --from-failure -p …`: exit {fixed.code}")
    return Observation([failed, fixed], _rows_now(ctx), not diffs, diffs, facts=facts, happened=happened)


def _act_failed_before_write(ctx: Context) -> Observation:
    ctx.ws.reset(reference=True)
    _edit_notebook(ctx, "gold/customer_analytics", 'columns = {"customer_id": 1}\n'
                   'columns["no_such_column"]  # a KeyError, injected by the reliability suite', before="replace_rows(")
    failed = ctx.ws.cli("run", "gold/customer_analytics", *_ED)
    nb = failed.notebooks().get("gold/customer_analytics", {})
    facts = {"attempts": nb.get("attempts"), "error": nb.get("error") or "",
             "commits": _commits(ctx, "gold.customer_analytics", failed)}
    diffs = compare_tables(ctx.reference, ctx.ws.tables())
    happened = (f"failed after {facts['attempts']} attempt(s), committed {facts['commits']}x: "
                f"{_short(re.sub(r'^cell [0-9]+: ', '', facts['error']), 90)}")
    return Observation([failed], _rows_now(ctx), not diffs, diffs, facts=facts, happened=happened)


def _act_reference(ctx: Context) -> Observation:
    run = ctx.reference_run
    ok = sum(1 for nb in run.notebooks().values() if nb.get("status") == "succeeded")
    return Observation([run], _rows_now_of(ctx), None, [],
                       happened=f"exit {run.code}, {ok} notebooks succeeded in {run.seconds:.0f} s")


def _rows_now_of(ctx: Context) -> Rows:
    lines = count_lines(ctx.ws.base_file)
    return Rows(lines.total, _count(ctx.reference.get("bronze.booking")),
                _count(ctx.reference.get("bronze.rejected_row")), lines.blank)


def scenarios(kills: int = len(KILL_POINTS)) -> list[Scenario]:
    """Every scenario, in the order the suite runs them.

    Args:
        kills: how many of :data:`KILL_POINTS` to kill the run at.
    """
    return [
        Scenario("reference", "an uninterrupted run (the reference)", _act_reference, checks.check_reference),
        # the input edges of issue 12
        _defects("not_finite", title="Booking Value = 1e309 (and -1e999)"),
        _defects("not_utf8", check=checks.check_latin1, title="a latin-1 byte (Caf\\xe9 Row)"),
        _defects("unclosed_quote", title="an unclosed double quote in one field"),
        _defects("oversized_field", title="one field over 128 KB"),
        Scenario("gzip_named_csv", "a gzip file named .csv",
                 _refused_file("gzip_named_csv", lambda d: gzip.compress(d.whole(), mtime=0)),
                 checks.check_refused_file(r"is gzip-compressed")),
        Scenario("csv_gz", "a .csv.gz delivery", _act_gz, checks.check_defects),
        Scenario("directory", "a directory as source_file", _act_directory, checks.check_directory),
        Scenario("extra_column", "an extra 22nd column", _act_extra_column, checks.check_ignored_column),
        Scenario("pipe", "`ridelake history … | head` (and `runs`)", _act_pipe, checks.check_quiet_pipe),
        # a failing notebook, parameters and selection
        Scenario("written_then_failed", "a notebook failing after its write (a chart)", _act_written_then_failed,
                 checks.check_written_then_failed),
        Scenario("failed_before_write", "a KeyError in notebook code before the write", _act_failed_before_write,
                 checks.check_failed_before_write),
        Scenario("params_selection", "run silver/customer+ -p source_file=… -p extraction_date=…; a typo",
                 _act_params, checks.check_params),
        # crashes and concurrency
        *[_kill(p) for p in KILL_POINTS[:max(0, kills)]],
        Scenario("kernel_kill", "kill a kernel mid-notebook", _act_kernel_kill, checks.check_kernel_kill),
        Scenario("two_runs", "two runs at once (the second starts while the first runs)", _act_two_runs,
                 checks.check_two_runs),
        Scenario("same_file_twice", "the same file loaded twice",
                 _act_rerun(["bronze"], ["bronze/prepare", "bronze/booking"], 10, 2), checks.check_rerun),
        Scenario("forced_rerun", "a forced rerun of everything", _act_rerun([], [], 22, 22), checks.check_rerun),
        # bad files and bad rows that were already handled
        Scenario("missing_column", "a missing column (Payment Method)",
                 _refused_file("missing_column", lambda d: d.without_column("Payment Method")),
                 checks.check_refused_file(r"Payment Method")),
        Scenario("header_only", "a header-only file", _act_header_only, checks.check_header_only),
        Scenario("empty_file", "an empty file", _refused_file("empty_file", lambda d: b""),
                 checks.check_refused_file(r"empty")),
        _defects("field_count", blank_lines=2, title="rows with too few / too many fields (and blank lines)"),
        _defects("bad_values", title="bad dates, times, numbers, ratings, negatives, ids, statuses"),
        Scenario("mixed", "every defect mixed in (generate --bad-rows 24)", _act_mixed, checks.check_mixed),
        Scenario("code_param", "a parameter carrying code", _act_code,
                 checks.check_refused_command(r"must be|does not exist")),
        Scenario("selector_outside", "a selector outside notebooks/ (../../etc/passwd)", _act_selector,
                 checks.check_refused_command(r"selector|unknown notebook")),
    ]
