"""Journeys from touches and orders: windows, the previous order, non-converting runs, open runs."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from attribution.heuristics import TimeDecay
from attribution.journeys import JourneySettings, _paths, journeys_from_touches
from attribution.paths import PathCounts
from tests.attribution.conftest import as_dict

DAY0 = dt.datetime(2026, 1, 1)


def at(days: float) -> dt.datetime:
    return DAY0 + dt.timedelta(days=days)


def build(touches, orders, end_days=200, window=30):
    t = pa.table({"customer_id": [c for c, _, _ in touches], "timestamp": [at(d) for _, d, _ in touches],
                  "channel": [ch for _, _, ch in touches]})
    o = pa.table({"customer_id": [c for c, _, _, _ in orders], "order_id": [i for _, i, _, _ in orders],
                  "timestamp": [at(d) for _, _, d, _ in orders], "amount": [a for _, _, _, a in orders]})
    return journeys_from_touches(t, o, at(end_days), JourneySettings(window_days=window))


def test_converting_and_non_converting_journeys():
    found = build(
        touches=[("x", 0, "facebook"), ("x", 7, "email"), ("x", 13.5, "direct"),  # -> order o1 at day 14
                 ("x", 15, "instagram"),                                          # after o1, 25 days before o2
                 ("x", 60, "google_search"),                                      # 45 days before o3: not in window
                 ("x", 80, "facebook"),                                           # -> o3 at day 105
                 ("y", 10, "facebook"), ("y", 12, "email"),                       # no order: one closed journey
                 ("y", 50, "instagram"), ("y", 85, "instagram"),                  # gap 38 > 30 days: two journeys
                 ("z", 190, "facebook")],                                         # open: less than 30 days left
        orders=[("x", "o1", 14, 100.0), ("x", "o2", 40, 50.0), ("x", "o3", 105, 70.0),
                ("w", "o4", 20, 10.0)])                                           # w has no touch at all
    paths = found.paths
    # o1 <- facebook > email > direct; o2 <- instagram (day 15 is after o1, 25 days before o2);
    # o3 <- facebook (google_search at day 60 is 45 days before o3: a journey without an order);
    # y: facebook > email, then gaps of 38 and 35 days: three journeys; z at day 190 is still open
    table = {p: (c, n) for p, c, n in zip(paths.path_strings(), paths.conversions, paths.nulls)}
    assert table == {"facebook > email > direct": (1, 0), "instagram": (1, 2), "facebook": (1, 0),
                     "google_search": (0, 1), "facebook > email": (0, 1)}
    assert found.converting_journeys == 3
    assert found.non_converting_journeys == 4
    assert found.conversions_without_touches == 1 and found.value_without_touches == 10.0
    assert found.open_journeys == 1
    assert paths.total_value == 100 + 50 + 70


def test_a_long_run_without_orders_is_cut_into_window_long_journeys():
    # gaps of 20, 20, 15 days keep one run; pieces of 30 days from its first touch: days 0, 20 | 40, 55
    found = build([("v", 0, "a"), ("v", 20, "b"), ("v", 40, "c"), ("v", 55, "d")], [("q", "o1", 1, 5.0)])
    assert found.paths.path_strings() == ["a > b", "c > d"]
    assert found.paths.nulls.tolist() == [1, 1]


def test_time_decay_uses_days_before_the_conversion():
    # facebook 14 days and email 7 days before the order, half-life 7 days:
    # weights 2^-2 and 2^-1 -> facebook 1/3, email 2/3 of 1 conversion worth 90
    found = build([("x", 0, "facebook"), ("x", 7, "email")], [("x", "o1", 14, 90.0)])
    model = TimeDecay(half_life_days=7).fit(found.paths)
    assert model.age_unit_ == "days"
    assert as_dict(model.credits_) == pytest.approx({"email": 2 / 3, "facebook": 1 / 3}, abs=1e-12)
    assert as_dict(model.credits_, "value") == pytest.approx({"email": 60, "facebook": 30}, abs=1e-12)


def test_paths_are_grouped_as_from_paths_groups_them_and_touch_ages_point_at_their_row():
    converting = [["b", "a"], ["a"], ["b", "a"], ["c", "a", "a", "b"]]
    non_converting = [["a"], ["d", "b"], ["b", "a"]]
    amount = [10.0, 20.0, None, 40.0]
    ages = [[3.0, 1.0], [0.5], [2.0, 0.0], [9.0, 8.0, 7.0, 1.0]]
    found = _paths(pa.table({"channels": converting, "amount": amount, "ages": ages}),
                   pa.table({"channels": non_converting}))
    expected = PathCounts.from_paths(converting + non_converting, [1, 1, 1, 1, 0, 0, 0],
                                     [10, 20, 0, 40, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1])
    assert found.channels == expected.channels == ("a", "b", "c", "d")
    assert found.path_strings() == expected.path_strings() == ["b > a", "a", "c > a > a > b", "d > b"]
    assert found.steps.dtype == np.int32 and np.array_equal(found.steps, expected.steps)
    for column in ("lengths", "conversions", "value", "nulls"):
        assert np.array_equal(getattr(found, column), getattr(expected, column)), column
    ages_of = found.touch_ages
    assert ages_of.journey.tolist() == [0, 0, 1, 2, 2, 3, 3, 3, 3]
    assert ages_of.path.tolist() == [0, 0, 1, 0, 0, 2, 2, 2, 2]
    assert ages_of.position.tolist() == [0, 1, 0, 0, 1, 0, 1, 2, 3]
    assert ages_of.age_days.tolist() == [3.0, 1.0, 0.5, 2.0, 0.0, 9.0, 8.0, 7.0, 1.0]
    assert ages_of.value.tolist() == [10, 10, 20, 0, 0, 40, 40, 40, 40]
