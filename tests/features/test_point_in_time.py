"""Point-in-time correctness: nothing dated after the as-of day can change a feature as of that day,
and labels as of that day read only the label window after it."""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
from hypothesis import example, given, settings
from hypothesis import strategies as st

from features.behaviour import behaviour_features
from features.engagement import engagement_features
from features.labels import purchase_labels
from features.rfm import rfm_features
from store.ibis_compat import ensure_duckdb_compat

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
    return rfm_features(table, AS_OF).to_pandas().sort_values("customer_id", ignore_index=True)


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


# Labels as of AS_OF read the window AS_OF + 1 .. AS_OF + HORIZON_DAYS (whole days).
HORIZON_DAYS = 30
LABEL_END = CUTOFF + dt.timedelta(days=HORIZON_DAYS)  # first instant after the label window


def labelled_orders_strategy(min_time: dt.datetime, max_time: dt.datetime, min_size: int = 0):
    """Orders with a category; a third of them within two days of either end of the range."""
    two_days = dt.timedelta(days=2)
    order = st.fixed_dictionaries({
        "customer_id": st.sampled_from(["A", "B", "C"]),
        "timestamp": st.one_of(st.datetimes(min_value=min_time, max_value=min_time + two_days),
                               st.datetimes(min_value=max_time - two_days, max_value=max_time),
                               st.datetimes(min_value=min_time, max_value=max_time)),
        "amount": st.floats(min_value=0, max_value=1000, allow_nan=False).map(lambda x: round(x, 2)),
        "category": st.sampled_from(["bags", "hats", "Shoes", "shoes", None]),
        "is_return": st.booleans(),
    })
    return st.lists(order, min_size=min_size, max_size=25)


def labels(con, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "category", "is_return"]).astype(
        {"customer_id": "str", "timestamp": "datetime64[us]", "amount": "float64", "category": "str",
         "is_return": "bool"})
    table = con.create_table("orders", frame, overwrite=True)
    return purchase_labels(table, AS_OF, HORIZON_DAYS).to_pandas()


past_orders = labelled_orders_strategy(START, CUTOFF - dt.timedelta(microseconds=1), min_size=1)
window_orders = labelled_orders_strategy(CUTOFF, LABEL_END - dt.timedelta(microseconds=1))
later_orders = labelled_orders_strategy(LABEL_END, dt.datetime(2026, 12, 31))


def bought(when: dt.datetime) -> dict:
    return {"customer_id": "A", "timestamp": when, "amount": 10.0, "category": "bags", "is_return": False}


@settings(max_examples=15, deadline=None)
@given(before=past_orders, window=window_orders, after=later_orders, changed_after=later_orders)
# Always tried: a purchase at the first instant after the label window.
@example(before=[bought(START)], window=[], after=[bought(LABEL_END)], changed_after=[])
def test_orders_after_the_label_window_never_change_the_labels(before, window, after, changed_after):
    ensure_duckdb_compat()
    con = ibis.duckdb.connect()
    baseline = labels(con, before + window + after)
    pd.testing.assert_frame_equal(labels(con, before + window + changed_after), baseline)
    pd.testing.assert_frame_equal(labels(con, before + window), baseline)


@settings(max_examples=15, deadline=None)
@given(before=past_orders, changed_before=past_orders, window=window_orders)
# Always tried: a purchase at the last instant of the as-of day, there or not.
@example(before=[bought(START), bought(CUTOFF - dt.timedelta(microseconds=1))], changed_before=[bought(START)],
         window=[])
def test_labels_use_only_the_window_after_the_as_of_day(before, changed_before, window):
    # The past decides who is labelled (customers who bought by the as-of day), never their labels.
    ensure_duckdb_compat()
    con = ibis.duckdb.connect()
    baseline = labels(con, before + window).set_index("customer_id")
    changed = labels(con, changed_before + window).set_index("customer_id")
    both = baseline.index.intersection(changed.index)
    pd.testing.assert_frame_equal(changed.loc[both], baseline.loc[both])


# Behaviour and engagement read events as well as orders: sessions, carts, emails, touchpoints.
EVENT_TYPES = ("page_view", "product_view", "search", "add_to_cart", "checkout", "email_sent", "email_open",
               "email_click", "ad_impression", "ad_click", "search_click", "social_engagement", "direct_visit")
EVENT_CHANNELS = ("web", "email", "facebook", "instagram", "google_search", "organic_social", "direct")
EVENT_COLUMNS = {"customer_id": "str", "timestamp": "datetime64[us]", "event_type": "str", "channel": "str"}
SHOP_ORDER_COLUMNS = {"customer_id": "str", "timestamp": "datetime64[us]", "amount": "float64", "channel": "str",
                      "category": "str", "product_id": "str", "discount": "float64", "is_return": "bool"}


