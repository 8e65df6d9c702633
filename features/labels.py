"""Labels for training snapshots: what each customer did in the ``horizon_days`` after the as-of day.

As of a date means all data up to and including that whole day; the label window is the
``horizon_days`` whole days after it, ``as_of + 1`` to ``as_of + horizon_days``. Labels are
the mirror image of features: features read only orders before the window starts, labels
read only orders inside it (plus the past, to decide who is in the population).

Purchases follow the same convention as `features.rfm`: distinct customer-days of linked,
non-return orders. Returns dated in the window are not purchases and are not netted off
the revenue.

Written in Ibis, so the same expression runs on DuckDB and on Spark.
"""

from __future__ import annotations

import datetime as dt

import ibis
from ibis import _

from features.as_of import midnight, purchases_until
from features.profile import known_customers
from features.text_items import escape_expr

LABEL_COLUMNS = (
    "purchased_in_horizon",
    "purchase_days_in_horizon",
    "revenue_in_horizon",
    "days_to_next_purchase",
    "next_purchase_censored",
    "categories_in_horizon",
    "churned",
)


def purchases_in_horizon(orders: ibis.Table, as_of: dt.date, horizon_days: int) -> ibis.Table:
    """Linked non-return orders dated in the label window, whole days ``as_of + 1`` .. ``as_of + horizon_days``."""
    window_start = as_of + dt.timedelta(days=1)
    window_end_exclusive = as_of + dt.timedelta(days=horizon_days + 1)
    return (orders.filter(_.customer_id.notnull(),
                          _.timestamp >= midnight(window_start),
                          _.timestamp < midnight(window_end_exclusive),
                          ~_.is_return.fill_null(False))
            .mutate(day=_.timestamp.date()))


def purchase_labels(orders: ibis.Table, as_of: dt.date, horizon_days: int) -> ibis.Table:
    """One row per customer with a purchase by ``as_of``: what they bought in the next ``horizon_days``.

    The population is the one `features.rfm.rfm_features` covers (customers with a linked
    non-return order on or before the as-of day), so features and labels join one to one.
    Customers whose first purchase falls inside the window are not labelled: there are no
    features to learn from for them as of that day.

    Columns:

    - ``purchased_in_horizon``: 1 if the customer bought on any day of the window, else 0.
    - ``purchase_days_in_horizon``: distinct purchase days in the window.
    - ``revenue_in_horizon``: sum of non-return order amounts in the window (0 if none).
    - ``days_to_next_purchase``: days from ``as_of`` to the first purchase day in the
      window (1 .. ``horizon_days``); ``horizon_days`` when there was none.
    - ``next_purchase_censored``: True when there was no purchase in the window, so
      ``days_to_next_purchase`` is right-censored at ``horizon_days``.
    - ``categories_in_horizon``: the distinct non-empty categories bought in the window,
      each escaped (`features.text_items`: a category may hold any text, commas
      included), sorted by code point and joined with ","; "" when none.
      `features.text_items.split_items` gives the categories back. Identical on DuckDB
      and Spark.
    - ``churned``: 1 - ``purchased_in_horizon``.

    Raises ValueError when ``horizon_days`` is not a whole number of days >= 1.
    """
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int) or horizon_days < 1:
        raise ValueError(f"horizon_days must be a whole number of days >= 1, got {horizon_days!r}")

    as_of_date = ibis.date(as_of)
    population = purchases_until(orders, as_of).filter(~_.is_return).select("customer_id").distinct()
    window = purchases_in_horizon(orders, as_of, horizon_days)

    bought = window.group_by("customer_id").aggregate(
        purchase_days_in_horizon=_.day.nunique(),
        revenue_in_horizon=_.amount.sum(),
        first_purchase_date_in_horizon=_.day.min(),
    )
    # collect + sort + join: an ordered group_concat is not supported on Spark.
    categories = (window.filter(_.category.notnull() & (_.category != ""))
                  .select("customer_id", category=escape_expr(_.category)).distinct()
                  .group_by("customer_id").aggregate(category_list=_.category.collect())
                  .mutate(categories_in_horizon=_.category_list.sort().join(","))
                  .drop("category_list"))

    out = (population.left_join(bought, "customer_id").drop("customer_id_right")
           .left_join(categories, "customer_id").drop("customer_id_right"))
    purchased = _.first_purchase_date_in_horizon.notnull()
    out = out.mutate(
        purchased_in_horizon=ibis.ifelse(purchased, 1, 0).cast("int64"),
        purchase_days_in_horizon=_.purchase_days_in_horizon.fill_null(0).cast("int64"),
        revenue_in_horizon=_.revenue_in_horizon.fill_null(0).cast("float64"),
        days_to_next_purchase=lambda t: t.first_purchase_date_in_horizon.delta(as_of_date, unit="day")
        .fill_null(horizon_days).cast("int64"),
        next_purchase_censored=~purchased,
        categories_in_horizon=_.categories_in_horizon.fill_null(""),
    ).mutate(churned=1 - _.purchased_in_horizon)
    return out.select("customer_id", *LABEL_COLUMNS).order_by("customer_id")


FIRST_PURCHASE_LABEL_COLUMNS = ("purchased_in_horizon", "days_to_first_purchase")


def first_purchase_labels(customers: ibis.Table, orders: ibis.Table, as_of: dt.date, horizon_days: int) -> ibis.Table:
    """One row per prospect as of ``as_of``: did they make their first purchase in the next ``horizon_days``?

    The population is the customers `features.profile.profile_features` knows as of the
    day (first seen on or before it) without any linked non-return order on or before it:
    the leads, sign-ups and known visitors `features.rfm.rfm_features` has no row for.
    The mirror image of `purchase_labels`, whose population is the buyers; together they
    label every known customer once.

    Columns:

    - ``purchased_in_horizon``: 1 if the prospect bought on any day ``as_of + 1`` ..
      ``as_of + horizon_days`` (their first purchase), else 0.
    - ``days_to_first_purchase``: days from ``as_of`` to that purchase, ``horizon_days``
      when there was none (right-censored).

    Raises ValueError when ``horizon_days`` is not a whole number of days >= 1.
    """
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int) or horizon_days < 1:
        raise ValueError(f"horizon_days must be a whole number of days >= 1, got {horizon_days!r}")

    as_of_date = ibis.date(as_of)
    buyers = purchases_until(orders, as_of).filter(~_.is_return).select("customer_id").distinct()
    prospects = known_customers(customers, as_of).select("customer_id").anti_join(buyers, "customer_id")
    window = purchases_in_horizon(orders, as_of, horizon_days)
    first = window.group_by("customer_id").aggregate(first_day=_.day.min())
    out = prospects.left_join(first, "customer_id").drop("customer_id_right")
    return out.select(
        "customer_id",
        purchased_in_horizon=ibis.ifelse(out.first_day.notnull(), 1, 0).cast("int64"),
        days_to_first_purchase=out.first_day.delta(as_of_date, unit="day").fill_null(horizon_days).cast("int64"),
    ).order_by("customer_id")
