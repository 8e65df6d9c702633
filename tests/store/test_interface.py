"""The store contract every engine implements, held by the DuckDB file: reads, bookkeeping,
Parquet hand-over and all-or-nothing writes."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from cdp.errors import StoreError
from store.duckdb_store import DuckDBWriter, Store
from store.interface import TableStore, TableWriter, open_store


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "cdp.duckdb") as store:
        yield store


def test_the_duckdb_file_is_a_table_store_and_writes_through_a_table_writer(store):
    assert isinstance(store, Store) and isinstance(store, TableStore)
    with store.writing() as writer:
        assert isinstance(writer, DuckDBWriter) and isinstance(writer, TableWriter)


def test_bookkeeping_reads_back_what_the_stages_wrote(store):
    assert store.latest_unify_run() == "0:" and store.meta("anything") is None and store.last_ingestions() == []
    con = store.con
    con.execute("INSERT INTO unify_runs (run_id, ran_at) VALUES ('u1', '2026-06-30 23:00'), "
                "('u0', '2026-06-30 23:00'), ('a9', '2026-06-29 10:00')")
    # Three runs; the latest by time, ties by id: u1 over u0.
    assert store.latest_unify_run() == "3:u1"
    con.execute("INSERT INTO ingestions (run_id, source, file, sha256, config_digest, ingested_at) VALUES "
                "('i1', 'web', '/a/web-1.csv', 'aa', 'd', '2026-06-01 08:00'), "
                "('i2', 'web', '/a/web-2.csv', 'bb', 'd', '2026-06-02 08:00'), "
                "('i1', 'pos', '/a/pos.csv', 'cc', 'd', '2026-06-01 08:00')")
    assert store.last_ingestions() == [("pos", "/a/pos.csv", "cc"), ("web", "/a/web-2.csv", "bb")]
    with store.writing() as writer:
        writer.set_meta("k", "v1")
        assert writer.meta("k") == "v1" and writer.latest_unify_run() == "3:u1"
    assert store.meta("k") == "v1"


def test_a_failed_write_leaves_the_store_as_it_was(store):
    scores = pd.DataFrame({"customer_id": ["c1", "c2"], "churn_probability": [0.1, 0.7]})
    with store.writing() as writer:
        writer.replace("scores", "training", scores)
    with pytest.raises(RuntimeError), store.writing() as writer:
        writer.replace("scores", "training", scores.iloc[:1])
        writer.set_meta("k", "half")
        raise RuntimeError("killed half way")
    pd.testing.assert_frame_equal(store.read("scores"), scores)
    assert store.meta("k") is None


def test_only_a_tables_owner_replaces_it(store):
    with pytest.raises(StoreError, match="scores"), store.writing() as writer:
        writer.replace("scores", "unify", pd.DataFrame({"customer_id": ["c1"]}))
    assert not store.has_table("scores")


def test_tables_handed_over_as_parquet_read_back_the_same(store, tmp_path):
    scores = pd.DataFrame({"customer_id": ["c1", "c2"], "churn_probability": [0.1, None]})
    with store.writing() as writer:
        writer.replace("scores", "training", scores)
    paths = store.export_parquet(["scores"], tmp_path / "out")
    assert paths == {"scores": tmp_path / "out" / "scores.parquet"}
    pd.testing.assert_frame_equal(duckdb.sql(f"SELECT * FROM '{paths['scores']}'").df(), store.read("scores").astype(
        {"customer_id": object}), check_dtype=False)


def test_ibis_sees_the_stores_own_tables(store):
    store.con.execute("INSERT INTO unify_runs (run_id, ran_at) VALUES ('u1', '2026-06-30 23:00')")
    table = store.ibis_backend().table("unify_runs")
    assert table.count().execute() == 1


def test_data_days_need_unified_data(store):
    with pytest.raises(StoreError, match="no unified profiles yet"):
        store.data_days()


def test_a_missing_store_opened_for_reading_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist yet"):
        open_store(tmp_path / "nowhere.duckdb", read_only=True)
