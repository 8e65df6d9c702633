"""Shapley values of the channel-set game, by hand and against the 2^n subset formula."""

import itertools
import math

import numpy as np
import pytest

from attribution.paths import PathCounts
from attribution.shapley import Shapley
from tests.attribution.conftest import as_dict


def test_tiny_example_by_hand(tiny_paths):
    # channel sets: {a,b}: 1 conversion (10), {b}: 1 (20), {a}: 0, {a,b,c}: 1 (30)
    # phi(a) = 1/2 + 1/3 = 5/6, phi(b) = 1/2 + 1 + 1/3 = 11/6, phi(c) = 1/3
    # value: a = 5 + 10 = 15, b = 5 + 20 + 10 = 35, c = 10
    model = Shapley().fit(tiny_paths)
    assert as_dict(model.credits_) == pytest.approx({"a": 5 / 6, "b": 11 / 6, "c": 1 / 3}, abs=1e-12)
    assert as_dict(model.credits_, "value") == pytest.approx({"a": 15, "b": 35, "c": 10}, abs=1e-12)
    assert model.n_channel_sets_ == 3


def subset_formula(paths: PathCounts, weights: np.ndarray) -> dict:
    """phi(c) = sum over S not containing c of |S|! (n-|S|-1)! / n! (v(S+c) - v(S)),
    v(S) = weights of paths whose channels all lie in S."""
    n = len(paths.channels)
    sets = [frozenset(paths.channels[c] for c in row[:k]) for row, k in zip(paths.steps, paths.lengths)]

    def v(coalition):
        return sum(w for s, w in zip(sets, weights) if s <= coalition)

    phi = {}
    for c in paths.channels:
        others = [x for x in paths.channels if x != c]
        phi[c] = sum(math.factorial(r) * math.factorial(n - r - 1) / math.factorial(n)
                     * (v(frozenset(s) | {c}) - v(frozenset(s)))
                     for r in range(n) for s in itertools.combinations(others, r))
    return phi


def test_equals_the_subset_formula_and_is_efficient():
    rng = np.random.default_rng(3)
    channels = list("abcdef")
    paths = [list(rng.choice(channels, size=rng.integers(1, 5))) for _ in range(60)]
    conv = rng.integers(0, 5, 60).astype(float)
    data = PathCounts.from_paths(paths, conv, conv * 17.5, rng.integers(0, 3, 60))
    model = Shapley().fit(data)
    assert as_dict(model.credits_) == pytest.approx(subset_formula(data, data.conversions), abs=1e-9)
    assert as_dict(model.credits_, "value") == pytest.approx(subset_formula(data, data.value), abs=1e-9)
    assert model.credits_["conversions"].sum() == pytest.approx(data.total_conversions, rel=1e-12)
