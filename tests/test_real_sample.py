"""The real sample of the public file (../shared/fixtures) loads cleanly, with exact counts."""

from __future__ import annotations

import pandas as pd

from ridelake.tables import catalog
from test_catalog import load


def test_real_sample_loads_with_no_rejects_and_exact_counts_per_status(real_sample, warehouse):
    prepared = load(real_sample)
    truth = pd.read_csv(real_sample, dtype=str, keep_default_na=False)
    assert prepared.rows_in_file == len(truth) == 2648
    assert len(prepared.rejected) == 0
    assert catalog.read_table("bronze.rejected_row").empty

    expected = truth["Booking Status"].value_counts().to_dict()
    booking = catalog.read_table("bronze.booking")
    assert booking["booking_status"].value_counts().to_dict() == expected
    assert len(catalog.read_table("bronze.ride")) == expected["Completed"]
    cancelled = catalog.read_table("bronze.cancelled_ride")["cancelled_by"].value_counts().to_dict()
    assert cancelled == {"driver": expected["Cancelled by Driver"], "customer": expected["Cancelled by Customer"]}
    assert len(catalog.read_table("bronze.incompleted_ride")) == expected["Incomplete"]
    assert len(catalog.read_table("bronze.location")) == 2 * len(truth)
    assert len(catalog.read_table("bronze.payment_method")) == int((truth["Payment Method"] != "null").sum())
    ids = truth["Booking ID"].str.strip('"')
    assert sorted(booking["booking_id"]) == sorted(ids)
    assert booking["booking_value"].sum() == pd.to_numeric(truth["Booking Value"].replace("null", None)).sum()
