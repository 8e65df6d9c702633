"""Purchase labels on a tiny hand-made order book, every number worked out by hand.

As of 31 Mar 2025 with a 30-day horizon the label window is 1 Apr 00:00 .. 30 Apr 23:59:59.
"""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
import pytest

from features.labels import LABEL_COLUMNS, purchase_labels
from features.rfm import rfm_features
from features.text_items import split_items
from store.ibis_compat import ensure_duckdb_compat

AS_OF = dt.date(2025, 3, 31)
HORIZON_DAYS = 30


def order(customer, when, amount, category=None, is_return=False):
    return {"customer_id": customer, "timestamp": pd.Timestamp(when), "amount": float(amount),
            "category": category, "is_return": is_return}


ORDERS = pd.DataFrame([
    order("A", "2025-01-10 12:00", 100, "coats"),
    order("A", "2025-03-31 23:59", 50, "coats"),           # the as-of day: a feature, not a label
    order("A", "2025-04-01 00:00", 10, "shoes"),           # the first instant of the window
    order("A", "2025-04-01 15:00", 5, "hats"),             # same day: still one purchase day
    order("A", "2025-04-30 23:59", 20, "bags"),            # the last minute of the window counts
    order("A", "2025-05-01 00:00", 999, "toys"),           # the day after the window does not
    order("B", "2024-12-01 09:00", 80, "hats"),
    order("B", "2025-04-10 09:00", 30, "shoes", True),     # a return in the window is not a purchase
    order("C", "2025-02-01 09:00", 15, "bags"),
    order("C", "2025-04-15 10:00", 40, "Shoes"),           # code-point order: "Shoes" < "shoes"
    order("C", "2025-04-15 11:00", 60, "shoes"),
    order("C", "2025-04-20 11:00", 25, None),              # bought, category unknown
    order("D", "2025-04-05 10:00", 70, "toys"),            # first purchase in the window: not labelled
    order("E", "2025-03-01 10:00", 45, "hats", True),      # only a return by the as-of day: not labelled
    order("E", "2025-04-02 10:00", 45, "hats"),
    order("F", "2025-03-31 00:00", 12, "bags"),            # first instant of the as-of day
    order("F", "2025-04-30 23:59", 33, "hats"),            # first purchase on the last day of the window
    order(None, "2025-04-03 10:00", 500, "toys"),          # unlinked: belongs to nobody
])


@pytest.fixture(scope="module")
def orders() -> ibis.Table:
    ensure_duckdb_compat()
    con = ibis.duckdb.connect()
    return con.create_table("orders", ORDERS)


@pytest.fixture(scope="module")
def labels(orders) -> pd.DataFrame:
    return purchase_labels(orders, AS_OF, HORIZON_DAYS).to_pandas().set_index("customer_id")


def test_one_row_per_customer_who_bought_by_the_as_of_day(labels, orders):
    assert list(labels.index) == ["A", "B", "C", "F"]
    assert list(labels.columns) == list(LABEL_COLUMNS)
    # The same population as the features, so they join one to one.
    assert sorted(rfm_features(orders, AS_OF).to_pandas().customer_id) == list(labels.index)


def test_purchases_from_the_first_to_the_last_minute_of_the_window_count(labels):
    a = labels.loc["A"]
    assert (a.purchased_in_horizon, a.purchase_days_in_horizon, a.revenue_in_horizon) == (1, 2, 35.0)  # 10+5+20
    assert (a.days_to_next_purchase, a.next_purchase_censored, a.churned) == (1, False, 0)
    assert a.categories_in_horizon == "bags,hats,shoes"


def test_a_return_in_the_window_is_not_a_purchase_and_the_customer_is_censored(labels):
    b = labels.loc["B"]
    assert (b.purchased_in_horizon, b.purchase_days_in_horizon, b.revenue_in_horizon) == (0, 0, 0.0)
    assert (b.days_to_next_purchase, b.next_purchase_censored, b.churned) == (30, True, 1)
    assert b.categories_in_horizon == ""


def test_days_to_next_purchase_counts_from_the_as_of_day(labels):
    c = labels.loc["C"]
    assert (c.purchase_days_in_horizon, c.revenue_in_horizon) == (2, 125.0)      # 15 Apr and 20 Apr
    assert (c.days_to_next_purchase, c.next_purchase_censored) == (15, False)   # 31 Mar → 15 Apr
    assert c.categories_in_horizon == "Shoes,shoes"                             # unknown category left out
    f = labels.loc["F"]
    # A purchase on the last day of the window: H days, but observed, not censored.
    assert (f.purchased_in_horizon, f.days_to_next_purchase, f.next_purchase_censored) == (1, 30, False)


def test_a_one_day_horizon_is_the_day_after_the_as_of_day(orders):
    labels = purchase_labels(orders, AS_OF, 1).to_pandas().set_index("customer_id")
    columns = ["purchase_days_in_horizon", "revenue_in_horizon", "days_to_next_purchase"]
    assert labels.loc["A", columns].tolist() == [1, 15.0, 1]
    assert labels.loc["A", "categories_in_horizon"] == "hats,shoes"
    columns = ["purchased_in_horizon", "days_to_next_purchase", "next_purchase_censored"]
    assert labels.loc["C", columns].tolist() == [0, 1, True]


