"""cdp.toml: every mistake a person can make writing it is a ConfigError naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdp.config import load_config
from cdp.errors import ConfigError

ORDERS = """
[[sources]]
name = "shop"
kind = "orders"
path = "orders.csv"
[sources.columns]
customer_key = "id"
timestamp = "ts"
amount = "amount"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cdp.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_valid_config_resolves_paths_from_the_toml_folder_and_keeps_the_mapping(tmp_path):
    config = load_config(write(tmp_path, '[store]\npath = "data/cdp.duckdb"\n' + ORDERS))
    assert config.store.path == tmp_path / "data" / "cdp.duckdb"
    (shop,) = config.sources
    assert (shop.name, shop.kind, shop.path) == ("shop", "orders", tmp_path / "orders.csv")
    assert dict(shop.columns) == {"customer_key": "id", "timestamp": "ts", "amount": "amount"}
    # No source_key is mapped, so the file is read whole by default (derived keys cannot see edits).
    assert (shop.delimiter, shop.timezone, shop.header, shop.mode) == (",", "UTC", True, "replace")


def test_a_utf8_bom_at_the_start_of_the_toml_is_accepted(tmp_path):
    path = tmp_path / "cdp.toml"
    path.write_bytes(b"\xef\xbb\xbf" + ORDERS.encode())
    assert load_config(path).sources[0].name == "shop"


def test_missing_config_file_names_the_path_and_the_option(tmp_path):
    message = config_error(tmp_path / "nowhere.toml")
    assert str(tmp_path / "nowhere.toml") in message
    assert "--config" in message


def test_bad_toml_names_the_file_and_the_line(tmp_path):
    path = write(tmp_path, '[[sources]\nname = "shop"\n')
    message = config_error(path)
    assert str(path) in message
    assert "not valid TOML" in message and "line 1" in message


def test_unknown_kind_names_the_source_and_the_kinds_there_are(tmp_path):
    path = write(tmp_path, ORDERS.replace('kind = "orders"', 'kind = "purchases"'))
    message = config_error(path)
    assert str(path) in message
    assert "source 'shop'" in message
    assert "'purchases'" in message and "customers, orders, events" in message


def test_unknown_canonical_field_names_the_source_and_the_field(tmp_path):
    path = write(tmp_path, ORDERS + 'basket_size = "n"\n')
    message = config_error(path)
    assert str(path) in message
    assert "source 'shop'" in message
    assert "basket_size" in message and "for kind 'orders'" in message


@pytest.mark.parametrize("dropped, needed", [
    ('amount = "amount"\n', "amount"),
    ('timestamp = "ts"\n', "timestamp"),
])
def test_a_required_field_without_a_column_is_named(tmp_path, dropped, needed):
    path = write(tmp_path, ORDERS.replace(dropped, ""))
    message = config_error(path)
    assert "source 'shop'" in message
    assert f"needs column(s) for {needed}" in message


def test_orders_without_any_identifier_column_are_refused(tmp_path):
    path = write(tmp_path, ORDERS.replace('customer_key = "id"\n', ""))
    message = config_error(path)
    assert "source 'shop'" in message
    assert "at least one identifier column" in message


def test_customers_need_a_source_key(tmp_path):
    path = write(tmp_path, '[[sources]]\nname = "crm"\nkind = "customers"\npath = "c.csv"\n'
                           '[sources.columns]\nemail = "email"\n')
    message = config_error(path)
    assert "source 'crm'" in message and "source_key" in message


def test_the_same_source_name_twice_is_refused(tmp_path):
    path = write(tmp_path, ORDERS + ORDERS.replace("orders.csv", "more.csv"))
    message = config_error(path)
    assert str(path) in message
    assert "'shop' is used twice" in message


@pytest.mark.parametrize("line, key", [
    ('delimiter = ";;"', "delimiter"),
    ('timezone = "Mars/Olympus"', "timezone"),
    ('timestamp_format = "YYYYMMDD"', "timestamp_format"),
    ('mode = "append"', "mode"),
    ('default_phone_region = "XX"', "default_phone_region"),
    ('header = "yes"', "header"),
    ('colums = 3', "colums"),
])
def test_bad_source_options_name_the_source_and_the_key(tmp_path, line, key):
    path = write(tmp_path, ORDERS.replace('path = "orders.csv"', f'path = "orders.csv"\n{line}'))
    message = config_error(path)
    assert "source 'shop'" in message
    assert key in message


def test_header_false_needs_names(tmp_path):
    path = write(tmp_path, ORDERS.replace('path = "orders.csv"', 'path = "orders.csv"\nheader = false'))
    message = config_error(path)
    assert "source 'shop'" in message and "names = [...]" in message


def test_column_mapped_to_an_empty_name_is_refused(tmp_path):
    path = write(tmp_path, ORDERS.replace('amount = "amount"', 'amount = ""'))
    message = config_error(path)
    assert "source 'shop'" in message and "columns.amount" in message


def test_unknown_top_level_section_is_named(tmp_path):
    path = write(tmp_path, "[sourcs]\n" + ORDERS)
    assert "sourcs" in config_error(path)


def test_a_customer_key_namespace_must_name_a_source(tmp_path):
    path = write(tmp_path, ORDERS.replace('path = "orders.csv"', 'path = "orders.csv"\ncustomer_key_namespace = "crn"'))
    message = config_error(path)
    assert "customer_key_namespace 'crn' is not a source name" in message and "shop" in message


def test_a_source_name_cannot_hold_the_order_id_separator(tmp_path):
    message = config_error(write(tmp_path, ORDERS.replace('name = "shop"', 'name = "web:eu"')))
    assert "'web:eu'" in message and "':'" in message


