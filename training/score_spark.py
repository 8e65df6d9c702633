"""`cdp score` on Spark: the champion models score the materialized features on the executors.

The same `training.score.score` runs on every partition of the store's ``scoring_features``
table (``mapInPandas``), with the champion pyfuncs shipped to the executors once, and the
scores land as a new version of the store's ``scores`` table, written by the executors. What
is not per row is computed over the whole table first: the typical (median) values of the
buyers that churn reasons are weighed against, exactly (Spark's ``percentile``, which
interpolates as pandas' median does), so a customer gets the same reasons as on DuckDB.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from training.score import SCORE_COLUMNS, score

# `training.score.SCORE_COLUMNS` as Spark types, declared: not guessed from whichever rows come first.
SCORES_SCHEMA = (
    "customer_id string, segment string, churn_probability double, purchase_probability double, "
    "expected_purchases double, expected_revenue double, days_to_next_purchase double, "
    "next_best_categories array<string>, top_reasons string, segments_version string, churn_version string, "
    "next_purchase_version string, first_purchase_version string, features_as_of date")
assert [part.split()[0] for part in SCORES_SCHEMA.split(", ")] == list(SCORE_COLUMNS)


def typical_on_spark(features) -> dict[str, float]:
    """`training.reasons.typical_values` of a Spark DataFrame: the median of every numeric
    feature among buyers (``recency_days`` known)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType, NumericType

    buyers = features.where(F.col("recency_days").isNotNull()) if "recency_days" in features.columns else features
    numeric = [f.name for f in features.schema.fields
               if isinstance(f.dataType, NumericType) and not isinstance(f.dataType, BooleanType)]
    if not numeric:
        return {}
    # NaN is not a value for pandas' median (it skips it); Spark orders it above every number.
    medians = buyers.agg(*[F.percentile(F.when(~F.isnan(F.col(c).cast("double")), F.col(c).cast("double")),
                                        F.lit(0.5)).alias(c) for c in numeric]).collect()[0]
    return {c: float(medians[c]) for c in numeric if medians[c] is not None}


def score_on_spark(session, features_dir: str, models: Mapping[str, tuple[Any, str]], as_of: dt.date):
    """Every customer of the materialized features at ``features_dir`` scored with ``models``,
    as a Spark DataFrame of `training.score.SCORE_COLUMNS` (not yet computed)."""
    features = session.read.parquet(features_dir)
    typical = typical_on_spark(features)

    def run(batches):
        for batch in batches:
            if len(batch):
                yield score(batch, models, as_of, typical)

    return features.mapInPandas(run, SCORES_SCHEMA)
