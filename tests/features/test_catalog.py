"""The catalog documents exactly the columns the builder produces, and docs/FEATURES.md is current."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ibis
import pandas as pd

from features.build import build_features
from features.catalog import SCORING_FAMILIES, catalog, markdown
from features.engine import SourceTables
from features.scoring import scoring_features
from store.ibis_compat import ensure_duckdb_compat

DOCS = Path(__file__).resolve().parents[2] / "docs" / "FEATURES.md"


def empty_tables() -> SourceTables:
    ensure_duckdb_compat()
    con = ibis.duckdb.connect()
    customers = con.create_table("customers", pd.DataFrame({
        "customer_id": ["A"], "birth_date": pd.to_datetime(["1990-05-01"]).astype("datetime64[us]"),
        "country": ["PS"], "city": ["Ramallah"], "consent_email": [True], "consent_sms": [False],
        "consent_ads": [True],
        "first_seen": pd.to_datetime(["2024-01-01"]).astype("datetime64[us]")}))
    orders = con.create_table("orders", pd.DataFrame({
        "customer_id": ["A"], "timestamp": pd.to_datetime(["2024-01-01 10:00"]).astype("datetime64[us]"),
        "amount": [10.0], "is_return": [False], "category": ["olive_oil"], "channel": ["web"],
        "product_id": ["P1"], "discount": [0.0]}))
    events = con.create_table("events", pd.DataFrame({
        "customer_id": ["A"], "timestamp": pd.to_datetime(["2024-01-01 09:00"]).astype("datetime64[us]"),
        "event_type": ["page_view"], "channel": ["web"], "campaign": [None], "product_id": [None],
        "category": [None], "value": [None]}).astype({"campaign": "str", "product_id": "str", "category": "str",
                                                      "value": "float64"}))
    return SourceTables(customers=customers, orders=orders, events=events)


def test_every_column_is_in_the_catalog_and_every_entry_is_a_column():
    columns = build_features(empty_tables(), dt.date(2024, 6, 30)).columns
    assert list(columns) == ["customer_id"] + [spec.name for spec in catalog()]


def test_names_are_unique_and_every_entry_says_what_it_is():
    specs = catalog()
    assert len({s.name for s in specs}) == len(specs)
    assert all(s.description and s.window and s.sources for s in specs)


def test_consent_is_never_a_model_input():
    assert not any(s.model_input for s in catalog() if s.name.startswith("consent_"))


def test_the_scoring_feature_set_is_the_catalogued_families_and_the_purchase_history():
    columns = scoring_features(empty_tables(), dt.date(2024, 6, 30)).columns
    assert list(columns) == ["customer_id"] + [spec.name for spec in catalog(SCORING_FAMILIES)]
    assert not any(s.model_input for s in catalog(("purchase_history",)))


def test_the_docs_page_is_generated_from_the_catalog():
    assert DOCS.read_text(encoding="utf-8") == markdown(catalog(SCORING_FAMILIES))


def test_customers_unified_before_consent_ads_existed_have_no_ads_consent():
    tables = empty_tables()
    old = SourceTables(customers=tables.customers.drop("consent_ads"), orders=tables.orders, events=tables.events)
    built = build_features(old, dt.date(2024, 6, 30)).execute()
    assert list(built.columns) == ["customer_id"] + [spec.name for spec in catalog()]
    assert built["consent_ads"].tolist() == [False]
