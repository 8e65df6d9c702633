"""Journeys built by Spark's executors are DuckDB's: the hand-worked examples of
`test_journeys`, the edges of the definitions, and `cdp attribution` on the generator's shop."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from attribution.journeys import JourneySettings, StoreJourneys, journeys_from_touches
from attribution.journeys_spark import journeys_on_spark

pytestmark = pytest.mark.spark

DAY0 = dt.datetime(2026, 1, 1)


def at(days: float) -> dt.datetime:
    return DAY0 + dt.timedelta(days=days)


def on_both(spark, events, orders, end_days=200, window=30) -> tuple[StoreJourneys, StoreJourneys]:
    """``events``: (customer, day, channel, event type); ``orders``: (customer, order, day, amount,
    is_return). DuckDB's journeys (from the touches and sales `journeys_from_tables` selects)
    and Spark's, from the same rows."""
    settings, end = JourneySettings(window_days=window), at(end_days)
    e = pd.DataFrame(events, columns=["customer_id", "day", "channel", "event_type"])
    o = pd.DataFrame(orders, columns=["customer_id", "order_id", "day", "amount", "is_return"])
    e["timestamp"], o["timestamp"] = e.pop("day").map(at), o.pop("day").map(at)
    touch = (e.customer_id.notna() & e.channel.notna() & (e.timestamp < end)
             & ~e.channel.isin(settings.excluded_channels) & ~e.event_type.isin(settings.excluded_event_types))
    sale = o.customer_id.notna() & ~o.is_return.fillna(False).astype(bool) & (o.timestamp < end)
    on_duckdb = journeys_from_touches(
        pa.Table.from_pandas(e[touch][["customer_id", "timestamp", "channel"]], preserve_index=False),
        pa.Table.from_pandas(o[sale][["customer_id", "order_id", "timestamp", "amount"]], preserve_index=False),
        end, settings)
    frames = [spark.createDataFrame(f.astype({"timestamp": "datetime64[us]"}), schema=schema) for f, schema in (
        (e, "customer_id string, channel string, event_type string, timestamp timestamp_ntz"),
        (o, "customer_id string, order_id string, amount double, is_return boolean, timestamp timestamp_ntz"))]
    return on_duckdb, journeys_on_spark(*frames, end, settings)


def assert_same_journeys(a: StoreJourneys, b: StoreJourneys) -> None:
    for field in ("converting_journeys", "non_converting_journeys", "conversions_without_touches", "open_journeys"):
        assert getattr(a, field) == getattr(b, field), field
    assert a.value_without_touches == pytest.approx(b.value_without_touches, abs=1e-9)
    assert a.paths.channels == b.paths.channels
    for field in ("steps", "lengths", "conversions", "value", "nulls"):
        np.testing.assert_allclose(getattr(a.paths, field), getattr(b.paths, field), rtol=1e-12, err_msg=field)
    ages_a, ages_b = a.paths.touch_ages, b.paths.touch_ages
    assert ages_a is not None and ages_b is not None
    for field in (f.name for f in dataclasses.fields(ages_a)):
        np.testing.assert_allclose(getattr(ages_a, field), getattr(ages_b, field), rtol=1e-12, err_msg=field)


def test_the_hand_worked_journeys_are_the_same_on_spark(spark):
    a, b = on_both(spark, events=[
        ("x", 0, "facebook", "ad_click"), ("x", 7, "email", "email_click"), ("x", 13.5, "direct", "visit"),
        ("x", 15, "instagram", "ad_click"), ("x", 60, "google_search", "visit"), ("x", 80, "facebook", "ad_click"),
        ("y", 10, "facebook", "ad_click"), ("y", 12, "email", "email_click"), ("y", 50, "instagram", "ad_click"),
        ("y", 85, "instagram", "ad_click"), ("z", 190, "facebook", "ad_click"),
        ("v", 0, "a", "ad_click"), ("v", 20, "b", "ad_click"), ("v", 40, "c", "ad_click"), ("v", 55, "d", "ad_click")],
        orders=[("x", "o1", 14, 100.0, False), ("x", "o2", 40, 50.0, False), ("x", "o3", 105, 70.0, False),
                ("w", "o4", 20, 10.0, False)])
    # The figures `test_journeys` works out by hand, plus v's run cut into two window-long journeys.
    table = {p: (c, n) for p, c, n in zip(b.paths.path_strings(), b.paths.conversions, b.paths.nulls)}
    assert table == {"facebook > email > direct": (1, 0), "instagram": (1, 2), "facebook": (1, 0),
                     "google_search": (0, 1), "facebook > email": (0, 1), "a > b": (0, 1), "c > d": (0, 1)}
    assert (b.converting_journeys, b.non_converting_journeys, b.open_journeys) == (3, 6, 1)
    assert_same_journeys(a, b)


def test_the_edges_of_the_definitions_are_the_same_on_spark(spark):
    a, b = on_both(spark, events=[
        ("x", 5, "email", "email_click"), ("x", 5, "email", "email_open"),    # an open is not a touch
        ("x", 5, "facebook", "ad_click"),                                       # same time: ordered by channel
        ("x", 9, "store", "visit"), ("x", 9.5, "web", "page_view"),             # the shop's own channels
        ("x", 10, "instagram", "ad_click"),                                     # at the very time of the order
        ("x", 11, "tiktok", "ad_click"), ("x", 11, None, "ad_click"),           # no channel: no touch
        (None, 11, "facebook", "ad_click"),                                     # no customer: left out
        ("y", 1, "facebook", "ad_click"), ("y", 250, "facebook", "ad_click")],  # after the end: not seen
        orders=[("x", "o1", 10, 40.0, False), ("x", "r1", 12, 40.0, True),       # a return converts nothing
                ("x", "o2", 12.5, None, False),                                 # no amount: a conversion worth 0
                (None, "o3", 3, 5.0, False), ("y", "o4", 300, 9.0, False)])
    assert [p for p, c in zip(b.paths.path_strings(), b.paths.conversions) if c] == [
        "email > facebook > instagram", "tiktok"]
    assert_same_journeys(a, b)


@pytest.mark.slow
def test_cdp_attribution_on_spark_credits_the_channels_as_on_duckdb(spark, tmp_path):
    from attribution.run import attribute_store
    from cdp.config import EngineConfig, load_config
    from tests.features.conftest import unified_shop

    config = load_config(unified_shop(tmp_path / "shop", customers=400, seed=5))
    on_duckdb = attribute_store(config, window_days=30, bootstrap=0)
    on_spark = attribute_store(dataclasses.replace(config, engine=EngineConfig(kind="spark")), window_days=30)
    assert on_duckdb.metrics["converting_journeys"] > 50 and on_duckdb.metrics["non_converting_journeys"] > 50
    assert on_spark.metrics == pytest.approx(on_duckdb.metrics, rel=1e-12)
    keys = ["channel", "model"]
    a, b = (run.table.sort_values(keys).reset_index(drop=True) for run in (on_duckdb, on_spark))
    assert a[keys].equals(b[keys]) and a["model"].nunique() >= 6
    numbers = [c for c in a.columns if c not in keys]
    np.testing.assert_allclose(a[numbers].to_numpy(float), b[numbers].to_numpy(float), rtol=1e-9, atol=1e-9)
