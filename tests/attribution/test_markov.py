"""Markov-chain attribution: absorbing chains solved by hand."""

import numpy as np
import pytest

from attribution.markov import MarkovChain
from attribution.paths import PathCounts
from cdp.errors import CdpError
from tests.attribution.conftest import as_dict


@pytest.fixture
def three_paths() -> PathCounts:
    # a > b: 1 conversion (10); b: 1 conversion (20) and 1 null; a: 1 null
    return PathCounts.from_paths([["a", "b"], ["b"], ["a"]], conversions=[1, 1, 0], value=[10, 20, 0], nulls=[0, 1, 1])


def test_order_1_solved_by_hand(three_paths):
    # start -> a 2/4, start -> b 2/4; a -> b 1/2, a -> null 1/2; b -> conv 2/3, b -> null 1/3
    # P(b) = 2/3, P(a) = 1/2 * 2/3 = 1/3, P = 1/2 (1/3 + 2/3) = 1/2  (= 2 conversions / 4 journeys)
    # without a: P = 1/2 * 2/3 = 1/3 -> removal effect 1 - (1/3)/(1/2) = 1/3; without b: P = 0 -> 1
    # shares 1/3 : 1 = 1/4 : 3/4 of 2 conversions -> a 0.5, b 1.5
    # value: leaving b pays 30/3 = 10 -> E(b) = 10, E(a) = 5, E = 7.5; without a 5 (effect 1/3), without b 0 (1)
    model = MarkovChain(order=1).fit(three_paths)
    assert model.conversion_probability_ == pytest.approx(0.5, abs=1e-12)
    assert as_dict(model.removal_effects_) == pytest.approx({"a": 1 / 3, "b": 1.0}, abs=1e-12)
    assert as_dict(model.credits_) == pytest.approx({"a": 0.5, "b": 1.5}, abs=1e-12)
    assert as_dict(model.credits_, "value") == pytest.approx({"a": 7.5, "b": 22.5}, abs=1e-12)
    assert model.n_states_ == 3


def test_order_2_solved_by_hand(three_paths):
    # states (·,a) (·,b) (a,b): start -> (·,a) 1/2, (·,b) 1/2; (·,a) -> (a,b) 1/2, null 1/2;
    # (a,b) -> conv 1; (·,b) -> conv 1/2, null 1/2.  P = 1/2 * 1/2 * 1 + 1/2 * 1/2 = 1/2
    # without a ((·,a) absorbed): P = 1/4 -> effect 1/2; without b: P = 0 -> effect 1
    # shares 1/2 : 1 = 1/3 : 2/3 -> a 2/3, b 4/3
    # value: leaving (a,b) pays 10, leaving (·,b) pays 20/2 = 10: E = 1/2*1/2*10 + 1/2*10 = 7.5
    # without a: 5 -> effect 1/3; without b: 0 -> effect 1; value shares 1/4 : 3/4 of 30
    model = MarkovChain(order=2).fit(three_paths)
    assert model.n_states_ == 4
    assert as_dict(model.credits_) == pytest.approx({"a": 2 / 3, "b": 4 / 3}, abs=1e-12)
    assert as_dict(model.credits_, "value") == pytest.approx({"a": 7.5, "b": 22.5}, abs=1e-12)


def test_a_cycle_is_solved_exactly_not_simulated():
    # a > b > a: 1 conversion; b: 1 null.  start -> a 1/2, b 1/2; a -> b 1/2, conv 1/2; b -> a 1/2, null 1/2
    # P(a) = 1/2 + 1/2 P(b), P(b) = 1/2 P(a) -> P(a) = 2/3, P(b) = 1/3, P = 1/2
    # without a: 0 (effect 1); without b: start -> a -> conv = 1/2 * 1/2 = 1/4 (effect 1/2) -> a 2/3, b 1/3
    paths = PathCounts.from_paths([["a", "b", "a"], ["b"]], conversions=[1, 0], value=[9, 0], nulls=[0, 1])
    model = MarkovChain(order=1).fit(paths)
    assert model.conversion_probability_ == pytest.approx(0.5, abs=1e-12)
    assert as_dict(model.credits_) == pytest.approx({"a": 2 / 3, "b": 1 / 3}, abs=1e-12)
    assert as_dict(model.credits_, "value") == pytest.approx({"a": 6, "b": 3}, abs=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_chain_reproduces_the_observed_conversion_rate_and_credits_sum_to_totals(order):
    rng = np.random.default_rng(order)
    channels = list("abcde")
    paths = [list(rng.choice(channels, size=rng.integers(1, 7))) for _ in range(300)]
    conv = rng.integers(0, 4, 300).astype(float)
    data = PathCounts.from_paths(paths, conv, conv * rng.gamma(2, 50, 300), rng.integers(0, 6, 300))
    model = MarkovChain(order=order).fit(data)
    # observed transition counts conserve flow, so the chain's P(conversion) is the observed rate
    assert model.conversion_probability_ == pytest.approx(
        data.total_conversions / (data.total_conversions + data.total_nulls), rel=1e-9)
    assert model.credits_["conversions"].sum() == pytest.approx(data.total_conversions, rel=1e-12)
    assert model.credits_["value"].sum() == pytest.approx(data.total_value, rel=1e-12)
    assert (model.removal_effects_[["conversions", "value"]].to_numpy() >= 0).all()


def test_no_conversions_gives_no_credit_and_bad_orders_are_refused(three_paths):
    none = PathCounts.from_paths([["a"], ["b"]], [0, 0], [0, 0], [3, 1])
    assert MarkovChain().fit(none).credits_["conversions"].tolist() == [0.0, 0.0]
    for order in (0, 5):
        with pytest.raises(CdpError, match="order must be 1 to 4"):
            MarkovChain(order=order).fit(three_paths)
