"""The notebooks' pictures: one function per chart, each returning a matplotlib ``Figure``.

Every chart has a title, axis labels with units, and renders headless (Agg). Inputs are the
frames the notebooks already hold; nothing here reads or writes tables.
"""

from __future__ import annotations

import pandas as pd

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
]

_BLUE, _GREEN, _RED, _GREY = "#4C72B0", "#55A868", "#C44E52", "#8C8C8C"


def _fig(*args: int, **kwargs: object):  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def _nothing(ax, title: str, xlabel: str, ylabel: str = "") -> None:  # type: ignore[no-untyped-def]
    """Label an empty panel so an empty table still gives a readable picture."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.text(0.5, 0.5, "no rows", ha="center", va="center", transform=ax.transAxes, color=_GREY, fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])


def rows_per_month(per_month: pd.Series, title: str):  # type: ignore[no-untyped-def]
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
    else:
        per_month.sort_index().plot.bar(ax=ax, color=_BLUE, rot=0)
        ax.set_title(title)
        ax.set_xlabel("booking month (extraction_month)")
        ax.set_ylabel("rows")
    fig.tight_layout()
    return fig


def delivery_overview(accepted: pd.DataFrame, rejected: pd.DataFrame, source_file: str):  # type: ignore[no-untyped-def]
    """A prepared delivery: accepted and rejected rows per month, accepted rows by status.

    Args:
        accepted: the accepted rows (``extraction_month``, ``booking_status``).
        rejected: the rejected rows (``extraction_month``, null when the date did not parse).
        source_file: the file's name, for the title.

    Returns:
        The Figure.
    """
    fig, (left, right) = _fig(1, 2, figsize=(12, 3.5), gridspec_kw={"width_ratios": [3, 2]})
    by_month = pd.DataFrame({
        "accepted": accepted.groupby("extraction_month").size(),
        "rejected": rejected["extraction_month"].fillna("unknown").value_counts(),
    }).fillna(0).astype(int).sort_index()
    title = f"{source_file}: rows per booking month"
    if by_month.empty:
        _nothing(left, title, "booking month", "rows")
    else:
        by_month.plot.bar(stacked=True, ax=left, rot=0, color=[_BLUE, _RED], title=title)
        left.set_xlabel("booking month")
        left.set_ylabel("rows")
    statuses = accepted["booking_status"].value_counts().sort_values()
    if statuses.empty:
        _nothing(right, "accepted rows by booking status", "rows")
    else:
        statuses.plot.barh(ax=right, color=_GREEN, title="accepted rows by booking status")
        right.set_xlabel("rows")
        right.set_ylabel("")
    fig.tight_layout()
    return fig


def counts_bar(counts: pd.Series, title: str, xlabel: str = "bookings", top: int | None = None):  # type: ignore[no-untyped-def]
    """A horizontal bar per name, largest at the top.

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
    fig, ax = _fig(figsize=(8, 0.3 * len(data) + 1.2))
    if data.empty:
        _nothing(ax, title, xlabel)
        fig.tight_layout()
        return fig
    data.iloc[::-1].plot.barh(ax=ax, color=_BLUE)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("")
    for y, v in enumerate(data.iloc[::-1]):
        ax.annotate(f"{v:,.0f}", (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    fig.tight_layout()
    return fig


def customer_bookings(customer: pd.DataFrame):  # type: ignore[no-untyped-def]
    """How many bookings customers make (log-scaled counts)."""
    fig, ax = _fig(figsize=(8, 3))
    counts = customer["total_bookings"].value_counts().sort_index()
    ax.bar(counts.index.astype(int), counts.to_numpy(), color=_BLUE)
    ax.set_yscale("log")
    ax.set_title(f"silver.customer: bookings per customer ({len(customer):,} customers)")
    ax.set_xlabel("bookings per customer")
    ax.set_ylabel("customers (log scale)")
    fig.tight_layout()
    return fig


def bookings_per_month(booking: pd.DataFrame, booking_status: pd.DataFrame):  # type: ignore[no-untyped-def]
    """Bookings per booking month, stacked by status."""
    names = booking_status.set_index("booking_status_id")["name"]
    frame = booking.assign(status=booking["booking_status_id"].map(names))
    table = frame.groupby(["extraction_month", "status"]).size().unstack(fill_value=0)
    fig, ax = _fig(figsize=(10, 3.5))
    title = "silver.booking: bookings per month by status"
    if table.empty:
        _nothing(ax, title, "booking month", "bookings")
        fig.tight_layout()
        return fig
    table.plot.bar(stacked=True, ax=ax, rot=0, width=0.8)
    ax.set_title(title)
    ax.set_xlabel("booking month")
    ax.set_ylabel("bookings")
    ax.legend(fontsize=8, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    fig.tight_layout()
    return fig


def ride_profile(ride: pd.DataFrame):  # type: ignore[no-untyped-def]
    """Completed rides: distance, and driver vs. customer ratings."""
    fig, (left, right) = _fig(1, 2, figsize=(11, 3.2))
    left.hist(ride["ride_distance"].dropna(), bins=40, color=_BLUE)
    left.set_title("silver.ride: ride distance")
    left.set_xlabel("distance (km)")
    left.set_ylabel("rides")
    bins = [x / 10 for x in range(29, 52)]
    right.hist([ride["driver_rating"].dropna(), ride["customer_rating"].dropna()], bins=bins,
               label=["driver rating", "customer rating"], color=[_GREEN, _GREY])
    right.set_title("silver.ride: ratings")
    right.set_xlabel("rating (1-5 stars)")
    right.set_ylabel("rides")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def reasons(frame: pd.DataFrame, title: str, by: str | None = None):  # type: ignore[no-untyped-def]
    """Reasons, optionally split by a column (e.g. ``cancelled_by``)."""
    reason = frame["reason"].fillna("(no reason given)")
    if by is None:
        return counts_bar(reason.value_counts(), title, "rides")
    table = pd.crosstab(reason, frame[by])
    table = table.loc[table.sum(axis=1).sort_values().index]
    fig, ax = _fig(figsize=(9, 0.35 * len(table) + 1.4))
    if table.empty:
        _nothing(ax, title, "rides")
        fig.tight_layout()
        return fig
    table.plot.barh(stacked=True, ax=ax, color=[_BLUE, _RED, _GREEN][: table.shape[1]])
    ax.set_title(title)
    ax.set_xlabel("rides")
    ax.set_ylabel("")
    ax.legend(title=by, fontsize=8)
    fig.tight_layout()
    return fig


def revenue_per_day(summary: pd.DataFrame):  # type: ignore[no-untyped-def]
    """Revenue per day by vehicle type (7-day rolling mean) and the revenue share per type."""
    daily = summary.pivot_table(index="booking_date", columns="vehicle_type_name", values="total_revenue",
                                aggfunc="sum", fill_value=0.0).sort_index()
    fig, (left, right) = _fig(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [3, 1]})
    title = "gold.daily_booking_summary: revenue per day by vehicle type (7-day mean)"
    if daily.empty:
        _nothing(left, title, "booking date", "revenue per day (INR)")
        _nothing(right, "total revenue by vehicle type", "revenue (INR)")
        fig.tight_layout()
        return fig
    daily.rolling(7, min_periods=1).mean().plot(ax=left, linewidth=1.2)
    left.set_title(title)
    left.set_xlabel("booking date")
    left.set_ylabel("revenue per day (INR)")
    left.legend(fontsize=8, ncol=2)
    share = daily.sum().sort_values()
    share.plot.barh(ax=right, color=_BLUE)
    right.set_title("total revenue by vehicle type")
    right.set_xlabel("revenue (INR)")
    right.set_ylabel("")
    fig.tight_layout()
    return fig


def customer_value(analytics: pd.DataFrame, top: int = 10):  # type: ignore[no-untyped-def]
    """The distribution of customer lifetime value and the top customers."""
    fig, (left, right) = _fig(1, 2, figsize=(12, 3.8))
    spent = analytics["total_spent"]
    left.hist(spent[spent > 0], bins=50, color=_BLUE)
    left.set_title(f"gold.customer_analytics: lifetime value ({int((spent == 0).sum()):,} customers spent 0)")
    left.set_xlabel("total spent per customer (INR)")
    left.set_ylabel("customers")
    best = analytics.nlargest(top, "total_spent").iloc[::-1]
    right.barh(best["customer_id"], best["total_spent"], color=_GREEN)
    right.set_title(f"top {top} customers by total spent")
    right.set_xlabel("total spent (INR)")
    fig.tight_layout()
    return fig


def busiest_locations(analytics: pd.DataFrame, top: int = 15):  # type: ignore[no-untyped-def]
    """The busiest pickup and drop locations."""
    fig, (left, right) = _fig(1, 2, figsize=(12, 0.28 * top + 1.6))
    for ax, column, color, label in ((left, "pickups", _BLUE, "pickup"), (right, "dropoffs", _RED, "drop")):
        best = analytics.nlargest(top, column).iloc[::-1]
        ax.barh(best["location_name"], best[column], color=color)
        ax.set_title(f"gold.location_analytics: top {top} {label} locations")
        ax.set_xlabel(f"{column} (bookings)")
    fig.tight_layout()
    return fig
