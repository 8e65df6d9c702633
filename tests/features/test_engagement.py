"""Engagement features on a tiny hand-made shop, every number worked out by hand.

As of 31 Mar 2025: the 30-day window is 2 Mar – 31 Mar, the 90-day window 1 Jan – 31 Mar,
and the 90 days before it are 3 Oct – 31 Dec 2024.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from features.engagement import engagement_features
from tests.features.conftest import in_memory

AS_OF = dt.date(2025, 3, 31)


def event(customer, when, event_type, channel):
    return {"customer_id": customer, "timestamp": pd.Timestamp(when), "event_type": event_type, "channel": channel}


def order(customer, when, is_return=False):
    return {"customer_id": customer, "timestamp": pd.Timestamp(when), "amount": 50.0, "is_return": is_return}


def events_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "event_type", "channel"]).astype(
        {"customer_id": "str", "timestamp": "datetime64[us]", "event_type": "str", "channel": "str"})


EVENTS = events_frame([
    event("A", "2024-11-01 09:00", "email_sent", "email"),
    event("A", "2024-11-02 08:00", "email_open", "email"),             # 90 days before
    event("A", "2024-11-02 08:01", "email_click", "email"),            # 90 days before
    event("A", "2024-12-15 18:00", "ad_impression", "facebook"),       # outside the 90-day window
    event("A", "2024-12-31 18:00", "social_engagement", "organic_social"),  # 90 days before: one day too early
    event("A", "2025-02-01 09:00", "email_sent", "email"),
    event("A", "2025-02-03 19:00", "email_open", "email"),
    event("A", "2025-02-10 12:00", "ad_click", "instagram"),
    event("A", "2025-03-01 12:00", "ad_impression", "facebook"),
    event("A", "2025-03-05 12:00", "ad_impression", "facebook"),
    event("A", "2025-03-10 09:00", "email_sent", "email"),
    event("A", "2025-03-20 12:00", "search_click", "google_search"),  # a paid search click
    event("A", "2025-03-28 10:00", "page_view", "web"),                # the last thing A did
    event("A", "2025-03-31 23:59", "email_sent", "email"),             # counts, but is not A's engagement
    event("A", "2025-04-01 00:00", "email_open", "email"),             # the next day: ignored
    event("C", "2025-03-01 09:00", "email_sent", "email"),             # C was only ever sent an email
    event("D", "2025-04-01 09:00", "email_open", "email"),             # only after the as-of day: not a row
    event(None, "2025-03-30 09:00", "email_open", "email"),            # anonymous: belongs to nobody
])

ORDERS = pd.DataFrame([
    order("A", "2025-03-25 12:00"),
    order("B", "2025-01-15 10:00"),
    order("B", "2025-01-15 18:00"),                                    # same day: one active day
    order("B", "2025-01-20 12:00", is_return=True),                    # a return is something B did
    order("B", "2025-04-01 00:00"),                                    # the next day: ignored
    order(None, "2025-03-30 12:00"),
]).astype({"timestamp": "datetime64[us]"})


@pytest.fixture(scope="module")
def con():
    return in_memory(events=EVENTS, no_events=events_frame([]), orders=ORDERS)


@pytest.fixture(scope="module")
def features(con) -> pd.DataFrame:
    return (engagement_features(con.table("events"), con.table("orders"), AS_OF).to_pandas()
            .set_index("customer_id").sort_index())


def test_one_row_per_customer_with_an_event_or_order_by_the_as_of_day(features):
    assert list(features.index) == ["A", "B", "C"]


def test_email_counts_per_window_end_on_the_as_of_day(features):
    a = features.loc["A"]
    # Sent 1 Nov, 1 Feb, 10 Mar, 31 Mar 23:59; opened 2 Nov, 3 Feb (not 1 Apr); clicked 2 Nov.
    assert (a.emails_sent, a.emails_sent_90d, a.emails_sent_30d) == (4, 3, 2)
    assert (a.email_opens, a.email_opens_90d, a.email_opens_30d) == (2, 1, 0)
    assert (a.email_clicks, a.email_clicks_90d, a.email_clicks_30d) == (1, 0, 0)


def test_email_rates_divide_by_emails_sent_in_the_same_period(features):
    a = features.loc["A"]
    assert (a.email_open_rate, a.email_open_rate_90d, a.email_open_rate_30d) == (2 / 4, 1 / 3, 0 / 2)
    assert (a.email_click_rate, a.email_click_rate_90d, a.email_click_rate_30d) == (1 / 4, 0 / 3, 0 / 2)
    assert a.days_since_last_email_open == 56                          # 3 Feb → 31 Mar


def test_touchpoints_per_channel_in_the_last_90_days(features):
    a = features.loc["A"]
    touchpoints = a.filter(regex="^(ad_|social_)").to_dict()
    assert touchpoints == {
        "ad_impressions_facebook_90d": 2,           # 1 and 5 Mar (15 Dec is too early)
        "ad_impressions_instagram_90d": 0,
        "ad_clicks_facebook_90d": 0,
        "ad_clicks_instagram_90d": 1,               # 10 Feb
        "ad_clicks_google_search_90d": 1,           # 20 Mar
        "social_engagements_organic_social_90d": 0,  # 31 Dec is one day before the window
    }


def test_engagement_is_what_the_customer_did_not_what_was_sent_to_them(features):
    a = features.loc["A"]
    # The last engagement is the 28 Mar page view: the 31 Mar email was sent, not engaged with.
    assert a.days_since_last_engagement == 3
    # 3 Feb open, 10 Feb ad click, 20 Mar search click, 25 Mar order, 28 Mar page view.
    assert a.active_days_90d == 5
    # Events only, no orders: 4 in the last 90 days ÷ 3 before (2 Nov open and click, 31 Dec).
    assert a.engagement_events_90d == 4
    assert a.engagement_trend_90d == 4 / 3


def test_a_customer_with_orders_only_gets_zero_counts_and_no_rates(features):
    b = features.loc["B"]
    assert b.filter(regex="^(emails_|email_opens|email_clicks|ad_|social_)").eq(0).all()
    assert b.filter(like="_rate").isna().all()
    assert (b.days_since_last_engagement, b.active_days_90d) == (70, 2)   # the 20 Jan return; 15 and 20 Jan
    assert b.engagement_events_90d == 0
    assert pd.isna(b.engagement_trend_90d) and pd.isna(b.days_since_last_email_open)


def test_a_customer_who_was_only_sent_email_has_never_engaged(features):
    c = features.loc["C"]
    assert (c.emails_sent, c.emails_sent_90d, c.emails_sent_30d, c.email_open_rate_90d) == (1, 1, 0, 0.0)
    assert pd.isna(c.email_open_rate_30d)                               # nothing sent since 2 Mar
    assert pd.isna(c.days_since_last_engagement)
    assert c.active_days_90d == 0


def test_an_empty_events_table_still_gives_the_order_features(con, features):
    only_orders = engagement_features(con.table("no_events"), con.table("orders"), AS_OF).to_pandas()
    only_orders = only_orders.set_index("customer_id").sort_index()
    assert list(only_orders.columns) == list(features.columns)
    assert list(only_orders.index) == ["A", "B"]
    assert (only_orders.emails_sent == 0).all() and only_orders.email_open_rate.isna().all()
    assert list(only_orders.days_since_last_engagement) == [6, 70]      # A's 25 Mar order; B's 20 Jan return
    assert list(only_orders.active_days_90d) == [1, 2]
