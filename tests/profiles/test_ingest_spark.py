"""`cdp ingest` on Spark accepts and rejects every row as DuckDB does, for the same reasons.

The generator's shop (with its invalid rows: bad dates, negative amounts, junk identifiers,
hostile text) and hand-made files go through both engines from the same files; the source
tables, the rejects and every report must agree, on the first run and on the next ones
(edits, removals, erased people kept out)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

import profiles.ingest_spark as ingest_spark
from cdp.config import load_config
from profiles.erasure import forget
from profiles.ingest import ingest
from profiles.ingest_spark import ingest_on_spark
from profiles.subject import Lookup
from sample import write_sample
from store.interface import open_configured
from store.snapshot import ServingSnapshot
from tests.same_tables import assert_same_tables

pytestmark = pytest.mark.spark

INGESTED = ("source_customers", "source_orders", "source_events", "rejects")
INGESTIONS_COUNTS = ("source", "rows_read", "accepted", "rejected", "added", "updated", "removed", "unchanged",
                     "skipped")


class Twins:
    """One folder of source files, two configs: a Parquet store ingested on Spark, a DuckDB one."""

    def __init__(self, root, spark, work):
        self.root, self.spark, self.work = root, spark, work
        text = (root / "cdp.toml").read_text()
        (root / "spark.toml").write_text(text.replace('path = "cdp.duckdb"', 'path = "store"\nformat = "parquet"', 1))
        self.runs = 0

    def ingest(self, **kwargs):
        self.runs += 1
        now = dt.datetime(2026, 11, 1, 9, self.runs)
        on_spark, on_duckdb = (load_config(self.root / name) for name in ("spark.toml", "cdp.toml"))
        with open_configured(on_spark.store) as store:
            spark_reports = ingest_on_spark(store, on_spark, self.spark, self.work, now=now, run_id=f"r{self.runs}",
                                            **kwargs)
        with open_configured(on_duckdb.store) as store:
            duck_reports = ingest(store, on_duckdb, now=now, run_id=f"r{self.runs}", **kwargs)
        assert [dataclasses.asdict(r) for r in spark_reports] == [dataclasses.asdict(r) for r in duck_reports]
        assert_same_tables(on_spark.store.path, on_duckdb.store.path, INGESTED)
        assert_same_tables(on_spark.store.path, on_duckdb.store.path, ["ingestions"],
                           ignore=set(_ingestion_columns(on_duckdb)) - set(INGESTIONS_COUNTS))
        return {r.source: r for r in spark_reports}

    def erase(self, customer_id: str) -> None:
        for name in ("spark.toml", "cdp.toml"):
            config = load_config(self.root / name)
            with open_configured(config.store) as store:
                forget(store, config, Lookup("customer_id", customer_id), actor="test", now=dt.datetime(2026, 11, 2),
                       snapshot=ServingSnapshot(self.root / f"{name}.snapshot.parquet"), tombstone_key=None)


def _ingestion_columns(config) -> list[str]:
    with open_configured(config.store) as store:
        return list(store.frame("SELECT * FROM ingestions LIMIT 0").columns)


@pytest.fixture
def twins(tmp_path, small_spark, monkeypatch):
    # Many small partitions: the rows of one key must still meet in one (duplicates across the file).
    monkeypatch.setattr(ingest_spark, "_ROWS_PER_PARTITION", 97)
    write_sample(tmp_path / "shop", n_customers=150, seed=11, end=dt.date(2026, 10, 31))
    return Twins(tmp_path / "shop", small_spark, tmp_path / "work")


def test_the_sample_shop_is_accepted_and_rejected_alike_and_an_unchanged_rerun_is_skipped(twins):
    first = twins.ingest()
    assert sum(r.rejected for r in first.values()) >= 4  # the generator's invalid rows are there
    assert sum(r.invalid_phones + r.invalid_emails for r in first.values()) > 0
    again = twins.ingest()
    assert all(r.skipped for r in again.values())


def test_duplicate_keys_far_apart_edits_and_removals_are_counted_alike(twins):
    orders = twins.root / "web_orders.csv"
    lines = orders.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    assert len(rows) > 300
    # The first order's key again at the end (a duplicate hundreds of rows and partitions away).
    first_key = rows[0].split(",")[0]
    rows.append(first_key + "," + ",".join(rows[1].split(",")[1:]))
    orders.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    twins.ingest()
    config = load_config(twins.root / "cdp.toml")
    with open_configured(config.store) as store:
        reasons = store.frame("SELECT reason FROM rejects WHERE source = 'web_orders' AND row_number = ?",
                              [len(rows)])["reason"].tolist()
    assert len(reasons) == 1 and reasons[0].endswith("already used by row 1")
    # Next export: one order edited, fifty gone (the source is an increment: they stay), ten new.
    edited = rows[5].split(",")
    edited[4] = "123.45"
    new = [f"WNEW{i}," + ",".join(rows[i + 7].split(",")[1:]) for i in range(10)]
    orders.write_text("\n".join([header, *rows[:5], ",".join(edited), *rows[56:], *new]) + "\n", encoding="utf-8")
    second = twins.ingest(sources=("web_orders",))
    assert second["web_orders"].added == 10 and second["web_orders"].updated == 1


def test_a_replaced_source_loses_the_rows_its_new_file_lacks_alike(twins):
    config = (twins.root / "cdp.toml").read_text()
    assert 'name = "pos_receipts"' in config
    for name in ("cdp.toml", "spark.toml"):
        path = twins.root / name
        text = path.read_text().replace('name = "pos_receipts"', 'name = "pos_receipts"\nmode = "replace"', 1)
        path.write_text(text)
    twins.ingest()
    receipts = twins.root / "pos_receipts.csv"
    lines = receipts.read_text(encoding="utf-8").splitlines()
    receipts.write_text("\n".join(lines[:-40]) + "\n", encoding="utf-8")
    second = twins.ingest(sources=("pos_receipts",))
    kept_out = {line.split(",")[0] for line in lines[-40:] if line.strip()}
    assert second["pos_receipts"].removed == len(kept_out)


def test_the_records_of_an_erased_person_are_kept_out_alike(twins):
    twins.ingest()
    from profiles.unify import unify
    config = load_config(twins.root / "cdp.toml")
    with open_configured(config.store) as store:
        unify(store, config, now=dt.datetime(2026, 11, 1, 10), run_id="u")
        person = store.frame("SELECT customer_id FROM customers WHERE email IS NOT NULL AND phone IS NOT NULL "
                             "ORDER BY n_records DESC, customer_id LIMIT 1")["customer_id"].item()
    spark_config = load_config(twins.root / "spark.toml")
    with open_configured(spark_config.store) as store:
        unify(store, spark_config, now=dt.datetime(2026, 11, 1, 10), run_id="u")
    twins.erase(person)
    for source in ("web_orders.csv", "crm_customers.csv"):  # touch the files: a real re-read, not a skip
        path = twins.root / source
        path.write_bytes(path.read_bytes() + b"\n")
    again = twins.ingest()
    assert sum(r.suppressed for r in again.values()) > 0


def test_a_source_without_keys_numbers_identical_rows_as_duckdb_does(twins):
    """Keys derived from the values (CDNOW has none): the same CD bought twice the same day is two
    rows, numbered by occurrence in file order, wherever the partitions fall."""
    rows = ["cust,date,amount"] + [f"{i % 13},2024-0{1 + i % 3}-0{1 + i % 2},{5 + i % 4}.50" for i in range(600)]
    (twins.root / "cd_orders.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    source = ('\n[[sources]]\nname = "cd_orders"\nkind = "orders"\npath = "cd_orders.csv"\n'
              '[sources.columns]\ncustomer_key = "cust"\ntimestamp = "date"\namount = "amount"\n')
    for name in ("cdp.toml", "spark.toml"):
        path = twins.root / name
        text = path.read_text()
        head, _, tail = text.partition("[[sources]]")
        path.write_text(head + source.lstrip("\n") + "\n[[sources]]" + tail)
    reports = twins.ingest(sources=("cd_orders",))
    assert reports["cd_orders"].accepted == 600 and reports["cd_orders"].rejected == 0
    config = load_config(twins.root / "spark.toml")
    with open_configured(config.store) as store:
        keys = store.frame("SELECT source_key FROM source_orders WHERE source = 'cd_orders'")["source_key"]
    assert keys.is_unique and keys.str.endswith("-0").sum() < 600  # repeated rows got -1, -2, ...


def test_a_column_arrow_hands_over_in_chunks_becomes_one_array():
    """Big partitions come back from pandas as chunked Arrow columns (CDNOW's did)."""
    import pandas as pd
    import pyarrow as pa

    chunked = pa.chunked_array([pa.array(["a", None]), pa.array(["b"])])
    values = pd.Series(pd.arrays.ArrowExtensionArray(chunked))
    got = ingest_spark._array(values, pa.string())
    assert isinstance(got, pa.Array) and got.to_pylist() == ["a", None, "b"]
