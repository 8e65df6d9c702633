"""LightGBM boosters that learn a correction to a starting margin, as scikit-learn estimators.

The purchase models start every customer from a classical model's answer (BG/NBD's log-odds
of a purchase, its log expected purchase days) and let the trees learn what it cannot see.
`MarginBooster` holds what every such booster shares: the LightGBM settings, early stopping
on a later snapshot then a refit on everything for as many trees, and scoring many rows
from per-tree tables (`training.explain`), several times quicker than LightGBM's own walk.
`MarginRegressor` is the counting and spending kind (Poisson, Tweedie); the calibrated
classifier is `training.churn.PurchaseClassifier`.

Each estimator takes the starting margin as ``init_score`` in `fit` and `predict` (as
LightGBM does); without one it starts from zero, an ordinary booster.
"""

from __future__ import annotations

import os
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from features.preprocess import booster_frame, booster_names
from training.explain import TreeContributions, feature_major

PARALLEL_FROM_ROWS = 200_000
PREDICT_PARALLEL_FROM_ROWS = 10_000
# Below this many rows LightGBM's own walk (and pred_contrib) is as quick as building the tables.
TABULATED_FROM_ROWS = 5_000
# Below this many rows the Booster predicts from a float64 array directly (`raw_score`,
# `contributions`): for one row its frame handling costs more than the trees.
FEW_ROWS = 256
# Built on demand from the fitted booster; never pickled, dropped by a new fit.
_CACHES = ("_tables_cache",)


