"""docs/contract.md is the contract the code cites: every "docs/contract.md §N" reference resolves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "docs" / "contract.md"
_REF = re.compile(r"docs/contract\.md (§\d+(?:\s*(?:-|and|,)\s*§\d+)*)")


def _sections() -> set[int]:
    return {int(m) for m in re.findall(r"^## §(\d+) ", CONTRACT.read_text(encoding="utf-8"), flags=re.M)}


def _cited(paths: list[Path]) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for path in paths:
        for refs in _REF.findall(path.read_text(encoding="utf-8")):
            found.setdefault(str(path.relative_to(ROOT)), set()).update(int(n) for n in re.findall(r"§(\d+)", refs))
    return found


def test_contract_has_sections_one_to_seven():
    assert _sections() == set(range(1, 8))


def test_every_reference_in_the_code_and_tests_resolves():
    paths = sorted((ROOT / "lib").rglob("*.py")) + sorted((ROOT / "tests").rglob("*.py"))
    cited = _cited(paths)
    assert cited, "the code cites docs/contract.md"
    sections = _sections()
    unknown = {f: sorted(n - sections) for f, n in cited.items() if n - sections}
    assert not unknown, unknown
    old = "CONTRACT" + " §"  # the shared contract's old citation (spelled so this file does not match)
    stale = [str(p.relative_to(ROOT)) for p in paths if old in p.read_text(encoding="utf-8")]
    assert not stale, f"still citing the shared contract: {stale}"
