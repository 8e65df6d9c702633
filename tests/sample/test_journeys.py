"""Journeys: touches precede their purchase by funnel stage, so last touch misreads the channels."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sample import CHANNELS
from tests.sample.conftest import all_orders, read, source_with_truth


def journey_touches(sample: Path) -> pd.DataFrame:
    """Touch rows (ad touchpoints and email clicks) of tracked journeys, with UTC times."""
    ads = source_with_truth(sample, "ad_touchpoints")
    emails = source_with_truth(sample, "email_events")
    emails = emails[emails["event_type"] == "email_click"]
    touches = pd.concat([ads, emails], ignore_index=True)
    touches = touches[touches["journey_id"] != ""]
    return touches.assign(at=pd.to_datetime(touches["timestamp"], format="ISO8601", utc=True, errors="coerce"))


def test_touchpoints_precede_their_purchase_within_thirty_days(sample):
    touches = journey_touches(sample).dropna(subset=["at"])
    orders = all_orders(sample)
    orders = orders[orders["journey_id"] != ""].dropna(subset=["at"]).set_index("journey_id")["at"]
    converted = touches[touches["journey_id"].isin(orders.index)]
    assert len(converted) > 300
    bought_at = orders.loc[converted["journey_id"]].to_numpy()
    lead_time = bought_at - converted["at"].to_numpy()
    assert (lead_time > pd.Timedelta(0)).all()
    assert (lead_time <= pd.Timedelta(days=30)).all()
    # Web checkouts precede their orders too (by minutes, not days).
    web = source_with_truth(sample, "web_events")
    checkouts = web[web["event_type"] == "checkout"]
    assert len(checkouts) > 100


def test_upper_funnel_channels_cause_most_conversions_but_are_seldom_their_last_touch(sample):
    journeys = read(sample, "truth/journeys")
    channels = read(sample, "truth/channels").set_index("channel")
    touches = journey_touches(sample).dropna(subset=["at"])
    present = pd.crosstab(touches["journey_id"], touches["channel"]) > 0
    converted = (journeys.set_index("journey_id").loc[present.index, "converted"] == "true").to_numpy()
    share_converting = present[converted].mean()
    share_not = present[~converted].mean()
    for channel in ("facebook", "instagram"):
        assert share_converting[channel] > share_not[channel] + 0.08, channel
    last = (touches[touches["journey_id"].isin(present.index[converted])].sort_values("at")
            .groupby("journey_id")["channel"].last())
    # Of the converting journeys a channel is in, the share it is the last touch of: touches
    # fall by funnel stage, so upper-funnel channels are seldom last and lower-funnel ones mostly.
    last_when_present = last.value_counts() / present[converted].sum()
    for channel, stage in channels["funnel_stage"].items():
        if stage == "upper":
            assert last_when_present[channel] < 0.4, channel
        elif stage == "lower":
            assert last_when_present[channel] > 0.7, channel
    true_share = channels["true_share"].astype(float)
    last_touch = last.value_counts(normalize=True)
    assert true_share["facebook"] + true_share["instagram"] > 0.6
    assert last_touch["facebook"] + last_touch["instagram"] < 0.4
    assert set(channels.index) == {c.name for c in CHANNELS}
