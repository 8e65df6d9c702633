"""The oracle purchase probability is calibrated on the files."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from sample import oracle_purchase_probability
from tests.sample.conftest import END, all_orders, persons, read


def test_the_oracle_purchase_probability_is_calibrated_on_the_files(sample):
    truth = persons(sample)
    as_of = END - dt.timedelta(days=120)
    horizon = 90
    p = oracle_purchase_probability(read(sample, "truth/persons"), as_of, horizon)
    orders = all_orders(sample)
    start = pd.Timestamp(as_of)
    window = orders[(orders["day"] > start) & (orders["day"] <= start + pd.Timedelta(days=horizon))]
    bought = truth["person_id"].isin(window["person_id"]).to_numpy()
    # Three standard errors of a mean of Bernoulli(p_i), plus room for the invalid rows left out.
    assert abs(bought.mean() - p.mean()) < 3 * np.sqrt((p * (1 - p)).sum()) / len(p) + 0.01
    assert bought[p.to_numpy() > 0.6].mean() > 0.5 > bought[p.to_numpy() < 0.05].mean()
