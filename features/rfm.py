"""RFM and value features: recency, frequency, monetary value and their shape over time.

One pass for the family: orders are first reduced to customer-days, the grain every
feature here is counted in (STYLE: one heavy group-by per family). Purchases are counted
as distinct customer-days, the BTYD convention: two orders on one day are one purchase
day. Returns are kept apart (``returns_count``, ``returns_amount``) and do not count as
purchases. Everything is computed from orders dated up to and including ``as_of``.

Written in Ibis, so the same expression runs on DuckDB and on Spark.
"""

from __future__ import annotations

import datetime as dt

import ibis
from ibis import _

from features.as_of import count_where, purchases_until

WINDOWS_DAYS = (30, 90, 365)

# The classic RFM map (recency score × mean of frequency and monetary scores), checked in
# order; the first match names the segment.
RFM_SEGMENTS = (
    ("Champions", (5, 5), (4, 5)),
    ("Loyal customers", (3, 5), (3, 5)),
    ("Potential loyalists", (4, 5), (2, 3)),
    ("New customers", (5, 5), (1, 1)),
    ("Promising", (4, 4), (1, 1)),
    ("Need attention", (3, 3), (2, 3)),
    ("About to sleep", (3, 3), (1, 2)),
    ("Can't lose them", (1, 2), (5, 5)),
    ("At risk", (1, 2), (3, 4)),
    ("Hibernating", (2, 2), (1, 2)),
    ("Lost", (1, 1), (1, 2)),
)


def rfm_features(orders: ibis.Table, as_of: dt.date, windows: tuple[int, ...] = WINDOWS_DAYS) -> ibis.Table:
    """One row per customer with a purchase by ``as_of``: RFM, value, rhythm and trend.

    Columns: ``recency_days``, ``tenure_days``, ``purchase_days``, ``orders_count``,
    ``revenue_total``, ``mean_order_value``, ``purchase_days_<w>d`` and ``revenue_<w>d``
    per window, ``interpurchase_days_mean`` / ``_std`` (gaps between purchase days),
    ``overdue_ratio`` (days since the last purchase ÷ usual gap), ``frequency_trend_90d``
    and ``revenue_trend_90d`` (last 90 days ÷ the 90 before), ``returns_count``,
    ``returns_amount``, ``rfm_recency_score`` / ``_frequency_score`` / ``_monetary_score``
    (quintiles, 5 best), ``rfm_segment``.
    """
    as_of_date = ibis.date(as_of)
    rows = purchases_until(orders, as_of)
    bought = rows.filter(~_.is_return)
    since = {w: ibis.date(as_of - dt.timedelta(days=w - 1)) for w in set(windows) | {90, 180}}

    # Customer-day grain first: plain counts over it are purchase days, and the window that
    # measures the gaps between purchase days runs over days, not order lines.
    daily = bought.group_by("customer_id", "day").aggregate(day_orders=_.count(), day_revenue=_.amount.sum())
    daily = daily.mutate(gap=_.day.delta(_.day.lag().over(ibis.window(group_by="customer_id", order_by="day")),
                                         unit="day"))
    metrics = dict(
        first_purchase_date=_.day.min(),
        last_purchase_date=_.day.max(),
        purchase_days=_.count(),
        orders_count=_.day_orders.sum().cast("int64"),
        revenue_total=_.day_revenue.sum(),
        interpurchase_days_mean=_.gap.mean(),
        interpurchase_days_std=_.gap.std(),
    )
    for w in windows:
        metrics[f"purchase_days_{w}d"] = count_where(_.day >= since[w])
        metrics[f"revenue_{w}d"] = _.day_revenue.sum(where=_.day >= since[w]).fill_null(0)
    metrics["purchase_days_prev_90d"] = count_where((_.day >= since[180]) & (_.day < since[90]))
    metrics["revenue_prev_90d"] = _.day_revenue.sum(where=(_.day >= since[180]) & (_.day < since[90])).fill_null(0)
    if 90 not in windows:
        metrics["purchase_days_90d"] = count_where(_.day >= since[90])
        metrics["revenue_90d"] = _.day_revenue.sum(where=_.day >= since[90]).fill_null(0)
    value = daily.group_by("customer_id").aggregate(**metrics)

    returns = rows.filter(_.is_return).group_by("customer_id").aggregate(
        returns_count=_.count(), returns_amount=_.amount.sum())

    out = value.left_join(returns, "customer_id").drop("customer_id_right")
    out = out.mutate(
        recency_days=lambda t: as_of_date.delta(t.last_purchase_date, unit="day"),
        tenure_days=lambda t: as_of_date.delta(t.first_purchase_date, unit="day"),
        mean_order_value=_.revenue_total / _.orders_count.nullif(0),
        returns_count=_.returns_count.fill_null(0),
        returns_amount=_.returns_amount.fill_null(0),
    ).mutate(
        overdue_ratio=_.recency_days / _.interpurchase_days_mean.nullif(0),
        frequency_trend_90d=_.purchase_days_90d / _.purchase_days_prev_90d.nullif(0),
        revenue_trend_90d=_.revenue_90d / _.revenue_prev_90d.nullif(0),
    )
    # Revenue is ranked in cents: float sums differ in the last bit with the order rows are
    # added in (across engines, threads and plans), which must not move a customer across
    # a quintile boundary.
    cents = _.revenue_total.round(2)
    out = out.mutate(
        rfm_recency_score=ibis.ntile(5).over(order_by=[ibis.desc("recency_days"), "customer_id"]) + 1,
        rfm_frequency_score=ibis.ntile(5).over(order_by=["purchase_days", cents, "customer_id"]) + 1,
        rfm_monetary_score=ibis.ntile(5).over(order_by=[cents, "customer_id"]) + 1,
    )
    fm = ((_.rfm_frequency_score + _.rfm_monetary_score) / 2).round().cast("int64")
    out = out.mutate(rfm_segment=ibis.cases(
        *[((_.rfm_recency_score.between(*r)) & fm.between(*f), name) for name, r, f in RFM_SEGMENTS],
        else_="Others"))
    return out.drop("purchase_days_prev_90d", "revenue_prev_90d")
