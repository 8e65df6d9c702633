"""The same feature and label definitions give the same table on DuckDB and on Spark (the sample shop)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from cdp.config import load_config
from features.build import build_features
from features.engine import TABLES, source_tables, spark_tables
from features.labels import purchase_labels
from store.duckdb_store import Store
from tests.features.conftest import unified_shop

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return load_config(unified_shop(tmp_path_factory.mktemp("shop"), customers=800, seed=3)).store.path


def assert_same_table(left: pd.DataFrame, right: pd.DataFrame) -> None:
    assert list(left.columns) == list(right.columns)
    assert len(left) == len(right) > 0
    for column in left.columns:
        a, b = left[column], right[column]
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=1e-9,
                                       equal_nan=True, err_msg=column)
        elif pd.api.types.is_datetime64_any_dtype(a):
            a, b = a.astype("datetime64[us]"), b.astype("datetime64[us]")
            assert ((a == b) | (a.isna() & b.isna())).all(), column
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), column


@pytest.mark.spark
@pytest.mark.slow
def test_the_whole_feature_table_is_the_same_on_duckdb_and_spark(store_path, spark, tmp_path):
    with Store(store_path, read_only=True) as store:
        on_duckdb = build_features(source_tables(store.ibis_backend()), AS_OF).to_pandas()
        parquet = store.export_parquet(TABLES, tmp_path / "parquet")
    # One lazy expression on DuckDB, family by family cached on Spark: both paths, one answer.
    on_spark = build_features(spark_tables(spark, parquet), AS_OF, materialize=True).to_pandas()
    # Not a vacuous match: every family has customers with and without activity.
    assert on_duckdb.recency_days.notna().any() and on_duckdb.recency_days.isna().any()
    assert (on_duckdb.web_sessions > 1).any() and (on_duckdb.cart_abandonment_rate > 0).any()
    assert (on_duckdb.email_open_rate > 0).any() and (on_duckdb.ad_clicks_facebook_90d > 0).any()
    assert on_duckdb.age_band.notna().any() and on_duckdb.rfm_segment.nunique() > 3
    assert_same_table(on_duckdb, on_spark)


@pytest.mark.spark
@pytest.mark.slow
def test_purchase_labels_are_the_same_on_duckdb_and_spark(store_path, spark, tmp_path):
    with Store(store_path, read_only=True) as store:
        on_duckdb = purchase_labels(source_tables(store.ibis_backend()).orders, AS_OF, horizon_days=90).to_pandas()
        parquet = store.export_parquet(TABLES, tmp_path / "parquet")
    on_spark = purchase_labels(spark_tables(spark, parquet).orders, AS_OF, horizon_days=90).to_pandas()
    # Not a vacuous match: some customers bought in the window, some in several categories.
    assert 0 < on_duckdb.purchased_in_horizon.sum() < len(on_duckdb)
    assert on_duckdb.categories_in_horizon.str.contains(",").any()
    assert_same_table(on_duckdb, on_spark)