def test_keyed_sources_default_to_upsert(tmp_path):
    keyed = ORDERS.replace('customer_key = "id"', 'customer_key = "id"\nsource_key = "id"')
    (shop,) = load_config(write(tmp_path, keyed)).sources
    assert shop.mode == "upsert"


def test_currency_rates_are_read_as_units_of_the_base_currency(tmp_path):
    config = load_config(write(tmp_path, '[currency]\nbase = "ILS"\nrates = { USD = 3.7, EUR = 4 }\n' + ORDERS))
    assert config.currency.base == "ILS"
    assert dict(config.currency.rates) == {"USD": 3.7, "EUR": 4.0}


def test_without_a_currency_section_there_is_no_base_currency(tmp_path):
    assert load_config(write(tmp_path, ORDERS)).currency.base is None




def test_model_settings_are_read_as_purchase_model_arguments(tmp_path):
    config = load_config(write(tmp_path, '[model]\nbtyd = "pareto_nbd"\nlearning_rate = 0.03\n'
                                         'num_leaves = 8\n' + ORDERS))
    assert config.model.params() == {"btyd": "pareto_nbd", "learning_rate": 0.03, "num_leaves": 8}
    assert load_config(write(tmp_path, ORDERS)).model.params() == {}


@pytest.mark.parametrize(("section", "body", "key"), [
    ("currency", 'base = "shekel"', "currency.base"),
    ("currency", 'base = "ILS"\nrates = { usd = 3.7 }', "currency.rates.usd"),
    ("currency", 'base = "ILS"\nrates = { USD = 0 }', "currency.rates.USD"),
    ("currency", 'base = "ILS"\nrates = { USD = "3.7" }', "currency.rates.USD"),
    ("currency", 'base = "ILS"\nrate = { USD = 3.7 }', "rate"),
    ("model", 'btyd = "gamma"', "model.btyd"),
    ("model", "learning_rate = 0", "model.learning_rate"),
    ("model", 'learning_rate = "fast"', "model.learning_rate"),
    ("model", "num_leaves = 1", "model.num_leaves"),
    ("model", "n_estimators = 2.5", "model.n_estimators"),
    ("model", "min_child_samples = true", "model.min_child_samples"),
    ("model", "depth = 3", "depth"),
])
def test_bad_currency_and_model_settings_name_the_key(tmp_path, section, body, key):
    message = config_error(write(tmp_path, f"[{section}]\n{body}\n" + ORDERS))
    assert key in message


def test_the_engine_and_the_online_store_are_read_with_their_defaults(tmp_path):
    plain = load_config(write(tmp_path, ORDERS))
    assert (plain.engine.kind, plain.engine.master, dict(plain.engine.conf)) == ("duckdb", "local[2]", {})
    assert plain.online_store.url is None
    given = load_config(write(tmp_path, ORDERS + '''
[engine]
kind = "spark"
master = "spark://10.0.0.5:7077"
work_dir = "shared/spark"
[engine.conf]
"spark.executor.memory" = "4g"
"spark.sql.shuffle.partitions" = 64
"spark.sql.adaptive.enabled" = true
[online_store]
url = " redis://:pw@cache:6379/2 "
'''))
    assert (given.engine.kind, given.engine.master) == ("spark", "spark://10.0.0.5:7077")
    assert given.engine.work_dir == tmp_path / "shared" / "spark"
    assert dict(given.engine.conf) == {"spark.executor.memory": "4g", "spark.sql.shuffle.partitions": "64",
                                       "spark.sql.adaptive.enabled": "true"}
    assert given.online_store.url == "redis://:pw@cache:6379/2"


@pytest.mark.parametrize(("section", "named"), [
    ('[engine]\nkind = "hadoop"', "engine.kind"),
    ('[engine]\nmaster = "somewhere"', "engine.master"),
    ('[engine]\nthreads = 4', "engine: unknown key(s) threads"),
    ('[engine.conf]\n"executor.memory" = "4g"', "engine.conf.executor.memory"),
    ('[online_store]\nurl = "http://cache:6379"', "online_store.url"),
    ('[online_store]\nhost = "cache"', "online_store: unknown key(s) host"),
])
def test_a_wrong_engine_or_online_store_names_the_key_and_never_the_password(tmp_path, section, named):
    message = config_error(write(tmp_path, ORDERS + section + "\n"))
    assert named in message and str(tmp_path / "cdp.toml") in message


def test_a_wrong_online_store_url_is_refused_without_quoting_it(tmp_path):
    message = config_error(write(tmp_path, ORDERS + '[online_store]\nurl = "redis//:s3cret@cache"\n'))
    assert "online_store.url" in message and "s3cret" not in message


def test_the_training_sample_size_is_a_setting_with_a_default_of_50000(tmp_path):
    assert load_config(write(tmp_path, ORDERS)).training.max_customers == 50_000
    given = load_config(write(tmp_path, ORDERS + "[training]\nmax_customers = 200000\n"))
    assert given.training.max_customers == 200_000
    assert load_config(write(tmp_path, ORDERS + "[training]\nmax_customers = 0\n")).training.max_customers == 0


@pytest.mark.parametrize(("body", "named"), [
    ("max_customers = -1", "training.max_customers"),
    ('max_customers = "50k"', "training.max_customers"),
    ("max_customers = true", "training.max_customers"),
    ("sample = 3", "training: unknown key(s) sample"),
])
def test_a_wrong_training_setting_names_the_key(tmp_path, body, named):
    message = config_error(write(tmp_path, ORDERS + f"[training]\n{body}\n"))
    assert named in message and str(tmp_path / "cdp.toml") in message
