"""Next-best categories: co-purchase transitions, worked out by hand, a lift over popularity on the shop,
and the vectorised scoring path checked against a slow per-row reference, with categories of every
character class (the reference decodes the escaped texts with `urllib.parse.unquote`, independently)."""

from __future__ import annotations

import copy
import datetime as dt
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError

from features.engine import duckdb_tables
from features.text_items import escape, join_items
from training.categories import CategoryRecommender, decode_history, encode_history, hit_rate
from training.data import Window, labelled_snapshots


def test_history_text_round_trips():
    counts = pd.DataFrame({"customer_id": ["A", "A", "B"], "category": ["soap", "dates", "soap"],
                           "purchases": [1, 3, 2]})
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
    assert model.recommend(pd.Series(["dates:1", ""])) == [["dates"], ["dates"]]


def test_hit_rate_and_recall_count_buyers_only():
    result = hit_rate([["a", "b"], ["c"], ["a"]], pd.Series(["b,d", "a", ""]))
    assert result == {"hit_rate": 0.5, "recall": 0.25, "buyers": 2.0}
    # Categories holding the separators: "a,b" is one category, not "a" and "b".
    result = hit_rate([["a,b"], ["a"], ["x"]], pd.Series([join_items(["a,b"]), join_items(["a", "b"]),
                                                          join_items(["x;1", "x"])]))
    assert result == {"hit_rate": 1.0, "recall": pytest.approx((1 + 1 / 2 + 1 / 2) / 3), "buyers": 3.0}
    # A text list is read as escaped items, as the labels write them.
    assert hit_rate(["a%2Cb"], pd.Series([join_items(["a,b"])]))["hit_rate"] == 1.0


# Every character class a shop's catalogue may hold, and names that differ only by one of them.
ODD = ["Oil, olive", "Oil olive", "a;b", "a:b", "100%", "100%3A", "%2C", '"quoted"', "[list]", "{set}", "k=v",
       "+1", "-1", "@x", "زيت زيتون", "olive 🌿", "back\\slash", "it's", "tab\there", "  spaced  "]


def test_every_character_class_round_trips_through_the_history_text():
    counts = pd.DataFrame({"customer_id": ["A"] * len(ODD) + ["B"], "category": ODD + ["Oil, olive"],
                           "purchases": list(range(1, len(ODD) + 1)) + [7]})
    encoded = encode_history(counts)
    assert ";" not in encoded["B"].removesuffix(":7") and encoded["B"] == "Oil%2C olive:7"
    wide = decode_history(encoded.reset_index(drop=True))
    assert sorted(wide.columns) == sorted(ODD)  # two names differing by one character stay two columns
    assert wide.loc[0, ODD].tolist() == list(map(float, range(1, len(ODD) + 1)))
    assert wide.loc[1, "Oil, olive"] == 7 and wide.loc[1].sum() == 7


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1), st.integers(1, 10_000), min_size=1, max_size=6))
def test_any_text_round_trips_through_the_history_text(bought):
    counts = pd.DataFrame({"customer_id": "A", "category": list(bought), "purchases": list(bought.values())})
    wide = decode_history(encode_history(counts).reset_index(drop=True))
    assert wide.iloc[0].to_dict() == {name: float(n) for name, n in bought.items()}


def test_recommendations_are_the_categories_exactly_as_bought():
    history = pd.Series([";".join(f"{escape(name)}:{i + 1}" for i, name in enumerate(ODD)), ""])
    bought = pd.Series([join_items(ODD[:3]), join_items(ODD[3:])])
    model = CategoryRecommender(k=len(ODD)).fit(history, bought)
    assert sorted(model.categories_) == sorted(ODD)
    listed = model.recommend(history)
    assert [sorted(row) for row in listed] == [sorted(ODD)] * 2
    assert model.recommend(pd.Series([f"{escape('Oil, olive')}:5"]))[0][0] == "Oil, olive"