def test_labels_are_the_same_on_every_run(orders):
    first = purchase_labels(orders, AS_OF, HORIZON_DAYS).to_pandas()
    pd.testing.assert_frame_equal(purchase_labels(orders, AS_OF, HORIZON_DAYS).to_pandas(), first)


@pytest.mark.parametrize("horizon_days", [0, -7, 1.5, True, "30"])
def test_the_horizon_must_be_at_least_one_whole_day(orders, horizon_days):
    with pytest.raises(ValueError, match="horizon_days must be a whole number of days >= 1"):
        purchase_labels(orders, AS_OF, horizon_days)


ODD_CATEGORIES = ["Oil, olive", "Oil olive", "a;b", "a:b", "100%", "%2C", '"q"', "[l]", "{s}", "k=v", "+1",
                  "زيت زيتون", "olive 🌿", "back\\slash", "it's", "tab\there"]


def test_categories_holding_any_text_come_back_exactly_from_the_label_text():
    ensure_duckdb_compat()
    rows = [order("G", "2025-03-01 10:00", 10, "x")]
    rows += [order("G", f"2025-04-{i + 1:02d} 10:00", 10, name) for i, name in enumerate(ODD_CATEGORIES)]
    rows += [order("H", "2025-03-01 10:00", 10, "x"), order("H", "2025-04-02 10:00", 10, "Oil, olive")]
    table = ibis.duckdb.connect().create_table("odd_orders", pd.DataFrame(rows))
    labels = purchase_labels(table, AS_OF, HORIZON_DAYS).to_pandas().set_index("customer_id")
    # Each category escaped by hand: % → %25, "," → %2C, ":" → %3A, ";" → %3B; nothing else changes.
    assert labels.loc["H", "categories_in_horizon"] == "Oil%2C olive"
    assert sorted(split_items(labels.loc["G", "categories_in_horizon"])) == sorted(ODD_CATEGORIES)
    assert "%252C" in labels.loc["G", "categories_in_horizon"].split(",")


def _seen(customer, when):
    return {"customer_id": customer, "first_seen": pd.Timestamp(when)}


# Who the store knows, and since when (the customers table's first_seen): the same
# buyers as ORDERS, and people who had not bought by 31 Mar.
CUSTOMERS = pd.DataFrame([
    _seen("A", "2025-01-10 12:00"), _seen("B", "2024-12-01 09:00"), _seen("C", "2025-02-01 09:00"),
    _seen("D", "2025-03-01 08:00"),    # a lead since March; first purchase on 5 Apr
    _seen("E", "2025-02-20 08:00"),    # only a return by the as-of day: still a prospect; buys on 2 Apr
    _seen("F", "2025-03-31 00:00"),    # bought on the as-of day: a buyer, not a prospect
    _seen("G", "2025-03-20 10:00"),    # a sign-up who never buys
    _seen("H", "2025-03-31 23:00"),    # seen on the as-of day itself; buys on the last day of the window
    _seen("I", "2025-04-01 00:00"),    # first seen after the as-of day: not known yet
    _seen("J", "2025-03-15 10:00"),    # buys the day after the window
])
FIRST_ORDERS = pd.concat([ORDERS, pd.DataFrame([
    order("H", "2025-04-30 22:00", 10, "hats"),
    order("I", "2025-04-02 10:00", 10, "hats"),
    order("J", "2025-05-01 00:00", 10, "hats"),
])], ignore_index=True)


def test_first_purchase_labels_cover_the_known_people_who_had_not_bought():
    from features.labels import FIRST_PURCHASE_LABEL_COLUMNS, first_purchase_labels

    ensure_duckdb_compat()
    con = ibis.duckdb.connect()
    customers = con.create_table("customers", CUSTOMERS)
    orders = con.create_table("first_orders", FIRST_ORDERS)
    found = first_purchase_labels(customers, orders, AS_OF, HORIZON_DAYS).to_pandas()
    assert list(found.columns) == ["customer_id", *FIRST_PURCHASE_LABEL_COLUMNS]
    # Worked out by hand: (bought in 1 .. 30 Apr, days from 31 Mar to that purchase or 30).
    assert {row.customer_id: (row.purchased_in_horizon, row.days_to_first_purchase)
            for row in found.itertuples()} == {"D": (1, 5), "E": (1, 2), "G": (0, 30), "H": (1, 30), "J": (0, 30)}


def test_first_purchase_labels_and_purchase_labels_split_the_known_customers():
    from features.labels import first_purchase_labels

    ensure_duckdb_compat()
    con = ibis.duckdb.connect()
    customers = con.create_table("customers", CUSTOMERS)
    orders = con.create_table("first_orders", FIRST_ORDERS)
    prospects = set(first_purchase_labels(customers, orders, AS_OF, HORIZON_DAYS).to_pandas()["customer_id"])
    buyers = set(purchase_labels(orders, AS_OF, HORIZON_DAYS).to_pandas()["customer_id"])
    assert not prospects & buyers
    assert prospects | buyers == set(CUSTOMERS["customer_id"]) - {"I"}  # everyone known by 31 Mar, once
    with pytest.raises(ValueError, match="horizon_days"):
        first_purchase_labels(customers, orders, AS_OF, 0)
