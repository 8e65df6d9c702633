"""Every table is declared once, with its owner and whether erasure must empty it."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from cdp.config import load_config
from cdp.errors import StoreError
from profiles.erasure import check_declared
from store.duckdb_store import Store
from store.tables import OWNERS, TABLES, personal_tables, replace_table, table


def test_every_declaration_names_a_known_owner_and_fixed_tables_have_ddl_for_their_name():
    for name, spec in TABLES.items():
        assert spec.name == name and spec.owner in OWNERS and spec.holds
        if spec.ddl is not None:
            assert f"CREATE TABLE IF NOT EXISTS {name} (" in spec.ddl


def test_a_trained_and_scored_store_holds_only_declared_tables_and_customer_ids_only_in_personal_ones(trained_shop):
    config = load_config(trained_shop.config)
    with Store(config.store.path, read_only=True) as store:
        tables = {r[0] for r in store.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'").fetchall()}
        with_ids = {r[0] for r in store.con.execute(
            "SELECT DISTINCT table_name FROM information_schema.columns WHERE column_name = 'customer_id'").fetchall()}
    assert tables <= set(TABLES), sorted(tables - set(TABLES))
    assert {"customers", "orders", "events", "scores", "identifier_map", "record_map"} <= tables
    assert with_ids & tables <= set(personal_tables())
    assert not {"tombstones", "audit_log", "meta", "ingestions", "unify_runs"} & set(personal_tables())


def test_a_table_is_written_whole_only_by_its_owner_and_only_if_declared(tmp_path):
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    replace_table(con, "scores", "training", "SELECT 'c1' AS customer_id")
    assert con.execute("SELECT customer_id FROM scores").fetchall() == [("c1",)]
    with pytest.raises(StoreError, match="belongs to training, not unify"):
        replace_table(con, "scores", "unify", "SELECT 1")
    with pytest.raises(StoreError, match="'my_table' is not declared"):
        replace_table(con, "my_table", "training", "SELECT 1")
    with pytest.raises(StoreError, match="belongs to unify"):
        table("customers", "features")


def test_erasure_refuses_while_an_undeclared_table_holds_customer_ids(tmp_path):
    with Store(tmp_path / "cdp.duckdb") as store:
        check_declared(store.con)  # a fresh store: every table declared
        store.con.execute("CREATE TABLE my_export AS SELECT 'c1' AS customer_id, DATE '2026-10-31' AS day")
        with pytest.raises(StoreError, match="my_export .* store/tables.py does not declare"):
            check_declared(store.con)


def test_a_store_made_before_consent_ads_existed_gains_the_column_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.duckdb"
    old_ddl = TABLES["source_customers"].ddl.replace(", consent_ads BOOLEAN", "")
    assert "consent_ads" not in old_ddl
    with duckdb.connect(str(path)) as con:
        con.execute(old_ddl)
        con.execute("INSERT INTO source_customers (source, source_key, row_number, row_digest, file, ingested_at, "
                    "consent_email) VALUES ('crm', 'k1', 1, 7, 'crm.csv', TIMESTAMP '2026-01-01', true)")
    with Store(path) as store:
        rows = store.frame("SELECT source_key, consent_email, consent_ads FROM source_customers")
    assert rows["source_key"].tolist() == ["k1"] and bool(rows["consent_email"].iloc[0]) is True
    assert pd.isna(rows["consent_ads"].iloc[0])  # unknown until the source is ingested again: counts as no


def test_rows_of_a_fixed_table_are_replaced_by_value_only_by_its_owner(tmp_path):
    with Store(tmp_path / "x.duckdb") as store:
        members = pd.DataFrame({"audience": ["a", "a"], "format": ["meta", "meta"], "customer_id": ["c1", "c2"],
                                "email_sha256": ["e1", None], "phone_sha256": [None, "p2"], "export_id": "x1",
                                "exported_at": pd.Timestamp("2026-01-01")})
        with store.writing() as writer:
            assert writer.replace_rows("audience_members", "marketing", {"audience": "a", "format": "meta"},
                                       members) == 0
            assert writer.replace_rows("audience_members", "marketing", {"audience": "a", "format": "meta"},
                                       members.head(1)) == 2
        assert store.frame("SELECT customer_id FROM audience_members")["customer_id"].tolist() == ["c1"]
        with pytest.raises(StoreError, match="belongs to marketing, not unify"), store.writing() as writer:
            writer.replace_rows("audience_members", "unify", {"audience": "a"}, members)
        with pytest.raises(StoreError, match="written whole"), store.writing() as writer:
            writer.replace_rows("scores", "training", {"customer_id": "c1"}, pd.DataFrame())
        assert store.count("audience_members") == 1
