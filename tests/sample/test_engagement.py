"""Email engagement fades before a person's dropout day."""

from __future__ import annotations

import pandas as pd

from tests.sample.conftest import persons, source_with_truth


def test_email_opens_fade_before_death(sample):
    emails = source_with_truth(sample, "email_events")
    letters = emails[~emails["campaign"].str.startswith("flow_")]
    sent = letters[letters["event_type"] == "email_sent"]
    opened = letters[letters["event_type"] == "email_open"][["person_id", "campaign"]].drop_duplicates()
    sent = sent.merge(opened.assign(opened=True), on=["person_id", "campaign"], how="left")
    sent["opened"] = sent["opened"].fillna(False).astype(bool)
    death = persons(sample).set_index("person_id")["death_date"]
    sent_day = pd.to_datetime(sent["timestamp"].str.slice(0, 10), errors="coerce")
    days_left = (death.loc[sent["person_id"]].to_numpy() - sent_day).dt.days
    far, near, after = days_left > 365, (days_left >= 0) & (days_left < 45), days_left < 0
    assert far.sum() > 200 and after.sum() > 50
    assert sent.loc[far, "opened"].mean() > 2 * sent.loc[near, "opened"].mean()
    assert sent.loc[after, "opened"].mean() < 0.06
