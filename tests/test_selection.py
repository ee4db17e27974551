"""dbt-like selectors over the project's pipeline.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from ridelake.core.dag import load_pipeline
from ridelake.errors import SelectionError
from ridelake.core.selection import Selector, parse_selector, select

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline(ROOT, strict=False)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("silver/customer", Selector("silver/customer")),
        ("silver/customer+", Selector("silver/customer", downstream=True)),
        ("+gold/customer_analytics", Selector("gold/customer_analytics", upstream=True)),
        ("+silver/booking+", Selector("silver/booking", True, True)),
        ("silver", Selector("silver")),
        ("notebooks/silver/customer.ipynb", Selector("silver/customer")),
    ],
)
def test_parse_forms(text: str, expected: Selector) -> None:
    assert parse_selector(text) == expected


@pytest.mark.parametrize("text", ["", "+", "a/b/c", "si lver", "a+b"])
def test_parse_malformed(text: str) -> None:
    with pytest.raises(SelectionError, match="malformed selector"):
        parse_selector(text)


def test_one_notebook(pipe) -> None:
    assert select(pipe, ["silver/customer"]) == ["silver/customer"]


def test_downstream(pipe) -> None:
    got = select(pipe, ["silver/customer+"])
    assert got[0] == "silver/customer"
    assert set(got) == {"silver/customer", "silver/booking", "silver/ride", "silver/cancelled_ride",
                        "silver/incompleted_ride", "gold/daily_booking_summary",
                        "gold/customer_analytics", "gold/location_analytics"}
    assert got.index("silver/booking") < got.index("silver/ride")


def test_upstream(pipe) -> None:
    got = select(pipe, ["+gold/customer_analytics"])
    assert got[0] == "bronze/prepare" and got[-1] == "gold/customer_analytics"
    assert "silver/booking" in got and "silver/customer" in got
    assert "gold/location_analytics" not in got and "silver/ride" not in got


def test_layer_and_several_selectors(pipe) -> None:
    silver = select(pipe, ["silver"])
    assert len(silver) == 9 and all(n.startswith("silver/") for n in silver)
    both = select(pipe, ["gold", "silver/customer", "gold/customer_analytics"])
    assert both[0] == "silver/customer" and len(both) == 4
    assert select(pipe, []) == pipe.names


def test_unknown_names_suggest_close_matches(pipe) -> None:
    with pytest.raises(SelectionError, match=r"did you mean silver/customer"):
        select(pipe, ["silver/custmer"])
    with pytest.raises(SelectionError, match=r"did you mean silver"):
        select(pipe, ["silvr"])
    with pytest.raises(SelectionError, match=r"unknown notebook or layer 'platinum/x'"):
        select(pipe, ["platinum/x"])
    # a table in the wrong layer points at where it is
    with pytest.raises(SelectionError, match=r"silver/customer"):
        select(pipe, ["gold/customer"])
