"""All models at once: the long table, model names, sums, bootstrap intervals."""

import numpy as np
import pytest

from attribution.credit import MODEL_NAMES, ModelSettings, attribute, bootstrap_shares, parse_model_names
from attribution.paths import PathCounts
from cdp.errors import CdpError


@pytest.fixture
def random_paths() -> PathCounts:
    rng = np.random.default_rng(11)
    channels = ["facebook", "instagram", "email", "google_search", "direct"]
    paths = [list(rng.choice(channels, size=rng.integers(1, 6))) for _ in range(400)]
    conv = rng.integers(0, 5, 400).astype(float)
    return PathCounts.from_paths(paths, conv, conv * rng.gamma(3, 40, 400), rng.integers(0, 8, 400))


def test_every_model_credits_exactly_the_totals(random_paths):
    table = attribute(random_paths, MODEL_NAMES)
    assert list(table.columns) == ["channel", "model", "conversions", "value", "share"]
    assert list(dict.fromkeys(table["model"])) == list(MODEL_NAMES)
    sums = table.groupby("model")[["conversions", "value", "share"]].sum()
    assert np.allclose(sums["conversions"], random_paths.total_conversions, rtol=1e-12, atol=0)
    assert np.allclose(sums["value"], random_paths.total_value, rtol=1e-12, atol=0)
    assert np.allclose(sums["share"], 1.0, rtol=1e-12, atol=0)
    assert (table["conversions"] >= 0).all()


def test_model_names():
    assert parse_model_names("all") == MODEL_NAMES
    assert parse_model_names("shapley, markov_2,last_touch") == ("last_touch", "markov_2", "shapley")
    with pytest.raises(CdpError, match=r"unknown model name\(s\) 'markov_5', 'ushaped' .* first_touch, last_touch"):
        parse_model_names("markov_5,ushaped,linear")
    with pytest.raises(CdpError, match="none given"):
        parse_model_names(" , ")


def test_bootstrap_intervals_are_seeded_and_surround_the_estimate(random_paths):
    names = ("last_touch", "markov_1", "shapley")
    a = bootstrap_shares(random_paths, names, ModelSettings(), resamples=40, seed=5)
    b = bootstrap_shares(random_paths, names, ModelSettings(), resamples=40, seed=5)
    assert a.equals(b)
    share = attribute(random_paths, names)["share"].to_numpy()
    assert (a["share_low"].to_numpy() < a["share_high"].to_numpy()).all()
    # the point estimate lies inside its 95% interval for all but a rare channel
    inside = (a["share_low"].to_numpy() <= share) & (share <= a["share_high"].to_numpy())
    assert inside.mean() >= 0.9
