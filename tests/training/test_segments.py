"""Customer segments: checked against the sample shop's ground truth, and by hand.

What "recovering the groups" can mean here. The generator's buyer groups overlap at the
as-of date: ``at_risk`` regulars who have not dropped out yet buy like ``loyal`` ones,
loyal customers who dropped out look like lapsed at-risk ones, champions are ``loyal``
with a higher rate, and recent one-off ``hibernating`` bargain hunters look like
``promising`` newcomers. Measured on this shop (seed 5, as of 2026-10-31, 3,528 buyers),
even a *supervised* gradient-boosted classifier given the truth and every feature reaches
only ARI 0.587 (5-fold out-of-fold predictions; 0.646 with at_risk and loyal merged), so
the brief's ARI ≥ 0.6 is out of reach for any clustering. The segmenter reaches ARI
0.427 and NMI 0.369 (k-means, k = 4; 0.431 when first measured, before generator change
c0f8603); on other shops of 4,000 customers, seeds 1, 2 and 3, ARI 0.449, 0.416 and
0.449 (k = 4 each), and 0.437 on a 20,000-customer shop (seed 7, 17,552 buyers). A greedy
search over feature sets with the truth in hand at k = 5 topped out near 0.457. Tried in
2026-12 and not adopted (ARI on seeds 5 / 1, k chosen without the truth): the discount
share added to the features, 0.433 / 0.473 (k falls to 3 on seed 5; 0.407 on seed 2);
log or empirical-Bayes purchase rates, discount logits, overdue and recency ÷ tenure
ratios, 0.34–0.41 / 0.35–0.42; Gaussian mixtures chosen by BIC, 0.17–0.34 (BIC always
wants k = 8, the count features' ties); a latent-class mixture of Pareto/NBD purchase
processes (gamma rates on a grid) with tenure, order value, discounts and engagement,
0.30 on seed 5 even from a start at the truth: fitted *on* the truth it classifies at
0.557, but EM leaves the groups for a better-fitting split. The tests therefore assert
ARI ≥ 0.35 and NMI ≥ 0.30, and, more to the point for a marketer, that each named
segment holds the people its name promises (per-segment purity against the truth,
thresholds measured with margin).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

from features.build import available_families, build_features
from features.catalog import EVENT_FAMILIES, catalog
from features.engine import duckdb_tables
from training.segments import (
    PROSPECTS,
    RFM_FEATURES,
    CustomerSegmenter,
    match_previous,
    segment_name,
    silhouette_scores,
    unique_names,
)

EARLIER = dt.date(2026, 7, 31)


@pytest.fixture(scope="module")
def frames(shop) -> dict[str, pd.DataFrame]:
    con = shop.connect()
    try:
        tables = duckdb_tables(con)
        families = available_families(tables)
        return {"end": build_features(tables, shop.end, families).to_pandas(),
                "earlier": build_features(tables, EARLIER, families).to_pandas()}
    finally:
        con.close()


@pytest.fixture(scope="module")
def frame(frames) -> pd.DataFrame:
    return frames["end"]


@pytest.fixture(scope="module")
def truth(shop, frame) -> pd.DataFrame:
    """Per row of ``frame``: the true group and whether the person is still alive at the end."""
    person = frame["customer_id"].map(shop.person_of)
    return pd.DataFrame({"group": person.map(shop.persons["group"]),
                         "alive": person.map(shop.persons["is_alive_at_end"])}, index=frame.index)


@pytest.fixture(scope="module")
def fitted(frame) -> CustomerSegmenter:
    return CustomerSegmenter().fit(frame)


@pytest.fixture(scope="module")
def segments(fitted, frame) -> np.ndarray:
    return fitted.predict(frame)


@pytest.mark.parametrize("cast", [False, True], ids=["as the store returns them", "as the models cast them"])
def test_a_few_rows_get_the_segments_and_scaled_values_they_get_among_all(fitted, frame, segments, cast):
    """Fewer than SMALL_FRAME_ROWS rows are scaled in NumPy (`/score_features`' one row): the
    very values, bit for bit, that the whole table gets."""
    from training.pyfunc import model_ready
    from training.segments import SMALL_FRAME_ROWS

    rows = model_ready(frame) if cast else frame
    everyone = fitted.transform_scaled(rows)
    buyer_row = np.cumsum(rows["recency_days"].notna().to_numpy()) - 1
    for start in (0, 57, 301):
        few = rows.iloc[start:start + 40]
        assert len(few) < SMALL_FRAME_ROWS and few["recency_days"].isna().any()  # buyers and prospects
        bought = few["recency_days"].notna().to_numpy()
        assert np.array_equal(fitted.transform_scaled(few), everyone[buyer_row[start:start + 40][bought]])
        assert fitted.predict(few).tolist() == segments[start:start + 40].tolist()


def _buyers_with_truth(frame, truth):
    return (frame["recency_days"].notna() & truth["group"].notna()).to_numpy()


# --- recovery of the generator's groups ---------------------------------------------------

def test_buyer_segments_recover_the_behavioural_groups(frame, truth, segments):
    """Measured: ARI 0.427, NMI 0.369 (the supervised ceiling is ARI 0.587; see above)."""
    keep = _buyers_with_truth(frame, truth)
    groups = truth["group"].to_numpy(dtype=object)[keep]
    assert adjusted_rand_score(groups, segments[keep]) >= 0.35
    assert normalized_mutual_info_score(groups, segments[keep]) >= 0.30


def test_each_named_segment_holds_the_people_its_name_promises(frame, truth, segments):
    """Measured shares: Hibernating 81% hibernating, 91% dropped out; Promising 64%
    promising; Loyal 79% still alive, 57% loyal or champions; At risk 91% regulars
    (at_risk, loyal, champions), only 2% one-off hibernators."""
    keep = _buyers_with_truth(frame, truth)
    table = pd.DataFrame({"segment": segments[keep], "group": truth["group"].to_numpy(dtype=object)[keep],
                          "alive": truth["alive"].to_numpy()[keep]})
    assert set(table["segment"]) == {"Hibernating", "Promising", "Loyal", "At risk"}

    def share(segment, column, values):
        part = table[table["segment"] == segment]
        return part[column].isin(values).mean()

    assert share("Hibernating", "group", ["hibernating"]) >= 0.7
    assert share("Hibernating", "alive", [False]) >= 0.8
    assert share("Promising", "group", ["promising"]) >= 0.55
    assert share("Loyal", "alive", [True]) >= 0.7
    assert share("Loyal", "group", ["loyal", "champions"]) >= 0.5
    assert share("At risk", "group", ["at_risk", "loyal", "champions"]) >= 0.85
    # The lapsing regulars sit in "At risk" more than in "Loyal".
    assert share("At risk", "alive", [False]) > share("Loyal", "alive", [False]) + 0.1


def test_customers_who_never_bought_are_prospects_and_not_clustered(fitted, frame, segments):
    never = frame["recency_days"].isna().to_numpy()
    assert never.sum() > 0
    assert (segments[never] == PROSPECTS).all()
    assert PROSPECTS not in fitted.segment_names_
    assert (segments[~never] != PROSPECTS).all()
    # Prediction on the non-buyers alone touches no cluster.
    assert (fitted.predict(frame[never]) == PROSPECTS).all()


# --- selection, centroids, profile ---------------------------------------------------------

def test_selection_keeps_every_candidate_and_follows_the_documented_choice(fitted):
    table = fitted.selection_
    assert len(table) == 2 * 6   # kmeans and gmm, k = 3 … 8
    kmeans, gmm = table[table["method"] == "kmeans"], table[table["method"] == "gmm"]
    best_kmeans = kmeans.loc[kmeans["silhouette"].idxmax()]
    best_gmm = gmm.loc[gmm["bic"].idxmin()]
    assert table["best_of_method"].sum() == 2
    assert bool(best_kmeans["best_of_method"]) and bool(best_gmm["best_of_method"])
    winner = best_kmeans if best_kmeans["silhouette"] >= best_gmm["silhouette"] else best_gmm
    chosen = table[table["chosen"]]
    assert len(chosen) == 1
    assert ((fitted.method_, fitted.k_) == (winner["method"], winner["k"])
            == (chosen["method"].iloc[0], chosen["k"].iloc[0]))
    assert (fitted.method_, fitted.k_) == ("kmeans", 4)   # measured on this shop


def test_centroids_are_the_segment_means_in_log_space(fitted, frame, segments):
    """A k-means centroid is the mean of its members in the scaled space, so in original
    units it is expm1 of the members' mean log1p value (none of them is imputed here)."""
    for name in fitted.segment_names_:
        members = frame.loc[segments == name, fitted.features_].astype(float)
        expected = np.expm1(np.log1p(members).mean())
        assert fitted.centroids_.loc[name, "original"].to_numpy() == pytest.approx(expected.to_numpy(), rel=0.02)
    assert list(fitted.centroids_["scaled"].columns) == fitted.features_


def test_profile_counts_shares_and_medians(fitted, frame, segments):
    table = fitted.profile(frame)
    assert list(table.index) == [*fitted.segment_names_, PROSPECTS]
    assert table["customers"].sum() == len(frame)
    assert table["share"].sum() == pytest.approx(1.0)
    assert table.loc[PROSPECTS, "customers"] == frame["recency_days"].isna().sum()
    loyal = frame.loc[segments == "Loyal"]
    assert table.loc["Loyal", "revenue_total_median"] == pytest.approx(loyal["revenue_total"].median())
    assert table.loc["Hibernating", "purchase_days_median"] == 1   # one-off buyers


# --- determinism, RFM-only data --------------------------------------------------------------

def test_the_same_inputs_give_the_same_segments(fitted, frame, segments):
    again = CustomerSegmenter().fit(frame)
    assert np.array_equal(again.predict(frame), segments)
    pd.testing.assert_frame_equal(again.selection_, fitted.selection_)
    pd.testing.assert_frame_equal(again.centroids_table(), fitted.centroids_table())


def test_orders_only_data_is_segmented_on_rfm_alone(frame, truth):
    """As for CDNOW: no behaviour or engagement column at all. Measured ARI 0.408, k = 3."""
    event_columns = [spec.name for spec in catalog(EVENT_FAMILIES)]
    rfm_only = frame.drop(columns=event_columns)
    seg = CustomerSegmenter(methods=("kmeans",)).fit(rfm_only)
    assert seg.features_ == list(RFM_FEATURES)
    predicted = seg.predict(rfm_only)
    keep = _buyers_with_truth(frame, truth)
    assert adjusted_rand_score(truth["group"].to_numpy(dtype=object)[keep], predicted[keep]) >= 0.35
    assert (predicted[frame["recency_days"].isna().to_numpy()] == PROSPECTS).all()


# --- stable names across retrains ---------------------------------------------------------------

def test_a_retrain_on_a_resample_keeps_the_names(fitted, frame, segments):
    """Measured: every segment matched within 0.08 sd, 99.6% of customers keep their name."""
    resample = frame.sample(frac=0.8, random_state=1)
    again = CustomerSegmenter(random_state=1).fit(resample, previous=fitted.centroids_table())
    assert sorted(again.segment_names_) == sorted(fitted.segment_names_)
    assert (again.matching_["previous_segment"] == again.matching_["segment"]).all()
    assert again.matching_["distance"].max() < 0.3
    assert (again.predict(frame) == segments).mean() >= 0.97


def test_a_retrain_three_months_earlier_keeps_the_names(fitted, frames, segments):
    """Alone, the July fit calls its two frequent clusters "Loyal (high value)" and "Loyal
    (low value)"; matched to the October model they stay "At risk" and "Loyal".
    Measured: matched within 0.40 sd; 95.6% of October customers get the same name."""
    earlier = frames["earlier"]
    alone = CustomerSegmenter().fit(earlier)
    matched = CustomerSegmenter().fit(earlier, previous=fitted.centroids_table())
    assert sorted(alone.segment_names_) != sorted(fitted.segment_names_)
    assert sorted(matched.segment_names_) == sorted(fitted.segment_names_)
    assert matched.matching_["distance"].max() < 0.6
    assert (matched.predict(frames["end"]) == segments).mean() >= 0.9


def test_previous_names_are_kept_verbatim_and_unmatched_clusters_get_rule_names(fitted, frame, segments):
    table = fitted.centroids_table()
    renamed = table.assign(segment=table["segment"].map({"At risk": "Gold", "Promising": "Seedlings",
                                                          "Hibernating": "Sleepers", "Loyal": "Loyal"}))
    partial = renamed[renamed["segment"] != "Loyal"]   # the old model had no Loyal cluster
    again = CustomerSegmenter().fit(frame, previous=partial)
    names = dict(zip(fitted.segment_names_, again.segment_names_))
    assert names == {"At risk": "Gold", "Promising": "Seedlings", "Hibernating": "Sleepers", "Loyal": "Loyal"}
    assert pd.isna(again.matching_.set_index("segment").loc["Loyal", "previous_segment"])
    expected = pd.Series(segments).map({**names, PROSPECTS: PROSPECTS}).to_numpy(dtype=object)
    assert np.array_equal(again.predict(frame), expected)


# --- the naming rule and the matching, by hand -------------------------------------------------

@pytest.mark.parametrize("recency_z, frequency_z, monetary_z, tenure_z, name", [
    (-1.2, 1.5, 1.1, 0.3, "Champions"),      # a standard deviation better on R, F and M
    (-1.2, 1.5, 0.9, 0.3, "Loyal"),          # monetary short of 1: not champions
    (-0.5, 0.3, -0.2, 0.3, "Loyal"),         # frequent, recent by exactly half a sd
    (-0.4, 0.3, 0.9, 0.3, "At risk"),        # frequent, not recent enough
    (0.2, 0.8, 0.9, 0.3, "At risk"),
    (-0.5, -0.4, 0.0, -1.0, "Promising"),    # infrequent, recent, new
    (-0.5, -0.4, 0.0, 0.5, "Need attention"),  # infrequent, recent, not new
    (0.0, 0.0, 0.0, 0.0, "Need attention"),  # the average buyer: f = 0 is not frequent
    (0.7, -0.6, -0.6, 0.4, "Hibernating"),
])
def test_naming_rule(recency_z, frequency_z, monetary_z, tenure_z, name):
    assert segment_name(recency_z, frequency_z, monetary_z, tenure_z) == name


def test_without_tenure_recent_infrequent_customers_are_promising():
    assert segment_name(-0.5, -0.4, 0.0) == "Promising"


def test_clashing_names_get_value_qualifiers():
    assert unique_names(["Loyal", "Hibernating", "Loyal"], [0.2, -1.0, 0.9]) == \
        ["Loyal (low value)", "Hibernating", "Loyal (high value)"]
    assert unique_names(["At risk"] * 3, [0.0, 0.5, -0.5]) == \
        ["At risk (mid value)", "At risk (high value)", "At risk (low value)"]
    assert unique_names(["Loyal", "At risk"], [0.0, 0.0], taken=["At risk"]) == ["Loyal", "At risk 2"]


def test_matching_is_the_minimum_total_distance_not_greedy():
    # Greedy nearest-first pairs current 1 with previous 0 (0.9) and leaves current 0 with
    # previous 1 (3.0), total 3.9; the optimum pairs 0-0 (1.1) and 1-1 (1.0), total 2.1.
    assert match_previous(np.array([[0.0], [2.0]]), np.array([[1.1], [3.0]])) == [0, 1]


def test_matching_leaves_extra_and_distant_clusters_unmatched():
    current = np.array([[0.0, 0.0], [5.0, 5.0], [10.0, 0.0]])
    previous = np.array([[9.0, 1.0], [1.0, 0.0]])
    # Distances: c0-p1 1.0, c2-p0 sqrt(2) = 1.41, c1 to either >= 5.66: c1 stays new.
    assert match_previous(current, previous) == [1, None, 0]
    assert match_previous(current, previous, max_distance=1.2) == [1, None, None]


# --- estimator contract --------------------------------------------------------------------

def test_estimator_contract(frame):
    seg = CustomerSegmenter(k_range=(3, 4), methods=("kmeans",))
    assert clone(seg).get_params() == seg.get_params()
    with pytest.raises(NotFittedError):
        seg.predict(frame)
    with pytest.raises(ValueError, match="revenue_total"):
        CustomerSegmenter(features=["recency_days", "purchase_days"]).fit(frame)
    with pytest.raises(ValueError, match="'spend_usd' missing"):
        CustomerSegmenter(features=["recency_days", "purchase_days", "revenue_total", "spend_usd"]).fit(frame)
    with pytest.raises(ValueError, match="k_range"):
        CustomerSegmenter(k_range=(1, 4)).fit(frame)
    with pytest.raises(ValueError, match="methods"):
        CustomerSegmenter(methods=("dbscan",)).fit(frame)


def test_silhouettes_of_many_labelings_are_scikit_learns():
    """One pass over the pairwise distances for every candidate gives scikit-learn's values
    (chunks of rows, singleton clusters, text labels); degenerate labelings score -1."""
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((2_503, 4))
    labelings = [rng.integers(0, 3, len(Z)), (Z[:, 0] > 0).astype(int) + 2 * (Z[:, 1] > 1.5),
                 np.where(np.arange(len(Z)) == 7, "alone", np.where(Z[:, 2] > 0, "b", "a")),
                 np.zeros(len(Z), int)]
    ours = silhouette_scores(Z, labelings)
    expected = [silhouette_score(Z, labels) for labels in labelings[:3]] + [-1.0]
    assert ours == pytest.approx(expected, abs=1e-9)
    assert silhouette_scores(Z[:3], [np.arange(3)]) == [-1.0]
