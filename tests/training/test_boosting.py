"""Boosters from a starting margin: the scikit-learn contract, the margin, early stopping, tables."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from training.boosting import TABULATED_FROM_ROWS, MarginRegressor
from training.churn import PurchaseClassifier

SMALL = dict(n_estimators=50, min_child_samples=5)


@parametrize_with_checks([PurchaseClassifier(**SMALL), MarginRegressor("poisson", **SMALL),
                          MarginRegressor("tweedie", **SMALL)])
def test_the_boosters_keep_the_scikit_learn_contract(estimator, check):
    check(estimator)


def _counts(n: int, seed: int = 0):
    """Purchase days ~ Poisson(exp(margin + 0.7 [x0 > 0])): x1 is noise, the margin known per row."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    margin = rng.normal(0.0, 0.5, n)
    y = rng.poisson(np.exp(margin + 0.7 * (X[:, 0] > 0)))
    return X, y.astype(float), margin


def test_the_regressor_learns_the_correction_to_its_starting_margin():
    X, y, margin = _counts(20_000)
    model = MarginRegressor("poisson", n_estimators=100, min_child_samples=200).fit(X, y, init_score=margin)
    test, _, _ = _counts(20_000, seed=1)
    base = model.predict(test, init_score=np.zeros(len(test)))
    below, above = base[test[:, 0] <= 0].mean(), base[test[:, 0] > 0].mean()
    # The trees add 0 below x0 = 0 and 0.7 above: from a margin of 0, 1 purchase day and exp(0.7) = 2.01.
    assert below == pytest.approx(1.0, abs=0.05)
    assert above / below == pytest.approx(np.exp(0.7), rel=0.05)
    # The margin carries through: a row starting at log 3 gets three times what it gets from 0.
    assert model.predict(test[:1], init_score=[np.log(3.0)])[0] == pytest.approx(3 * base[0])


def test_without_learning_the_answer_is_the_margin_itself():
    X, y, margin = _counts(500)
    model = MarginRegressor("poisson", learning_rate=1e-9, n_estimators=5, min_child_samples=5)
    assert model.fit(X, y, init_score=margin).predict(X, init_score=margin) == pytest.approx(np.exp(margin),
                                                                                            rel=1e-6)


def test_early_stopping_picks_the_trees_and_the_refit_learns_from_both_sets():
    X, y, margin = _counts(6000)
    fit, later = slice(0, 4000), slice(4000, None)
    settings = dict(n_estimators=400, learning_rate=0.3, min_child_samples=50, early_stopping_rounds=10)
    stopped = MarginRegressor("poisson", refit=False, **settings).fit(
        X[fit], y[fit], init_score=margin[fit], eval_set=(X[later], y[later], margin[later]))
    assert 1 <= stopped.best_iteration_ < 400  # one real effect: it stops long before the cap
    refitted = MarginRegressor("poisson", **settings).fit(
        X[fit], y[fit], init_score=margin[fit], eval_set=(X[later], y[later], margin[later]))
    assert refitted.best_iteration_ == stopped.best_iteration_
    assert refitted.booster_.num_trees() == refitted.best_iteration_
    # The refit is a booster of that many trees on every row, the evaluation ones included.
    settings.update(n_estimators=refitted.best_iteration_)
    everything = MarginRegressor("poisson", **settings).fit(X, y, init_score=margin)
    assert refitted.booster_.model_to_string() == everything.booster_.model_to_string()
    assert stopped.booster_.model_to_string() != everything.booster_.model_to_string()


def test_many_rows_are_scored_from_the_tree_tables_as_lightgbm_scores_them():
    X, y, margin = _counts(TABULATED_FROM_ROWS + 1000)
    model = MarginRegressor("tweedie", min_child_samples=50, n_estimators=100).fit(X, y, init_score=margin)
    tabled = model.raw_score(X)
    assert model.__dict__["_tables_cache"]  # the tables served it
    np.testing.assert_allclose(tabled, model.booster_.predict(X, raw_score=True), rtol=1e-10, atol=1e-12)
    # Few rows take LightGBM's own walk, with the same answers.
    np.testing.assert_allclose(model.raw_score(X[:10]), tabled[:10], rtol=1e-10, atol=1e-12)
    # The tables are a cache: never pickled, rebuilt on demand, the same answers after.
    again = pickle.loads(pickle.dumps(model))
    assert "_tables_cache" not in again.__dict__
    np.testing.assert_allclose(again.raw_score(X), tabled, rtol=1e-12)


