"""`[engine]` in cdp.toml sends `cdp features` to a real Spark standalone cluster (a master and two
workers, each its own JVM with 1 core and 1 GB), and the table it builds there is the one DuckDB
builds: the same rows, columns and values (to 1e-9).

The commands run as a user runs them, in their own processes, with only the config naming the
cluster; the master's own status page shows the application ran on it."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from tests.features.conftest import unified_shop
from tests.features.test_engines import AS_OF, assert_same_table
from tests.spark_cluster import standalone_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with standalone_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    return unified_shop(tmp_path_factory.mktemp("shop"), customers=400, seed=5).parent


def cdp(*args: str, cwd) -> str:
    done = subprocess.run([sys.executable, "-m", "cdp.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.spark
@pytest.mark.slow
def test_cdp_features_on_a_standalone_cluster_equals_duckdb(shop, cluster, tmp_path):
    config = shop / "cdp.toml"
    with open(config, "a", encoding="utf-8") as handle:
        handle.write(f'\n[engine]\nkind = "spark"\nmaster = "{cluster.url}"\nwork_dir = "{tmp_path / "handed"}"\n'
                     '[engine.conf]\n"spark.executor.memory" = "512m"\n"spark.sql.shuffle.partitions" = 4\n')
    assert cluster.status()["completedapps"] == []
    said = cdp("features", "--config", str(config), "--as-of", AS_OF.isoformat(), "--out",
               str(tmp_path / "spark.parquet"), cwd=tmp_path)
    assert "(spark)" in said
    assert (tmp_path / "handed").is_dir() and list((tmp_path / "handed").iterdir()) == []  # used, then removed
    status = cluster.status()
    assert [app["name"] for app in status["completedapps"]] == ["cdp-ml"]  # it ran on the cluster
    assert status["aliveworkers"] == 2 and status["cores"] == 2
    cdp("features", "--config", str(config), "--engine", "duckdb", "--as-of", AS_OF.isoformat(), "--out",
        str(tmp_path / "duckdb.parquet"), cwd=tmp_path)
    on_spark = pd.read_parquet(tmp_path / "spark.parquet").sort_values("customer_id").reset_index(drop=True)
    on_duckdb = pd.read_parquet(tmp_path / "duckdb.parquet").sort_values("customer_id").reset_index(drop=True)
    assert len(on_duckdb) > 300
    assert_same_table(on_spark, on_duckdb)


@pytest.mark.spark
@pytest.mark.slow
def test_the_materialized_scoring_snapshot_on_the_cluster_equals_duckdbs(shop, cluster, tmp_path):
    """`cdp features --materialize` with [engine] kind = "spark": the scoring snapshot, purchase
    histories by category included (ordered by code point on both engines), is DuckDB's."""
    config = shop / "cdp.toml"
    text = config.read_text(encoding="utf-8")
    if "[engine]" not in text:
        config.write_text(text + f'\n[engine]\nkind = "spark"\nmaster = "{cluster.url}"\n', encoding="utf-8")
    said = cdp("features", "--config", str(config), "--materialize", cwd=tmp_path)
    assert "(spark)" in said
    on_spark = pd.read_parquet(shop / "online_features.parquet")
    cdp("features", "--config", str(config), "--materialize", "--engine", "duckdb", cwd=tmp_path)
    on_duckdb = pd.read_parquet(shop / "online_features.parquet")
    histories = on_duckdb["category_history"].astype(str)
    assert histories.str.contains(";").sum() > 50  # customers with several categories, whose order is tested
    assert any(app["name"] == "cdp-ml" for app in cluster.status()["completedapps"])
    order = ["customer_id"]
    assert_same_table(on_spark.sort_values(order).reset_index(drop=True),
                      on_duckdb.sort_values(order).reset_index(drop=True))


# What the whole pipeline writes, compared between the engines; the columns that say when a run
# happened or which file (folder) it read differ by construction.
PIPELINE_TABLES = ("source_customers", "source_orders", "source_events", "rejects", "record_map", "identifier_map",
                   "identifier_exclusions", "customers", "orders", "events", "customer_ids", "id_events")
WHEN_AND_WHERE = {"file", "ingested_at", "created_at", "updated_at", "happened_at", "run_id", "created_run"}


@pytest.mark.spark
@pytest.mark.slow
def test_the_whole_pipeline_on_the_cluster_gives_duckdbs_rejects_ids_golden_records_features_and_scores(
        cluster, tmp_path):
    """ingest, unify, features --materialize and score with [engine] kind = "spark" on the cluster (a
    Parquet store) and on DuckDB (a DuckDB file), from the same files: the same rejects, customers
    and ids, golden records, features and scores (to 1e-9). One MLflow registry (the same store
    name) holds the models both score with, trained once."""
    from bench.engines import on_engine
    from sample import write_sample
    from store.interface import open_store
    from tests.same_tables import assert_same_tables

    registry = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    (tmp_path / "mlflow").mkdir()
    configs = {}
    for engine in ("duckdb", "spark"):
        root = tmp_path / engine
        write_sample(root, n_customers=300, seed=9, end=AS_OF)
        configs[engine] = on_engine(root / "cdp.toml", engine, "twins", registry, cluster.url, tmp_path / "work",
                                    "512m", 4)
    before = {app["id"] for app in cluster.status()["completedapps"]}
    for engine, config in configs.items():
        cdp("ingest", "--config", str(config), cwd=tmp_path)
        cdp("unify", "--config", str(config), cwd=tmp_path)
        said = cdp("features", "--config", str(config), "--materialize", cwd=tmp_path)
        assert f"({engine})" in said
    cdp("train", "all", "--config", str(configs["duckdb"]), "--horizon-days", "90", "--force", cwd=tmp_path)
    for engine, config in configs.items():
        said = cdp("score", "--config", str(config), "--horizon-days", "90", "--out",
                   str(tmp_path / f"{engine}-scores.parquet"), cwd=tmp_path)
    ran = [app["name"] for app in cluster.status()["completedapps"] if app["id"] not in before]
    assert {"cdp-ml ingest", "cdp-ml unify", "cdp-ml", "cdp-ml score"} <= set(ran), ran

    spark_store, duckdb_store = tmp_path / "spark" / "store", tmp_path / "duckdb" / "cdp.duckdb"
    assert (spark_store / "manifest.json").is_file()
    assert_same_tables(spark_store, duckdb_store, PIPELINE_TABLES, ignore=WHEN_AND_WHERE)
    for table in ("scoring_features", "scores"):
        with open_store(spark_store, read_only=True) as a, open_store(duckdb_store, read_only=True) as b:
            on_spark, on_duckdb = (s.read(table).sort_values("customer_id").reset_index(drop=True) for s in (a, b))
        assert len(on_duckdb) > 250
        assert_same_table(on_spark, on_duckdb)
