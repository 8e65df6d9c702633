"""The Parquet store: a directory of table versions switched as a whole by one manifest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pandas as pd
import pytest

from cdp.errors import StoreError
from store.interface import open_store, store_format
from store.parquet_store import MANIFEST, ParquetStore

SCORES = pd.DataFrame({"customer_id": ["c1", "c2"], "churn": [0.25, 0.5]})


def version_dirs(root) -> set[str]:
    return {str(p.relative_to(root)) for p in (root / "tables").glob("*/*")}


def manifest(root) -> dict:
    return json.loads((root / MANIFEST).read_text())


def test_a_new_store_holds_every_fixed_table_empty_and_its_schema_version(tmp_path):
    with ParquetStore(tmp_path / "store") as store:
        assert store.meta("schema_version") == "1"
        assert store.count("source_orders") == 0 and store.count("customer_ids") == 0
    assert manifest(tmp_path / "store")["version"] == 1


def test_whole_tables_written_together_land_in_one_manifest_switch(tmp_path):
    root = tmp_path / "store"
    with ParquetStore(root) as store, store.writing() as writer:
        writer.replace("scores", "training", SCORES)
        writer.set_meta("scores_stamp", "a")
    with ParquetStore(root, read_only=True) as store:
        assert store.read("scores").sort_values("customer_id")["churn"].tolist() == [0.25, 0.5]
        assert store.meta("scores_stamp") == "a"
    assert manifest(root)["version"] == 2


def test_a_failed_run_leaves_every_table_and_the_manifest_as_they_were(tmp_path):
    root = tmp_path / "store"
    with ParquetStore(root) as store, store.writing() as writer:
        writer.replace("scores", "training", SCORES)
    before, dirs = (root / MANIFEST).read_bytes(), version_dirs(root)
    with ParquetStore(root) as store:
        with pytest.raises(RuntimeError), store.writing() as writer:
            writer.replace("scores", "training", SCORES.assign(churn=0.9))
            writer.set_meta("scores_stamp", "b")
            raise RuntimeError("killed half way")
        with pytest.raises(RuntimeError), store.transaction() as con:
            con.execute("DELETE FROM customer_ids")
            con.execute("INSERT INTO meta VALUES ('x', 'y')")
            raise RuntimeError("killed half way")
    assert (root / MANIFEST).read_bytes() == before and version_dirs(root) == dirs
    with ParquetStore(root, read_only=True) as store:
        assert store.read("scores")["churn"].sort_values().tolist() == [0.25, 0.5]
        assert store.meta("x") is None


def test_a_sql_transaction_writes_only_the_tables_it_changed(tmp_path):
    root = tmp_path / "store"
    with ParquetStore(root) as store, store.transaction() as con:
        con.execute("INSERT INTO unify_runs VALUES ('r1', '2024-01-01', 1, 1, 1, 1, 0, 0)")
    first = manifest(root)["tables"]
    with ParquetStore(root) as store, store.transaction() as con:
        con.execute("CREATE TABLE customers AS SELECT 'c1' AS customer_id")
    second = manifest(root)["tables"]
    assert {name for name in second if second[name] != first.get(name)} == {"customers"}
    with ParquetStore(root, read_only=True) as store:
        assert store.latest_unify_run() == "1:r1"
        assert store.frame("SELECT customer_id FROM customers")["customer_id"].tolist() == ["c1"]


def test_rows_replaced_by_value_keep_the_others(tmp_path):
    root = tmp_path / "store"
    rows = pd.DataFrame({"audience": ["a", "a", "b"], "format": "meta", "customer_id": ["c1", "c2", "c3"],
                         "email_sha256": None, "phone_sha256": None, "export_id": "e1",
                         "exported_at": pd.Timestamp("2024-01-01")})
    with ParquetStore(root) as store, store.writing() as writer:
        assert writer.replace_rows("audience_members", "marketing", {"audience": "a"}, rows) == 0
    with ParquetStore(root) as store, store.writing() as writer:
        deleted = writer.replace_rows("audience_members", "marketing", {"audience": "a", "format": "meta"},
                                      rows.iloc[:1].assign(export_id="e2"))
    assert deleted == 2
    with ParquetStore(root, read_only=True) as store:
        held = store.frame("SELECT customer_id, export_id FROM audience_members ORDER BY customer_id")
    assert held.values.tolist() == [["c1", "e2"], ["c3", "e1"]]


def test_only_a_tables_owner_writes_it(tmp_path):
    with ParquetStore(tmp_path / "store") as store:
        with pytest.raises(StoreError, match="belongs to training"), store.writing() as writer:
            writer.replace("scores", "marketing", SCORES)


def test_a_reader_keeps_the_version_it_opened_until_it_closes(tmp_path):
    root = tmp_path / "store"
    with ParquetStore(root) as store, store.writing() as writer:
        writer.replace("scores", "training", SCORES)
    reader = ParquetStore(root, read_only=True)
    try:
        with ParquetStore(root) as store, store.writing() as writer:
            writer.replace("scores", "training", SCORES.assign(churn=0.75))
        # The old version is still on disk for the open reader, which sees one run's tables.
        assert reader.read("scores")["churn"].sort_values().tolist() == [0.25, 0.5]
        assert len(list((root / "tables" / "scores").iterdir())) == 2
    finally:
        reader.close()
    with ParquetStore(root):  # the next writer deletes what no one reads any more
        pass
    assert len(list((root / "tables" / "scores").iterdir())) == 1
    with ParquetStore(root, read_only=True) as store:
        assert store.read("scores")["churn"].tolist() == [0.75, 0.75]


def test_a_run_killed_before_the_switch_leaves_the_store_as_it_was_and_its_files_go_next_time(tmp_path):
    root = tmp_path / "store"
    with ParquetStore(root) as store, store.writing() as writer:
        writer.replace("scores", "training", SCORES)
    before = (root / MANIFEST).read_bytes()
    script = textwrap.dedent(f"""
        import os, signal
        import pandas as pd
        from store.parquet_store import ParquetStore, Manifest
        Manifest.write = lambda self, root: os.kill(os.getpid(), signal.SIGKILL)
        with ParquetStore({str(root)!r}) as store, store.writing() as writer:
            writer.replace("scores", "training", pd.DataFrame({{"customer_id": ["secret-id"], "churn": [1.0]}}))
    """)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (root / MANIFEST).read_bytes() == before
    assert any(b"secret-id" in p.read_bytes() for p in root.rglob("*.parquet"))  # its staged version, unread
    with ParquetStore(root, read_only=True) as store:
        assert "secret-id" not in set(store.read("scores")["customer_id"])
    with ParquetStore(root):
        pass
    assert not any(b"secret-id" in p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_the_format_is_what_is_on_disk_and_a_mismatch_with_the_config_is_an_error(tmp_path):
    with ParquetStore(tmp_path / "store"):
        pass
    assert store_format(tmp_path / "store") == "parquet"
    assert store_format(tmp_path / "new.duckdb") == "duckdb"
    assert store_format(tmp_path / "new", "parquet") == "parquet"
    with pytest.raises(StoreError, match="store.format is 'duckdb'"):
        open_store(tmp_path / "store", format="duckdb")
    (tmp_path / "file.duckdb").write_bytes(b"")
    with pytest.raises(StoreError, match="store.format is 'parquet'"):
        open_store(tmp_path / "file.duckdb", format="parquet")


def test_a_store_that_does_not_exist_is_not_created_by_a_reader(tmp_path):
    with pytest.raises(StoreError, match="does not exist yet"):
        ParquetStore(tmp_path / "store", read_only=True)
    assert not (tmp_path / "store").exists()


def test_one_writer_at_a_time(tmp_path):
    with ParquetStore(tmp_path / "store"):
        with pytest.raises(StoreError, match="in use by another process"):
            ParquetStore(tmp_path / "store")
    assert os.path.exists(tmp_path / "store" / MANIFEST)


def test_forget_leaves_no_version_of_any_table_holding_the_person(tmp_path):
    """Several runs leave several versions of the tables behind them; `cdp forget` removes the
    person from the current ones and deletes every older one: no Parquet file under the store
    holds their email, phone or customer id any more (read back value by value)."""
    import datetime as dt

    import pyarrow.parquet as pq

    from cdp.config import load_config
    from profiles.erasure import forget
    from profiles.ingest import ingest
    from profiles.subject import Lookup
    from profiles.unify import unify
    from sample import write_sample
    from store.snapshot import ServingSnapshot

    write_sample(tmp_path, n_customers=120, seed=4, end=dt.date(2026, 10, 31))
    text = (tmp_path / "cdp.toml").read_text().replace('path = "cdp.duckdb"', 'path = "store"\nformat = "parquet"', 1)
    (tmp_path / "cdp.toml").write_text(text)
    config = load_config(tmp_path / "cdp.toml")
    reader = None
    for run in range(2):  # two runs, the first one's versions kept for a reader open during the second
        with open_store(config.store.path, format="parquet") as store:
            ingest(store, config, now=dt.datetime(2026, 11, 1, run), run_id=f"i{run}")
            unify(store, config, now=dt.datetime(2026, 11, 1, run), run_id=f"u{run}")
        reader = reader or ParquetStore(config.store.path, read_only=True)
        orders = tmp_path / "web_orders.csv"  # the next export has one more order
        lines = orders.read_text(encoding="utf-8").splitlines()
        lines.append(f"WNEW{run}," + lines[1].split(",", 1)[1])
        orders.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(list((config.store.path / "tables" / "source_orders").iterdir())) == 2
    with open_store(config.store.path, read_only=True) as store:
        person = store.frame("SELECT customer_id, email, phone FROM customers WHERE email IS NOT NULL AND phone "
                             "IS NOT NULL ORDER BY n_records DESC, customer_id LIMIT 1").iloc[0]
    values = {str(person["customer_id"]), str(person["email"]), str(person["phone"])}

    def holding() -> set[str]:
        found = set()
        for path in config.store.path.rglob("*.parquet"):
            for column in pq.read_table(path).to_pydict().values():
                found |= values & {str(v) for v in column}
        return found

    assert holding() == values

    def erase():
        with open_store(config.store.path) as store:
            forget(store, config, Lookup("customer_id", person["customer_id"]), actor="test",
                   now=dt.datetime(2026, 11, 2), snapshot=ServingSnapshot(tmp_path / "snapshot.parquet"),
                   tombstone_key=None)

    erasing = threading.Thread(target=erase)
    erasing.start()
    erasing.join(timeout=5)
    # The erasure has committed, and waits for the reader before deleting the versions it reads.
    assert erasing.is_alive()
    with ParquetStore(config.store.path, read_only=True) as after:  # a reader opening now: the new version
        assert after.frame("SELECT count(*) AS n FROM customers WHERE customer_id = ?",
                           [person["customer_id"]])["n"].item() == 0
    reader.close()
    erasing.join(timeout=60)
    assert not erasing.is_alive()
    assert holding() == set()
    assert {p.name for p in (config.store.path / "tables" / "source_orders").iterdir()} == \
        {Path(manifest(config.store.path)["tables"]["source_orders"]).name}


def test_with_spark_a_new_store_is_parquet_and_an_existing_duckdb_file_stays_one(tmp_path):
    from cdp.config import load_config

    (tmp_path / "cdp.toml").write_text('[store]\npath = "shop"\n[engine]\nkind = "spark"\n')
    config = load_config(tmp_path / "cdp.toml")
    assert config.store.format is None and config.store.new_format == "parquet"
    assert store_format(config.store.path, config.store.format, config.store.new_format) == "parquet"
    (tmp_path / "shop").write_bytes(b"")  # a DuckDB file made before [engine] said spark
    assert store_format(config.store.path, config.store.format, config.store.new_format) == "duckdb"