@pytest.mark.parametrize("rows", [50, TABULATED_FROM_ROWS + 10])
def test_contributions_add_up_to_the_raw_score_and_group_by_feature(rows):
    X, y, margin = _counts(rows)
    X = np.column_stack([X, X[:, :1] * 0.5])  # a third column belonging with the first
    model = MarginRegressor("poisson", min_child_samples=5, n_estimators=60).fit(X, y, init_score=margin)
    each = model.contributions(X)
    assert each.shape == (rows, 4)
    np.testing.assert_allclose(each.sum(axis=1), model.raw_score(X), rtol=1e-9, atol=1e-9)
    grouped = model.contributions(X, groups=np.array([0, 1, 0]))
    np.testing.assert_allclose(grouped, np.column_stack([each[:, 0] + each[:, 2], each[:, 1], each[:, 3]]),
                               rtol=1e-9, atol=1e-12)


def test_a_few_rows_get_the_very_numbers_the_scikit_learn_wrapper_gives_for_a_frame():
    """Below FEW_ROWS rows the Booster predicts from a float64 array (no frame handling): the same
    walk, so the same bits, as the wrapper on a frame, and as those rows among many."""
    from features.preprocess import booster_frame
    from training.boosting import FEW_ROWS

    X, y, margin = _counts(3000)
    frame = pd.DataFrame(X, columns=["Oil, olive", "visits"])
    model = MarginRegressor("tweedie", min_child_samples=20, n_estimators=80).fit(frame, y, init_score=margin)
    few = frame.iloc[100:100 + FEW_ROWS - 1]
    wrapper = model.model_.predict(booster_frame(few), raw_score=True)
    assert np.array_equal(model.raw_score(few), wrapper)
    assert np.array_equal(model.raw_score(few.iloc[[5]]), wrapper[[5]])
    assert np.array_equal(model.raw_score(frame)[100:100 + len(few)], wrapper)  # many rows: the wrapper itself
    assert np.array_equal(model.contributions(few, groups=np.array([0, 0])),
                          model.contributions(frame, groups=np.array([0, 0]))[100:100 + len(few)])


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_rows_given_as_a_frame_keep_their_names_and_reach_the_booster_by_position():
    X, y, margin = _counts(300)
    frame = pd.DataFrame(X, columns=["Oil, olive", 'x: "y" [z]'])  # names LightGBM itself refuses
    model = MarginRegressor("poisson", min_child_samples=5, n_estimators=20).fit(frame, y, init_score=margin)
    assert model.feature_names_in_.tolist() == ["Oil, olive", 'x: "y" [z]']
    assert model.booster_.feature_name() == ["f0", "f1"]
    np.testing.assert_allclose(model.predict(frame), model.predict(X))


@pytest.mark.parametrize("call, message", [
    (lambda X, y, m: MarginRegressor("gamma").fit(X, y), "objective must be"),
    (lambda X, y, m: MarginRegressor().fit(X, -y), "targets >= 0"),
    (lambda X, y, m: MarginRegressor().fit(X, y, init_score=m[:-1]), "init_score has 299 values for 300 rows"),
    (lambda X, y, m: MarginRegressor().fit(X, y, eval_set=(X,)), r"eval_set must be \(X, y\)"),
    (lambda X, y, m: MarginRegressor().fit(X, y, eval_set=(X, y[:-1])), "300 rows and 299 targets"),
])
def test_bad_arguments_get_a_clear_error(call, message):
    X, y, margin = _counts(300)
    with pytest.raises(ValueError, match=message):
        call(X, y, margin)
