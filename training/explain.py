"""Exact TreeSHAP contributions of a LightGBM booster of small trees, from per-tree tables.

LightGBM's ``pred_contrib`` walks every tree for every row with the TreeSHAP recursion.
For the purchase models' trees (4 leaves, 3 splits) there is a cheaper exact route: a
row's contributions from one tree depend only on which way it goes at each of the tree's
splits, including the splits off its own path. A tree with ``s`` splits has at most
``2**s`` such decision patterns, so each tree's contributions are computed once per
pattern (Shapley values over the tree's features of the path-dependent expectation, the
very value function TreeSHAP uses), along with the leaf the pattern reaches, and each row
looks its pattern up. The lookups run in a compiled loop (Numba), rows split between
cores: per row and tree a few comparisons and additions, no branch on the row's path.

`TreeContributions` gives the same matrix as ``booster.predict(X, pred_contrib=True)``
(one column per feature, then the expected value) and the same raw scores as
``booster.predict(X, raw_score=True)``, equal to float rounding: the tests compare them.
On a million rows both take a small fraction of LightGBM's own time (BENCHMARKS.md).
"""

from __future__ import annotations

import itertools
import math
import threading
from dataclasses import dataclass

import numba
import numpy as np

# One parallel kernel at a time in a process: Numba's fallback threading layer (workqueue,
# where OpenMP and TBB are missing) aborts when two threads launch parallel kernels at once,
# and the scoring service scores from more than one thread.
KERNEL_LOCK = threading.Lock()
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
    leaf: np.ndarray                # (patterns,): the value of the leaf each pattern reaches


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
    leaf = np.array([expectation(root, frozenset(features), p) for p in range(2 ** len(splits))])
    return _TreeTable(tuple(splits), features, np.ascontiguousarray(table.T), expectation(root, frozenset(), 0), leaf)


