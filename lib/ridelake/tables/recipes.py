"""The ride-bookings commands built from runner stages: ``bronze``, ``silver``, ``gold``,
``incremental`` and ``backfill`` (``ridelake <command> --help``).

Each recipe turns its command-line flags into the run's stages and parameter overrides; the CLI
hands them to :func:`ridelake.core.runner.execute` like any ``run``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable

from ridelake.core.runner import Stage

__all__ = ["Recipe", "RECIPES", "register"]


@dataclass(frozen=True)
class Recipe:
    """One command: its help, how it adds its flags, and what it runs.

    Attributes:
        help: the one-line help.
        add_flags: adds the command's own options to its parser.
        plan: args -> (stages, parameter overrides from the flags; None values are dropped).
    """

    help: str
    add_flags: Callable[[argparse.ArgumentParser], None]
    plan: Callable[[argparse.Namespace], tuple[list[Stage], dict[str, Any]]]


def _bronze_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source-file", metavar="F", help="the delivery (default: the params file's)")
    p.add_argument("--extraction-date", metavar="YYYY-MM-DD", help="default: the params file's, else today (UTC)")
    p.add_argument("--extraction-month", metavar="YYYY-MM", help="load only that booking month")


def _silver_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--extraction-month", metavar="YYYY-MM", help="rebuild only that month of the facts")


def _gold_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target-date", metavar="YYYY-MM-DD", help="recompute only that day of the daily summary")


def _incremental_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source-file", metavar="F", required=True)
    p.add_argument("--extraction-date", metavar="YYYY-MM-DD", help="default: the params file's, else today (UTC)")
    p.add_argument("--max-months", type=int, default=3, metavar="N",
                   help="run the silver facts once per touched month when there are at most N (default 3), "
                        "else rebuild every month once")


def _no_flags(p: argparse.ArgumentParser) -> None:
    return None


RECIPES: dict[str, Recipe] = {
    "bronze": Recipe(
        "load one delivery into bronze", _bronze_flags,
        lambda a: ([Stage("bronze", ("bronze",))],
                   {"source_file": a.source_file, "extraction_date": a.extraction_date,
                    "extraction_month": a.extraction_month})),
    "silver": Recipe(
        "rebuild silver (dimensions whole, facts by month)", _silver_flags,
        lambda a: ([Stage("silver", ("silver",))], {"extraction_month": a.extraction_month})),
    "gold": Recipe(
        "rebuild gold", _gold_flags,
        lambda a: ([Stage("gold", ("gold",))], {"target_date": a.target_date})),
    "incremental": Recipe(
        "bronze for one delivery, silver for the months it touched, then gold", _incremental_flags,
        lambda a: ([Stage("bronze", ("bronze",)),
                    Stage("silver+gold", ("silver", "gold"), {"target_date": None}, per_month=True,
                          max_months=a.max_months)],
                   {"source_file": a.source_file, "extraction_date": a.extraction_date})),
    "backfill": Recipe(
        "rebuild silver and gold from what bronze holds", _no_flags,
        lambda a: ([Stage("silver+gold", ("silver", "gold"), {"extraction_month": None, "target_date": None})], {})),
}


def register(subparsers: Any, common: argparse.ArgumentParser, func: Callable[..., int]) -> None:
    """Add every recipe as a subcommand sharing the runner's options (``common``)."""
    for name, recipe in RECIPES.items():
        p = subparsers.add_parser(name, parents=[common], help=recipe.help)
        recipe.add_flags(p)
        p.set_defaults(func=func, recipe=recipe)
