"""`cdp score`: every customer scored by the champion models, as of a date.

One row per customer known by the as-of date: segment, churn and purchase probability,
expected purchase days and revenue over the horizon, days to the next purchase, the top
churn reasons and the model versions that produced them. Customers who have not bought
yet are segment "Prospects" with empty purchase scores (there is no history to score).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from training.pyfunc import model_ready
from training.run import MODEL_NAMES
from training.tracking import TrackingConfig, load_champion

SCORE_COLUMNS = (
    "customer_id", "segment", "churn_probability", "purchase_probability", "expected_purchases",
    "expected_revenue", "days_to_next_purchase", "next_best_categories", "top_reasons",
    "segments_version", "churn_version", "next_purchase_version", "features_as_of",
)

CHURN_OUTPUTS = ["churn_probability", "purchase_probability", "days_to_next_purchase", "top_reasons"]
COUNT_OUTPUTS = ["expected_purchases", "expected_revenue", "next_best_categories"]


def champions(tracking: TrackingConfig) -> dict[str, tuple[object, str]]:
    """The champion pyfunc and version of every family (a clear error naming the missing one)."""
    return {family: load_champion(tracking, name) for family, name in MODEL_NAMES.items()}


def score(features: pd.DataFrame, models: dict[str, tuple[object, str]], as_of: dt.date) -> pd.DataFrame:
    """Score a feature table (one row per customer) with the given pyfunc models."""
    out = pd.DataFrame({"customer_id": features["customer_id"].astype(str).to_numpy()})
    frame = model_ready(features.reset_index(drop=True))
    (segments, segments_version) = models["segments"]
    (churn, churn_version) = models["churn"]
    (purchases, purchases_version) = models["next-purchase"]
    out["segment"] = segments.predict(frame)["segment"].to_numpy()
    # A frame without any buyer gets no purchase columns from the models: all missing.
    churn_out = churn.predict(frame).reindex(columns=CHURN_OUTPUTS)
    for column in ("churn_probability", "purchase_probability", "days_to_next_purchase", "top_reasons"):
        out[column] = churn_out[column].to_numpy()
    counts = purchases.predict(frame).reindex(columns=COUNT_OUTPUTS)
    out["expected_purchases"] = counts["expected_purchases"].to_numpy()
    out["expected_revenue"] = counts["expected_revenue"].to_numpy()
    out["next_best_categories"] = counts["next_best_categories"].fillna("").to_numpy()
    out["segments_version"] = segments_version
    out["churn_version"] = churn_version
    out["next_purchase_version"] = purchases_version
    out["features_as_of"] = pd.Timestamp(as_of).date()
    return out[list(SCORE_COLUMNS)]