class TreeContributions:
    """``pred_contrib`` and raw scores of a fitted single-output LightGBM booster, from per-tree tables.

    Parameters
    ----------
    booster : lightgbm.Booster
        Trees of numerical splits with at most `MAX_SPLITS` splits each.

    Raises
    ------
    ValueError
        A multiclass booster, a categorical split or a tree too large to tabulate: use
        LightGBM's own ``predict`` for those.
    """

    def __init__(self, booster):
        model = booster.dump_model()
        if model.get("num_tree_per_iteration", 1) != 1:
            raise ValueError("only single-output boosters are tabulated")
        self.n_features = int(model["max_feature_idx"]) + 1
        self.trees = [_table(tree["tree_structure"]) for tree in model["tree_info"]]
        self.expected_value = float(sum(t.expected for t in self.trees))
        self._arrays = _Arrays.of(self.trees)

    def predict(self, X, groups: np.ndarray | None = None) -> np.ndarray:
        """Contributions of every row: ``(n_rows, n_features + 1)``, the last column the expected value.

        With ``groups`` (one output column per feature, ``n_groups`` of them), contributions
        are added up per group instead: ``(n_rows, n_groups + 1)``. Summing inside the pass
        saves writing, then reducing, a row × feature matrix (one-hot levels of a feature
        explain together).
        """
        return self.predict_columns(self._checked(X), groups)

    def raw_score(self, X) -> np.ndarray:
        """The booster's raw score of every row (``predict(X, raw_score=True)``): the sum of
        the leaf each tree sends the row to, one table lookup per tree."""
        return self.raw_score_columns(self._checked(X))

    def predict_columns(self, columns: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """`predict` of rows given feature-major (`feature_major`), as the kernels read them."""
        columns = self._checked_columns(columns)
        if groups is None:
            groups = np.arange(self.n_features)
        groups = np.asarray(groups, dtype=np.int64)
        if groups.shape != (self.n_features,) or (len(groups) and groups.min() < 0):
            raise ValueError(f"groups must give each of the {self.n_features} features a column number >= 0")
        width = int(groups.max()) + 1 if len(groups) else 0
        out = np.zeros((columns.shape[1], width + 1))
        a = self._arrays
        with KERNEL_LOCK:
            _contributions_kernel(columns, a.split_feature, a.threshold, a.default_left, a.missing, a.n_splits,
                                  groups[a.tree_features], a.n_tree_features, a.contributions, out[:, :width])
        out[:, -1] = self.expected_value
        return out

    def raw_score_columns(self, columns: np.ndarray) -> np.ndarray:
        """`raw_score` of rows given feature-major (`feature_major`)."""
        columns = self._checked_columns(columns)
        out = np.zeros(columns.shape[1])
        a = self._arrays
        with KERNEL_LOCK:
            _raw_kernel(columns, a.split_feature, a.threshold, a.default_left, a.missing, a.n_splits, a.leaf, out)
        return out

    def _checked(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} columns, got {X.shape[1] if X.ndim == 2 else X.ndim}")
        return np.ascontiguousarray(X.T)

    def _checked_columns(self, columns: np.ndarray) -> np.ndarray:
        columns = np.ascontiguousarray(columns, dtype=np.float64)
        if columns.ndim != 2 or columns.shape[0] != self.n_features:
            raise ValueError(f"expected {self.n_features} columns, got "
                             f"{columns.shape[0] if columns.ndim == 2 else columns.ndim}")
        return columns


def feature_major(frame) -> np.ndarray:
    """A frame's values as float64, one contiguous row per column (``(n_columns, n_rows)``):
    what the kernels read, built column by column rather than through a row-major copy."""
    if isinstance(frame, np.ndarray):
        return np.ascontiguousarray(frame.T, dtype=np.float64)
    out = np.empty((frame.shape[1], frame.shape[0]))
    for j in range(frame.shape[1]):
        out[j] = frame.iloc[:, j].to_numpy(dtype=np.float64)
    return out


_MISSING_CODES = {"None": 0, "Zero": 1, "NaN": 2}


@dataclass(frozen=True)
class _Arrays:
    """Every tree's table in padded arrays, the form the compiled kernels read."""

    split_feature: np.ndarray     # (trees, splits) int64
    threshold: np.ndarray         # (trees, splits) float64
    default_left: np.ndarray      # (trees, splits) bool
    missing: np.ndarray           # (trees, splits) int8: 0 None, 1 Zero, 2 NaN
    n_splits: np.ndarray          # (trees,) int64
    tree_features: np.ndarray     # (trees, features) int64, padded with 0
    n_tree_features: np.ndarray   # (trees,) int64
    contributions: np.ndarray     # (trees, features, patterns) float64
    leaf: np.ndarray              # (trees, patterns) float64: the leaf value of each pattern

    @classmethod
    def of(cls, trees: list[_TreeTable]) -> "_Arrays":
        n = len(trees)
        splits = max([len(t.splits) for t in trees] + [0])
        features = max([len(t.features) for t in trees] + [0])
        patterns = 2 ** splits
        a = cls(np.zeros((n, splits), np.int64), np.zeros((n, splits)), np.zeros((n, splits), bool),
                np.zeros((n, splits), np.int8), np.zeros(n, np.int64), np.zeros((n, features), np.int64),
                np.zeros(n, np.int64), np.zeros((n, features, patterns)), np.zeros((n, patterns)))
        for i, tree in enumerate(trees):
            k = len(tree.splits)
            a.n_splits[i] = k
            for s, split in enumerate(tree.splits):
                a.split_feature[i, s] = split.feature
                a.threshold[i, s] = split.threshold
                a.default_left[i, s] = split.default_left
                a.missing[i, s] = _MISSING_CODES.get(split.missing_type, 0)
            a.n_tree_features[i] = len(tree.features)
            a.tree_features[i, :len(tree.features)] = tree.features
            a.contributions[i, :len(tree.features), :2 ** k] = tree.contributions
            a.leaf[i, :2 ** k] = tree.leaf
        return a


BLOCK_ROWS = 2048  # rows a kernel handles together: their patterns and sums stay in cache


@numba.njit(inline="always")
def _patterns(columns, start, stop, tree, split_feature, threshold, default_left, missing, n_splits, pattern):
    """Each row's decision pattern in one tree: bit ``s`` set when split ``s`` sends it left
    (LightGBM's numerical decision: a NaN is 0 unless missing values are NaN; a missing
    value, NaN or zero as the split says, takes the default direction). Column-major input,
    a loop over rows per split: branch-free and vectorized by the compiler."""
    for r in range(stop - start):
        pattern[r] = 0
    for s in range(n_splits[tree]):
        values = columns[split_feature[tree, s]]
        kind, bound, default, bit = missing[tree, s], threshold[tree, s], default_left[tree, s], 1 << s
        for r in range(stop - start):
            value = values[start + r]
            is_nan = np.isnan(value)
            value = 0.0 if (is_nan and kind != 2) else value
            take_default = (kind == 1 and abs(value) <= ZERO_THRESHOLD) or (kind == 2 and is_nan)
            left = default if take_default else value <= bound
            pattern[r] |= bit if left else 0


@numba.njit(parallel=True, cache=True, nogil=True)
def _contributions_kernel(columns, split_feature, threshold, default_left, missing, n_splits, targets,
                          n_tree_features, contributions, out):  # pragma: no cover - compiled
    n_rows, width = columns.shape[1], out.shape[1]
    for block in numba.prange((n_rows + BLOCK_ROWS - 1) // BLOCK_ROWS):
        start = block * BLOCK_ROWS
        stop = min(start + BLOCK_ROWS, n_rows)
        pattern = np.empty(stop - start, np.int64)
        sums = np.zeros((width, stop - start))
        for tree in range(n_splits.shape[0]):
            _patterns(columns, start, stop, tree, split_feature, threshold, default_left, missing, n_splits, pattern)
            for j in range(n_tree_features[tree]):
                target, table = targets[tree, j], contributions[tree, j]
                for r in range(stop - start):
                    sums[target, r] += table[pattern[r]]
        for r in range(stop - start):
            for g in range(width):
                out[start + r, g] = sums[g, r]


@numba.njit(parallel=True, cache=True, nogil=True)
def _raw_kernel(columns, split_feature, threshold, default_left, missing, n_splits, leaf, out):  # pragma: no cover
    n_rows = columns.shape[1]
    for block in numba.prange((n_rows + BLOCK_ROWS - 1) // BLOCK_ROWS):
        start = block * BLOCK_ROWS
        stop = min(start + BLOCK_ROWS, n_rows)
        pattern = np.empty(stop - start, np.int64)
        total = np.zeros(stop - start)
        for tree in range(n_splits.shape[0]):
            _patterns(columns, start, stop, tree, split_feature, threshold, default_left, missing, n_splits, pattern)
            values = leaf[tree]
            for r in range(stop - start):
                total[r] += values[pattern[r]]
        for r in range(stop - start):
            out[start + r] = total[r]
