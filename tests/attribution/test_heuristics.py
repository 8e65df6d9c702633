"""Rule-based models on the tiny paths of conftest.py, credits worked out by hand."""

import pytest

from attribution.heuristics import FirstTouch, LastNonDirectTouch, LastTouch, Linear, PositionBased, TimeDecay
from tests.attribution.conftest import as_dict


def check(credits, conversions: dict, value: dict) -> None:
    assert as_dict(credits) == pytest.approx(conversions, abs=1e-12)
    assert as_dict(credits, "value") == pytest.approx(value, abs=1e-12)
    assert credits["conversions"].sum() == pytest.approx(3, abs=1e-12)
    assert credits["value"].sum() == pytest.approx(60, abs=1e-12)


def test_first_touch(tiny_paths):
    # a>b -> a (1, 10); b -> b (1, 20); a>c>b -> a (1, 30)
    check(FirstTouch().fit(tiny_paths).credits_, {"a": 2, "b": 1, "c": 0}, {"a": 40, "b": 20, "c": 0})


def test_last_touch(tiny_paths):
    # every converting path ends in b
    check(LastTouch().fit(tiny_paths).credits_, {"a": 0, "b": 3, "c": 0}, {"a": 0, "b": 60, "c": 0})


def test_last_non_direct_skips_the_direct_channel_unless_it_is_alone(tiny_paths):
    # direct = b: a>b -> a (1, 10); b alone stays b (1, 20); a>c>b -> c (1, 30)
    check(LastNonDirectTouch(direct_channel="b").fit(tiny_paths).credits_,
          {"a": 1, "b": 1, "c": 1}, {"a": 10, "b": 20, "c": 30})
    # no channel called "direct": the same as last touch
    check(LastNonDirectTouch().fit(tiny_paths).credits_, {"a": 0, "b": 3, "c": 0}, {"a": 0, "b": 60, "c": 0})


def test_linear(tiny_paths):
    # a>b: 1/2 each (5, 5); b: 1 (20); a>c>b: 1/3 each (10 each)
    # a = 1/2 + 1/3 = 5/6 (15); b = 1/2 + 1 + 1/3 = 11/6 (35); c = 1/3 (10)
    check(Linear().fit(tiny_paths).credits_, {"a": 5 / 6, "b": 11 / 6, "c": 1 / 3}, {"a": 15, "b": 35, "c": 10})


def test_position_based_40_20_40(tiny_paths):
    # a>b: 1/2 each (5, 5); b: 1 (20); a>c>b: .4 / .2 / .4 (12 / 6 / 12)
    # a = .5 + .4 = .9 (17); b = .5 + 1 + .4 = 1.9 (37); c = .2 (6)
    check(PositionBased().fit(tiny_paths).credits_, {"a": 0.9, "b": 1.9, "c": 0.2}, {"a": 17, "b": 37, "c": 6})


def test_time_decay_per_touch_without_times(tiny_paths):
    # half-life 1 touch: weights 2^-(touches after it)
    # a>b: a 1/2, b 1 -> a 1/3, b 2/3; b: 1; a>c>b: 1/4, 1/2, 1 (sum 7/4) -> a 1/7, c 2/7, b 4/7
    # a = 1/3 + 1/7 = 10/21; b = 2/3 + 1 + 4/7 = 47/21; c = 2/7 = 6/21
    # value: a = 10/3 + 30/7; b = 20/3 + 20 + 120/7; c = 60/7
    model = TimeDecay(half_life_days=1).fit(tiny_paths)
    check(model.credits_, {"a": 10 / 21, "b": 47 / 21, "c": 6 / 21},
          {"a": 10 / 3 + 30 / 7, "b": 20 / 3 + 20 + 120 / 7, "c": 60 / 7})
    assert model.age_unit_ == "touches"


def test_a_long_half_life_approaches_linear(tiny_paths):
    slow = as_dict(TimeDecay(half_life_days=1e9).fit(tiny_paths).credits_)
    assert slow == pytest.approx(as_dict(Linear().fit(tiny_paths).credits_), abs=1e-6)


def test_models_refuse_bad_hyperparameters_and_unfitted_use(tiny_paths):
    from attribution._base import NotFittedError
    from cdp.errors import CdpError

    with pytest.raises(CdpError, match="half-life"):
        TimeDecay(half_life_days=0).fit(tiny_paths)
    with pytest.raises(CdpError, match="position-based"):
        PositionBased(first=0.7, last=0.7).fit(tiny_paths)
    with pytest.raises(NotFittedError, match="call fit"):
        Linear().credits
    assert PositionBased(first=0.3).get_params() == {"first": 0.3, "last": 0.4}