def test_recommendations_beat_the_most_popular_list_on_the_next_window(shop):
    con = shop.connect()
    tables = duckdb_tables(con)
    as_of = shop.end - dt.timedelta(days=90)
    snapshots = labelled_snapshots(tables, Window(as_of=shop.end, horizon_days=90, n_snapshots=4, step_days=30))
    con.close()
    train, test = snapshots[snapshots.as_of < pd.Timestamp(as_of)], snapshots[snapshots.as_of == pd.Timestamp(as_of)]
    model = CategoryRecommender(k=3).fit(train["category_history"], train["categories_in_horizon"])
    ours = hit_rate(model.recommend(test["category_history"]), test["categories_in_horizon"])
    top = list(model.popularity_.sort_values(ascending=False).index[:3])
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
    assert all(name for listed in model.recommend(history) for name in listed)


# --- The vectorised scoring path against a slow, obviously correct reference ----------------

KNOWN = ["Soap", "baby", "bakery", "coffee", "dates", "olive_oil", "pet", "snacks", "spices", "tea:green", "épices",
         "Oil, olive", "Oil olive", "a;b", "100%", "100%3A", "زيت", "🌿", '"q" [l] {s}']
UNKNOWN = ["unknown", "zzz_new", "aaa_new", "Oil,olive"]


def _random_histories(n: int, seed: int, names: list[str], strangers: list[str] = UNKNOWN) -> pd.Series:
    """Texts as `encode_history` writes them, plus what real columns carry: None, NaN, "",
    repeated categories, stray separators and ``strangers`` (categories the model never saw)."""
    rng = np.random.default_rng(seed)
    texts: list[object] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.08:
            texts.append(None)
        elif roll < 0.12:
            texts.append(np.nan)
        elif roll < 0.2:
            texts.append("")
        else:
            picked = rng.choice(names + strangers, size=rng.integers(1, 6))
            items = [f"{escape(name)}:{rng.integers(1, 4)}" for name in picked]
            texts.append((";;" if roll < 0.22 else ";").join(items) + (";" if roll > 0.98 else ""))
    return pd.Series(texts, dtype=object, index=rng.permutation(n) + 100)


def _reference_counts(text: object, categories: list[str]) -> dict[str, float]:
    """One history text → purchases per known category, parsed item by item."""
    counts = {name: 0.0 for name in categories}
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return counts
    for item in str(text).split(";"):
        if item:
            name, n = item.rsplit(":", 1)
            name = unquote(name)
            if name in counts:
                counts[name] += float(n)
    return counts


def _reference_scores(model: CategoryRecommender, texts: pd.Series) -> list[dict[str, float]]:
    """The posterior of the module docstring, one customer at a time in plain Python."""
    rates = model.transitions_.to_dict(orient="index")
    return [_reference_posterior(model, rates, text) for text in texts]


def _reference_posterior(model: CategoryRecommender, rates: dict, text: object) -> dict[str, float]:
    names = model.categories_
    own = _reference_counts(text, names)
    total = sum(own.values())
    if total == 0:
        mixed = model.popularity_.to_dict()
    else:
        mixed = {c: sum(own[a] / total * rates[a][c] for a in names) for c in names}
    norm = max(sum(mixed.values()), 1e-12)
    return {c: (own[c] + model.prior_purchases * mixed[c] / norm) / (total + model.prior_purchases) for c in names}


def _reference_ranking(scores: dict[str, float], k: int) -> list[str]:
    return sorted(scores, key=lambda name: (-scores[name], name))[:k]


@pytest.fixture(scope="module")
def fitted() -> CategoryRecommender:
    history = _random_histories(400, seed=11, names=KNOWN, strangers=[])
    rng = np.random.default_rng(12)
    bought = pd.Series([join_items(sorted(set(rng.choice(KNOWN, size=rng.integers(0, 3))))) for _ in range(400)])
    return CategoryRecommender(k=3).fit(history, bought)


