"""`[engine]` in cdp.toml sends the batch pipeline to a real Spark standalone cluster (a master and
two workers, each its own JVM with 1 core and 1 GB), and what it writes there is what DuckDB
writes: the same rows, columns and values (to 1e-9).

The commands run as a user runs them, in their own processes, with only the config naming the
cluster; the master's own status page shows the applications ran on it."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from tests.features.test_engines import AS_OF, assert_same_table
from tests.spark_cluster import standalone_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with standalone_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


def cdp(*args: str, cwd) -> str:
    done = subprocess.run([sys.executable, "-m", "cdp.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


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
    # `cdp features --out` on the cluster: the table DuckDB builds, and the scratch folder emptied after.
    for engine, config in configs.items():
        cdp("features", "--config", str(config), "--as-of", AS_OF.isoformat(), "--out",
            str(tmp_path / f"{engine}-features.parquet"), cwd=tmp_path)
    assert (tmp_path / "work").is_dir() and list((tmp_path / "work").iterdir()) == []
    on_spark, on_duckdb = (pd.read_parquet(tmp_path / f"{engine}-features.parquet").sort_values("customer_id")
                           .reset_index(drop=True) for engine in ("spark", "duckdb"))
    assert len(on_duckdb) > 250
    assert_same_table(on_spark, on_duckdb)
    cdp("train", "all", "--config", str(configs["duckdb"]), "--horizon-days", "90", "--force", cwd=tmp_path)
    for engine, config in configs.items():
        said = cdp("score", "--config", str(config), "--horizon-days", "90", "--out",
                   str(tmp_path / f"{engine}-scores.parquet"), cwd=tmp_path)
    status = cluster.status()
    ran = [app["name"] for app in status["completedapps"] if app["id"] not in before]
    assert {"cdp-ml ingest", "cdp-ml unify", "cdp-ml", "cdp-ml score"} <= set(ran), ran
    assert status["aliveworkers"] == 2 and status["cores"] == 2

    spark_store, duckdb_store = tmp_path / "spark" / "store", tmp_path / "duckdb" / "cdp.duckdb"
    assert (spark_store / "manifest.json").is_file()
    assert_same_tables(spark_store, duckdb_store, PIPELINE_TABLES, ignore=WHEN_AND_WHERE)
    for table in ("scoring_features", "scores"):
        with open_store(spark_store, read_only=True) as a, open_store(duckdb_store, read_only=True) as b:
            on_spark, on_duckdb = (s.read(table).sort_values("customer_id").reset_index(drop=True) for s in (a, b))
        assert len(on_duckdb) > 250
        if table == "scoring_features":  # purchase histories by category, ordered alike on both engines
            assert on_duckdb["category_history"].astype(str).str.contains(";").sum() > 20
        assert_same_table(on_spark, on_duckdb)
