"""The scoring snapshot kept in the store: read back as written, and only while it still describes the store."""

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from cdp.config import CurrencyConfig
from cdp.errors import CdpError
from features.materialized import currency_key, feature_code, read_snapshot, write_snapshot
from store.duckdb_store import Store

DAY = dt.date(2026, 6, 30)
NOW = dt.datetime(2026, 7, 1, 8, 0)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "cdp.duckdb") as store:
        store.con.execute("INSERT INTO unify_runs (run_id, ran_at) VALUES ('u1', '2026-06-30 23:00')")
        yield store


def write(store, *args):
    with store.writing() as writer:
        return write_snapshot(writer, *args)


def features() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["C1", "C2", "C3"], "recency_days": [3.0, None, 40.0],
                         "orders_count": [2, 0, 5], "category_history": ["oil:2", "", "soap:1;oil:4"]})


def test_a_fresh_snapshot_reads_back_as_written(store):
    stamp = write(store, features(), DAY, "k1", "c1", NOW, store.latest_unify_run())
    assert (stamp.as_of, stamp.unify_run, stamp.rows) == ("2026-06-30", "1:u1", 3)
    found = read_snapshot(store, DAY, "k1", "c1")
    pd.testing.assert_frame_equal(found.features, features())
    assert found.note == "features materialized at 2026-07-01T08:00:00 for 2026-06-30"
    assert found.stamp == stamp


@pytest.mark.parametrize(("change", "why"), [
    ("day", "materialized features are as of 2026-06-30, not 2026-07-01: building them"),
    ("unify", "materialized features predate the latest `cdp unify`: building them"),
    ("unify in the same second", "materialized features predate the latest `cdp unify`: building them"),
    ("currency", "materialized features were summed with other currency settings: building them"),
    ("code", "materialized features were built by another version of the feature code: building them"),
])
def test_a_snapshot_that_no_longer_describes_the_store_is_not_used(store, change, why):
    write(store, features(), DAY, "k1", "c1", NOW, store.latest_unify_run())
    day, key, code = DAY, "k1", "c1"
    if change == "day":
        day = DAY + dt.timedelta(days=1)
    elif change == "unify":
        store.con.execute("INSERT INTO unify_runs (run_id, ran_at) VALUES ('u2', '2026-07-01 09:00')")
    elif change == "unify in the same second":  # the clock cannot tell the runs apart; the count can
        store.con.execute("INSERT INTO unify_runs (run_id, ran_at) VALUES ('a0', '2026-06-30 23:00')")
    elif change == "code":
        code = "c2"
    else:
        key = "k2"
    found = read_snapshot(store, day, key, code)
    assert (found.features, found.note, found.stamp) == (None, why, None)


def test_features_built_before_a_unify_are_not_materialized_after_it(store):
    built_from = store.latest_unify_run()
    store.con.execute("INSERT INTO unify_runs (run_id, ran_at) VALUES ('u2', '2026-07-01 09:00')")
    with pytest.raises(CdpError, match="unified again while the features were built"):
        write(store, features(), DAY, "k1", "c1", NOW, built_from)
    assert read_snapshot(store, DAY, "k1", "c1").features is None


def test_without_a_snapshot_features_are_built(store):
    found = read_snapshot(store, DAY, "k1", "c1")
    assert (found.features, found.note) == (None, "no materialized features (`cdp features --materialize`): "
                                                  "building them")


def test_the_currency_key_follows_base_and_rates_not_their_order():
    a = CurrencyConfig(base="ILS", rates={"USD": 3.7, "EUR": 4.0})
    assert currency_key(a) == currency_key(CurrencyConfig(base="ILS", rates={"EUR": 4.0, "USD": 3.7}))
    assert currency_key(a) != currency_key(CurrencyConfig(base="ILS", rates={"USD": 3.6, "EUR": 4.0}))
    assert currency_key(a) != currency_key(CurrencyConfig(base="USD", rates={"USD": 3.7, "EUR": 4.0}))


def test_the_feature_code_hash_covers_every_module_of_the_features_package(tmp_path, monkeypatch):
    """Including the purchase history (`features/scoring.py`): the whole scoring feature set."""
    import shutil

    import features

    package = Path(features.__file__).parent
    assert (package / "scoring.py").exists() and feature_code() == feature_code()
    copy = tmp_path / "features"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(features, "__file__", str(copy / "__init__.py"))
    same = feature_code()
    (copy / "scoring.py").write_text((copy / "scoring.py").read_text() + "\n# changed\n")
    assert feature_code() != same
