"""Every chart renders headless with a title and labelled axes."""

from __future__ import annotations


import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from ridelake.tables import charts  # noqa: E402


def _labelled(fig) -> None:
    for ax in fig.axes:
        assert ax.get_title(), "every panel has a title"
        assert ax.get_xlabel(), f"{ax.get_title()}: x axis needs a label"
    fig.canvas.draw()
    plt.close(fig)


SUMMARY = pd.DataFrame({
    "booking_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02"]),
    "vehicle_type_name": ["Auto", "Bike", "Auto"], "booking_status_name": ["Completed"] * 3,
    "total_bookings": [2, 1, 1], "total_revenue": [100.0, 0.0, 50.0], "avg_booking_value": [50.0, None, 50.0],
})


@pytest.mark.parametrize("make", [
    lambda: charts.counts_bar(pd.Series({"Auto": 3, "Bike": 1}), "t", top=1),
    lambda: charts.customer_bookings(pd.DataFrame({"total_bookings": [1, 1, 2]})),
    lambda: charts.bookings_per_month(
        pd.DataFrame({"extraction_month": ["2024-01", "2024-02"], "booking_status_id": [1, 2]}),
        pd.DataFrame({"booking_status_id": [1, 2], "name": ["Completed", "Incomplete"]})),
    lambda: charts.ride_profile(pd.DataFrame({"ride_distance": [1.0, 20.0], "driver_rating": [4.1, None],
                                              "customer_rating": [4.5, 5.0]})),
    lambda: charts.reasons(pd.DataFrame({"reason": ["a", None, "a"], "cancelled_by": ["customer", "driver", "driver"]}),
                           "t", by="cancelled_by"),
    lambda: charts.reasons(pd.DataFrame({"reason": ["a", "b"]}), "t"),
    lambda: charts.revenue_per_day(SUMMARY),
    lambda: charts.customer_value(pd.DataFrame({"customer_id": ["C1", "C2"], "total_spent": [0.0, 10.0]})),
    lambda: charts.busiest_locations(pd.DataFrame({"location_name": ["A", "B"], "pickups": [1, 0],
                                                   "dropoffs": [0, 1]})),
])
def test_chart_renders_with_labels(make):
    _labelled(make())


def _empty(columns):
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})


@pytest.mark.parametrize("make", [
    lambda: charts.rows_per_month(pd.Series(dtype="int64"), "t"),
    lambda: charts.delivery_overview(_empty(["extraction_month", "booking_status"]), _empty(["extraction_month"]), "f"),
    lambda: charts.counts_bar(pd.Series(dtype="int64"), "t"),
    lambda: charts.customer_bookings(_empty(["total_bookings"])),
    lambda: charts.bookings_per_month(_empty(["extraction_month", "booking_status_id"]),
                                      _empty(["booking_status_id", "name"])),
    lambda: charts.ride_profile(_empty(["ride_distance", "driver_rating", "customer_rating"])),
    lambda: charts.reasons(_empty(["reason", "cancelled_by"]), "t", by="cancelled_by"),
    lambda: charts.reasons(_empty(["reason"]), "t"),
    lambda: charts.revenue_per_day(_empty(SUMMARY.columns)),
    lambda: charts.customer_value(_empty(["customer_id", "total_spent"])),
    lambda: charts.busiest_locations(_empty(["location_name", "pickups", "dropoffs"])),
])
def test_chart_of_an_empty_table_still_renders(make):
    _labelled(make())


def test_delivery_overview_with_rows():
    accepted = pd.DataFrame({"extraction_month": ["2024-01", "2024-02"], "booking_status": ["Completed"] * 2})
    rejected = pd.DataFrame({"extraction_month": [None, "2024-01"]})
    _labelled(charts.delivery_overview(accepted, rejected, "f.csv"))
    _labelled(charts.rows_per_month(pd.Series({"2024-02": 3, "2024-01": 1}), "t"))


# -- readable at a glance ------------------------------------------------------------------------

MONTHS = [f"2024-{m:02d}" for m in range(1, 13)]
STATUSES = pd.DataFrame({"booking_status_id": [1, 2, 3, 4, 5], "name": [
    "Completed", "Cancelled by Driver", "Cancelled by Customer", "No Driver Found", "Incomplete"]})


def _year_of_bookings(n: int = 12_000) -> pd.DataFrame:
    return pd.DataFrame({"extraction_month": [MONTHS[i % 12] for i in range(n)],
                         "booking_status_id": [1 + (i * 7) % 5 for i in range(n)],
                         "booking_status": [STATUSES["name"][(i * 7) % 5] for i in range(n)]})


