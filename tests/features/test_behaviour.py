"""Behaviour features on a tiny hand-made shop, every number worked out by hand.

As of 31 Mar 2025: the 30-day window is 2 Mar – 31 Mar, the 90-day window 1 Jan – 31 Mar.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from features.behaviour import WEB_EVENT_TYPES, behaviour_features
from tests.features.conftest import in_memory

AS_OF = dt.date(2025, 3, 31)


def event(customer, when, event_type, channel="web"):
    return {"customer_id": customer, "timestamp": pd.Timestamp(when), "event_type": event_type, "channel": channel}


def order(customer, when, amount, channel, category, product, discount=0.0, is_return=False):
    return {"customer_id": customer, "timestamp": pd.Timestamp(when), "amount": float(amount), "channel": channel,
            "category": category, "product_id": product, "discount": discount, "is_return": is_return}


def events_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "event_type", "channel"]).astype(
        {"customer_id": "str", "timestamp": "datetime64[us]", "event_type": "str", "channel": "str"})


def orders_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).astype({"timestamp": "datetime64[us]", "discount": "float64"})


EVENTS = events_frame([
    event("A", "2024-12-01 12:00", "page_view"),      # session 1 (before the 90-day window)
    event("A", "2024-12-01 12:05", "add_to_cart"),    # cart day without a purchase
    event("A", "2025-01-10 10:00", "page_view"),      # session 2
    event("A", "2025-01-10 10:20", "product_view"),
    event("A", "2025-01-10 10:50", "add_to_cart"),    # exactly 30 min later: still session 2; bought that day
    event("A", "2025-01-10 11:21", "checkout"),       # 31 min later: session 3
    event("A", "2025-03-15 20:00", "search"),         # session 4
    event("A", "2025-03-15 20:25", "email_open", "email"),  # not a web event: does not bridge the gap
    event("A", "2025-03-15 20:50", "add_to_cart"),    # 50 min after the search: session 5; only a return that day
    event("A", "2025-03-31 23:50", "product_view"),   # session 6
    event("A", "2025-03-31 23:59", "add_to_cart"),    # the last minute of the as-of day counts
    event("A", "2025-04-01 00:00", "add_to_cart"),    # the next day does not
    event("D", "2025-02-01 08:00", "email_open", "email"),  # D has no web events and no orders
    event("D", "2025-04-01 00:00", "page_view"),
    event("E", "2025-04-01 09:00", "page_view"),      # only after the as-of day: not a row
    event(None, "2025-03-10 10:00", "page_view"),     # anonymous: belongs to nobody
])

ORDERS = orders_frame([
    order("A", "2025-01-10 11:25", 80, "web", "olive_oil", "OIL-1"),
    order("A", "2025-02-20 12:00", 15, "store", "soap", "SOAP-1", discount=5.0),
    order("A", "2025-02-25 12:00", 45, "store", "olive_oil", "OIL-2"),
    order("A", "2025-03-15 15:00", 15, "store", "soap", "SOAP-1", is_return=True),
    order("A", "2025-04-01 00:00", 90, "web", "ceramics", "CER-1"),   # the next day: ignored
    order("B", "2025-03-01 10:00", 120, "web", "books", "BK-1", discount=None),
    order("B", "2025-03-02 10:00", 35, "store", "dates", "DATE-1", discount=None),
    order("C", "2025-02-01 10:00", 20, "web", "zaatar_spices", "ZTR-1", discount=2.0),
    order("C", "2025-02-01 11:00", 20, "store", "dates", "DATE-1"),
    order(None, "2025-03-05 10:00", 500, "web", "books", "BK-2"),     # unlinked
])


@pytest.fixture(scope="module")
def con():
    return in_memory(events=EVENTS, no_events=events_frame([]), orders=ORDERS)


@pytest.fixture(scope="module")
def features(con) -> pd.DataFrame:
    return (behaviour_features(con.table("events"), con.table("orders"), AS_OF).to_pandas()
            .set_index("customer_id").sort_index())


def test_one_row_per_customer_with_an_event_or_order_by_the_as_of_day(features):
    assert list(features.index) == ["A", "B", "C", "D"]


def test_sessions_break_after_more_than_30_minutes_between_web_events(features):
    a = features.loc["A"]
    # Sessions start 1 Dec, 10 Jan 10:00, 10 Jan 11:21, 15 Mar 20:00, 15 Mar 20:50, 31 Mar 23:50.
    assert (a.web_sessions, a.web_sessions_90d, a.web_sessions_30d) == (6, 5, 3)


def test_web_events_are_counted_per_role_and_window(features):
    a = features.loc["A"]
    assert (a.page_views, a.page_views_90d, a.page_views_30d) == (2, 1, 0)           # 1 Dec, 10 Jan
    assert (a.product_views, a.product_views_90d, a.product_views_30d) == (2, 2, 1)  # 10 Jan, 31 Mar
    assert (a.searches, a.searches_90d, a.searches_30d) == (1, 1, 1)                 # 15 Mar
    assert (a.cart_adds, a.cart_adds_90d, a.cart_adds_30d) == (4, 3, 2)              # 1 Dec, 10 Jan, 15 Mar, 31 Mar
    assert (a.checkouts, a.checkouts_90d, a.checkouts_30d) == (1, 1, 0)              # 10 Jan


def test_a_cart_day_is_abandoned_without_a_purchase_that_day(features):
    a = features.loc["A"]
    # Cart days 1 Dec, 10 Jan, 15 Mar, 31 Mar; only 10 Jan has a purchase (15 Mar has just a return).
    assert a.cart_abandonment_rate == 3 / 4
    assert a.cart_abandonment_rate_90d == 2 / 3                                       # without 1 Dec


def test_purchase_habits(features):
    a = features.loc["A"]
    # Purchases: OIL-1 (web), SOAP-1 (store, discounted), OIL-2 (store); one return.
    assert (a.distinct_products_bought, a.distinct_categories_bought) == (3, 2)
    assert (a.top_category, a.top_category_order_share) == ("olive_oil", 2 / 3)
    assert (a.returns_rate, a.discount_order_share) == (1 / 3, 1 / 3)
    assert (a.share_web_orders, a.share_store_orders, a.preferred_channel) == (1 / 3, 2 / 3, "store")


def test_ties_go_to_more_revenue_then_to_the_name(features):
    b = features.loc["B"]      # one order each: books 120 beats dates 35, web 120 beats store 35
    assert (b.top_category, b.top_category_order_share, b.preferred_channel) == ("books", 0.5, "web")
    c = features.loc["C"]      # one order of 20 each: the alphabetically first wins
    assert (c.top_category, c.top_category_order_share, c.preferred_channel) == ("dates", 0.5, "store")


def test_unknown_discounts_are_not_discounts(features):
    assert features.loc["B", "discount_order_share"] == 0.0
    assert features.loc["C", "discount_order_share"] == 0.5


def test_customers_without_web_events_or_orders_get_zero_counts_and_no_rates(features):
    b = features.loc["B"]
    assert (b.web_sessions, b.page_views_30d, b.cart_adds) == (0, 0, 0)
    assert pd.isna(b.cart_abandonment_rate)
    d = features.loc["D"]      # an email open only
    assert (d.web_sessions, d.distinct_products_bought, d.distinct_categories_bought) == (0, 0, 0)
    assert d[["returns_rate", "discount_order_share", "share_web_orders", "top_category",
              "preferred_channel"]].isna().all()


def test_an_empty_events_table_still_gives_the_order_features(con, features):
    only_orders = behaviour_features(con.table("no_events"), con.table("orders"), AS_OF).to_pandas()
    only_orders = only_orders.set_index("customer_id").sort_index()
    assert list(only_orders.columns) == list(features.columns)
    assert list(only_orders.index) == ["A", "B", "C"]
    assert (only_orders.filter(like="web_sessions") == 0).all().all()
    assert only_orders.cart_abandonment_rate.isna().all()
    habits = ["top_category", "returns_rate", "share_store_orders", "preferred_channel"]
    pd.testing.assert_frame_equal(only_orders[habits], features.loc[["A", "B", "C"], habits])


def test_another_shop_can_name_its_event_types(con):
    renamed = dict(WEB_EVENT_TYPES, page_views=("page_view", "search"))
    a = behaviour_features(con.table("events"), con.table("orders"), AS_OF,
                           web_event_types=renamed).to_pandas().set_index("customer_id").sort_index().loc["A"]
    assert (a.page_views, a.page_views_30d) == (3, 1)    # the 15 Mar search now counts as a page view
