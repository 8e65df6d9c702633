"""The same feature and label definitions give the same table on DuckDB and on Spark (the sample shop)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from cdp.config import load_config
from features.build import build_features
from features.engine import TABLES, held_on_spark, source_tables, spark_tables
from features.labels import purchase_labels
from store.duckdb_store import Store
from tests.features.conftest import unified_shop
from training.data import Window, first_purchase_snapshots, labelled_snapshots, sample_customers

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def shop_config(tmp_path_factory):
    return unified_shop(tmp_path_factory.mktemp("shop"), customers=800, seed=3)


@pytest.fixture(scope="module")
def store_path(shop_config):
    return load_config(shop_config).store.path


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


TRAINING_WINDOW = Window(as_of=dt.date(2026, 10, 31), horizon_days=90, n_snapshots=2, step_days=30)


@pytest.mark.spark
@pytest.mark.slow
def test_training_snapshots_are_the_same_on_duckdb_and_spark(store_path, spark, tmp_path):
    """Features, labels and purchase histories of every snapshot, buyers' and prospects'."""
    with Store(store_path, read_only=True) as store:
        tables = source_tables(store.ibis_backend())
        buyers, prospects = (labelled_snapshots(tables, TRAINING_WINDOW),
                             first_purchase_snapshots(tables, TRAINING_WINDOW))
        parquet = store.export_parquet(TABLES, tmp_path / "parquet")
    on_spark = spark_tables(spark, parquet)
    # Not a vacuous match: both snapshots, churners and buyers, histories of several categories.
    assert buyers["as_of"].nunique() == 2 and 0 < buyers["churned"].mean() < 1
    assert buyers["category_history"].str.contains(";").any() and prospects["purchased_in_horizon"].any()
    assert_same_table(buyers, labelled_snapshots(on_spark, TRAINING_WINDOW))
    assert_same_table(prospects, first_purchase_snapshots(on_spark, TRAINING_WINDOW))


@pytest.mark.spark
@pytest.mark.slow
def test_a_sample_drawn_on_spark_keeps_whole_customers_and_is_the_same_every_time(store_path, spark, tmp_path):
    with Store(store_path, read_only=True) as store:
        everyone = {name: store.read(name) for name in TABLES}
        parquet = store.export_parquet(TABLES, tmp_path / "parquet")
    tables = spark_tables(spark, parquet)
    total = len(everyone["customers"])
    sample, share = sample_customers(tables, 300)
    held = held_on_spark(sample, tmp_path / "held")
    kept = set(held.customers.customer_id.to_pandas())
    assert kept == set(sample.customers.customer_id.to_pandas())  # held: the very rows the lazy sample gives
    assert kept == set(held_on_spark(sample_customers(tables, 300)[0], tmp_path / "again").customers
                       .customer_id.to_pandas())  # the same customers, draw after draw
    assert share == pytest.approx(300 / total, rel=1e-3)
    assert 0.6 * 300 < len(kept) < 1.4 * 300 and kept < set(everyone["customers"]["customer_id"])
    for name in ("orders", "events"):  # every row of a kept customer, no row of anyone else
        expected = everyone[name][everyone[name]["customer_id"].isin(kept)]
        got = getattr(held, name).to_pandas()
        assert len(expected) > 0 and len(got) == len(expected), name
        assert sorted(got["customer_id"]) == sorted(expected["customer_id"]), name


def _spark_config(shop_config):
    import dataclasses

    from cdp.config import EngineConfig

    config = load_config(shop_config)
    return dataclasses.replace(config, engine=EngineConfig(kind="spark"))


@pytest.mark.spark
@pytest.mark.slow
def test_cdp_train_on_spark_learns_what_it_learns_on_duckdb(shop_config, spark, tmp_path):
    """Everyone (no sample): the same snapshots on both engines, so the same churn model and
    held-out metrics; the models are fitted in this process either way."""
    from training.run import train_store
    from training.tracking import TrackingConfig

    results, stages = {}, []
    for engine, config in (("duckdb", load_config(shop_config)), ("spark", _spark_config(shop_config))):
        (tmp_path / engine).mkdir()
        tracking = TrackingConfig(f"sqlite:///{tmp_path / engine / 'mlflow.db'}", str(tmp_path / engine / "art"))
        trained = train_store(config, tracking, ("churn",), n_snapshots=2, max_customers=0, on_stage=stages.append)
        results[engine] = trained.results[0].metrics
    assert not any("drawing a sample" in stage for stage in stages)
    assert 0.5 < results["duckdb"]["churn_roc_auc"] < 1
    assert results["spark"] == pytest.approx(results["duckdb"], rel=1e-9, abs=1e-9)


@pytest.mark.spark
@pytest.mark.slow
def test_cdp_train_on_spark_draws_its_sample_there_and_fits_on_it(shop_config, spark, tmp_path):
    import mlflow

    from training.run import train_store
    from training.tracking import TrackingConfig

    stages: list[str] = []
    tracking = TrackingConfig(f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "art"))
    trained = train_store(_spark_config(shop_config), tracking, ("churn",), n_snapshots=2, max_customers=300,
                          on_stage=stages.append)
    with Store(load_config(shop_config).store.path, read_only=True) as store:
        total = len(store.read("customers"))
    assert "drawing a sample of about 300 customers" in stages
    run = mlflow.MlflowClient(tracking.tracking_uri).get_run(trained.results[0].run_id)
    assert float(run.data.params["customer_share"]) == pytest.approx(300 / total, rel=1e-3)
    assert run.data.params["max_customers"] == "300"
    # The older snapshot's rows (the latest tunes and measures): buyers among about 300 customers.
    assert 0 < run.data.metrics["training_rows"] < 1.4 * 300
    assert trained.results[0].version == "1"
