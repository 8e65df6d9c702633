"""Engagement features: how a customer responds to email and ads, and how recently and often they act.

Email counts and rates, ad and social touchpoints per channel over the last
``TOUCHPOINT_WINDOW_DAYS`` days, and recency, frequency and trend of *engagement*: any
order, or any event the customer did themselves. Events the shop does *to* the customer
(``OUTBOUND_EVENT_TYPES``: an email sent, an ad shown) are not engagement, or every
subscriber would look active. Everything is computed from linked rows dated up to and
including ``as_of``.

Event-type names differ from shop to shop, so they live in role → event types mappings
(``EMAIL_EVENT_TYPES``, ``TOUCHPOINT_EVENT_TYPES``) with the channels per touchpoint role
in ``TOUCHPOINT_CHANNELS``; pass other mappings to use another shop's names.

One group-by over events and orders stacked together, so a customer with orders but no
events gets 0 for every event count and NULL for every email rate, and an empty
``events`` table (an orders-only shop such as CDNOW) still gives a valid table. Written
in Ibis, so the same expression runs on DuckDB and on Spark.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType

import ibis
from ibis import _

from features.as_of import count_where, events_until, from_day, purchases_until

WINDOWS_DAYS = (30, 90)
TOUCHPOINT_WINDOW_DAYS = 90

# Column stem → event types. "emails_sent" is the denominator of the email rates;
# "email_opens" also gives days_since_last_email_open.
EMAIL_EVENT_TYPES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "emails_sent": ("email_sent",),
    "email_opens": ("email_open",),
    "email_clicks": ("email_click",),
})
# Email rate column stem → the email count it divides by emails sent.
EMAIL_RATES = (("email_open_rate", "email_opens"), ("email_click_rate", "email_clicks"))
# Touchpoint role → event types, and the channels that get a ``<role>_<channel>_90d`` column.
TOUCHPOINT_EVENT_TYPES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "ad_impressions": ("ad_impression",),
    "ad_clicks": ("ad_click", "search_click"),
    "social_engagements": ("social_engagement",),
})
TOUCHPOINT_CHANNELS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "ad_impressions": ("facebook", "instagram"),
    "ad_clicks": ("facebook", "instagram", "google_search"),
    "social_engagements": ("organic_social",),
})
# Done to the customer, not by them: never counted as engagement.
OUTBOUND_EVENT_TYPES = ("email_sent", "ad_impression")


def engagement_features(
    events: ibis.Table,
    orders: ibis.Table,
    as_of: dt.date,
    *,
    email_event_types: Mapping[str, tuple[str, ...]] = EMAIL_EVENT_TYPES,
    touchpoint_event_types: Mapping[str, tuple[str, ...]] = TOUCHPOINT_EVENT_TYPES,
    touchpoint_channels: Mapping[str, tuple[str, ...]] = TOUCHPOINT_CHANNELS,
    outbound_event_types: tuple[str, ...] = OUTBOUND_EVENT_TYPES,
    windows: tuple[int, ...] = WINDOWS_DAYS,
) -> ibis.Table:
    """One row per customer with a linked event or order by ``as_of``: response and activity.

    Columns, with ``<w>`` each window in ``windows`` (days ending on ``as_of``):

    - ``emails_sent``, ``email_opens``, ``email_clicks``, each all-time and ``_<w>d``.
    - ``email_open_rate`` / ``email_click_rate`` and their ``_<w>d``: opens (clicks) ÷
      emails sent in the same period; NULL when none was sent. An open of an email sent
      before the window counts in the window, so a windowed rate can exceed 1.
    - ``<role>_<channel>_90d`` for each role and channel of ``touchpoint_channels``
      (``ad_impressions_facebook_90d``, ``ad_clicks_google_search_90d`` …).
    - ``days_since_last_engagement``: days from the last engagement day (an order, or an
      event not in ``outbound_event_types``) to ``as_of``; NULL if never engaged.
    - ``active_days_90d``: distinct engagement days in the last 90 days.
    - ``engagement_events_90d``: engagement events (not orders) in the last 90 days, and
      ``engagement_trend_90d``: that ÷ the same count in the 90 days before; NULL when
      the earlier period had none.
    - ``days_since_last_email_open``: NULL if no email was ever opened.
    """
    as_of_date = ibis.date(as_of)
    since = {w: ibis.date(as_of - dt.timedelta(days=w - 1))
             for w in set(windows) | {90, 180, TOUCHPOINT_WINDOW_DAYS}}
    periods = {"": None} | {f"_{w}d": since[w] for w in windows}

    seen = events_until(events, as_of).select("customer_id", "day", "event_type", "channel",
                                              is_order=ibis.literal(False))
    bought = purchases_until(orders, as_of).select("customer_id", "day", event_type=ibis.null("string"),
                                                   channel=ibis.null("string"), is_order=ibis.literal(True))
    activity = seen.union(bought).mutate(
        engaged=(_.is_order | _.event_type.notin(outbound_event_types)).fill_null(False),
        is_open=_.event_type.isin(email_event_types["email_opens"]).fill_null(False),
    )

    metrics = {}
    for stem, types in email_event_types.items():
        for suffix, start in periods.items():
            metrics[f"{stem}{suffix}"] = count_where(from_day(_.event_type.isin(types), start))
    touchpoints = []
    for role, channels in touchpoint_channels.items():
        for channel in channels:
            name = f"{role}_{channel}_{TOUCHPOINT_WINDOW_DAYS}d"
            touchpoints.append(name)
            metrics[name] = count_where(from_day(
                _.event_type.isin(touchpoint_event_types[role]) & (_.channel == channel),
                since[TOUCHPOINT_WINDOW_DAYS]))
    metrics["last_engagement_date"] = _.day.max(where=_.engaged)
    metrics["engagement_events_90d"] = count_where(_.engaged & ~_.is_order & (_.day >= since[90]))
    metrics["engagement_events_prev_90d"] = count_where(
        _.engaged & ~_.is_order & (_.day >= since[180]) & (_.day < since[90]))
    metrics["last_email_open_date"] = _.day.max(where=_.is_open)
    out = activity.group_by("customer_id").aggregate(**metrics)
    # Distinct days over the recent engaged rows only: a distinct count inside the big
    # group-by would hash every (customer, day) of all time.
    active = (activity.filter(_.engaged, _.day >= since[90]).select("customer_id", "day").distinct()
              .group_by("customer_id").aggregate(active_days_90d=_.count()))
    out = out.left_join(active, "customer_id").drop("customer_id_right").mutate(
        active_days_90d=_.active_days_90d.fill_null(0))

    rates = {f"{rate}{suffix}": (f"{stem}{suffix}", f"emails_sent{suffix}")
             for rate, stem in EMAIL_RATES for suffix in periods}
    out = out.mutate(
        **{rate: _[hits] / _[sent].nullif(0) for rate, (hits, sent) in rates.items()},
        days_since_last_engagement=lambda t: as_of_date.delta(t.last_engagement_date, unit="day"),
        engagement_trend_90d=_.engagement_events_90d / _.engagement_events_prev_90d.nullif(0),
        days_since_last_email_open=lambda t: as_of_date.delta(t.last_email_open_date, unit="day"),
    )
    columns = [
        "customer_id",
        *(f"{stem}{s}" for stem in email_event_types for s in periods),
        *rates,
        *touchpoints,
        "days_since_last_engagement", "active_days_90d",
        "engagement_events_90d", "engagement_trend_90d",
        "days_since_last_email_open",
    ]
    return out.select(*columns)