def near_the_cutoff(min_time: dt.datetime, max_time: dt.datetime):
    """Times within an hour (where a session can cross midnight) or two days of the as-of boundary."""
    if min_time >= CUTOFF:
        return st.one_of(st.datetimes(min_value=min_time, max_value=min_time + dt.timedelta(hours=1)),
                         st.datetimes(min_value=min_time, max_value=min_time + dt.timedelta(days=2)))
    return st.one_of(st.datetimes(min_value=max_time - dt.timedelta(hours=1), max_value=max_time),
                     st.datetimes(min_value=max_time - dt.timedelta(days=2), max_value=max_time))


def events_strategy(min_time: dt.datetime, max_time: dt.datetime):
    event = st.fixed_dictionaries({
        "customer_id": st.sampled_from(["A", "B", "C", "D", None]),
        "timestamp": st.one_of(near_the_cutoff(min_time, max_time),
                               st.datetimes(min_value=min_time, max_value=max_time)),
        "event_type": st.sampled_from(EVENT_TYPES),
        "channel": st.sampled_from(EVENT_CHANNELS),
    })
    return st.lists(event, max_size=30)


def shop_orders_strategy(min_time: dt.datetime, max_time: dt.datetime, min_size: int = 0):
    order = st.fixed_dictionaries({
        "customer_id": st.sampled_from(["A", "B", "C", "D", None]),
        "timestamp": st.one_of(near_the_cutoff(min_time, max_time),
                               st.datetimes(min_value=min_time, max_value=max_time)),
        "amount": st.floats(min_value=0, max_value=1000, allow_nan=False).map(lambda x: round(x, 2)),
        "channel": st.sampled_from(["web", "store", "marketplace", None]),
        "category": st.sampled_from(["dates", "soap", "books", None]),
        "product_id": st.sampled_from(["P1", "P2", "P3", None]),
        "discount": st.sampled_from([0.0, 5.0, None]),
        "is_return": st.booleans(),
    })
    return st.lists(order, min_size=min_size, max_size=15)


def behaviour_and_engagement(con, events: list[dict], orders: list[dict]) -> list[pd.DataFrame]:
    event_table = con.create_table(
        "events", pd.DataFrame(events, columns=list(EVENT_COLUMNS)).astype(EVENT_COLUMNS), overwrite=True)
    order_table = con.create_table(
        "orders", pd.DataFrame(orders, columns=list(SHOP_ORDER_COLUMNS)).astype(SHOP_ORDER_COLUMNS), overwrite=True)
    return [family(event_table, order_table, AS_OF).to_pandas().sort_values("customer_id", ignore_index=True)
            for family in (behaviour_features, engagement_features)]


LATER = dt.datetime(2026, 12, 31)


def web_event(when: dt.datetime, event_type: str = "add_to_cart") -> dict:
    return {"customer_id": "A", "timestamp": when, "event_type": event_type, "channel": "web"}


def shop_order(when: dt.datetime) -> dict:
    return {"customer_id": "A", "timestamp": when, "amount": 10.0, "channel": "web", "category": "soap",
            "product_id": "P1", "discount": 0.0, "is_return": False}


@settings(max_examples=15, deadline=None)
@given(
    events_before=events_strategy(START, CUTOFF - dt.timedelta(microseconds=1)),
    orders_before=shop_orders_strategy(START, CUTOFF - dt.timedelta(microseconds=1), min_size=1),
    events_after=events_strategy(CUTOFF, LATER),
    orders_after=shop_orders_strategy(CUTOFF, LATER),
)
# Always tried: a web session running from 23:50 on the as-of day past midnight, and an order at midnight.
@example(events_before=[web_event(CUTOFF - dt.timedelta(minutes=10))], orders_before=[shop_order(START)],
         events_after=[web_event(CUTOFF), web_event(CUTOFF + dt.timedelta(minutes=5), "email_open")],
         orders_after=[shop_order(CUTOFF)])
def test_events_and_orders_after_the_as_of_day_never_change_behaviour_or_engagement(
        events_before, orders_before, events_after, orders_after):
    ensure_duckdb_compat()
    con = ibis.duckdb.connect()
    with_later = behaviour_and_engagement(con, events_before + events_after, orders_before + orders_after)
    without_later = behaviour_and_engagement(con, events_before, orders_before)
    for family, expected in zip(with_later, without_later):
        pd.testing.assert_frame_equal(family, expected)
