"""Training data never reads past its as-of date: a store cut at that date gives the very same frames."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from ibis import _

from features.as_of import cutoff
from features.engine import SourceTables, duckdb_tables
from training.data import Window, digest, features_as_of, labelled_snapshots, sample_customers


def cut(tables: SourceTables, day: dt.date) -> SourceTables:
    """The store as a user scoring on ``day`` would have it: nothing dated after that day."""
    return SourceTables(tables.customers.filter(_.first_seen < cutoff(day)),
                        tables.orders.filter(_.timestamp < cutoff(day)),
                        tables.events.filter(_.timestamp < cutoff(day)))


def test_snapshots_and_scoring_features_are_the_same_without_any_later_data(shop):
    con = shop.connect()
    full = duckdb_tables(con)
    as_of = shop.end - dt.timedelta(days=60)
    window = Window(as_of=as_of, horizon_days=90, n_snapshots=3, step_days=30)
    later = con.sql("SELECT count(*) FROM orders "
                    f"WHERE timestamp >= TIMESTAMP '{as_of + dt.timedelta(days=1)}'").fetchall()
    assert later[0][0] > 100  # the full store does hold the future
    on_full, on_cut = labelled_snapshots(full, window), labelled_snapshots(cut(full, as_of), window)
    pd.testing.assert_frame_equal(on_full, on_cut)
    assert digest(on_full) == digest(on_cut)
    pd.testing.assert_frame_equal(features_as_of(full, as_of), features_as_of(cut(full, as_of), as_of))
    con.close()


def test_a_customer_sample_keeps_whole_customers_and_about_the_share_asked(shop):
    con = shop.connect()
    full = duckdb_tables(con)
    total = full.customers.count().execute()
    sampled, share = sample_customers(full, total // 4)
    kept = set(sampled.customers.customer_id.execute())
    assert share == pytest.approx(0.25, abs=0.001)
    assert abs(len(kept) - total / 4) < 4 * (total * 0.25 * 0.75) ** 0.5     # binomial, 4 standard deviations
    # Every order of a kept customer stays, no order of another does.
    orders = full.orders.select("customer_id", "order_id").execute()
    kept_orders = sampled.orders.select("customer_id", "order_id").execute()
    expected = orders[orders["customer_id"].isin(kept)].sort_values("order_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(kept_orders.sort_values("order_id").reset_index(drop=True), expected)
    events = sampled.events.select("customer_id").execute()["customer_id"]
    assert events.isin(kept).all() and len(events) > 0
    # The same customers every time; a cap above the store keeps everyone.
    assert set(sample_customers(full, total // 4)[0].customers.customer_id.execute()) == kept
    assert sample_customers(full, total)[0] is full and sample_customers(full, None)[1] == 1.0
    with pytest.raises(ValueError, match="at least 1"):
        sample_customers(full, 0)
    con.close()
