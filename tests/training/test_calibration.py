"""Calibration: raw probabilities in, frequencies out; isotonic on many tuning rows, Platt on few."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from training.calibration import ProbabilityCalibrator, sigmoid


def _overconfident(n: int, seed: int = 0):
    """Raw probabilities sigmoid(z) of outcomes whose true probability is sigmoid(0.5 z - 0.4)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, n)
    return sigmoid(z), (rng.random(n) < sigmoid(0.5 * z - 0.4)).astype(int), sigmoid(0.5 * z - 0.4)


def test_platt_scaling_recovers_the_slope_and_intercept_on_the_log_odds():
    raw, y, _ = _overconfident(20_000)
    calibrator = ProbabilityCalibrator(method="sigmoid").fit(raw, y)
    assert calibrator.method_ == "sigmoid"
    assert calibrator.model_.coef_[0, 0] == pytest.approx(0.5, abs=0.04)
    assert calibrator.model_.intercept_[0] == pytest.approx(-0.4, abs=0.05)


def test_auto_picks_isotonic_from_enough_rows_and_its_probabilities_are_frequencies():
    raw, y, truth = _overconfident(20_000)
    calibrator = ProbabilityCalibrator().fit(raw, y)
    assert calibrator.method_ == "isotonic"
    test_raw, _, test_truth = _overconfident(20_000, seed=1)
    p = calibrator.predict(test_raw)
    assert np.mean(np.abs(p - test_truth)) < 0.03  # the raw ones are off by far more:
    assert np.mean(np.abs(test_raw - test_truth)) > 0.10
    assert np.all(np.diff(p[np.argsort(test_raw)]) >= 0)  # monotone: the ranking is kept


def test_auto_picks_platt_below_the_threshold_and_never_says_certain():
    raw, y, _ = _overconfident(300)
    assert ProbabilityCalibrator().fit(raw, y).method_ == "sigmoid"
    assert ProbabilityCalibrator(isotonic_from_rows=200).fit(raw, y).method_ == "isotonic"
    for method in ("isotonic", "sigmoid"):
        p = ProbabilityCalibrator(method=method).fit(raw, y).predict(np.array([0.0, 1e-12, 1.0]))
        assert np.all((p > 0) & (p < 1)), method
    # Isotonic's bounds are one tuning row's weight from 0 and 1.
    p = ProbabilityCalibrator(method="isotonic").fit(raw, y).predict(np.array([0.0, 1.0]))
    assert p[0] >= 1 / 300 and p[1] <= 1 - 1 / 300


def test_a_column_of_raw_probabilities_is_read_like_a_flat_array():
    raw, y, _ = _overconfident(1000)
    flat = ProbabilityCalibrator().fit(raw, y).predict(raw[:10])
    column = ProbabilityCalibrator().fit(raw.reshape(-1, 1), y).predict(raw[:10].reshape(-1, 1))
    np.testing.assert_array_equal(flat, column)


@pytest.mark.parametrize("raw, y, message", [
    (np.array([0.2, 0.8]), np.array([0, 2]), "0 or 1"),
    (np.array([0.2, 0.8]), np.array([0, 1, 1]), "2 raw probabilities for 3 outcomes"),
    (np.array([[0.2, 0.3], [0.8, 0.1]]), np.array([0, 1]), "one column"),
    (np.array([0.2, np.nan]), np.array([0, 1]), "NaN"),
    (np.array([0.2, 0.8]), np.array([1, 1]), "both outcomes"),
])
def test_bad_tuning_data_gets_a_clear_error(raw, y, message):
    with pytest.raises(ValueError, match=message):
        ProbabilityCalibrator(method="sigmoid").fit(raw, y)


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method must be one of"):
        ProbabilityCalibrator(method="beta").fit(np.array([0.2, 0.8]), np.array([0, 1]))


def test_the_scikit_learn_parameter_contract_holds():
    # One score in, one probability out (like IsotonicRegression): scikit-learn's checks on
    # 2-d data do not apply, its parameter checks do.
    calibrator = ProbabilityCalibrator(method="sigmoid", isotonic_from_rows=10)
    check_parameters_default_constructible("ProbabilityCalibrator", calibrator)
    check_no_attributes_set_in_init("ProbabilityCalibrator", calibrator)
    check_get_params_invariance("ProbabilityCalibrator", calibrator)
    check_set_params("ProbabilityCalibrator", calibrator)
    assert clone(calibrator).get_params() == {"method": "sigmoid", "isotonic_from_rows": 10}
