"""The fault suite (``make reliability``): what happens when things go wrong, scenario by scenario.

It copies the project into a throw-away folder, generates a valid delivery (default 3,000 rows,
``--rows``), runs the whole pipeline once uninterrupted (the **reference**), and then runs every
scenario of issue 12 against it, each through the real command line (``python -m ridelake ...``
in a subprocess, real kernels, a real warehouse):

- **the input edges**: ``1e309``, a latin-1 byte, an unclosed quote, a field over 128 KB, a gzip
  file named ``.csv`` and a ``.csv.gz`` delivery, a directory as ``source_file``, an extra 22nd
  column, ``ridelake history … | head``;
- **failing notebooks**: a chart failing after its table's write (committed once, not retried,
  reported as written then failed; then fixed and rerun with ``--from-failure -p …``), a
  ``KeyError`` in notebook code before the write (not retried, nothing committed);
- **parameters and selection**: ``run silver/customer+ -p source_file=… -p extraction_date=…``
  works with a note, a typo is refused;
- **crashes**: the run SIGKILLed (its process group and its kernels, which live in sessions of
  their own) at several points and rerun; a kernel killed mid-notebook; two runs at once; the same
  file loaded twice; a forced rerun;
- **bad files and rows**: a missing column, a header-only and an empty file, rows with too few or
  too many fields, bad dates, times, numbers, ratings, negatives, ids and statuses, every defect
  of the generator mixed in; a parameter carrying code; a selector outside ``notebooks/``.

For each it prints one row: rows in, accepted, rejected, otherwise accounted for (blank lines, or
every line of a file refused whole), whether the tables equal the reference's (every table's
sorted rows, without ``created_at``/``updated_at``; ``source_row`` left out where lines were
inserted), the verdict and what happened. The exit status is 1 when any scenario fails. The
results are saved as ``outputs/reliability/latest.json`` and ``latest.md``.

Usage: ``python -m ridelake.reliability [--rows N] [--kills N] [--quick] [--only REGEX] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from ridelake.core.project import project_root
from ridelake.reliability.model import KILL_POINTS, Observation, Scenario
from ridelake.reliability.scenarios import scenarios
from ridelake.reliability.suite import DEFAULT_ROWS, Result, exit_code, markdown, render, run_suite, stamp

__all__ = ["Observation", "Result", "Scenario", "scenarios", "run_suite", "render", "markdown", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite, print the table, save the results.

    Args:
        argv: command-line arguments.

    Returns:
        0 when every scenario passed, else 1.
    """
    parser = argparse.ArgumentParser(prog="python -m ridelake.reliability", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS,
                        help=f"good rows of the delivery (default {DEFAULT_ROWS})")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument("--kills", type=int, default=len(KILL_POINTS),
                        help=f"points to kill the run at (default all {len(KILL_POINTS)})")
    parser.add_argument("--quick", action="store_true",
                        help="input scenarios load bronze/prepare and bronze/booking only, not the whole pipeline")
    parser.add_argument("--jobs", "-j", type=int, default=2, help="-j of whole-pipeline runs (default 2)")
    parser.add_argument("--only", metavar="REGEX", help="only the scenarios whose key matches (and the reference)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the throw-away project in DIR (must not exist)")
    parser.add_argument("--out", type=Path, help="results folder (default <project>/outputs/reliability)")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    if args.keep is not None and args.keep.exists():
        parser.error(f"--keep {args.keep} exists")
    results = run_suite(args.rows, args.seed, args.quick, args.kills, args.jobs, args.only, args.keep,
                        log=lambda line: print(line, file=sys.stderr, flush=True))
    print(render(results))
    if args.out is None:
        args.out = project_root() / "outputs" / "reliability"
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"finished_at": stamp(), "rows": args.rows, "seed": args.seed, "quick": args.quick,
              "kills": args.kills, "results": [r.as_dict() for r in results]}
    (args.out / "latest.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    (args.out / "latest.md").write_text(markdown(results), encoding="utf-8")
    print(f"saved {args.out / 'latest.json'} and {args.out / 'latest.md'}")
    return exit_code(results)
