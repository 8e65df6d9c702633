"""What a feature value can be: impossible values are named with their rule, real rows all pass."""

from __future__ import annotations

import pandas as pd
import pytest

from features.catalog import SCORING_FAMILIES, catalog
from features.value_rules import HISTORY_PATTERN, history_error, json_schema, value_rule, violations


@pytest.mark.parametrize(("values", "message"), [
    ({"orders_count": -1}, "orders_count (-1) must be a count ≥ 0"),
    ({"purchase_days": 2.5}, "purchase_days (2.5) must be a count, a whole number"),
    ({"tenure_days": -3}, "tenure_days (-3) must be a whole number of days ≥ 0"),
    ({"recency_days": 0.5}, "recency_days (0.5) must be a whole number of days, a whole number"),
    ({"revenue_total": -10.0}, "revenue_total (-10) must be an amount ≥ 0"),
    ({"share_web_orders": 1.2}, "share_web_orders (1.2) must be a share between 0 and 1"),
    ({"cart_abandonment_rate_90d": -0.1}, "cart_abandonment_rate_90d (-0.1) must be a share between 0 and 1"),
    ({"rfm_recency_score": 0}, "rfm_recency_score (0) must be a score between 1 and 5"),
    ({"rfm_monetary_score": 4.5}, "rfm_monetary_score (4.5) must be a score, a whole number"),
    ({"ad_clicks_google_search_90d": -2}, "ad_clicks_google_search_90d (-2) must be a count ≥ 0"),
    ({"email_open_rate_30d": -0.5}, "email_open_rate_30d (-0.5) must be a ratio ≥ 0"),
    ({"recency_days": 40, "tenure_days": 30},
     "recency_days (40) must be at most tenure_days (30): the latest purchase cannot come before the first"),
    ({"purchase_days": 12, "tenure_days": 10},
     "purchase_days (12) must be at most tenure_days + 1 (11): there are at most tenure_days + 1 days to buy on"),
    ({"purchase_days": 5, "orders_count": 4},
     "purchase_days (5) must be at most orders_count (4): every purchase day has at least one order"),
    ({"purchase_days_90d": 6, "purchase_days_365d": 5},
     "purchase_days_90d (6) must be at most purchase_days_365d (5): purchase days in a shorter window cannot "
     "exceed a longer one"),
    ({"revenue_30d": 120.5, "revenue_total": 100.0},
     "revenue_30d (120.5) must be at most revenue_total (100): revenue in a shorter window cannot exceed a longer "
     "one"),
    ({"page_views_90d": 10, "page_views": 9},
     "page_views_90d (10) must be at most page_views (9): page views in a shorter window cannot exceed a longer "
     "one"),
    ({"recency_days": 3, "purchase_days": 0},
     "purchase_days (0) must be at least 1 when recency_days is given: a customer with a latest purchase has "
     "bought"),
])
def test_an_impossible_value_is_named_with_the_rule_it_breaks(values, message):
    assert violations(values) == [message]


@pytest.mark.parametrize("history", ["oil", "oil:0", "oil:2.5", "oil:-1", "oil:3;", ";oil:3", "oil:3,soap:1",
                                     "a:b:3", "oil:3;;soap:1", ":3", "oil:1e3"])
def test_a_malformed_category_history_is_refused(history):
    assert violations({"category_history": history}) == [history_error(history)]
    assert history_error(history).startswith("category_history must be `category:n` items joined by ';'")


@pytest.mark.parametrize("history", ["", "oil:3", "Oil%2C olive:2;soap:1", "هدايا%3B عيد:4", "100%25 juice:12"])
def test_a_well_formed_category_history_passes(history):
    import re
    assert history_error(history) is None
    assert re.fullmatch(HISTORY_PATTERN, history)  # the schema says the same


def test_possible_values_pass_and_values_left_out_are_not_judged():
    assert violations({"recency_days": 0, "tenure_days": 0, "purchase_days": 1, "orders_count": 1,
                       "share_web_orders": 1.0, "rfm_recency_score": 5, "email_open_rate_30d": 1.5,
                       "returns_rate": 2.0, "country": "PS", "age_band": None}) == []
    assert violations({"recency_days": 10}) == []            # tenure unknown: imputed, not judged
    assert violations({"purchase_days": 0}) == []            # a customer who has not bought yet


def test_relations_are_not_piled_on_values_already_out_of_range():
    assert violations({"recency_days": -5, "tenure_days": -10}) == [
        "recency_days (-5) must be a whole number of days ≥ 0", "tenure_days (-10) must be a whole number of days ≥ 0"]


def test_every_numeric_model_input_of_the_catalog_has_a_range_in_the_schema():
    numeric = [spec.name for spec in catalog(SCORING_FAMILIES) if spec.model_input and spec.kind == "numeric"]
    assert numeric and [name for name in numeric if value_rule(name) is None] == []
    assert json_schema("orders_count") == {"minimum": 0.0, "multipleOf": 1}
    assert json_schema("share_store_orders") == {"minimum": 0.0, "maximum": 1.0}
    assert json_schema("country") == {}


def rows_breaking_rules(features: pd.DataFrame) -> dict[str, list[str]]:
    """Customer id → the rules their row breaks (NumPy numbers as they come from Parquet)."""
    rows = features.set_index("customer_id").drop(columns=["features_as_of"], errors="ignore")
    return {customer: broken for customer, row in rows.iterrows() if (broken := violations(row.to_dict()))}


def test_every_row_of_the_generated_shop_passes_every_rule(trained_shop):
    """The rules never refuse a real customer: the shop's served snapshot, every row."""
    features = pd.read_parquet(trained_shop.snapshot)
    assert len(features) >= 1000
    assert rows_breaking_rules(features) == {}
