"""Service settings: what `cdp serve` writes to the environment is what the service reads back."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cdp.errors import ConfigError
from serving.settings import ServeSettings, settings_from_env
from training.risk_bands import ChurnRiskBands
from training.tracking import TrackingConfig


def test_settings_survive_the_trip_through_the_environment(tmp_path):
    tracking = TrackingConfig("sqlite:////x/mlflow.db", artifact_location="/x/artifacts", scope="s0a1b2c3d4e")
    settings = ServeSettings(tracking=tracking, snapshot_path=tmp_path / "f.parquet",
                             api_key="k" * 32, poll_seconds=5.0, risk_bands=ChurnRiskBands(0.4, 0.8), public_docs=True,
                             horizon_days=91)
    back = settings_from_env(settings.to_env())
    assert back == settings
    assert "k" * 32 not in repr(back)  # the key stays out of reprs and logs


def test_defaults_and_a_made_up_key_when_none_is_given(tmp_path):
    settings = settings_from_env({"CDP_FEATURE_SNAPSHOT": str(tmp_path / "f.parquet")}, root=tmp_path / "mlruns")
    assert settings.api_key is None and settings.poll_seconds == 30 and not settings.public_docs
    assert settings.risk_bands == ChurnRiskBands(0.5, 0.75)
    assert settings.tracking == TrackingConfig.local(tmp_path / "mlruns")


@pytest.mark.parametrize(("env", "message"), [
    ({}, "CDP_FEATURE_SNAPSHOT is not set"),
    ({"CDP_POLL_SECONDS": "soon"}, "CDP_POLL_SECONDS 'soon' is not a number"),
    ({"CDP_POLL_SECONDS": "0.1"}, "at least 1 second"),
    ({"CDP_CHURN_MEDIUM": "0.8", "CDP_CHURN_HIGH": "0.6"}, "0 < medium < high < 1"),
    ({"CDP_PUBLIC_DOCS": "maybe"}, "CDP_PUBLIC_DOCS 'maybe' is not true or false"),
    ({"CDP_API_KEY": "short"}, "at least 16 characters"),
])
def test_a_bad_variable_is_named_in_the_error(env, message):
    base = {"CDP_FEATURE_SNAPSHOT": "/x/online_features.parquet"} if env else {}
    with pytest.raises(ConfigError, match=message):
        settings_from_env({**base, **env}, root=Path("mlruns"))


@pytest.mark.parametrize(("probability", "risk"), [
    (0.0, "low"), (0.499, "low"), (0.5, "medium"), (0.7499, "medium"), (0.75, "high"), (1.0, "high"),
    (None, None), (float("nan"), None),
])
def test_churn_risk_bands_include_their_lower_bound(probability, risk):
    assert ChurnRiskBands().band(probability) == risk


def test_risk_bands_vectorized_agree_with_the_scalar_rule_at_the_edges():
    bands = ChurnRiskBands(medium=0.5, high=0.75)
    churn = np.array([np.nan, 0.0, 0.4999, 0.5, 0.7499, 0.75, 1.0])
    expected = [None, "low", "low", "medium", "medium", "high", "high"]  # by the band definitions
    assert list(bands.bands(churn)) == expected
    assert [bands.band(None if math.isnan(p) else p) for p in churn] == expected
