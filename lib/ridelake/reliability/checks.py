"""Judging what a scenario observed: each function takes an
:class:`~ridelake.reliability.model.Observation` and returns the problems found (empty: passed).
Nothing here runs a command, so every check can be shown to fail on a made-up observation.
"""

from __future__ import annotations

import re
from typing import Callable

from ridelake.reliability.model import Observation
from ridelake.reliability.workspace import CliRun

__all__ = [
    "short",
    "check_defects",
    "check_latin1",
    "check_ignored_column",
    "check_mixed",
    "check_refused_file",
    "check_header_only",
    "check_refused_command",
    "check_directory",
    "check_kill",
    "check_kernel_kill",
    "check_two_runs",
    "check_rerun",
    "check_written_then_failed",
    "check_failed_before_write",
    "check_params",
    "check_quiet_pipe",
    "check_reference",
]


def short(text: str, n: int = 110) -> str:
    """One line of at most ``n`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _exit(run: CliRun, *codes: int) -> list[str]:
    if run.code in codes:
        return []
    shown = "killed" if run.code is None else f"exit {run.code}"
    return [f"`{' '.join(run.argv[:3])}…` ended with {shown}, expected exit {' or '.join(map(str, codes))}"
            + (f": {short(run.first_error())}" if run.first_error() else "")]


def _accounting(obs: Observation) -> list[str]:
    r = obs.rows
    if r is None or r.reconciled:
        return []
    return [f"rows do not add up: {r.rows_in} in, {r.accepted} accepted + {r.rejected} rejected + {r.other} other"]


def _equal(obs: Observation) -> list[str]:
    if obs.tables_equal:
        return []
    return ["tables differ from the reference: " + "; ".join(obs.diffs[:3]) if obs.diffs
            else "tables were not compared with the reference"]


def _rejections(obs: Observation) -> list[str]:
    problems = []
    for row, pattern in sorted(obs.expected_rejected.items()):
        if row not in obs.rejected:
            problems.append(f"row {row} was not rejected (expected /{pattern}/)")
        elif not re.search(pattern, obs.rejected[row]):
            problems.append(f"row {row} rejected as {obs.rejected[row]!r}, expected /{pattern}/")
    for row in sorted(set(obs.rejected) - set(obs.expected_rejected)):
        problems.append(f"row {row} was rejected too: {obs.rejected[row]!r}")
    return problems


def _mentions(text: str, pattern: str, what: str) -> list[str]:
    return [] if re.search(pattern, text) else [f"{what} does not say /{pattern}/"]


def check_defects(obs: Observation) -> list[str]:
    """A delivery with bad lines: the run succeeds, exactly the bad lines are rejected, each with its
    reason, every line is accounted for, and the rest loads as in the reference."""
    return _exit(obs.runs[0], 0) + _rejections(obs) + _accounting(obs) + _equal(obs)


def check_latin1(obs: Observation) -> list[str]:
    problems = check_defects(obs)
    for row, raw in obs.facts.get("raw", {}).items():
        if "\ufffd" in raw:
            problems.append(f"row {row}'s raw line holds U+FFFD: the byte was replaced")
        if not re.search(r"\\x[eE]9", raw):
            problems.append(f"row {row}'s raw line does not show the byte as \\xE9")
    return problems


def check_ignored_column(obs: Observation) -> list[str]:
    return (check_defects(obs)
            + _mentions(obs.facts.get("notebook", ""), r"Surge Factor", "the prepare notebook")
            + _mentions(obs.facts.get("summary", ""), r"Surge Factor", "the run summary (console or run.json)"))


def check_mixed(obs: Observation) -> list[str]:
    problems = _exit(obs.runs[-1], 0) + _accounting(obs) + _equal(obs)
    expected = obs.facts.get("expected_rejected")
    if expected is None:
        problems.append("the generator did not print the expected rejection count")
    elif obs.rows is not None and obs.rows.rejected != expected:
        problems.append(f"{obs.rows.rejected} rows rejected, the generator expects {expected}")
    if any(not r.strip() for r in obs.rejected.values()):
        problems.append("a rejected row has no reason")
    return problems


def check_refused_file(pattern: str) -> Callable[[Observation], list[str]]:
    def check(obs: Observation) -> list[str]:
        run = obs.runs[0]
        problems = [] if run.code not in (0, None) else [f"the run was not refused (exit {run.code})"]
        problems += _mentions(run.text, pattern, "the run's error")
        if not obs.facts.get("nothing_written"):
            problems.append("something was written to the warehouse")
        if obs.facts.get("attempts", 0) > 1:
            problems.append(f"bronze/prepare was retried ({obs.facts['attempts']} attempts)")
        return problems + _accounting(obs)
    return check


def check_header_only(obs: Observation) -> list[str]:
    problems = _exit(obs.runs[0], 0) + _accounting(obs)
    if obs.rows is not None and (obs.rows.rows_in or obs.rows.accepted or obs.rows.rejected):
        problems.append(f"a header-only file gave rows: {obs.rows}")
    return problems


def check_refused_command(pattern: str) -> Callable[[Observation], list[str]]:
    """Every command refused with exit 2 before any notebook (no run record), saying ``pattern``."""
    def check(obs: Observation) -> list[str]:
        problems = []
        for run in obs.runs:
            problems += _exit(run, 2) + _mentions(run.stderr, pattern, f"`{' '.join(run.argv[:4])}`")
        if obs.facts.get("new_run_folders", 0):
            problems.append(f"{obs.facts['new_run_folders']} run(s) started")
        if obs.facts.get("marker_created"):
            problems.append("the injected code ran: its file was created")
        return problems + (_equal(obs) if obs.tables_equal is not None else [])
    return check


def check_kill(obs: Observation) -> list[str]:
    """A run killed at a point, then rerun: the kill landed mid-run, the rerun succeeds, and the
    tables equal the reference with every row accounted for."""
    problems = []
    if not obs.facts.get("reached"):
        problems.append(f"the run never reached the kill point ({obs.facts.get('point')})")
    if obs.runs and obs.runs[0].code is not None:
        problems.append(f"the run ended (exit {obs.runs[0].code}) before it could be killed")
    if obs.facts.get("survivors"):
        problems.append(f"process(es) {obs.facts['survivors']} survived the kill")
    if len(obs.runs) < 2:
        return problems + ["no rerun"]
    return problems + _exit(obs.runs[1], 0) + _accounting(obs) + _equal(obs)


def check_kernel_kill(obs: Observation) -> list[str]:
    problems = _exit(obs.runs[0], 0) + _equal(obs) + _accounting(obs)
    if not obs.facts.get("kernels_killed"):
        problems.append("no kernel was killed")
    if not obs.facts.get("retried"):
        problems.append("no notebook was retried after its kernel died")
    return problems


def check_two_runs(obs: Observation) -> list[str]:
    codes = sorted(r.code if r.code is not None else -1 for r in obs.runs)
    problems = [] if codes == [0, 3] else [f"exit statuses {codes}, expected one run 0 and one refused with 3"]
    refused = [r for r in obs.runs if r.code == 3]
    if refused:
        problems += _mentions(refused[0].stderr, r"lock", "the refused run")
    return problems + _equal(obs) + _accounting(obs)


def check_rerun(obs: Observation) -> list[str]:
    """A forced rerun: it succeeds, runs every notebook it was asked to, and changes no table
    (the same file loaded again adds no row)."""
    problems = []
    for run in obs.runs:
        problems += _exit(run, 0)
    ran, expected = obs.facts.get("succeeded", 0), obs.facts.get("expected", 1)
    if ran != expected:
        problems.append(f"{ran} notebook(s) ran, expected {expected}")
    return problems + _accounting(obs) + _equal(obs)


def check_written_then_failed(obs: Observation) -> list[str]:
    failed, fixed = obs.runs[0], obs.runs[-1]
    f = obs.facts
    problems = _exit(failed, 1)
    if f.get("status") != "failed":
        problems.append(f"the notebook is {f.get('status')!r}, not failed")
    if f.get("attempts") != 1:
        problems.append(f"{f.get('attempts')} attempts: a notebook that already wrote must not be retried")
    problems += _mentions(f.get("error", ""), r"after writing gold\.location_analytics; not retried",
                          "the recorded error")
    problems += _mentions(failed.text, r"after writing gold\.location_analytics", "the run's output")
    if f.get("commits") != 1:
        problems.append(f"the run committed gold.location_analytics {f.get('commits')} time(s), expected once")
    if len(obs.runs) > 1:
        problems += _exit(fixed, 0) + _mentions(fixed.stderr, r"note: ignoring", "`run --from-failure -p …`")
    return problems + _equal(obs)


def check_failed_before_write(obs: Observation) -> list[str]:
    f = obs.facts
    problems = _exit(obs.runs[0], 1)
    if f.get("attempts") != 1:
        problems.append(f"{f.get('attempts')} attempts: a KeyError from notebook code must not be retried")
    problems += _mentions(f.get("error", ""), r"KeyError", "the recorded error")
    if f.get("commits"):
        problems.append(f"the failed notebook committed {f['commits']} time(s)")
    return problems + _equal(obs)


def check_params(obs: Observation) -> list[str]:
    ok, typo = obs.runs
    return (_exit(ok, 0) + _mentions(ok.stderr, r"note: ignoring extraction_date, source_file", "the run")
            + _exit(typo, 2)
            + _mentions(typo.stderr, r"extraction_dat\b.*not declared by any notebook", "the typo's error")
            + _equal(obs))


def check_quiet_pipe(obs: Observation) -> list[str]:
    problems = []
    for run in obs.runs:
        problems += _exit(run, 0)
        if re.search(r"Traceback|BrokenPipeError|Exception ignored", run.stderr):
            problems.append(f"`{' '.join(run.argv[:2])}` printed {short(run.stderr, 80)!r}")
    return problems


def check_reference(obs: Observation) -> list[str]:
    run = obs.runs[0]
    problems = _exit(run, 0) + _accounting(obs)
    bad = [k for k, nb in run.notebooks().items() if nb.get("status") != "succeeded" or nb.get("attempts") != 1]
    if bad:
        problems.append(f"not succeeded at the first attempt: {', '.join(bad)}")
    return problems


def check_directory(obs: Observation) -> list[str]:
    problems = check_refused_command(r"is a directory")(obs)
    return problems + ([] if obs.facts.get("nothing_written") else ["something was written"])
