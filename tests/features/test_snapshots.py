"""Snapshot dates and the stacked training set: no label window reaches past the end date."""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.labels import purchase_labels
from features.rfm import rfm_features
from features.snapshots import snapshot_dates, training_set
from store.ibis_compat import ensure_duckdb_compat


def test_snapshots_roll_back_from_the_end_oldest_first():
    # 30 Jun − 30 days = 31 May, then back 7 days at a time.
    assert snapshot_dates(dt.date(2025, 6, 30), horizon_days=30, n_snapshots=3, step_days=7) == [
        dt.date(2025, 5, 17), dt.date(2025, 5, 24), dt.date(2025, 5, 31)]
    assert snapshot_dates(dt.date(2024, 3, 1), horizon_days=1, n_snapshots=1, step_days=90) == [dt.date(2024, 2, 29)]


@given(
    end=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2030, 12, 31)),
    horizon_days=st.integers(1, 400),
    n_snapshots=st.integers(1, 12),
    step_days=st.integers(1, 120),
)
def test_every_label_window_ends_on_or_before_the_end_and_the_latest_on_it(end, horizon_days, n_snapshots, step_days):
    dates = snapshot_dates(end, horizon_days, n_snapshots, step_days)
    assert len(dates) == n_snapshots
    assert all(d + dt.timedelta(days=horizon_days) <= end for d in dates)
    assert dates[-1] + dt.timedelta(days=horizon_days) == end
    assert all((later - earlier).days == step_days for earlier, later in zip(dates, dates[1:]))


@pytest.mark.parametrize("name, args", [
    ("horizon_days", (30, 0, 3, 7)),
    ("n_snapshots", (30, 30, 0, 7)),
    ("step_days", (30, 30, 3, -1)),
    ("step_days", (30, 30, 3, 7.0)),
])
def test_snapshot_counts_must_be_whole_numbers_of_at_least_one(name, args):
    _, horizon_days, n_snapshots, step_days = args
    with pytest.raises(ValueError, match=f"{name} must be a whole number >= 1"):
        snapshot_dates(dt.date(2025, 6, 30), horizon_days, n_snapshots, step_days)


def test_the_end_must_be_a_date():
    with pytest.raises(ValueError, match="end must be a datetime.date"):
        snapshot_dates(dt.datetime(2025, 6, 30, 12), 30, 3, 7)


# End 21 Jan 2025, 7-day horizon, two weekly snapshots: as of 7 Jan (labels 8–14 Jan)
# and as of 14 Jan (labels 15–21 Jan).
END = dt.date(2025, 1, 21)
HORIZON_DAYS = 7


def order(customer, when, amount, category):
    return {"customer_id": customer, "timestamp": pd.Timestamp(when), "amount": float(amount),
            "category": category, "is_return": False}


ORDERS = [
    order("A", "2025-01-01 10:00", 10, "w"),
    order("A", "2025-01-10 10:00", 20, "x"),
    order("A", "2025-01-20 10:00", 30, "y"),
    order("B", "2025-01-12 10:00", 40, "z"),
    order("C", "2025-01-18 10:00", 50, "z"),     # first purchase after the last as-of day: in no snapshot
]
AFTER_END = [order("A", "2025-01-22 00:00", 99, "late"), order("B", "2025-02-01 10:00", 77, "late")]


def stacked(rows: list[dict]) -> pd.DataFrame:
    ensure_duckdb_compat()
    table = ibis.duckdb.connect().create_table("orders", pd.DataFrame(rows))
    return training_set(
        build=lambda as_of: rfm_features(table, as_of).to_pandas(),
        labels=lambda as_of: purchase_labels(table, as_of, HORIZON_DAYS).to_pandas(),
        dates=snapshot_dates(END, HORIZON_DAYS, n_snapshots=2, step_days=7),
    )


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return stacked(ORDERS + AFTER_END)


def test_one_row_per_customer_and_snapshot_with_its_as_of(train):
    assert train.columns[0] == "as_of"
    assert train["as_of"].dtype == "datetime64[s]"
    keys = list(zip(train.as_of.dt.date, train.customer_id))
    assert keys == [(dt.date(2025, 1, 7), "A"), (dt.date(2025, 1, 14), "A"), (dt.date(2025, 1, 14), "B")]


def test_features_and_labels_come_from_their_own_snapshot(train):
    columns = ["purchase_days", "revenue_total", "recency_days",
               "purchased_in_horizon", "revenue_in_horizon", "days_to_next_purchase",
               "next_purchase_censored", "categories_in_horizon", "churned"]
    assert train[columns].values.tolist() == [
        [1, 10.0, 6, 1, 20.0, 3, False, "x", 0],   # A as of 7 Jan: bought 1 Jan; next on 10 Jan
        [2, 30.0, 4, 1, 30.0, 6, False, "y", 0],   # A as of 14 Jan: last bought 10 Jan; next on 20 Jan
        [1, 40.0, 2, 0, 0.0, 7, True, "", 1],      # B as of 14 Jan: nothing by 21 Jan, censored at 7
    ]


def test_orders_after_the_end_never_reach_the_training_set(train):
    pd.testing.assert_frame_equal(stacked(ORDERS), train)


def test_training_set_refuses_empty_or_repeated_dates_and_clashing_columns():
    frame = pd.DataFrame({"customer_id": ["A"], "x": [1]})
    with pytest.raises(ValueError, match="dates is empty"):
        training_set(lambda d: frame, lambda d: frame.rename(columns={"x": "y"}), [])
    with pytest.raises(ValueError, match="repeats an as-of date"):
        training_set(lambda d: frame, lambda d: frame.rename(columns={"x": "y"}), [END, END])
    with pytest.raises(ValueError, match=r"share columns \['x'\]"):
        training_set(lambda d: frame, lambda d: frame, [END])
