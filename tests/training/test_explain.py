"""TreeContributions: LightGBM's pred_contrib from per-tree pattern tables, exactly."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from training.explain import BLOCK_ROWS, TreeContributions, _table


def _leaf(value: float, count: int) -> dict:
    return {"leaf_value": value, "leaf_count": count}


def _split(feature: int, threshold: float, count: int, left: dict, right: dict) -> dict:
    return {"split_feature": feature, "threshold": threshold, "decision_type": "<=", "default_left": True,
            "missing_type": "None", "internal_count": count, "left_child": left, "right_child": right}


def test_a_stump_credits_its_feature_with_the_distance_from_the_average():
    # 4 rows go left (value 1.0), 6 right (value -1.0): expected value (4 - 6) / 10 = -0.2.
    table = _table(_split(0, 0.5, 10, _leaf(1.0, 4), _leaf(-1.0, 6)))
    assert table.expected == pytest.approx(-0.2)
    assert table.contributions[0][1] == pytest.approx(1.2)    # went left: 1.0 - (-0.2)
    assert table.contributions[0][0] == pytest.approx(-0.8)   # went right: -1.0 - (-0.2)


def test_two_features_share_the_difference_as_shapley_values_worked_by_hand():
    # Root on x0 (10 rows): left to a split on x1 (4 rows: 3 → 2.0, 1 → 6.0), right leaf 0.0 (6 rows).
    # v(∅) = (3·2 + 1·6 + 6·0) / 10 = 1.2. A row going left, then right (x1 large):
    # v({0}) = (3·2 + 1·6) / 4 = 3, v({1}) = (4·6 + 6·0) / 10 = 2.4, v({0,1}) = 6.
    # φ0 = ½(3 − 1.2) + ½(6 − 2.4) = 2.7; φ1 = ½(2.4 − 1.2) + ½(6 − 3) = 2.1; 1.2 + 2.7 + 2.1 = 6.
    tree = _split(0, 0.5, 10, _split(1, 0.5, 4, _leaf(2.0, 3), _leaf(6.0, 1)), _leaf(0.0, 6))
    table = _table(tree)
    pattern = 0b01  # split 0 (x0) goes left, split 1 (x1) goes right
    assert table.expected == pytest.approx(1.2)
    assert table.contributions[0][pattern] == pytest.approx(2.7)
    assert table.contributions[1][pattern] == pytest.approx(2.1)


@pytest.mark.parametrize("num_leaves, zero_as_missing", [(4, False), (8, False), (4, True)])
def test_contributions_equal_lightgbm_pred_contrib(num_leaves, zero_as_missing):
    rng = np.random.default_rng(num_leaves)
    X = rng.normal(size=(3000, 6))
    X[rng.random(X.shape) < 0.1] = np.nan          # missing values take the default direction
    X[:, 4] = rng.integers(0, 3, size=len(X))      # a column with many exact zeros
    y = (np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1]) * X[:, 4] + rng.normal(size=len(X)) > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=60, num_leaves=num_leaves, min_child_samples=20, verbose=-1,
                               zero_as_missing=zero_as_missing).fit(X, y)
    booster = model.booster_
    fresh = rng.normal(size=(2000, 6))
    fresh[rng.random(fresh.shape) < 0.1] = np.nan
    fresh[:, 4] = rng.integers(0, 3, size=len(fresh))
    tables = TreeContributions(booster)
    mine = tables.predict(fresh)
    reference = booster.predict(fresh, pred_contrib=True)
    np.testing.assert_allclose(mine, reference, rtol=0, atol=1e-9)
    raw = booster.predict(fresh, raw_score=True)
    np.testing.assert_allclose(mine.sum(axis=1), raw, atol=1e-9)
    np.testing.assert_allclose(tables.raw_score(fresh), raw, rtol=0, atol=1e-9)
    # Grouped: features 0, 2 and 5 into column 1, the rest into column 0 (BLOCK_ROWS-sized
    # blocks and a partial one: 2,000 rows is not a multiple of the block).
    grouped = tables.predict(fresh, groups=np.array([1, 0, 1, 0, 0, 1]))
    np.testing.assert_allclose(grouped[:, 0], reference[:, [1, 3, 4]].sum(axis=1), atol=1e-9)
    np.testing.assert_allclose(grouped[:, 1], reference[:, [0, 2, 5]].sum(axis=1), atol=1e-9)
    np.testing.assert_allclose(grouped[:, 2], reference[:, -1], atol=1e-12)


def test_more_rows_than_one_block_and_a_single_leaf_tree():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(4000, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=len(X))
    # min_child_samples above the row count: the first tree cannot split (a lone leaf).
    stump = lgb.LGBMRegressor(n_estimators=3, num_leaves=4, min_child_samples=5000, verbose=-1).fit(X, y).booster_
    assert all(tree["num_leaves"] == 1 for tree in stump.dump_model()["tree_info"])
    fresh = rng.normal(size=(BLOCK_ROWS * 3 + 17, 3))
    np.testing.assert_allclose(TreeContributions(stump).raw_score(fresh), stump.predict(fresh, raw_score=True),
                               atol=1e-12)
    model = lgb.LGBMRegressor(n_estimators=40, num_leaves=8, verbose=-1).fit(X, y).booster_
    np.testing.assert_allclose(TreeContributions(model).raw_score(fresh), model.predict(fresh, raw_score=True),
                               atol=1e-9)
    np.testing.assert_allclose(TreeContributions(model).predict(fresh), model.predict(fresh, pred_contrib=True),
                               atol=1e-9)


def test_trees_it_cannot_tabulate_are_refused():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 3))
    y = (X.sum(axis=1) + rng.normal(size=len(X)) > 0).astype(int)
    big = lgb.LGBMClassifier(n_estimators=3, num_leaves=32, min_child_samples=5, verbose=-1).fit(X, y)
    assert max(tree["num_leaves"] for tree in big.booster_.dump_model()["tree_info"]) > 8
    with pytest.raises(ValueError, match="too large to tabulate"):
        TreeContributions(big.booster_)
    small = TreeContributions(lgb.LGBMClassifier(n_estimators=2, num_leaves=4, verbose=-1).fit(X, y).booster_)
    with pytest.raises(ValueError, match="groups must give each of the 3 features"):
        small.predict(X, groups=np.array([0, -1, 1]))
    with pytest.raises(ValueError, match="expected 3 columns"):
        TreeContributions(lgb.LGBMClassifier(n_estimators=2, num_leaves=4, verbose=-1).fit(X, y).booster_).predict(
            X[:, :2])
