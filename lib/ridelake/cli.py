"""The ``ridelake`` command line: ``python -m ridelake <command> ...``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from ridelake.errors import RidelakeError

__all__ = ["main", "build_parser"]


def _set_warehouse(path: str | None) -> None:
    if path:
        os.environ["RIDELAKE_WAREHOUSE"] = path


def _cmd_generate(args: argparse.Namespace) -> int:
    from ridelake.generate import write_csv

    summary = write_csv(args.out, rows=args.rows, seed=args.seed, bad_rows=args.bad_rows, year=args.year)
    print(f"wrote {summary['rows']} rows ({summary['bad_rows']} bad) to {args.out}")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from ridelake import catalog, config

    _set_warehouse(args.warehouse)
    created = catalog.bootstrap()
    print(f"catalog {config.catalog_uri()}: created {len(created)} table(s)"
          + (f": {', '.join(created)}" if created else " (all present)"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="ridelake", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write a synthetic source file (CONTRACT §6)")
    g.add_argument("--rows", type=int, default=150_000)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--out", required=True)
    g.add_argument("--bad-rows", type=int, default=0, help="also write this many bad rows")
    g.add_argument("--year", type=int, default=2024)
    g.set_defaults(func=_cmd_generate)

    i = sub.add_parser("init", help="create the catalog, namespaces and tables (safe to repeat)")
    i.add_argument("--warehouse")
    i.set_defaults(func=_cmd_init)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: arguments (default ``sys.argv[1:]``).

    Returns:
        The process exit status.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RidelakeError as exc:
        print(f"ridelake: error: {exc}", file=sys.stderr)
        return 2
