"""The truth tables: one record per written row, and the channel shares switching a channel off would lose."""

from __future__ import annotations

import numpy as np
import pytest

from tests.sample.conftest import SPECS, read


def test_every_written_row_has_exactly_one_truth_record_and_keys_are_unique(sample):
    records = read(sample, "truth/records")
    assert not records.duplicated(["source", "row_number"]).any()
    for name in SPECS:
        frame = read(sample, name)
        key = frame.columns[0]
        assert frame[key].is_unique, name
        mine = records[records["source"] == name]
        assert mine["row_number"].astype(int).tolist() == list(range(1, len(frame) + 1)), name
        assert mine["source_key"].tolist() == frame[key].tolist(), name
    assert set(records["source"]) == set(SPECS)
    person_ids = set(read(sample, "truth/persons")["person_id"])
    known = records["person_id"] != ""
    assert set(records.loc[known, "person_id"]) <= person_ids
    # Only web events of visitors who are nobody have no person.
    assert set(records.loc[~known, "source"]) == {"web_events"}


def test_true_share_is_what_switching_a_channel_off_loses_on_the_journeys_drawn(sample):
    """``lost_conversions`` (closed form over all tracked intents) against the same quantity
    re-computed journey by journey: the noisy-OR conversion probability of each journey's
    exposure set minus that of the set without the channel, summed. Intents without any
    exposure are not in truth/journeys.csv, but they lose nothing."""
    channels = read(sample, "truth/channels").set_index("channel")
    journeys = read(sample, "truth/journeys")
    effect = channels["true_effect"].astype(float).to_numpy()
    base = float(channels["base_conversion"].iloc[0])
    exposed = np.column_stack([journeys[f"exposed_{c}"] == "true" for c in channels.index])
    assert exposed.any(axis=1).all()

    def conversion(x):
        return 1 - (1 - base) * np.prod(1 - x * effect, axis=1)

    lost = np.column_stack([conversion(exposed) - conversion(exposed & (np.arange(len(effect)) != k))
                            for k in range(len(effect))])
    expected = channels["lost_conversions"].astype(float).to_numpy()
    spread = np.sqrt((lost ** 2).sum(axis=0))  # standard deviation of a sum of independent journeys, at most
    assert (np.abs(lost.sum(axis=0) - expected) <= 4 * spread + 0.01).all(), (lost.sum(axis=0), expected)
    share = channels["true_share"].astype(float)
    assert share.to_numpy() == pytest.approx(expected / expected.sum(), abs=1e-4)
    assert share.to_numpy() == pytest.approx(lost.sum(axis=0) / lost.sum(), abs=0.02)
    # The share depends on reach as well as on the activation: search and organic social
    # activate alike, but search is in more journeys; direct activates no one.
    reach = channels["exposure_probability"].astype(float)
    activation = channels["true_effect"].astype(float)
    assert activation["google_search"] == activation["organic_social"]
    assert reach["google_search"] > reach["organic_social"] and share["google_search"] > share["organic_social"]
    assert activation["direct"] == share["direct"] == 0
