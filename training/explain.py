"""Exact TreeSHAP contributions of a LightGBM booster of small trees, from per-tree tables.

LightGBM's ``pred_contrib`` walks every tree for every row with the TreeSHAP recursion.
For the purchase models' trees (4 leaves, 3 splits) there is a cheaper exact route: a
row's contributions from one tree depend only on which way it goes at each of the tree's
splits, including the splits off its own path. A tree with ``s`` splits has at most
``2**s`` such decision patterns, so each tree's contributions are computed once per
pattern (Shapley values over the tree's features of the path-dependent expectation, the
very value function TreeSHAP uses) and each row looks its pattern up. On a million rows
this costs a few vectorized comparisons and gathers per tree.

`TreeContributions` gives the same matrix as ``booster.predict(X, pred_contrib=True)``
(one column per feature, then the expected value), equal to float rounding: the tests
compare the two.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

# Splits per tree up to which patterns are tabulated (2**7 patterns × 2**7 subsets at most).
MAX_SPLITS = 7
ZERO_THRESHOLD = 1e-35  # LightGBM's kZeroThreshold: |x| at or below it is zero


@dataclass(frozen=True)
class _Split:
    feature: int
    threshold: float
    default_left: bool
    missing_type: str


@dataclass(frozen=True)
class _TreeTable:
    splits: tuple[_Split, ...]
    features: tuple[int, ...]       # distinct features the tree splits on
    contributions: np.ndarray       # (len(features), patterns): Shapley value of each feature per pattern
    expected: float                 # the tree's value with no feature known


def _go_left(split: _Split, values: np.ndarray) -> np.ndarray:
    """LightGBM's numerical decision for a column of values (missing handling included)."""
    if split.missing_type == "NaN":
        missing = np.isnan(values)
    elif split.missing_type == "Zero":
        missing = np.isnan(values) | (np.abs(values) <= ZERO_THRESHOLD)
    else:  # "None": a NaN counts as 0
        values = np.nan_to_num(values, nan=0.0)
        missing = np.zeros(len(values), dtype=bool)
    return np.where(missing, split.default_left, values <= split.threshold)


def _table(structure: dict) -> _TreeTable:
    """Index a tree's splits in preorder and tabulate its contributions for every pattern."""
    splits: list[_Split] = []

    def index(node: dict) -> dict:
        if "leaf_value" in node:
            return {"value": float(node["leaf_value"]), "count": float(node.get("leaf_count", 1))}
        if node.get("decision_type", "<=") != "<=":
            raise ValueError("categorical splits are not tabulated")
        splits.append(_Split(int(node["split_feature"]), float(node["threshold"]), bool(node["default_left"]),
                             str(node.get("missing_type", "None"))))
        position = len(splits) - 1
        return {"split": position, "count": float(node["internal_count"]),
                "left": index(node["left_child"]), "right": index(node["right_child"])}

    root = index(structure)
    if len(splits) > MAX_SPLITS:
        raise ValueError(f"a tree with {len(splits)} splits is too large to tabulate")
    features = tuple(sorted({s.feature for s in splits}))

    def expectation(node: dict, known: frozenset, pattern: int) -> float:
        if "value" in node:
            return node["value"]
        split = splits[node["split"]]
        if split.feature in known:
            left = bool(pattern >> node["split"] & 1)
            return expectation(node["left"] if left else node["right"], known, pattern)
        left, right = node["left"], node["right"]
        return (left["count"] * expectation(left, known, pattern)
                + right["count"] * expectation(right, known, pattern)) / (left["count"] + right["count"])

    n = len(features)
    weights = {size: math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n) for size in range(n)}
    table = np.zeros((2 ** len(splits), n))
    for pattern in range(2 ** len(splits)):
        value = {}
        for size in range(n + 1):
            for subset in itertools.combinations(features, size):
                value[frozenset(subset)] = expectation(root, frozenset(subset), pattern)
        for j, feature in enumerate(features):
            others = [f for f in features if f != feature]
            table[pattern, j] = sum(weights[len(s)] * (value[frozenset(s) | {feature}] - value[frozenset(s)])
                                    for size in range(n) for s in itertools.combinations(others, size))
    return _TreeTable(tuple(splits), features, np.ascontiguousarray(table.T), expectation(root, frozenset(), 0))


class TreeContributions:
    """``pred_contrib`` of a fitted single-output LightGBM booster, computed from per-tree tables.

    Parameters
    ----------
    booster : lightgbm.Booster
        Trees of numerical splits with at most `MAX_SPLITS` splits each.

    Raises
    ------
    ValueError
        A multiclass booster, a categorical split or a tree too large to tabulate: use
        LightGBM's own ``pred_contrib`` for those.
    """

    def __init__(self, booster):
        model = booster.dump_model()
        if model.get("num_tree_per_iteration", 1) != 1:
            raise ValueError("only single-output boosters are tabulated")
        self.n_features = int(model["max_feature_idx"]) + 1
        self.trees = [_table(tree["tree_structure"]) for tree in model["tree_info"]]
        self.expected_value = float(sum(t.expected for t in self.trees))

    def predict(self, X, chunk_rows: int = 32_768) -> np.ndarray:
        """Contributions of every row: ``(n_rows, n_features + 1)``, the last column the expected value.

        Rows are taken ``chunk_rows`` at a time, so a chunk's columns stay in cache.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} columns, got {X.shape[1] if X.ndim == 2 else X.ndim}")
        out = np.zeros((len(X), self.n_features + 1))
        out[:, -1] = self.expected_value
        for start in range(0, len(X), chunk_rows):
            self._add(X[start:start + chunk_rows], out[start:start + chunk_rows])
        return out

    def _add(self, x: np.ndarray, block: np.ndarray) -> None:
        # Feature-major copies, so every column read and every contribution added is contiguous.
        columns = np.ascontiguousarray(x.T)
        sums = np.zeros((self.n_features, len(x)))
        for tree in self.trees:
            if not tree.splits:
                continue
            pattern = np.zeros(len(x), dtype=np.intp)
            for bit, split in enumerate(tree.splits):
                pattern |= _go_left(split, columns[split.feature]).astype(np.intp) << bit
            for j, feature in enumerate(tree.features):
                sums[feature] += tree.contributions[j][pattern]
        block[:, :-1] += sums.T
