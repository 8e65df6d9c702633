"""Behaviour features: how a customer browses the web shop, and what, where and how they buy.

Web activity comes from ``events``: sessions (a new one after more than
``SESSION_GAP_MINUTES`` without a web event), page and product views, searches, cart
adds and checkouts, each all-time and over the last 30 and 90 days. Purchase habits
come from ``orders``: breadth (distinct products and categories), the favourite
category, returns, discounts and the channel mix. Everything is computed from linked
rows dated up to and including ``as_of``; events after that day are dropped *before*
sessionizing, so a later event can never merge or split an earlier session.

Event-type names differ from shop to shop, so they live in ``WEB_EVENT_TYPES`` (a role →
event types mapping); pass another mapping to use another shop's names.

A customer with orders but no events gets 0 for every web count and NULL for the cart
abandonment rate; an empty ``events`` table (an orders-only shop such as CDNOW) gives a
valid table of the same shape. Written in Ibis, so the same expression runs on DuckDB and
on Spark.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType

import ibis
from ibis import _

from features.as_of import count_where, events_until, from_day, purchases_until

WINDOWS_DAYS = (30, 90)
SESSION_GAP_MINUTES = 30

# Column stem → the event types that count for it. The stems name the output columns
# (``page_views``, ``page_views_30d`` …); "cart_adds" also defines cart abandonment, and
# together the types are the web events that make up sessions.
WEB_EVENT_TYPES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "page_views": ("page_view",),
    "product_views": ("product_view",),
    "searches": ("search",),
    "cart_adds": ("add_to_cart",),
    "checkouts": ("checkout",),
})
# Order channels that get a ``share_<channel>_orders`` column.
ORDER_CHANNELS = ("web", "store")


def customers_seen(events: ibis.Table, orders: ibis.Table) -> ibis.Table:
    """The distinct ``customer_id`` of rows already cut at the as-of day (events or orders)."""
    return events.select("customer_id").union(orders.select("customer_id"), distinct=True)


def _most_ordered(bought: ibis.Table, key: str) -> ibis.Table:
    """Each customer's value of ``key`` with the most orders, and its share of their orders.

    Ties go to more revenue, then to the alphabetically first value, so the answer is the
    same on every engine (``mode``/``argmax`` are not). Revenue is rounded to cents for
    the comparison because float sums may differ in the last bit between engines.
    """
    per_value = bought.filter(_[key].notnull()).group_by("customer_id", key).aggregate(
        value_orders=_.count(), value_revenue=_.amount.sum().round(2))
    ranked = per_value.mutate(
        rank=ibis.row_number().over(group_by="customer_id",
                                    order_by=[ibis.desc("value_orders"), ibis.desc("value_revenue"), key]),
        share=_.value_orders / _.value_orders.sum().over(group_by="customer_id").nullif(0),
    )
    return ranked.filter(_.rank == 0).select("customer_id", key, "share")


def behaviour_features(
    events: ibis.Table,
    orders: ibis.Table,
    as_of: dt.date,
    *,
    web_event_types: Mapping[str, tuple[str, ...]] = WEB_EVENT_TYPES,
    order_channels: tuple[str, ...] = ORDER_CHANNELS,
    windows: tuple[int, ...] = WINDOWS_DAYS,
) -> ibis.Table:
    """One row per customer with a linked event or order by ``as_of``: browsing and buying habits.

    Columns, with ``<w>`` each window in ``windows`` (days ending on ``as_of``):

    - ``web_sessions`` and ``web_sessions_<w>d``: sessions of web events (a session
      starts at a customer's first web event and after every gap of more than
      ``SESSION_GAP_MINUTES``), counted on the day they start.
    - ``<stem>`` and ``<stem>_<w>d`` for each stem of ``web_event_types``:
      ``page_views``, ``product_views``, ``searches``, ``cart_adds``, ``checkouts``.
    - ``cart_abandonment_rate`` and ``cart_abandonment_rate_90d``: days with a cart add
      but no purchase (an order that is not a return, any channel) that same day ÷ days
      with a cart add. NULL without cart adds.
    - ``distinct_products_bought``, ``distinct_categories_bought``: over purchases.
    - ``top_category``: the category with the most purchases (ties: more revenue, then
      name); ``top_category_order_share``: its purchases ÷ purchases with a category.
    - ``returns_rate``: returns ÷ purchases (returns are order rows of their own).
    - ``discount_order_share``: purchases with ``discount > 0`` ÷ purchases.
    - ``share_<channel>_orders`` for each of ``order_channels``: purchases there ÷ purchases.
    - ``preferred_channel``: the channel with the most purchases (same tie-break as
      ``top_category``).

    Rates are NULL when their denominator is 0; counts are 0 when there is nothing to count.
    """
    since = {w: ibis.date(as_of - dt.timedelta(days=w - 1)) for w in set(windows) | {90}}
    periods = {"": None} | {f"_{w}d": since[w] for w in windows}
    seen = events_until(events, as_of)
    rows = purchases_until(orders, as_of)
    bought = rows.filter(~_.is_return)

    web_types = sorted({t for types in web_event_types.values() for t in types})
    previous = ibis.window(group_by="customer_id", order_by="timestamp")
    web = (seen.filter(_.event_type.isin(web_types))
           .mutate(previous_timestamp=_.timestamp.lag().over(previous))
           .mutate(session_start=_.previous_timestamp.isnull()
                   | (_.timestamp > _.previous_timestamp + ibis.interval(minutes=SESSION_GAP_MINUTES))))
    # Cart abandonment is counted in customer-days: only cart adds are joined to purchase days.
    cart = seen.filter(_.event_type.isin(web_event_types["cart_adds"])).select("customer_id", "day").distinct()
    purchase_days = bought.select(buyer="customer_id", purchase_day="day").distinct()
    cart = (cart.left_join(purchase_days, [cart.customer_id == purchase_days.buyer,
                                           cart.day == purchase_days.purchase_day])
            .mutate(abandoned=_.purchase_day.isnull()))
    carts = cart.group_by("customer_id").aggregate(**{
        f"{name}{suffix}": count_where(from_day(condition, start))
        for suffix, start in {"": None, "_90d": since[90]}.items()
        for name, condition in (("cart_days", ibis.literal(True)), ("abandoned_cart_days", _.abandoned))
    })

    web_metrics = {}
    for suffix, start in periods.items():
        web_metrics[f"web_sessions{suffix}"] = count_where(from_day(_.session_start, start))
    for stem, types in web_event_types.items():
        for suffix, start in periods.items():
            web_metrics[f"{stem}{suffix}"] = count_where(from_day(_.event_type.isin(types), start))
    browsing = web.group_by("customer_id").aggregate(**web_metrics)

    is_purchase = ~_.is_return
    buying = rows.group_by("customer_id").aggregate(
        purchases=count_where(is_purchase),
        returns=count_where(_.is_return),
        discounted_purchases=count_where(is_purchase & (_.discount > 0)),
        distinct_products_bought=_.product_id.nunique(where=is_purchase),
        distinct_categories_bought=_.category.nunique(where=is_purchase),
        **{f"purchases_{c}": count_where(is_purchase & (_.channel == c)) for c in order_channels},
    )
    top_category = _most_ordered(bought, "category")
    preferred_channel = _most_ordered(bought, "channel")

    j = (customers_seen(seen, rows)
         .left_join(browsing, "customer_id")
         .left_join(carts, "customer_id")
         .left_join(buying, "customer_id")
         .left_join(top_category, "customer_id")
         .left_join(preferred_channel, "customer_id"))
    web_counts = {f"web_sessions{s}": j[f"web_sessions{s}"].fill_null(0) for s in periods}
    web_counts |= {f"{stem}{s}": j[f"{stem}{s}"].fill_null(0) for stem in web_event_types for s in periods}
    out = j.select(
        customer_id=j.customer_id,
        **web_counts,
        cart_abandonment_rate=j.abandoned_cart_days / j.cart_days.nullif(0),
        cart_abandonment_rate_90d=j.abandoned_cart_days_90d / j.cart_days_90d.nullif(0),
        distinct_products_bought=j.distinct_products_bought.fill_null(0),
        distinct_categories_bought=j.distinct_categories_bought.fill_null(0),
        top_category=top_category.category,
        top_category_order_share=top_category.share,
        returns_rate=j.returns / j.purchases.nullif(0),
        discount_order_share=j.discounted_purchases / j.purchases.nullif(0),
        **{f"share_{c}_orders": j[f"purchases_{c}"] / j.purchases.nullif(0) for c in order_channels},
        preferred_channel=preferred_channel.channel,
    )
    return out
