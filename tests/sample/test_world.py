"""The persons and their purchases: what the order files show is the latent purchase process."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sample import GROUPS
from tests.sample.conftest import END, all_orders, persons, read


def test_group_purchase_rates_are_what_the_order_files_show(sample):
    truth = persons(sample)
    orders = all_orders(sample)
    counts = orders.groupby("person_id").size()
    truth["n_orders"] = truth["person_id"].map(counts).fillna(0)
    by_group = truth.groupby("group")["n_orders"].mean()
    assert by_group["champions"] > by_group["loyal"] > by_group["hibernating"]
    assert by_group["prospects"] == 0
    # Repeat purchases: observed count vs the expectation sum(rate * active days), per group.
    end = pd.Timestamp(END)
    buyers = truth[truth["first_purchase_date"] <= end]
    active_days = ((buyers["death_date"].clip(upper=end + pd.Timedelta(days=1))
                    - (buyers["first_purchase_date"] + pd.Timedelta(days=1))).dt.days).clip(lower=0)
    expected = (buyers["purchase_rate_per_day"] * active_days).groupby(buyers["group"]).sum()
    observed = (buyers["n_orders"] - 1).clip(lower=0).groupby(buyers["group"]).sum()
    for group in expected.index:
        # Poisson sums; a small allowance for the invalid rows left out.
        assert abs(observed[group] - expected[group]) < 4 * np.sqrt(expected[group]) + 0.01 * expected[group], group


def test_nobody_buys_before_their_first_purchase_day_or_on_or_after_their_death_day(sample):
    truth = persons(sample).set_index("person_id")
    orders = all_orders(sample).dropna(subset=["day"])
    first = truth.loc[orders["person_id"], "first_purchase_date"].to_numpy()
    death = truth.loc[orders["person_id"], "death_date"].to_numpy()
    assert (orders["day"].to_numpy() >= first).all()
    assert (orders["day"].to_numpy() < death).all()
    first_seen_day = orders.groupby("person_id")["day"].min()
    assert (first_seen_day == truth.loc[first_seen_day.index, "first_purchase_date"]).mean() > 0.99
    # And dead persons exist on both sides of the end date.
    alive = read(sample, "truth/persons")["is_alive_at_end"]
    assert 0.2 < (alive == "true").mean() < 0.8


def test_truth_persons_cover_every_group_with_its_latent_parameters(sample):
    truth = persons(sample)
    assert set(truth["group"]) == {g.name for g in GROUPS}
    rates = truth.groupby("group")["purchase_rate_per_day"].mean()
    for g in GROUPS:
        assert rates[g.name] == pytest.approx(g.purchase_rate_per_day, rel=0.25), g.name
    prospects = truth[truth["group"] == "prospects"]
    assert (prospects["first_purchase_date"] > pd.Timestamp(END)).all()
