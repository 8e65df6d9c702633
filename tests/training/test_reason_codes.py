"""Reason codes: which features push a customer's churn risk up the most, named by feature-table column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.reason_codes import HISTORY_REASON, ReasonCodes, source_feature, strongest_per_family, top_names
from training.reasons import reason_families

COLUMNS = ["recency_days", "recency_days_na", "country_PS", "country_DE", "btyd_p_alive"]


def _fitted(n_reasons: int = 3) -> ReasonCodes:
    rows = pd.DataFrame(np.zeros((2, len(COLUMNS))), columns=COLUMNS)
    return ReasonCodes(inputs=["recency_days", "country"], n_reasons=n_reasons).fit(rows, [0.0, 1.0])


def test_fitting_groups_derived_columns_under_their_feature_and_bgnbd_under_purchase_history():
    codes = _fitted()
    assert codes.features_ == ["country", HISTORY_REASON, "recency_days"]
    # recency_days and its missing flag → recency_days; both one-hot levels → country; btyd_* → history.
    assert codes.groups_.tolist() == [2, 2, 0, 0, 1]
    assert codes.mean_margin_ == pytest.approx(0.5)


def test_reasons_are_the_features_lowering_the_purchase_log_odds_most_with_history_against_the_average():
    codes = _fitted()
    # Contributions toward purchase per feature (country, history, recency), the expected value last.
    toward_purchase = np.array([[-0.3, 0.1, -0.5, 0.2],    # recency 0.5 and country 0.3 raise churn
                                [0.2, 0.0, 0.1, 0.2],      # only BG/NBD: its log-odds -1.0 is 1.5 below the average
                                [0.1, 0.2, 0.3, 0.2]])     # nothing raises churn
    margin = np.array([0.5, -1.0, 0.5])
    # Row 0's history: -0.1 toward churn, minus (0.5 - 0.5) from the margin: not a reason.
    assert codes.predict(toward_purchase.copy(), margin).tolist() == [
        "recency_days, country", HISTORY_REASON, ""]
    assert _fitted(n_reasons=1).predict(toward_purchase.copy(), margin).tolist() == ["recency_days", HISTORY_REASON, ""]


def test_a_feature_not_eligible_for_a_row_gives_way_to_the_next_one_raising_the_risk():
    """Row 0's recency raises churn the most, but its value is on the safe side of the typical
    customer's (`training.reasons.reason_mask`): country is its only reason."""
    toward_purchase = np.array([[-0.3, 0.1, -0.5, 0.2], [0.2, 0.0, 0.1, 0.2]])
    eligible = np.array([[True, True, False], [True, True, True]])
    assert _fitted().predict(toward_purchase, np.array([0.5, -1.0]), eligible).tolist() == ["country", HISTORY_REASON]
    with pytest.raises(ValueError, match="eligible has shape"):
        _fitted().predict(toward_purchase, np.array([0.5, -1.0]), eligible[:, :2])


def test_reasons_refuse_contributions_of_another_width_and_rows_without_column_names():
    with pytest.raises(ValueError, match="expected 4 columns"):
        _fitted().predict(np.zeros((2, 6)), np.zeros(2))
    with pytest.raises(ValueError, match="DataFrame"):
        ReasonCodes(inputs=["recency_days"]).fit(np.zeros((2, 1)), [0.0, 0.0])


def test_derived_columns_are_named_by_their_feature():
    inputs = ["recency_days", "country", "email_open_rate", "email_open_rate_90d"]
    assert source_feature("country_PS", inputs) == "country"
    assert source_feature("recency_days_na", inputs) == "recency_days"
    assert source_feature("email_open_rate_90d", inputs) == "email_open_rate_90d"
    assert source_feature("btyd_p_alive", inputs) == HISTORY_REASON


def test_top_names_are_the_largest_positive_values_first_ties_to_the_earlier_name():
    names = ["a", "b", "c", "d"]
    values = np.array([[0.5, 0.5, -1.0, 2.0],     # d, then the tie a/b in name order
                       [-1.0, 0.0, -2.0, -0.1],   # nothing raises the risk
                       [0.1, 0.0, 0.3, -5.0],     # two positives only
                       [0.2, 0.4, 0.3, 0.1]])
    assert top_names(values, names, 3).tolist() == ["d, a, b", "", "c, a", "b, c, a"]
    assert top_names(values[:, :2], names[:2], 3).tolist() == ["a, b", "", "a", "b, a"]
    assert top_names(values[:0], names, 3).tolist() == []




def test_only_the_strongest_of_a_family_stays_and_ties_keep_the_earlier_column():
    values = np.array([[0.5, 0.9, 0.2, 0.0],
                       [0.7, 0.7, 0.1, 0.3],
                       [-1.0, -2.0, 0.4, 0.0]])
    strongest_per_family(values, np.array([0, 0, 1, 1]))
    np.testing.assert_array_equal(values, [[0.0, 0.9, 0.2, 0.0],
                                           [0.7, 0.0, 0.0, 0.3],
                                           [-1.0, 0.0, 0.4, 0.0]])


def test_a_reason_list_names_a_measure_once_and_the_next_family_takes_its_place():
    names = ["emails_sent", "emails_sent_90d", "recency_days", "visits_90d"]
    values = np.array([[0.8, 0.9, 0.3, 0.1]])
    assert top_names(values.copy(), names, 2).tolist() == ["emails_sent_90d, emails_sent"]  # without families
    strongest_per_family(values, reason_families(tuple(names)))
    assert top_names(values, names, 2).tolist() == ["emails_sent_90d, recency_days"]
