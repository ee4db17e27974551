"""What a notebook's write would change, and how a write cell shows what it did.

A notebook opened by hand runs with ``write = False`` (its parameters cell): its write cell
computes and checks everything and, instead of committing, shows a :class:`WritePreview`: how
many rows the write would add (keys not in the table), replace (keys already there, and how many
of those get other values) and remove (rows in the write's scope whose key it no longer has),
with a few of those keys as a small table. ``write = True`` (what the runner always passes)
commits. :func:`ridelake.tables.catalog.replace_rows` calls into here; this module does no I/O.

The audit columns ``created_at`` and ``updated_at`` are not compared: every rebuild stamps
``updated_at`` on every row, so they would mark every row as changed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

__all__ = ["AUDIT_COLUMNS", "SAMPLE_PER_KIND", "WritePreview", "compare", "show"]

#: Columns left out when telling whether a replaced row changed.
AUDIT_COLUMNS = ("created_at", "updated_at")
#: Keys shown per kind of change (added, changed, removed) in a preview's table.
SAMPLE_PER_KIND = 4


@dataclass(frozen=True)
class WritePreview:
    """What a write would do to a table; nothing was written.

    Attributes:
        table: the table.
        rows_before: rows in the table now.
        rows_in_scope: rows the write would delete (the rows its filter matches).
        rows_written: rows it would write.
        added: written rows whose key is not in the scope now.
        replaced: written rows whose key is (they replace a row).
        changed: replaced rows with another value in some column (audit columns aside).
        removed: rows in the scope whose key the write no longer has.
        sample: a few keys of each kind: the key columns, ``change`` (``added``, ``changed``,
            ``removed``) and ``columns`` (which columns a changed row changes).
    """

    table: str
    rows_before: int
    rows_in_scope: int
    rows_written: int
    added: int
    replaced: int
    changed: int
    removed: int
    sample: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False)

    @property
    def rows_after(self) -> int:
        """Rows the table would hold after the write."""
        return self.rows_before - self.rows_in_scope + self.rows_written

    def summary(self) -> str:
        """What the write would do, in a few lines (the sample table aside)."""
        if self.rows_in_scope == 0 and self.rows_written == 0:
            return (f"{self.table}: nothing written (write = False). The write has no rows to write and "
                    f"none to replace: the table would stay as it is ({self.rows_before:,} rows).")
        if self.rows_in_scope == 0:
            what = f"The write would add {self.rows_written:,} row(s)"
        else:
            scope = ("every row" if self.rows_in_scope == self.rows_before
                     else f"{self.rows_in_scope:,} of its {self.rows_before:,} rows")
            what = f"The write would replace {scope} with {self.rows_written:,}"
        if self.added == self.removed == self.changed == 0:
            effect = f"no row would change ({self.replaced:,} rewritten with the same values)"
        elif self.rows_in_scope == 0:
            effect = "no row replaced"
        else:
            effect = (f"{self.added:,} added, {self.replaced:,} replaced ({self.changed:,} with other values), "
                      f"{self.removed:,} removed")
        return (f"{self.table}: nothing written (write = False). {what}: {effect}; the table would hold "
                f"{self.rows_after:,} rows (now {self.rows_before:,}).\n"
                "To write it, set write = True in the parameters cell and run the notebook again.")

    def __str__(self) -> str:
        return self.summary() + (f"\n{self.sample.to_string(index=False)}" if not self.sample.empty else "")


def _same(a: pd.Series, b: pd.Series) -> pd.Series:
    """Row by row: equal values, or both missing."""
    both_missing = a.isna().to_numpy() & b.isna().to_numpy()
    try:
        equal = (a.to_numpy() == b.to_numpy())
        equal = pd.Series(equal, index=a.index).fillna(False).astype(bool).to_numpy()
    except (TypeError, ValueError):  # values that do not compare as arrays: one by one
        equal = [bool(x == y) for x, y in zip(a, b)]
    return pd.Series(both_missing | equal, index=a.index)


def _kind(frame: pd.DataFrame, key: list[str], change: str, columns: str = "") -> pd.DataFrame:
    out = frame[key].head(SAMPLE_PER_KIND).copy()
    out["change"] = change
    out["columns"] = columns if isinstance(columns, str) else list(columns)[: len(out)]
    return out


def compare(key: Sequence[str], old: pd.DataFrame, new: pd.DataFrame,
            ignore: Sequence[str] = AUDIT_COLUMNS) -> tuple[int, int, int, int, pd.DataFrame]:
    """Compare the rows a write replaces with the rows it writes, by key.

    Both frames must come through the same Arrow conversion (the table's schema), so equal values
    have equal types.

    Args:
        key: the columns that identify a row.
        old: the table's rows in the write's scope.
        new: the rows the write would write.
        ignore: columns not compared.

    Returns:
        ``(added, replaced, changed, removed, sample)`` as in :class:`WritePreview`. Rows whose key
        is not unique on one side count as replaced or removed but are not compared.
    """
    key = list(key)
    old_keys, new_keys = old[key].drop_duplicates(), new[key].drop_duplicates()
    in_old = new[key].merge(old_keys, on=key, how="left", indicator=True)["_merge"].eq("both").to_numpy()
    in_new = old[key].merge(new_keys, on=key, how="left", indicator=True)["_merge"].eq("both").to_numpy()
    added, removed = new[~in_old], old[~in_new]
    columns = [c for c in new.columns if c in old.columns and c not in key and c not in ignore]
    pairs = new[~new.duplicated(key, keep=False)].merge(
        old[~old.duplicated(key, keep=False)], on=key, how="inner", suffixes=("", "\0old"))
    differs = pd.DataFrame({c: ~_same(pairs[c], pairs[f"{c}\0old"]) for c in columns}, index=pairs.index)
    changed = pairs[differs.any(axis=1).to_numpy()] if columns else pairs.iloc[0:0]
    which = [", ".join(c for c in columns if differs.at[i, c]) for i in changed.index[:SAMPLE_PER_KIND]]
    sample = pd.concat([_kind(changed, key, "changed", which), _kind(added, key, "added"),
                        _kind(removed, key, "removed")], ignore_index=True)
    return len(added), int(in_old.sum()), len(changed), len(removed), sample


def _display() -> Any:
    """IPython's ``display`` when running in a kernel (a notebook), else None."""
    ipython = sys.modules.get("IPython")
    if ipython is None or ipython.get_ipython() is None:
        return None
    return sys.modules["IPython.display"].display if "IPython.display" in sys.modules else None


def show(result: Any) -> None:
    """Print what a write cell did: a write's one-line summary, or a preview and its sample of keys
    (as a table in a notebook)."""
    if isinstance(result, WritePreview):
        display = _display()
        if display is None:
            print(result)
            return
        print(result.summary())
        if not result.sample.empty:
            display(result.sample)
        return
    print(result.summary())
