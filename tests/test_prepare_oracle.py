"""The streamed, vectorised prepare agrees with the old row-by-row one on a file full of defects.

``reference_prepare`` is the old implementation (csv.reader, then pandas string checks), kept as
an oracle. The file mixes generated rows, the generator's bad rows and hand-made lines with every
defect the old path already handled; both must reject the same rows for the same reasons, keep
the same raw lines and accept the same values, with and without ``extraction_month``, whatever
the block size.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import reference_prepare as old
from conftest import HEADER, completed_row
from ridelake.tables import source
from ridelake.tables.generate import VALUE_DEFECTS, write_csv

D = dt.date(2024, 12, 31)


def _line(booking_id: str, **overrides: str) -> str:
    row = completed_row(booking_id, **overrides)
    return ",".join('"""' + v[1:-1] + '"""' if v.startswith('"') and v.endswith('"') and len(v) > 1 else v
                    for v in (row[c] for c in HEADER.split(",")))


#: Lines with the defects (and oddities) the old reader already handled.
DEFECTS = [
    _line("CNR9000001", **{"Booking Value": "abc"}),
    _line("CNR9000002", **{"Booking Value": "nan"}),
    _line("CNR9000003", **{"Ride Distance": "inf"}),
    _line("CNR9000004", **{"Date": "2024-02-30"}),
    _line("CNR9000005", **{"Date": "05/03/2024"}),
    _line("CNR9000006", **{"Time": "25:61:00"}),
    _line("CNR9000007", **{"Time": "9:05:00"}),
    _line("CNR9000008", **{"Booking ID": "null"}),
    _line("CNR9000009", **{"Customer ID": "NULL"}),
    _line("CNR9000010", **{"Pickup Location": "   "}),
    _line("CNR9000011", **{"Booking Status": "Lost"}),
    _line("CNR9000012", **{"Driver Ratings": "7.5", "Customer Rating": "0.5"}),
    _line("CNR9000013", **{"Avg VTAT": "-1", "Avg CTAT": "-2", "Booking Value": "-5", "Ride Distance": "-0.5"}),
    _line("CNR9000014", **{"Incomplete Rides": "0.5"}),
    _line("CNR9000015", **{"Cancelled Rides by Driver": "x1"}),
    _line("CNR9000016", **{"Date": "2024-13-45", "Booking Value": "1,5"}),  # the comma adds a field
    _line("CNR9000017", **{"Vehicle Type": '"Go, Sedan"'}),  # a quoted comma: still 21 fields
    _line("CNR9000018", **{"Drop Location": '5" Gate'}),  # a quote inside an unquoted field is text
    _line("CNR9000019", **{"Pickup Location": '"AIIMS" Gate'}),  # text after a closing quote
    _line("CNR9000020", **{"Booking Value": "+4.1e2", "Ride Distance": ".5", "Avg CTAT": "29."}),
    _line("CNR9000021", **{"Vehicle Type": "  Auto ", "Payment Method": ' "UPI" '}),
    _line("CNR9000022", **{"Payment Method": "", "Booking Value": "", "Driver Ratings": "null"}),
    _line("CNR9000023", date="2023-06-01"),
    "2024-01-01,10:00:00,too,few",
    "only-one-field",
    " ",
    _line("CNR9000024") + ",one too many",
    _line("CNR0000001", date="2024-07-07"),  # a repeated booking id
    _line("CNR9000025", **{"Booking Status": "Cancelled by Customer", "Cancelled Rides by Customer": "1",
                           "Reason for cancelling by Customer": "Wrong Address", "Payment Method": "null"}),
]


@pytest.fixture(scope="module")
def defect_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oracle")
    path = folder / "defects.csv"
    write_csv(path, rows=600, seed=3, bad_rows=40, bad_kinds=VALUE_DEFECTS)  # what the old reader handled
    text = path.read_bytes().decode("utf-8").split("\r\n")
    rng = np.random.default_rng(1)
    body = text[1:-1]
    for line in DEFECTS:
        body.insert(int(rng.integers(0, len(body) + 1)), line)
    body.insert(100, "")  # blank lines are not rows
    body.insert(300, "")
    path.write_bytes(("\ufeff" + "\r\n".join([text[0], *body]) + "\r\n").encode("utf-8"))
    return path


def _old(path, month=None):
    raw = old.read_source(path)
    return old.prepare_delivery(raw.rows, raw.source_file, D, month, len(raw.header))


def _norm(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=range(len(frame)))
    for c in frame.columns:
        s = frame[c].reset_index(drop=True)
        if pd.api.types.is_datetime64_any_dtype(s):
            out[c] = s.astype("datetime64[us]")
        elif pd.api.types.is_float_dtype(s) or pd.api.types.is_integer_dtype(s):
            out[c] = s.astype("Float64")
        else:
            out[c] = s.astype(object).where(s.notna(), None)
    return out


@pytest.mark.parametrize("month", [None, "2024-03"])
@pytest.mark.parametrize("block_size", [None, 1000])
def test_new_prepare_agrees_with_the_old_one(defect_file, month, block_size):
    was = _old(defect_file, month)
    now = source.prepare_file(defect_file, D, month, block_size=block_size)
    assert len(was.rejected) >= (60 if month is None else 20)  # the file really is full of defects
    assert now.rows_in_file == was.rows_in_file
    assert now.out_of_scope == was.out_of_scope
    assert now.months == was.months
    pd.testing.assert_frame_equal(_norm(now.rejected), _norm(was.rejected[now.rejected.columns]))
    assert list(now.accepted.columns) == list(was.accepted.columns)
    pd.testing.assert_frame_equal(_norm(now.accepted), _norm(was.accepted))
    now.check_reconciled()


def test_the_defects_are_rejected_for_what_they_are(defect_file):
    reasons = set(source.prepare_file(defect_file, D).rejected["reason"])
    for expected in ["Booking Value: not a number: 'abc'", "Date: not a date (YYYY-MM-DD): '2024-02-30'",
                     "Time: not a time (HH:MM:SS): '9:05:00'", "Booking Status: unknown value 'Lost'",
                     "Driver Ratings: outside 1..5: '7.5'; Customer Rating: outside 1..5: '0.5'",
                     "Incomplete Rides: not a whole number: '0.5'", "expected 21 fields, found 4",
                     "expected 21 fields, found 1", "expected 21 fields, found 22", "Pickup Location: missing value"]:
        assert expected in reasons
