"""Point-in-time correctness: nothing dated after the as-of day can change a feature as of that day."""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from features._compat import ensure_duckdb_compat
from features.rfm import rfm_features

AS_OF = dt.date(2025, 6, 30)
START = dt.datetime(2024, 1, 1)
CUTOFF = dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time())  # first instant after the as-of day


def orders_strategy(min_time: dt.datetime, max_time: dt.datetime, min_size: int = 0):
    # Half the orders fall within two days of the boundary, where off-by-one mistakes live.
    near = (st.datetimes(min_value=min_time, max_value=min_time + dt.timedelta(days=2)) if min_time >= CUTOFF
            else st.datetimes(min_value=max_time - dt.timedelta(days=2), max_value=max_time))
    order = st.fixed_dictionaries({
        "customer_id": st.sampled_from(["A", "B", "C", "D"]),
        "timestamp": st.one_of(near, st.datetimes(min_value=min_time, max_value=max_time)),
        "amount": st.floats(min_value=0, max_value=1000, allow_nan=False).map(lambda x: round(x, 2)),
        "is_return": st.booleans(),
    })
    return st.lists(order, min_size=min_size, max_size=25)


def features(con, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "is_return"]).astype(
        {"customer_id": "str", "timestamp": "datetime64[us]", "amount": "float64", "is_return": "bool"})
    table = con.create_table("orders", frame, overwrite=True)
    return rfm_features(table, AS_OF).to_pandas()


@settings(max_examples=25, deadline=None)
@given(
    before=orders_strategy(START, CUTOFF - dt.timedelta(microseconds=1), min_size=1),
    after=orders_strategy(CUTOFF, dt.datetime(2026, 12, 31)),
    changed_after=orders_strategy(CUTOFF, dt.datetime(2026, 12, 31)),
)
def test_orders_after_the_as_of_day_never_change_the_features(before, after, changed_after):
    ensure_duckdb_compat()
    con = ibis.duckdb.connect()
    baseline = features(con, before + after)
    # Adding, changing or deleting anything after the as-of day: the same features.
    pd.testing.assert_frame_equal(features(con, before + changed_after), baseline)
    pd.testing.assert_frame_equal(features(con, before), baseline)