def _revenue_summary() -> pd.DataFrame:
    days = pd.date_range("2024-01-01", "2024-12-31")
    types = ["Auto", "Go Mini", "Go Sedan", "Bike", "Premier Sedan", "eBike", "Uber XL"]
    return pd.DataFrame([(d, t, "Completed", 40, 120_000.0 + 9_000 * i + (d.day % 7) * 1_000)
                         for d in days for i, t in enumerate(types)], columns=list(SUMMARY.columns)[:5])


def _boxes(artists) -> list:
    return [a.get_window_extent() for a in artists if a.get_visible() and a.get_text()]


def _tick_labels(axis) -> list:
    """The tick labels drawn: those of ticks inside the axis' view (matplotlib keeps a few beyond)."""
    low, high = sorted(axis.get_view_interval())
    return [label for loc, label in zip(axis.get_majorticklocs(), axis.get_majorticklabels())
            if low - 1e-9 <= loc <= high + 1e-9]


def _overlapping(boxes) -> list:
    return [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]


def _inside(fig, bbox) -> bool:
    f = fig.bbox
    return bbox.x0 >= f.x0 - 1 and bbox.y0 >= f.y0 - 1 and bbox.x1 <= f.x1 + 1 and bbox.y1 <= f.y1 + 1


def _drawn(fig):
    fig.canvas.draw()
    return fig


def test_month_labels_are_short_and_name_the_year_once():
    assert charts.month_labels(["2024-01", "2024-02", "2024-12", "2025-01", "unknown"]) == [
        "Jan\n2024", "Feb", "Dec", "Jan\n2025", "unknown"]
    assert charts.month_labels(["2024-11", "2024-12", "2025-01"]) == ["Nov\n2024", "Dec", "Jan\n2025"]


@pytest.mark.parametrize("make", [
    lambda b: charts.rows_per_month(b.groupby("extraction_month").size(), "bronze.booking: rows written per month"),
    lambda b: charts.delivery_overview(b, pd.DataFrame({"extraction_month": [None, "2024-03"]}), "rides.csv"),
    lambda b: charts.bookings_per_month(b, STATUSES),
])
def test_month_labels_do_not_overlap(make):
    fig = _drawn(make(_year_of_bookings()))
    ax = fig.axes[0]
    labels = _boxes(_tick_labels(ax.xaxis))
    assert len(labels) >= 12
    assert not _overlapping(labels)
    plt.close(fig)


@pytest.mark.parametrize("make", [
    lambda: charts.delivery_overview(_year_of_bookings(), pd.DataFrame({"extraction_month": ["2024-03"]}), "f.csv"),
    lambda: charts.bookings_per_month(_year_of_bookings(), STATUSES),
    lambda: charts.ride_profile(pd.DataFrame({"ride_distance": [1.0, 5.0, 9.0] * 50, "driver_rating": [4.1, 4.5, 5.0] * 50,
                                              "customer_rating": [4.6, 4.9, 3.9] * 50})),
    lambda: charts.reasons(pd.DataFrame({"reason": ["Change of plans", "AC is not working"] * 40,
                                         "cancelled_by": ["customer", "driver", "driver", "customer"] * 20}), "t",
                           by="cancelled_by"),
    lambda: charts.revenue_per_day(_revenue_summary()),
])
def test_legends_sit_outside_the_data_and_inside_the_picture(make):
    fig = _drawn(make())
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
    assert legends, "the chart has a legend"
    for legend in legends:
        box = legend.get_window_extent()
        assert _inside(fig, box), "the legend is cut off"
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent()), f"the legend covers {ax.get_title()!r}"
    plt.close(fig)


def test_money_is_in_rupees_without_an_offset():
    assert [charts.rupees(v) for v in (0, 500, 1_500, 250_000, 6_600_000, 12_000_000)] == [
        "₹0", "₹500", "₹1.5K", "₹250K", "₹6.6M", "₹12M"]
    assert [charts.count(v) for v in (0, 950, 12_500, 2_400_000)] == ["0", "950", "12,500", "2.4M"]
    fig = _drawn(charts.revenue_per_day(_revenue_summary()))
    left, right = fig.axes[:2]
    for axis in (left.yaxis, right.xaxis):
        assert axis.get_offset_text().get_text() == "", "no 1e7 offset"
        labels = [t.get_text() for t in _tick_labels(axis) if t.get_text()]
        assert labels and all(t.startswith("₹") for t in labels), labels
    assert any(t.get_text().endswith("M") for t in _tick_labels(right.xaxis))  # totals are millions here
    assert not _overlapping(_boxes(_tick_labels(right.xaxis)))
    plt.close(fig)
    fig = _drawn(charts.customer_value(pd.DataFrame({"customer_id": [f"C{i}" for i in range(50)],
                                                     "total_spent": [0.0] + [1_000.0 * i for i in range(1, 50)]})))
    for ax in fig.axes:
        labels = [t.get_text() for t in _tick_labels(ax.xaxis) if t.get_text()]
        assert labels and all(t.startswith("₹") for t in labels), labels
    plt.close(fig)


