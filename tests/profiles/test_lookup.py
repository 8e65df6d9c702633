"""Look-up keys: an app's identifier, normalized as ingest normalizes it, meets the key the store made."""

from __future__ import annotations

import hashlib

import duckdb
import pytest

from cdp.config import load_config
from profiles.lookup import LookupSettings, _survivors, lookup_key, lookup_keys
from store.interface import open_store


def test_a_key_is_the_truncated_sha256_of_type_namespace_and_value():
    assert lookup_key("email", "omar@example.com") == hashlib.sha256(
        "email\x1f\x1fomar@example.com".encode()).digest()[:16]
    assert lookup_key("customer_key", "C-1", "crm") == hashlib.sha256(
        "customer_key\x1fcrm\x1fC-1".encode()).digest()[:16]
    assert lookup_key("customer_key", "C-1", "crm") != lookup_key("customer_key", "C-1", "pos")  # two namespaces
    assert lookup_key("email", "x@y.z", "ignored") == lookup_key("email", "x@y.z")  # namespaces are for keys only


def test_an_apps_identifier_is_normalized_as_ingest_does_before_it_is_keyed():
    settings = LookupSettings(phone_regions=("PS",), namespaces={"ad_touchpoints": "crm_customers"})
    assert settings.keys("email", "  Omar@Example.COM ") == [lookup_key("email", "omar@example.com")]
    local, international = settings.keys("phone", "059-912 3456"), settings.keys("phone", "+970599123456")
    assert local == international == [lookup_key("phone", "+970599123456")]
    assert settings.keys("phone", "00970599123456") == international
    assert settings.keys("customer_key", " C-1 ", "ad_touchpoints") == [lookup_key("customer_key", "C-1",
                                                                                    "crm_customers")]
    assert settings.keys("customer_key", "C-1", "crm_customers") == [lookup_key("customer_key", "C-1",
                                                                                "crm_customers")]
    assert settings.keys("email", "not an email") == [] and settings.keys("phone", "12") == []
    with pytest.raises(ValueError):
        settings.keys("shoe_size", "44")


def test_settings_survive_their_json_form():
    settings = LookupSettings(("PS", "IL"), {"a": "b"}, frozenset({lookup_key("phone", "+970599000000")}))
    assert LookupSettings.from_json(settings.to_json()) == settings


def test_a_merged_id_leads_to_the_end_of_its_chain():
    assert _survivors({"c1": "c2", "c2": "c3", "c4": "c3"}) == {"c1": "c3", "c2": "c3", "c4": "c3"}
    assert _survivors({"a": "b", "b": "a"}) in ({"a": "a", "b": "b"}, {"a": "b", "b": "a"})  # never loops


def test_the_store_keys_every_identifier_of_its_customers_the_same_way_the_app_does(trained_shop):
    config = load_config(trained_shop.config)
    with duckdb.connect(str(config.store.path), read_only=True) as con:
        mapped = con.sql("SELECT customer_id, id_type, id_value, source FROM identifier_map").fetchall()
        excluded = con.sql("SELECT id_type, id_value FROM identifier_exclusions WHERE id_type <> 'customer_key'"
                           ).fetchall()
    with open_store(config.store.path, read_only=True) as store:
        found = lookup_keys(store, config)
    namespaces = {s.name: s.key_namespace for s in config.sources}
    assert found.settings.phone_regions == ("PS",) and found.settings.namespaces == namespaces
    assert {id_type for _, id_type, _, _ in mapped} >= {"email", "phone", "customer_key"}
    for customer_id, id_type, value, source in mapped:  # worked out here with hashlib, per row
        assert lookup_key(id_type, value, namespaces[source]) in found.keys[customer_id]
    assert sum(map(len, found.keys)) == len({(c, t, v, namespaces[s] if t == "customer_key" else "")
                                             for c, t, v, s in mapped})
    assert excluded and found.settings.excluded == {lookup_key(t, v) for t, v in excluded}
