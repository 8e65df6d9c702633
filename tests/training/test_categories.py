"""Next-best categories: co-purchase transitions, worked out by hand, and a lift over popularity on the shop."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from features.engine import duckdb_tables
from training.categories import CategoryRecommender, decode_history, encode_history, hit_rate
from training.data import Window, labelled_snapshots


def test_history_text_round_trips():
    counts = pd.DataFrame({"customer_id": ["A", "A", "B"], "category": ["soap", "dates", "soap"], "purchases": [1, 3, 2]})
    encoded = encode_history(counts)
    assert encoded.to_dict() == {"A": "dates:3;soap:1", "B": "soap:2"}
    wide = decode_history(pd.Series(["dates:3;soap:1", "", "soap:2"]))
    assert wide.loc[0, "dates"] == 3 and wide.loc[1].sum() == 0 and wide.loc[2, "soap"] == 2


def test_transitions_are_share_weighted_and_shrunk_to_popularity():
    # Two soap buyers: one bought dates next, one soap. One dates buyer bought dates next.
    history = pd.Series(["soap:1", "soap:2", "dates:1"])
    bought = pd.Series(["dates", "soap", "dates"])
    model = CategoryRecommender(k=1, prior_weight=1.0).fit(history, bought)
    # Popularity: dates 2/3, soap 1/3. soap → dates: (1 + 1 × 2/3) / (2 + 1) = 5/9.
    assert model.transitions_.loc["soap", "dates"] == pytest.approx(5 / 9)
    # dates → dates: (1 + 2/3) / (1 + 1) = 5/6; dates → soap: (0 + 1/3) / 2 = 1/6.
    assert model.transitions_.loc["dates", "dates"] == pytest.approx(5 / 6)
    assert model.transitions_.loc["dates", "soap"] == pytest.approx(1 / 6)
    # No history: the most popular category.
    assert model.recommend(pd.Series(["dates:1", ""])) == ["dates", "dates"]


def test_hit_rate_and_recall_count_buyers_only():
    result = hit_rate(["a,b", "c", "a"], pd.Series(["b,d", "a", ""]))
    assert result == {"hit_rate": 0.5, "recall": 0.25, "buyers": 2.0}


def test_recommendations_beat_the_most_popular_list_on_the_next_window(shop):
    con = shop.connect()
    tables = duckdb_tables(con)
    as_of = shop.end - dt.timedelta(days=90)
    snapshots = labelled_snapshots(tables, Window(as_of=shop.end, horizon_days=90, n_snapshots=4, step_days=30))
    con.close()
    train, test = snapshots[snapshots.as_of < pd.Timestamp(as_of)], snapshots[snapshots.as_of == pd.Timestamp(as_of)]
    model = CategoryRecommender(k=3).fit(train["category_history"], train["categories_in_horizon"])
    ours = hit_rate(model.recommend(test["category_history"]), test["categories_in_horizon"])
    top = ",".join(model.popularity_.sort_values(ascending=False).index[:3])
    popular = hit_rate([top] * len(test), test["categories_in_horizon"])
    assert ours["buyers"] > 300
    # Measured (seed 5): hit rate 0.685 vs 0.644, recall 0.533 vs 0.494. (An earlier margin of
    # 0.05 was flattered by a popular list with an empty "" slot, now gone.)
    assert ours["hit_rate"] > popular["hit_rate"] + 0.02, (ours, popular)
    assert ours["recall"] > popular["recall"] + 0.02, (ours, popular)


def test_nothing_bought_is_not_a_category():
    history = pd.Series(["olive_oil:2", "", "soap:1"])
    model = CategoryRecommender(k=3).fit(history, pd.Series(["", "", "olive_oil"]))
    assert "" not in model.categories_
    assert all(name for listed in model.recommend(history) for name in listed.split(","))