def _twins_model(k: int) -> CategoryRecommender:
    """A model fitted by hand whose categories come in indistinguishable pairs (equal
    transition columns, equal popularity), so customers' scores tie often and exactly."""
    names = ["a", "b", "c", "d", "e", "f"]
    rates = np.array([[0.5, 0.5, 0.25, 0.25, 0.125, 0.125],
                      [0.25, 0.25, 0.5, 0.5, 0.125, 0.125],
                      [0.125, 0.125, 0.25, 0.25, 0.5, 0.5],
                      [0.5, 0.5, 0.125, 0.125, 0.25, 0.25],
                      [0.25, 0.25, 0.25, 0.25, 0.25, 0.25],
                      [0.125, 0.125, 0.5, 0.5, 0.25, 0.25]])
    model = CategoryRecommender(k=k)
    model.categories_ = names
    model.transitions_ = pd.DataFrame(rates, index=names, columns=names)
    model.popularity_ = pd.Series([0.25, 0.25, 0.5, 0.5, 0.25, 0.25], index=names)
    return model


def test_decode_history_sums_each_category_per_row_like_a_reference():
    texts = _random_histories(2000, seed=1, names=KNOWN)
    wide = decode_history(texts)
    seen = sorted({unquote(item.rsplit(":", 1)[0]) for text in texts.dropna() for item in text.split(";") if item})
    assert list(wide.columns) == seen
    assert list(wide.index) == list(range(len(texts)))
    expected = pd.DataFrame([_reference_counts(text, seen) for text in texts], columns=seen)
    np.testing.assert_array_equal(wide.to_numpy(), expected.to_numpy())


def test_scores_match_a_per_row_reference(fitted):
    texts = _random_histories(1500, seed=2, names=KNOWN)
    scores = fitted.scores(texts)
    assert list(scores.columns) == fitted.categories_ and scores.index.equals(texts.index)
    expected = pd.DataFrame(_reference_scores(fitted, texts), columns=fitted.categories_)
    np.testing.assert_allclose(scores.to_numpy(), expected.to_numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("k", [1, 3, 6, 40])
def test_recommend_ranks_by_score_then_by_name(fitted, k):
    texts = _random_histories(3000, seed=3, names=KNOWN)
    model = copy.deepcopy(fitted).set_params(k=k)
    scores = model.scores(texts)
    expected = [_reference_ranking(dict(zip(model.categories_, row)), k) for row in scores.to_numpy()]
    assert model.recommend(texts) == expected


def test_ties_are_broken_by_category_name():
    model = _twins_model(k=3)
    texts = _random_histories(2000, seed=4, names=model.categories_)
    expected_scores = _reference_scores(model, texts)
    for k in (1, 2, 3, 5):
        model.set_params(k=k)
        assert model.recommend(texts) == [_reference_ranking(scores, k) for scores in expected_scores], k
    # The twins do tie: most customers have an exact tie somewhere in their scores.
    assert np.mean([len(set(row)) < len(row) for row in model.scores(texts).to_numpy()]) > 0.5


def test_many_categories_and_long_lists_take_the_general_path():
    # 30 categories, k = 13: the top-k lists no longer fit in one 64-bit code per row.
    names = [f"cat_{i:02d}" for i in range(30)]
    history = _random_histories(600, seed=5, names=names, strangers=[])
    rng = np.random.default_rng(6)
    bought = pd.Series([join_items(rng.choice(names, size=rng.integers(0, 4))) for _ in range(600)])
    model = CategoryRecommender(k=13).fit(history, bought)
    texts = _random_histories(500, seed=7, names=names)
    scores = model.scores(texts)
    expected = [_reference_ranking(dict(zip(model.categories_, row)), 13) for row in scores.to_numpy()]
    assert model.recommend(texts) == expected


@pytest.mark.parametrize("dtype", [object, "str"])
def test_missing_and_empty_histories_get_the_most_popular_categories(fitted, dtype):
    top = _reference_ranking(fitted.popularity_.to_dict(), fitted.k)
    texts = pd.Series([None, "", ";", "unknown:4", "zzz_new:1;aaa_new:2"], dtype=dtype)
    assert fitted.recommend(texts) == [top] * len(texts)
    assert fitted.recommend(texts.iloc[:0]) == []


def test_an_unfitted_recommender_says_so():
    with pytest.raises(NotFittedError):
        CategoryRecommender().recommend(pd.Series(["soap:1"]))
