"""The notebooks' pictures: one function per chart, each returning a matplotlib ``Figure``.

Every chart has a title and axis labels with units, and renders headless (Agg). They read at a
glance: month labels never overlap (``Jan 2024``, then ``Feb``, ``Mar``...), legends sit outside
the data, money is in rupees with K/M (``₹1.5M``, no ``1e7`` offset), counts get whole-number
ticks with thousands separators. Figures use matplotlib's constrained layout, which makes room
for the outside legends. Inputs are the frames the notebooks already hold; nothing here reads
or writes tables.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Iterable, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

__all__ = [
    "rows_per_month",
    "delivery_overview",
    "counts_bar",
    "customer_bookings",
    "bookings_per_month",
    "ride_profile",
    "reasons",
    "revenue_per_day",
    "customer_value",
    "busiest_locations",
    "rupees",
    "count",
    "month_labels",
]

_BLUE, _GREEN, _RED, _GREY = "#4C72B0", "#55A868", "#C44E52", "#8C8C8C"
_RUPEE = "\u20b9"  # ₹ (DejaVu Sans, matplotlib's default font, has it)


# -- axis formats --------------------------------------------------------------------------------

def _short(value: float) -> str:
    """``950``, ``1.5K``, ``250K``, ``6.6M``, ``1.2B`` (one decimal at most, ``.0`` dropped)."""
    size = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if size >= limit:
            text = f"{value / limit:,.1f}".removesuffix(".0")
            return f"{text}{suffix}"
    return f"{value:,.0f}" if float(value).is_integer() or size >= 10 else f"{value:,.1f}"


def rupees(value: float, _pos: Any = None) -> str:
    """An axis label for an amount in INR: ``₹0``, ``₹500``, ``₹12K``, ``₹6.6M``."""
    sign = "-" if value < 0 else ""
    return f"{sign}{_RUPEE}{_short(abs(value))}"


def count(value: float, _pos: Any = None) -> str:
    """An axis label for a count: ``950``, ``12,500``, ``1.2M`` (thousands separators, M beyond a million)."""
    return _short(value) if abs(value) >= 1e6 else f"{value:,.0f}"


def _money_axis(axis: Axis, bins: int = 6) -> None:
    axis.set_major_locator(MaxNLocator(nbins=bins, steps=[1, 2, 2.5, 5, 10]))
    axis.set_major_formatter(FuncFormatter(rupees))


def _count_axis(axis: Axis, bins: int | str = "auto") -> None:
    """Whole-number ticks (never 0.5, 1.5...) with thousands separators."""
    axis.set_major_locator(MaxNLocator(nbins=bins, integer=True, steps=[1, 2, 2.5, 5, 10]))
    axis.set_major_formatter(FuncFormatter(count))


def month_labels(months: Iterable[Any]) -> list[str]:
    """Tick labels for ``YYYY-MM`` months that do not overlap: ``Jan\\n2024`` for the first month
    and each January, else the month alone (``Feb``); anything else (``unknown``) as it is."""
    out: list[str] = []
    year = None
    for value in months:
        try:
            period = pd.Period(str(value), freq="M")
        except (ValueError, TypeError):
            out.append(str(value))
            continue
        out.append(f"{period:%b}\n{period.year}" if period.year != year or period.month == 1 else f"{period:%b}")
        year = period.year
    return out


# -- figure helpers ------------------------------------------------------------------------------

def _drawn_once(chart: Callable[..., Figure]) -> Callable[..., Figure]:
    """The chart's figure is complete when it is returned: marked not stale, so that pyplot's
    after-each-cell hook (``draw_all`` of stale figures, with ``%matplotlib inline``) does not
    draw it once more before the inline backend renders its PNG (a third of a chart's cost)."""

    @functools.wraps(chart)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        fig = chart(*args, **kwargs)
        fig.stale = False
        return fig

    return wrapper


def _fig(*args: int, **kwargs: Any) -> tuple[Figure, Any]:
    return plt.subplots(*args, layout="constrained", **kwargs)


def _nothing(ax: Axes, title: str, xlabel: str, ylabel: str = "") -> None:
    """Label an empty panel so an empty table still gives a readable picture."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.text(0.5, 0.5, "no rows", ha="center", va="center", transform=ax.transAxes, color=_GREY, fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])


def _legend_outside(fig: Figure, ax: Axes, title: str | None = None) -> None:
    """The legend to the right of the panels, never over the data."""
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", frameon=False, fontsize=8, title=title,
                   title_fontsize=8)


def _month_bars(ax: Axes, frame: pd.DataFrame | pd.Series, colors: Sequence[str] | str, stacked: bool = False) -> None:
    """Bars per month with short month labels and whole-number ticks."""
    frame.plot.bar(ax=ax, stacked=stacked, color=colors, width=0.8, rot=0, legend=False)
    if isinstance(frame, pd.Series):
        tallest = float(frame.max())
    else:
        tallest = float(frame.sum(axis=1).max() if stacked else frame.max().max())
    ax.set_ylim(0, max(tallest, 1) * 1.08)  # headroom: the tallest bar does not touch the frame
    ax.set_xticks(range(len(frame.index)), month_labels(frame.index))
    ax.tick_params(axis="x", labelsize=9)
    _count_axis(ax.yaxis)


# -- the charts ----------------------------------------------------------------------------------

@_drawn_once
def rows_per_month(per_month: pd.Series, title: str) -> Figure:
    """Rows per booking month (a bronze write).

    Args:
        per_month: ``extraction_month`` -> rows.
        title: the chart's title.

    Returns:
        The Figure.
    """
    fig, ax = _fig(figsize=(8, 3))
    if per_month.empty:
        _nothing(ax, title, "booking month (extraction_month)", "rows")
        return fig
    _month_bars(ax, per_month.sort_index(), _BLUE)
    ax.set_title(title)
    ax.set_xlabel("booking month (extraction_month)")
    ax.set_ylabel("rows")
    return fig


@_drawn_once
def delivery_overview(accepted: pd.DataFrame, rejected: pd.DataFrame, source_file: str) -> Figure:
    """A prepared delivery: accepted and rejected rows per month, accepted rows by status.

    Args:
        accepted: the accepted rows (``extraction_month``, ``booking_status``), or their counts:
            the same columns plus ``rows`` (one row per month and status, as
            ``PreparedDelivery.accepted_counts`` holds them).
        rejected: the rejected rows (``extraction_month``, null when the date did not parse).
        source_file: the file's name, for the title.

    Returns:
        The Figure.
    """
    fig, (left, right) = _fig(1, 2, figsize=(12, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    weights = accepted["rows"] if "rows" in accepted.columns else pd.Series(1, index=accepted.index)
    by_month = pd.DataFrame({
        "accepted": weights.groupby(accepted["extraction_month"]).sum(),
        "rejected": rejected["extraction_month"].fillna("unknown").value_counts(),
    }).fillna(0).astype(int).sort_index()
    title = f"{source_file}: rows per booking month"
    if by_month.empty:
        _nothing(left, title, "booking month", "rows")
    else:
        by_month.index = [("no\ndate" if m == "unknown" else m) for m in by_month.index]
        _month_bars(left, by_month, [_BLUE, _RED], stacked=True)
        left.set_title(title)
        left.set_xlabel("booking month")
        left.set_ylabel("rows")
        # beside its own panel, outside the data (constrained layout makes the room)
        left.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    statuses = weights.groupby(accepted["booking_status"]).sum().sort_values()
    statuses = statuses[statuses > 0]
    if statuses.empty:
        _nothing(right, "accepted rows by booking status", "rows")
    else:
        statuses.plot.barh(ax=right, color=_GREEN)
        right.set_title("accepted rows by booking status")
        right.set_xlabel("rows")
        right.set_ylabel("")
        _count_axis(right.xaxis, bins=5)
    return fig


@_drawn_once
def counts_bar(counts: pd.Series, title: str, xlabel: str = "bookings", top: int | None = None) -> Figure:
    """A horizontal bar per name, largest at the top, each labelled with its count.

    Args:
        counts: name -> count.
        title: the chart's title.
        xlabel: what is counted (the x axis).
        top: show only the largest ``top`` names.

    Returns:
        The Figure.
    """
    data = counts.sort_values(ascending=False)
    if top:
        data = data.head(top)
    fig, ax = _fig(figsize=(8, 0.3 * len(data) + 1.4))
    if data.empty:
        _nothing(ax, title, xlabel)
        return fig
    data.iloc[::-1].plot.barh(ax=ax, color=_BLUE)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("")
    _count_axis(ax.xaxis)
    for y, v in enumerate(data.iloc[::-1]):
        ax.annotate(f"{v:,.0f}", (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    ax.margins(x=0.12)  # room for the labels at the ends of the bars
    return fig


@_drawn_once
def customer_bookings(customer: pd.DataFrame) -> Figure:
    """How many bookings customers make (log-scaled counts)."""
    fig, ax = _fig(figsize=(8, 3))
    title = f"silver.customer: bookings per customer ({len(customer):,} customers)"
    counts = customer["total_bookings"].dropna().astype(int).value_counts().sort_index()
    if counts.empty:
        _nothing(ax, title, "bookings per customer", "customers")
        return fig
    ax.bar(counts.index.to_numpy(), counts.to_numpy(), color=_BLUE)
    ax.set_yscale("log")
    decades = math.log10(max(float(counts.max()), 1.0) / max(float(counts.min()), 1.0))
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)))
    ax.yaxis.set_major_formatter(FuncFormatter(count))
    ax.yaxis.set_minor_formatter(NullFormatter())
    _count_axis(ax.xaxis)
    ax.set_title(title)
    ax.set_xlabel("bookings per customer")
    ax.set_ylabel("customers (log scale)")
    return fig


@_drawn_once
def bookings_per_month(booking: pd.DataFrame, booking_status: pd.DataFrame) -> Figure:
    """Bookings per booking month, stacked by status."""
    names = booking_status.set_index("booking_status_id")["name"]
    frame = booking.assign(status=booking["booking_status_id"].map(names))
    table = frame.groupby(["extraction_month", "status"]).size().unstack(fill_value=0)
    fig, ax = _fig(figsize=(10, 3.6))
    title = "silver.booking: bookings per month by status"
    if table.empty:
        _nothing(ax, title, "booking month", "bookings")
        return fig
    table = table[table.sum().sort_values(ascending=False).index]  # the biggest status at the bottom
    _month_bars(ax, table, [_GREEN, _RED, _BLUE, _GREY, "#DD8452", "#8172B3"][: table.shape[1]], stacked=True)
    ax.set_title(title)
    ax.set_xlabel("booking month")
    ax.set_ylabel("bookings")
    _legend_outside(fig, ax, "status")
    return fig


@_drawn_once
def ride_profile(ride: pd.DataFrame) -> Figure:
    """Completed rides: distance, and driver vs. customer ratings."""
    fig, (left, right) = _fig(1, 2, figsize=(11, 3.3))
    distance = ride["ride_distance"].dropna()
    if distance.empty:
        _nothing(left, "silver.ride: ride distance", "distance (km)", "rides")
    else:
        left.hist(distance, bins=40, color=_BLUE)
        left.set_title("silver.ride: ride distance")
        left.set_xlabel("distance (km)")
        left.set_ylabel("rides")
        _count_axis(left.yaxis)
    ratings = [ride["driver_rating"].dropna(), ride["customer_rating"].dropna()]
    if all(r.empty for r in ratings):
        _nothing(right, "silver.ride: ratings", "rating (1-5 stars)", "rides")
        return fig
    bins = [x / 10 for x in range(29, 52)]
    right.hist(ratings, bins=bins, label=["driver rating", "customer rating"], color=[_GREEN, _GREY])
    right.set_title("silver.ride: ratings")
    right.set_xlabel("rating (1-5 stars)")
    right.set_ylabel("rides")
    _count_axis(right.yaxis)
    _legend_outside(fig, right)
    return fig


@_drawn_once
def reasons(frame: pd.DataFrame, title: str, by: str | None = None) -> Figure:
    """Reasons, optionally split by a column (e.g. ``cancelled_by``)."""
    reason = frame["reason"].fillna("(no reason given)")
    if by is None:
        return counts_bar(reason.value_counts(), title, "rides")
    table = pd.crosstab(reason, frame[by])
    table = table.loc[table.sum(axis=1).sort_values().index]
    fig, ax = _fig(figsize=(9, 0.35 * len(table) + 1.5))
    if table.empty:
        _nothing(ax, title, "rides")
        return fig
    table.plot.barh(stacked=True, ax=ax, color=[_BLUE, _RED, _GREEN][: table.shape[1]])
    ax.set_title(title)
    ax.set_xlabel("rides")
    ax.set_ylabel("")
    _count_axis(ax.xaxis)
    _legend_outside(fig, ax, by)
    return fig


@_drawn_once
def revenue_per_day(summary: pd.DataFrame) -> Figure:
    """Revenue per day by vehicle type (7-day rolling mean) and the revenue per type."""
    daily = summary.pivot_table(index="booking_date", columns="vehicle_type_name", values="total_revenue",
                                aggfunc="sum", fill_value=0.0).sort_index()
    fig, (left, right) = _fig(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [3, 1]})
    title = "gold.daily_booking_summary: revenue per day by vehicle type (7-day mean)"
    if daily.empty:
        _nothing(left, title, "booking date", "revenue per day (₹)")
        _nothing(right, "total revenue by vehicle type", "revenue (₹)")
        return fig
    daily.index = pd.to_datetime(daily.index)
    order = daily.sum().sort_values(ascending=False).index  # the legend lists the biggest first
    smooth = daily[order].rolling(7, min_periods=1).mean()
    for name in order:
        left.plot(smooth.index, smooth[name], linewidth=1.2, label=str(name))
    left.set_title(title)
    left.set_xlabel("booking date")
    left.set_ylabel("revenue per day (₹)")
    locator = AutoDateLocator()
    left.xaxis.set_major_locator(locator)
    left.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    _money_axis(left.yaxis)
    left.set_ylim(bottom=0)
    share = daily.sum().sort_values()
    share.plot.barh(ax=right, color=_BLUE)
    right.set_title("total revenue by vehicle type")
    right.set_xlabel("revenue (₹)")
    right.set_ylabel("")
    _money_axis(right.xaxis, bins=4)
    _legend_outside(fig, left, "vehicle type")
    return fig


@_drawn_once
def customer_value(analytics: pd.DataFrame, top: int = 10) -> Figure:
    """The distribution of customer lifetime value and the top customers."""
    fig, (left, right) = _fig(1, 2, figsize=(12, 3.8))
    spent = analytics["total_spent"].dropna()
    title = f"gold.customer_analytics: lifetime value ({int((spent == 0).sum()):,} customers spent 0)"
    if (spent > 0).any():
        left.hist(spent[spent > 0], bins=50, color=_BLUE)
        _money_axis(left.xaxis)
        _count_axis(left.yaxis)
        left.set_title(title)
        left.set_xlabel("total spent per customer (₹)")
        left.set_ylabel("customers")
    else:
        _nothing(left, title, "total spent per customer (₹)", "customers")
    best = analytics.nlargest(top, "total_spent").iloc[::-1]
    if best.empty:
        _nothing(right, f"top {top} customers by total spent", "total spent (₹)")
        return fig
    right.barh(best["customer_id"].astype(str), best["total_spent"], color=_GREEN)
    right.set_title(f"top {top} customers by total spent")
    right.set_xlabel("total spent (₹)")
    _money_axis(right.xaxis, bins=5)
    return fig


@_drawn_once
def busiest_locations(analytics: pd.DataFrame, top: int = 15) -> Figure:
    """The busiest pickup and drop locations."""
    fig, (left, right) = _fig(1, 2, figsize=(12, 0.28 * top + 1.9))
    fig.suptitle("gold.location_analytics: the busiest locations")
    for ax, column, color, label in ((left, "pickups", _BLUE, "pickup"), (right, "dropoffs", _RED, "drop")):
        title = f"top {top} {label} locations"
        best = analytics.nlargest(top, column).iloc[::-1]
        if best.empty:
            _nothing(ax, title, f"{column} (bookings)")
            continue
        ax.barh(best["location_name"].astype(str), best[column], color=color)
        ax.set_title(title)
        ax.set_xlabel(f"{column} (bookings)")
        _count_axis(ax.xaxis)
    return fig