@pytest.mark.parametrize("make, axis", [
    (lambda: charts.rows_per_month(pd.Series({"2024-02": 3, "2024-01": 1}), "t"), "y"),
    (lambda: charts.counts_bar(pd.Series({"Auto": 3, "Bike": 1}), "t"), "x"),
    (lambda: charts.reasons(pd.DataFrame({"reason": ["a", "b", "a"]}), "t"), "x"),
    (lambda: charts.reasons(pd.DataFrame({"reason": ["a", "b"], "cancelled_by": ["customer", "driver"]}), "t",
                            by="cancelled_by"), "x"),
    (lambda: charts.bookings_per_month(pd.DataFrame({"extraction_month": ["2024-01", "2024-02", "2024-02"],
                                                     "booking_status_id": [1, 2, 1]}), STATUSES), "y"),
    (lambda: charts.ride_profile(pd.DataFrame({"ride_distance": [1.0, 2.0], "driver_rating": [4.1, 4.2],
                                               "customer_rating": [4.5, 4.6]})), "y"),
    (lambda: charts.busiest_locations(pd.DataFrame({"location_name": ["A", "B"], "pickups": [2, 1],
                                                    "dropoffs": [1, 3]})), "x"),
    (lambda: charts.customer_bookings(pd.DataFrame({"total_bookings": [1, 1, 2, 3]})), "x"),
])
def test_counts_get_whole_number_ticks(make, axis):
    fig = _drawn(make())
    ax = fig.axes[0]
    ticks = [t for t in (ax.get_yticks() if axis == "y" else ax.get_xticks())
             if (ax.get_ylim() if axis == "y" else ax.get_xlim())[0] <= t <= (ax.get_ylim() if axis == "y" else
                                                                               ax.get_xlim())[1]]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    plt.close(fig)


@pytest.mark.parametrize("make", [
    lambda: charts.delivery_overview(_year_of_bookings(), pd.DataFrame({"extraction_month": [None]}),
                                     "a_rather_long_delivery_file_name.csv"),
    lambda: charts.rows_per_month(_year_of_bookings().groupby("extraction_month").size(),
                                  "bronze.incompleted_ride: rows written per booking month (ncr_ride_bookings.csv)"),
    lambda: charts.revenue_per_day(_revenue_summary()),
    lambda: charts.busiest_locations(pd.DataFrame({"location_name": [f"Location with a long name {i}" for i in range(20)],
                                                   "pickups": range(20), "dropoffs": range(20)})),
])
def test_nothing_is_cut_off(make):
    fig = _drawn(make())
    for ax in fig.axes:
        texts = [ax.title, ax.xaxis.label, ax.yaxis.label, *_tick_labels(ax.xaxis), *_tick_labels(ax.yaxis)]
        for box in _boxes(texts):
            assert _inside(fig, box), ax.get_title()
    plt.close(fig)


def test_delivery_overview_draws_the_same_from_rows_and_from_counts():
    rows = _year_of_bookings(600)
    counts = rows.groupby(["extraction_month", "booking_status"]).size().rename("rows").reset_index()
    rejected = pd.DataFrame({"extraction_month": [None, "2024-03"]})
    drawn = []
    for accepted in (rows[["extraction_month", "booking_status"]], counts):
        fig = _drawn(charts.delivery_overview(accepted, rejected, "f.csv"))
        left, right = fig.axes[:2]
        drawn.append(([round(p.get_height()) for p in left.patches], [round(p.get_width()) for p in right.patches],
                      [t.get_text() for t in right.get_yticklabels()]))
        plt.close(fig)
    assert drawn[0] == drawn[1]
    heights, widths, statuses = drawn[0]
    assert sum(heights) == 600 + 2 and sum(widths) == 600 and len(statuses) == 5


@pytest.mark.parametrize("counts", [[1] * 140_000 + [2] * 1_200 + [3] * 8, [1] * 30 + [2] * 12 + [3] * 4])
def test_log_scaled_counts_have_readable_labels(counts):
    fig = _drawn(charts.customer_bookings(pd.DataFrame({"total_bookings": counts})))
    ax = fig.axes[0]
    labels = _boxes(_tick_labels(ax.yaxis))
    assert len(labels) >= 2 and not _overlapping(labels)
    assert all("^" not in t.get_text() and "e" not in t.get_text() for t in _tick_labels(ax.yaxis))  # no 10^3
    plt.close(fig)
