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
