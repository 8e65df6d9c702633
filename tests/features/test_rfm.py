"""RFM and value features on a tiny hand-made order book, every number worked out by hand."""

from __future__ import annotations

import datetime as dt
import math

import ibis
import pandas as pd
import pytest

from features.rfm import rfm_features
from store.ibis_compat import ensure_duckdb_compat

AS_OF = dt.date(2025, 3, 31)


def order(customer, when, amount, is_return=False):
    return {"customer_id": customer, "timestamp": pd.Timestamp(when), "amount": float(amount), "is_return": is_return}


ORDERS = pd.DataFrame([
    order("A", "2025-01-01 09:00", 100),
    order("A", "2025-01-01 18:00", 50),           # same day: one purchase day, two orders
    order("A", "2025-02-15 12:00", 30),
    order("A", "2025-03-01 12:00", 10, True),     # a return: not a purchase
    order("A", "2025-03-31 23:59", 20),           # the last minute of the as-of day counts
    order("A", "2025-04-01 00:00", 999),          # the next day does not
    order("B", "2024-03-01 10:00", 40),
    order("C", "2025-04-02 10:00", 70),           # only after the as-of date: not a row
    order(None, "2025-01-05 10:00", 500),         # unlinked: belongs to nobody
])


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    ensure_duckdb_compat()
    con = ibis.duckdb.connect()
    table = con.create_table("orders", ORDERS)
    return rfm_features(table, AS_OF).to_pandas().set_index("customer_id").sort_index()


def test_one_row_per_customer_who_bought_by_the_as_of_date(features):
    assert list(features.index) == ["A", "B"]


def test_counts_and_money_follow_the_btyd_convention(features):
    a = features.loc["A"]
    assert (a.purchase_days, a.orders_count, a.revenue_total) == (3, 4, 200.0)
    assert a.mean_order_value == 50.0
    assert (a.returns_count, a.returns_amount) == (1, 10.0)
    assert (a.recency_days, a.tenure_days) == (0, 89)          # 1 Jan → 31 Mar 2025
    b = features.loc["B"]
    assert (b.recency_days, b.tenure_days, b.purchase_days) == (395, 395, 1)   # across 29 Feb 2024


def test_windows_end_on_the_as_of_day(features):
    a = features.loc["A"]
    assert (a.purchase_days_30d, a.revenue_30d) == (1, 20.0)     # 2 Mar – 31 Mar
    assert (a.purchase_days_90d, a.revenue_90d) == (3, 200.0)    # 1 Jan – 31 Mar
    assert (a.purchase_days_365d, a.revenue_365d) == (3, 200.0)
    b = features.loc["B"]
    assert (b.purchase_days_365d, b.revenue_365d) == (0, 0.0)    # 1 Apr 2024 onwards


def test_rhythm_is_measured_between_purchase_days(features):
    a = features.loc["A"]
    assert a.interpurchase_days_mean == 44.5                    # gaps of 45 and 44 days
    assert math.isclose(a.interpurchase_days_std, math.sqrt(0.5))
    assert a.overdue_ratio == 0.0
    assert pd.isna(a.frequency_trend_90d)                       # nothing in the 90 days before
    assert pd.isna(features.loc["B"].interpurchase_days_mean)   # one purchase day: no gap


def test_rfm_scores_rank_recency_frequency_and_money(features):
    # Two customers fill quintiles 1 and 2: A is more recent, more frequent and spends more.
    assert tuple(features.loc["A", ["rfm_recency_score", "rfm_frequency_score", "rfm_monetary_score"]]) == (2, 2, 2)
    assert tuple(features.loc["B", ["rfm_recency_score", "rfm_frequency_score", "rfm_monetary_score"]]) == (1, 1, 1)
    assert features.loc["B", "rfm_segment"] == "Lost"