class MarginBooster(BaseEstimator):
    """One LightGBM booster fitted from per-row starting margins (the shared machinery).

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM settings.
    early_stopping_rounds : int
        With an ``eval_set`` in `fit`: rounds without improvement on it before stopping.
    refit : bool
        With an ``eval_set``: train once more on the training and evaluation rows
        together, for the number of trees early stopping chose. The evaluation rows are
        the latest snapshot, the one most like the scoring date: too valuable to leave out.
    random_state : int
    n_jobs : int or None
        LightGBM threads; None picks by size (`fit_threads`).

    Attributes
    ----------
    model_ : the fitted LightGBM sklearn wrapper (``booster_`` is its Booster)
    best_iteration_ : int, the trees kept
    n_features_in_, feature_names_in_ : as scikit-learn sets them
    """

    def __init__(self, n_estimators: int = 500, learning_rate: float = 0.1, num_leaves: int = 4,
                 min_child_samples: int = 500, early_stopping_rounds: int = 100, refit: bool = True,
                 random_state: int = 0, n_jobs: int | None = None):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.refit = refit
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _objective(self) -> dict[str, Any]:
        raise NotImplementedError

    def _lgbm(self, rows: int) -> lgb.LGBMModel:
        params: dict[str, Any] = dict(
            n_estimators=self.n_estimators, learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
            reg_lambda=1.0, random_state=self.random_state, n_jobs=self.n_jobs or fit_threads(rows), verbose=-1)
        objective = self._objective()
        if objective.get("objective") == "binary":
            return lgb.LGBMClassifier(**params)
        return lgb.LGBMRegressor(**params, **objective)

    def _fit_booster(self, X, y, init_score, eval_set) -> tuple[np.ndarray, np.ndarray | None]:
        """Fit ``model_`` (early stopped on ``eval_set``, then refitted); return the checked
        training and evaluation rows."""
        for cache in _CACHES:
            self.__dict__.pop(cache, None)
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite="allow-nan", y_numeric=False)
        if len(X) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 rows to learn from, got 1 sample")
        init = _margin(init_score, len(X), "init_score")
        if eval_set is None:
            self.model_ = self._lgbm(len(X)).fit(_booster_frame(X), y, init_score=init)
            self.best_iteration_ = int(self.model_.n_estimators)
            return X, None
        if len(eval_set) not in (2, 3):
            raise ValueError("eval_set must be (X, y) or (X, y, init_score)")
        X_eval = validate_data(self, eval_set[0], dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        y_eval = np.asarray(eval_set[1])
        if len(y_eval) != len(X_eval):
            raise ValueError(f"eval_set has {len(X_eval)} rows and {len(y_eval)} targets")
        init_eval = _margin(eval_set[2] if len(eval_set) == 3 else None, len(X_eval), "eval_set's init_score")
        first = self._lgbm(len(X)).fit(
            _booster_frame(X), y, init_score=init, eval_X=_booster_frame(X_eval), eval_y=y_eval,
            eval_init_score=[init_eval], callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)])
        trees = int(first.best_iteration_ or first.n_estimators)
        self.best_iteration_ = trees
        if not self.refit:
            self.model_ = first
            return X, X_eval
        both = np.concatenate([X, X_eval])
        self.model_ = self._lgbm(len(both)).set_params(n_estimators=trees).fit(
            _booster_frame(both), np.concatenate([y, y_eval]), init_score=np.concatenate([init, init_eval]))
        return X, X_eval

    @property
    def booster_(self) -> lgb.Booster:
        """The fitted LightGBM Booster (its inputs named ``f0``, ``f1``, … by position)."""
        check_is_fitted(self, "model_")
        return self.model_.booster_

    def _checked(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        return validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)

    def raw_score(self, X, columns: np.ndarray | None = None) -> np.ndarray:
        """The trees' raw score of every row of ``X`` (no starting margin): from the per-tree
        tables on many rows, LightGBM's own walk on few or on trees too large to tabulate.

        ``columns`` (optional): ``X`` feature-major (`training.explain.feature_major`), when
        the caller already built it for several boosters. ``X`` is then trusted as given
        (the preprocessed rows of `training.purchase.PurchaseModel`): no validation copy.
        """
        check_is_fitted(self, "model_")
        rows = len(X)
        tables = self._tables() if rows >= TABULATED_FROM_ROWS else None
        if tables is not None:
            return tables.raw_score_columns(columns if columns is not None else feature_major(X))
        if rows < FEW_ROWS:
            # The Booster itself on a float64 array: the same walk as through the scikit-learn
            # wrapper and a frame, without their per-call checks and conversion (~1.5 ms).
            return np.asarray(self.booster_.predict(_float_rows(X), raw_score=True, num_threads=1))
        named = _booster_frame(X) if isinstance(X, np.ndarray) else booster_frame(X)  # the names it was fitted with
        return np.asarray(self.model_.predict(named, raw_score=True, num_threads=predict_threads(rows)))

    def contributions(self, X, groups: np.ndarray | None = None, columns: np.ndarray | None = None) -> np.ndarray:
        """Per-row TreeSHAP contributions of each input to the raw score, the expected value in a
        last column (the row sums are the raw scores). With ``groups`` (one output column
        number per input), contributions are added up per group: one-hot levels and missing
        flags under their feature. ``columns`` as in `raw_score`."""
        check_is_fitted(self, "model_")
        n_inputs = self.booster_.num_feature()
        groups = np.arange(n_inputs) if groups is None else np.asarray(groups, dtype=np.int64)
        width = int(groups.max()) + 1 if len(groups) else 0
        tables = self._tables() if len(X) >= TABULATED_FROM_ROWS else None
        if tables is not None:
            grouped = tables.predict_columns(columns if columns is not None else feature_major(X), groups)
            if grouped.shape[1] == width + 1:
                return grouped
            return np.column_stack([grouped[:, :-1], np.zeros((len(X), width + 1 - grouped.shape[1])),
                                    grouped[:, -1]])
        rows = _float_rows(X) if len(X) < FEW_ROWS else X
        contrib = self.booster_.predict(rows, pred_contrib=True, num_threads=predict_threads(len(X)))
        summing = np.zeros((n_inputs + 1, width + 1))
        summing[np.arange(n_inputs), groups] = 1.0
        summing[-1, -1] = 1.0
        return contrib @ summing

    def _tables(self) -> TreeContributions | None:
        """The booster's `TreeContributions` (built once, then kept), or None where its trees
        cannot be tabulated."""
        cache = self.__dict__.setdefault("_tables_cache", {})
        booster = self.model_.booster_
        if id(booster) not in cache:
            try:
                tables = TreeContributions(booster)
            except ValueError:
                tables = None
            cache[id(booster)] = (booster, tables)
        return cache[id(booster)][1]

    def __getstate__(self):
        # The tables are a cache of the booster: rebuilt on demand, never pickled.
        state = dict(super().__getstate__())
        for cache in _CACHES:
            state.pop(cache, None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    @classmethod
    def _holding(cls, model: lgb.LGBMModel, **params) -> "MarginBooster":
        """An estimator around a booster fitted by the previous layout (a bare LightGBM wrapper)."""
        out = cls(**params)
        out.model_ = model
        out.best_iteration_ = int(model.n_estimators)
        out.n_features_in_ = int(model.booster_.num_feature())
        return out


class MarginRegressor(RegressorMixin, MarginBooster):
    """A log-link LightGBM regressor from per-row starting log-means: counts and revenue.

    Parameters
    ----------
    objective : {"poisson", "tweedie"}
        Poisson for counts (purchase days), Tweedie for amounts with many zeros and a long
        tail (revenue).
    tweedie_variance_power : float
        Tweedie's power, between 1 (Poisson) and 2 (gamma).
    Other parameters as `MarginBooster`.
    """

    def __init__(self, objective: str = "poisson", tweedie_variance_power: float = 1.5, n_estimators: int = 500,
                 learning_rate: float = 0.1, num_leaves: int = 4, min_child_samples: int = 500,
                 early_stopping_rounds: int = 100, refit: bool = True, random_state: int = 0,
                 n_jobs: int | None = None):
        super().__init__(n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
                         min_child_samples=min_child_samples, early_stopping_rounds=early_stopping_rounds,
                         refit=refit, random_state=random_state, n_jobs=n_jobs)
        self.objective = objective
        self.tweedie_variance_power = tweedie_variance_power

    def _objective(self) -> dict[str, Any]:
        if self.objective == "poisson":
            return {"objective": "poisson"}
        if self.objective == "tweedie":
            return {"objective": "tweedie", "tweedie_variance_power": self.tweedie_variance_power}
        raise ValueError(f"objective must be 'poisson' or 'tweedie', got {self.objective!r}")

    def fit(self, X, y, init_score=None, eval_set=None) -> "MarginRegressor":
        """Learn ``y`` (>= 0) from ``X``, starting each row at ``init_score`` (a log-mean; 0 if
        None). ``eval_set``: ``(X, y)`` or ``(X, y, init_score)`` to stop early on."""
        self._objective()
        if y is None:
            raise ValueError("MarginRegressor requires y to be passed, but the target y is None")
        y = column_or_1d(y, warn=True)
        if np.any(np.asarray(y, dtype=float) < 0):
            raise ValueError(f"{self.objective} regression needs targets >= 0")
        self._fit_booster(X, np.asarray(y, dtype=float), init_score, eval_set)
        return self

    def predict(self, X, init_score=None) -> np.ndarray:
        """Expected values: ``exp(init_score + the trees' raw score)``."""
        X = self._checked(X)
        return np.exp(self.raw_score(X) + _margin(init_score, len(X), "init_score"))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        return tags


def _margin(init_score, rows: int, what: str) -> np.ndarray:
    if init_score is None:
        return np.zeros(rows)
    margin = np.asarray(init_score, dtype=float).reshape(-1)
    if len(margin) != rows:
        raise ValueError(f"{what} has {len(margin)} values for {rows} rows")
    return margin


def _float_rows(X) -> np.ndarray:
    """Rows as the C-contiguous float64 matrix LightGBM reads (what it makes of a frame itself)."""
    values = X.to_numpy(dtype=np.float64) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=np.float64)
    return np.ascontiguousarray(values)


def _booster_frame(X: np.ndarray) -> pd.DataFrame:
    """Rows as a booster is fitted on: positional names (`features.preprocess.booster_names`)."""
    return pd.DataFrame(X, columns=booster_names(X.shape[1]), copy=False)


def predict_threads(rows: int) -> int:
    """LightGBM threads to predict ``rows`` rows: every core for a large frame (prediction
    splits rows between threads with little overhead), one for a handful of rows, where
    starting threads costs more than it saves."""
    return 1 if rows < PREDICT_PARALLEL_FROM_ROWS else max(1, os.cpu_count() or 1)


def fit_threads(rows: int) -> int:
    """LightGBM threads: one below ``PARALLEL_FROM_ROWS`` rows. OpenMP threads spin while they
    wait, and on a busy 2-core machine two of them made a 12k-row fit 20× slower than one."""
    return 1 if rows < PARALLEL_FROM_ROWS else max(1, os.cpu_count() or 1)
