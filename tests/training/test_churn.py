"""The churn classifier: a calibrated purchase probability learned as a correction to a starting log-odds."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import sigmoid
from training.churn import PurchaseClassifier


def _buyers(n: int, seed: int = 0):
    """Bought within the horizon with probability sigmoid(margin + 1.2 [x0 > 0] - 0.6): the
    margin is a known starting log-odds per row, x1 is noise. Returns X, y, margin, truth."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    margin = rng.normal(0.0, 1.0, n)
    truth = sigmoid(margin + 1.2 * (X[:, 0] > 0) - 0.6)
    return X, (rng.random(n) < truth).astype(int), margin, truth


def _fitted(n_fit: int = 20_000, n_eval: int = 8000, **settings) -> PurchaseClassifier:
    X, y, margin, _ = _buyers(n_fit)
    Xe, ye, me, _ = _buyers(n_eval, seed=1)
    settings = {"n_estimators": 200, "min_child_samples": 200, **settings}
    return PurchaseClassifier(**settings).fit(X, y, init_score=margin, eval_set=(Xe, ye, me))


def test_its_probabilities_are_the_true_frequencies():
    model = _fitted()
    X, y, margin, truth = _buyers(20_000, seed=2)
    p = model.predict_proba(X, init_score=margin)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert np.mean(np.abs(p[:, 1] - truth)) < 0.03
    # Calibrated: in each tenth of the scores, the share that bought is the mean probability.
    order = np.argsort(p[:, 1])
    for tenth in np.array_split(order, 10):
        assert y[tenth].mean() == pytest.approx(p[tenth, 1].mean(), abs=0.03)


def test_the_calibration_is_fitted_on_the_evaluation_rows_isotonic_only_when_there_are_enough():
    assert _fitted(n_eval=6000).calibrator_.method_ == "isotonic"
    assert _fitted(n_eval=1500).calibrator_.method_ == "sigmoid"
    assert _fitted(n_eval=6000, calibration="sigmoid").calibrator_.method_ == "sigmoid"


def test_calibrated_agrees_with_predict_proba_on_a_callers_own_log_odds():
    model = _fitted(n_fit=3000, n_eval=1000)
    X, _, margin, _ = _buyers(50, seed=3)
    # The purchase model sums the grouped contributions itself: they add up to the raw score.
    log_odds = model.contributions(X).sum(axis=1) + margin
    np.testing.assert_allclose(model.calibrated(log_odds), model.predict_proba(X, init_score=margin)[:, 1])
    np.testing.assert_allclose(log_odds, model.raw_log_odds(X, init_score=margin))


def test_labels_may_be_words_and_the_probability_is_of_the_second_in_order():
    X, y, margin, _ = _buyers(3000)
    words = np.where(y == 1, "stayed", "churned")
    model = PurchaseClassifier(n_estimators=50, min_child_samples=50).fit(X, words, init_score=margin)
    assert model.classes_.tolist() == ["churned", "stayed"]
    p = model.predict_proba(X, init_score=margin)[:, 1]
    assert p[y == 1].mean() > p[y == 0].mean() + 0.2
    assert set(model.predict(X, init_score=margin)) == {"churned", "stayed"}


def test_an_evaluation_set_with_a_class_never_seen_in_training_is_refused():
    X, y, margin, _ = _buyers(300)
    with pytest.raises(ValueError, match="eval_set holds classes"):
        PurchaseClassifier().fit(X, y, eval_set=(X, np.where(y == 1, 2, 0)))
