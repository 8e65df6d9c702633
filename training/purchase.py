"""Will this customer buy in the next H days, how often, for how much, and why not.

One estimator, :class:`PurchaseModel`, fitted on rolling training snapshots (features as
of D, labels over D+1 .. D+H; see `features.snapshots`):

- a LightGBM classifier of ``purchased_in_horizon``, calibrated with isotonic regression
  on held-out customers; churn is its complement (``churn_probability = 1 -
  purchase_probability``): one event, one calibrated probability, so the churn list and
  the purchase score can never disagree;
- expected purchase days as a hurdle: the calibrated probability of buying at all times
  one plus a LightGBM Poisson regressor of the further purchase days of those who buy,
  so counts and probability always agree; the count's median too (the forecast to judge
  by absolute error); a Tweedie regressor of ``revenue_in_horizon`` (many zeros, a long
  tail);
- a days-to-next-purchase estimate read off the calibrated probability (constant hazard
  within the horizon);
- reason codes: the features that push each customer's churn risk up the most,
  from LightGBM's per-row contributions (``pred_contrib``), named by feature-table column.

Early stopping and calibration use the latest snapshot only (time-based validation): the
model never tunes on a window older than the one it is judged on, and never on a newer one.
The boosters are then refitted on every snapshot, the latest included, for as many trees.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import pickle
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numba
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from features.catalog import catalog
from features.preprocess import booster_frame, preprocessing_pipeline
from training.btyd import BetaGeoModel
from training.explain import KERNEL_LOCK, TreeContributions, feature_major
from training.pareto_nbd import ParetoNBDModel

TARGET = "purchased_in_horizon"
COUNT_TARGET = "purchase_days_in_horizon"
REVENUE_TARGET = "revenue_in_horizon"
N_REASONS = 3
# "purchase": the calibrated classifier (churn, purchase probability, reasons); "count" and
# "revenue": the expected purchase days and revenue regressors.
PARTS = ("purchase", "count", "revenue")
PARALLEL_FROM_ROWS = 200_000
MAX_HORIZONS = 4


def model_inputs(columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """The numeric and categorical model inputs among ``columns``, in catalog order.

    Only catalog features marked as model inputs: never consent flags, dates or the rule
    based segment name, and never a label.
    """
    present = set(columns)
    numeric = [s.name for s in catalog() if s.model_input and s.name in present and s.kind in ("numeric", "flag")]
    categorical = [s.name for s in catalog() if s.model_input and s.name in present and s.kind == "categorical"]
    extra = [c for c in columns if c.startswith("btyd_")]
    return numeric + extra, categorical


def source_feature(column: str, inputs: Sequence[str]) -> str:
    """The feature-table column behind a preprocessed column (``country_PS`` → ``country``,
    ``recency_days_na`` → ``recency_days``)."""
    if column.startswith("btyd_"):
        return HISTORY_REASON
    if column in inputs:
        return column
    best = max((name for name in inputs if column.startswith(name + "_")), key=len, default=None)
    return best if best is not None else column


def lift_at(y_true: np.ndarray, score: np.ndarray, top: float = 0.1) -> float:
    """Positive rate among the ``top`` share of highest scores ÷ the overall positive rate."""
    y_true = np.asarray(y_true, dtype=float)
    n = max(1, int(math.ceil(top * len(y_true))))
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")[:n]
    base = y_true.mean()
    return float(y_true[order].mean() / base) if base > 0 else float("nan")


def classification_metrics(y_true: np.ndarray, probability: np.ndarray, prefix: str = "") -> dict[str, float]:
    """ROC-AUC, PR-AUC, Brier score, log loss and lift in the top 10% of a probability."""
    y_true = np.asarray(y_true, dtype=int)
    p = np.clip(np.asarray(probability, dtype=float), 1e-6, 1 - 1e-6)
    both = len(np.unique(y_true)) == 2
    return {
        f"{prefix}roc_auc": float(roc_auc_score(y_true, p)) if both else float("nan"),
        f"{prefix}pr_auc": float(average_precision_score(y_true, p)) if both else float("nan"),
        f"{prefix}brier": float(brier_score_loss(y_true, p)),
        f"{prefix}log_loss": float(log_loss(y_true, p, labels=[0, 1])),
        f"{prefix}lift_top10": lift_at(y_true, p, 0.1),
    }


def holdout_split(customer_ids: pd.Series, share: float = 0.5, salt: str = "cdp") -> np.ndarray:
    """A stable pseudo-random split of customers: True for the evaluation share.

    Hash-based, so a customer stays on the same side across runs and engines."""
    hashed = pd.util.hash_pandas_object(customer_ids.astype(str) + salt, index=False).to_numpy()
    return (hashed % 10_000) < share * 10_000


HISTORY_REASON = "purchase_history"
BTYD_COLUMNS = ("btyd_p_alive", "btyd_expected_purchases", "btyd_purchase_probability")
WEEK = 7.0


def btyd_summary(X: pd.DataFrame) -> pd.DataFrame:
    """The BG/NBD summary (repeat purchase days, recency and age in weeks) read off the feature
    table: ``purchase_days - 1``, ``(tenure_days - recency_days) / 7`` and ``tenure_days / 7``."""
    return pd.DataFrame({
        "frequency": X["purchase_days"].astype("float64") - 1,
        "recency": (X["tenure_days"].astype("float64") - X["recency_days"].astype("float64")) / WEEK,
        "T": X["tenure_days"].astype("float64") / WEEK,
    }, index=X.index)


BTYD_MODELS: dict[str, type[BetaGeoModel] | type[ParetoNBDModel]] = {
    "bgnbd": BetaGeoModel, "pareto_nbd": ParetoNBDModel}


class BtydFeatures(TransformerMixin, BaseEstimator):
    """A BTYD model's view of each buyer, added as model inputs.

    BG/NBD (``model="bgnbd"``) or Pareto/NBD (``"pareto_nbd"``), fitted on the training
    rows' own histories, then applied to any row: ``btyd_p_alive``,
    ``btyd_expected_purchases`` and ``btyd_purchase_probability`` over ``horizon_days``.
    Rows without a purchase get NaN. Adding the classical model's answer lets the booster
    spend its trees on what BTYD cannot see (rhythm, engagement, value).
    """

    def __init__(self, horizon_days: int = 90, model: str = "bgnbd"):
        self.horizon_days = horizon_days
        self.model = model

    def fit(self, X: pd.DataFrame, y=None) -> "BtydFeatures":
        if self.model not in BTYD_MODELS:
            raise ValueError(f"model must be one of {', '.join(BTYD_MODELS)}, got {self.model!r}")
        summary = btyd_summary(X).dropna()
        self.model_ = BTYD_MODELS[self.model]().fit(summary)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        if not hasattr(self, "model_"):
            raise NotFittedError("BtydFeatures is not fitted yet: call fit first")
        summary = btyd_summary(X)
        known = summary.notna().all(axis=1).to_numpy()
        out = X.copy(deep=False)  # copy-on-write: the new columns never reach the caller's frame
        t = self.horizon_days / WEEK
        for column, values in (
            ("btyd_p_alive", lambda s: self.model_.probability_alive(s)),
            ("btyd_expected_purchases", lambda s: self.model_.expected_purchases(s, t)),
            ("btyd_purchase_probability", lambda s: self.model_.purchase_probability(s, t)),
        ):
            column_values = np.full(len(X), np.nan)
            if known.any():
                column_values[known] = values(summary[known])
            out[column] = column_values
        return out


@dataclass(frozen=True)
class Prepared:
    """Rows ready for a `PurchaseModel`'s boosters: preprocessed inputs and BG/NBD margins."""

    x: pd.DataFrame
    margins: pd.DataFrame

    @functools.cached_property
    def columns(self) -> np.ndarray:
        """``x`` feature-major, as the tree tables read it: built once for every booster."""
        return feature_major(self.x)


class PurchaseModel(BaseEstimator):
    """Calibrated purchase / churn probability, expected purchase days and revenue, reasons.

    Parameters
    ----------
    horizon_days : int
        Days ahead the model forecasts.
    label_horizon_days : int or None
        Length of the label window the snapshots were built with; None means
        ``horizon_days``. A shorter one is how the model answers beyond the labelled
        history (a 39-week forecast for a cohort that arrived six months ago): it learns
        the ``label_horizon_days`` answers, then carries them forward to ``horizon_days``
        with the BTYD model's conditional expectations for the customer (`carry_forward`).
    btyd : {"bgnbd", "pareto_nbd"}
        The classical model the boosters start from and carry forward with (`BtydFeatures`).
    numeric, categorical : sequence of str or None
        Model inputs; None picks them from the catalog (`model_inputs`).
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM settings.
        Small trees by default: the scoring date always lies beyond the training
        snapshots, and shallow corrections to BG/NBD carry over that gap best (on CDNOW
        as of 1997-09-30, 4-leaf trees gave ROC-AUC 0.774 where 15-leaf trees gave 0.763).
        The tree cap, more than early stopping, sets how far the correction goes: the
        validation loss kept falling to the cap on CDNOW, yet out of time 500 trees at
        learning rate 0.1 matched 2,000 at 0.02 (ROC-AUC 0.7740 both; purchase-day MAE
        0.3553 vs 0.3542) and 1,000 at 0.1 was worse (0.7717). A quarter of the trees
        makes scoring and the reasons' contributions four times cheaper.
    early_stopping_rounds : int
        Rounds without improvement on the validation customers before stopping.
    refit : bool
        Train each booster once more on all snapshots, latest included, for the number
        of trees early stopping chose (see `fit`).
    random_state : int

    Attributes
    ----------
    preprocess_ : sklearn Pipeline (feature-engine steps)
    classifier_, counter_, spender_ : lightgbm boosters' sklearn wrappers (the counter
        learns purchase days beyond the first among buyers; the classifier is fitted
        whenever "purchase" or "count" is among ``parts``)
    calibrator_ : IsotonicRegression or Platt scaling
    columns_ : list of str, the preprocessed column names the boosters read, by position
        (the boosters themselves name them ``f0``, ``f1``, …: `features.preprocess.booster_names`)
    best_iterations_ : dict of model name → trees kept by early stopping
    level_ : float, set by `anchor_level` only: the factor on expected purchase days that
        gives the scoring date's cohort BG/NBD's total
    """

    # Fitted state (see Attributes); the boosters and calibrator are None for parts not fitted.
    btyd_: BtydFeatures
    scoring_btyd_: BtydFeatures
    numeric_: list[str]
    categorical_: list[str]
    inputs_: list[str]
    preprocess_: Any
    columns_: list[str]
    best_iterations_: dict[str, int]
    classifier_: Any
    counter_: Any
    spender_: Any
    calibrator_: Any
    mean_margin_: float
    level_: float

    def __init__(self, horizon_days: int = 90, parts: Sequence[str] = PARTS, numeric: Sequence[str] | None = None,
                 categorical: Sequence[str] | None = None, n_estimators: int = 500, learning_rate: float = 0.1,
                 num_leaves: int = 4, min_child_samples: int = 500, early_stopping_rounds: int = 100,
                 refit: bool = True, random_state: int = 0, n_jobs: int | None = None,
                 label_horizon_days: int | None = None, btyd: str = "bgnbd"):
        self.horizon_days = horizon_days
        self.label_horizon_days = label_horizon_days
        self.btyd = btyd
        self.parts = parts
        self.numeric = numeric
        self.categorical = categorical
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.refit = refit
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _booster(self, rows: int, **objective) -> lgb.LGBMModel:
        params: dict[str, Any] = dict(
            n_estimators=self.n_estimators, learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
            reg_lambda=1.0, random_state=self.random_state, n_jobs=self.n_jobs or _threads(rows), verbose=-1)
        if objective.get("objective") == "binary":
            return lgb.LGBMClassifier(**params)
        return lgb.LGBMRegressor(**params, **objective)

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame,
            purchase_from: "PurchaseModel | None" = None,
            population: pd.DataFrame | None = None) -> "PurchaseModel":
        """Learn from ``train`` snapshots; stop early and calibrate on ``valid`` (the latest snapshot).

        ``population`` (optional, no labels needed): the feature rows as of the date the
        model will score, whose histories the BTYD model behind scoring is fitted on, as
        the classical models are fitted at the scoring date. The training rows' own BTYD
        view stays fitted on their histories (nothing after a snapshot reaches its
        margins); without ``population`` that one serves scoring too.

        With ``refit``, each booster is then trained once more on ``train`` and ``valid``
        together, for the number of trees early stopping chose: the latest snapshot is
        the one most like the scoring date, too valuable to leave out. The calibrator is
        fitted on the final classifier's answers for ``valid``. Those rows were seen in
        training, but shallow trees with hundreds of rows per leaf barely fit them. Calibrating
        the first classifier instead and applying it to the refitted one corrects twice
        for whatever the latest snapshot taught: on CDNOW it forecast 6,074 purchase days
        for 7,364 bought, against 6,334 this way (2,000 trees at learning rate 0.02).
        """
        for cache in _CACHES:  # what they cached belongs to the boosters being replaced
            self.__dict__.pop(cache, None)
        self.__dict__.pop("level_", None)  # anchored for the boosters being replaced
        unknown = set(self.parts) - set(PARTS)
        if unknown or not self.parts:
            raise ValueError(f"parts must be a non-empty subset of {PARTS}, got {tuple(self.parts)}")
        for name, frame in (("train", train), ("valid", valid)):
            missing = [c for c in (TARGET, COUNT_TARGET, REVENUE_TARGET) if c not in frame.columns]
            if missing:
                raise ValueError(f"{name} snapshot lacks label column(s) {', '.join(missing)}")
            if frame[TARGET].nunique() < 2:
                outcome = frame[TARGET].iloc[0] if len(frame) else "no rows"
                raise ValueError(f"{name} snapshot has only one outcome ({outcome}): "
                                 "nothing to learn; use more snapshots or a longer history")
        label_days = self._label_days()
        shared = self._shared_classifier(purchase_from)
        self.btyd_ = shared.btyd_ if shared else BtydFeatures(label_days, self.btyd).fit(train)
        if shared:
            self.scoring_btyd_ = shared._scoring_btyd()
        else:
            self.scoring_btyd_ = (BtydFeatures(label_days, self.btyd).fit(population) if population is not None
                                  else self.btyd_)
        train, valid = self.btyd_.transform(train), self.btyd_.transform(valid)
        if shared:
            self.numeric_, self.categorical_ = shared.numeric_, shared.categorical_
        else:
            default_numeric, default_categorical = model_inputs(train.columns)
            self.numeric_ = list(self.numeric) if self.numeric is not None else default_numeric
            self.categorical_ = list(self.categorical) if self.categorical is not None else default_categorical
        self.inputs_ = self.numeric_ + self.categorical_
        self.preprocess_ = (shared.preprocess_ if shared else
                            preprocessing_pipeline(self.numeric_, self.categorical_).fit(train[self.inputs_]))
        x_train = self.preprocess_.transform(train[self.inputs_])
        x_valid = self.preprocess_.transform(valid[self.inputs_])
        self.columns_ = list(x_train.columns)
        m_train, m_valid = base_margins(train), base_margins(valid)
        self.mean_margin_ = float(m_train["purchase"].mean())
        x_all = pd.concat([x_train, x_valid], ignore_index=True)
        m_all = pd.concat([m_train, m_valid], ignore_index=True)
        y_all = pd.concat([train, valid], ignore_index=True)

        def boost(objective: dict, target: str, margin: str, rows=None, kind=float, shift: float = 0.0):
            """Early-stopped on ``valid``, then refitted on everything; ``rows`` picks rows of each frame."""
            def take(x, m, frame):
                keep = np.ones(len(frame), bool) if rows is None else rows(frame)
                # Boosters see positional names (`booster_frame`); `columns_` keeps the readable ones.
                return booster_frame(x[keep]), m[margin][keep], (frame[target][keep] - shift).astype(kind)

            (xt, mt, yt), (xv, mv, yv) = take(x_train, m_train, train), take(x_valid, m_valid, valid)
            first = self._booster(len(xt), **objective).fit(
                xt, yt, init_score=mt, eval_X=xv, eval_y=yv, eval_init_score=[mv],
                callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)])
            trees = int(first.best_iteration_ or first.n_estimators)
            if not self.refit:
                return first, first, trees
            xa, ma, ya = take(x_all, m_all, y_all)
            final = self._booster(len(xa), **objective).set_params(n_estimators=trees).fit(xa, ya, init_score=ma)
            return first, final, trees

        self.best_iterations_ = {}
        self.classifier_ = self.counter_ = self.spender_ = self.calibrator_ = None
        if shared:
            self.classifier_, self.calibrator_ = shared.classifier_, shared.calibrator_
            self.best_iterations_["purchase"] = shared.best_iterations_["purchase"]
        elif {"purchase", "count"} & set(self.parts):
            _, self.classifier_, self.best_iterations_["purchase"] = boost(
                {"objective": "binary"}, TARGET, "purchase", kind=int)
            self.calibrator_ = _calibrator(self._raw_probability(x_valid, m_valid), valid[TARGET].to_numpy(int))
        if "count" in self.parts:
            # Purchase days beyond the first, among buyers (zero-truncated counts, shifted by one).
            _, self.counter_, self.best_iterations_["count"] = boost(
                {"objective": "poisson"}, COUNT_TARGET, "extra_count", rows=lambda f: (f[COUNT_TARGET] > 0).to_numpy(),
                shift=1.0)
        if "revenue" in self.parts:
            _, self.spender_, self.best_iterations_["revenue"] = boost(
                {"objective": "tweedie", "tweedie_variance_power": 1.5}, REVENUE_TARGET, "revenue")
        return self

    def anchor_level(self, population: pd.DataFrame) -> "PurchaseModel":
        """Set the cohort's level of expected purchase days from BG/NBD at the scoring date.

        The boosters learn who buys more than whom; the level of a whole cohort drifts
        between the training snapshots and the scoring date, and BG/NBD fitted on
        everyone's history as of that date holds it better (CDNOW as of 1997-09-30, 10
        customer subsamples: the boosters alone forecast 70-84% of BG/NBD's 39-week total,
        their total/actual swinging twice as much). ``population`` is the feature rows as of
        the date the model will score (no labels): BG/NBD is fitted on their histories and
        ``level_`` set so that this model's expected purchase days over them add up to
        BG/NBD's. Every later answer's expected purchase days (and their median) is
        scaled by it: the cohort total is BG/NBD's, each customer's share the boosters'.
        Needs the "count" part; returns the model.
        """
        self._check_fitted()
        if self.counter_ is None:
            raise ValueError("anchor_level needs a PurchaseModel fitted with its 'count' part")
        summary = btyd_summary(population)
        known = summary.notna().all(axis=1).to_numpy()
        self.level_ = 1.0
        if known.sum() == 0:
            return self
        anchor = BetaGeoModel().fit(summary[known])
        theirs = float(np.sum(anchor.expected_purchases(summary[known], self.horizon_days / WEEK)))
        ours = float(self.predict(population[known])["expected_purchases"].sum())
        if ours > 0 and np.isfinite(theirs) and theirs > 0:
            self.level_ = theirs / ours
        return self

    def _shared_classifier(self, other: "PurchaseModel | None") -> "PurchaseModel | None":
        """``other`` if its classifier can serve this model: fitted, same horizon and inputs.

        Churn and next-purchase models of one training run need the same calibrated
        classifier (churn is its complement; expected purchase days are built on it):
        fitting it once saves the slowest part of training. The caller vouches that
        ``other`` was fitted on the same snapshots.
        """
        if other is None:
            return None
        if getattr(other, "classifier_", None) is None:
            raise ValueError("purchase_from must be a PurchaseModel fitted with its 'purchase' part")
        if ((other.horizon_days, other._label_days(), other.numeric, other.categorical)
                != (self.horizon_days, self._label_days(), self.numeric, self.categorical)):
            raise ValueError("purchase_from was fitted for another horizon or other inputs")
        return other

    def _label_days(self) -> int:
        """The label window learned from: ``label_horizon_days``, or the horizon itself."""
        given = self.__dict__.get("label_horizon_days")  # absent from models pickled before it existed
        label = self.horizon_days if given is None else given
        if not 0 < label <= self.horizon_days:
            raise ValueError(f"label_horizon_days must be between 1 and horizon_days ({self.horizon_days}), "
                             f"got {given!r}")
        return label

    def _carried(self, X: pd.DataFrame) -> "Carry | None":
        """How the label-window answers for ``X`` carry forward to the horizon; None when they need not."""
        label = self._label_days()
        if label == self.horizon_days:
            return None
        return carry_forward(self._scoring_btyd().model_, btyd_summary(X), label, self.horizon_days)

    def _scoring_btyd(self) -> BtydFeatures:
        """The BTYD view rows are scored with (models pickled before it existed: the training one)."""
        return self.__dict__.get("scoring_btyd_", self.btyd_)

    def _raw_probability(self, x: pd.DataFrame | Prepared, margins: pd.DataFrame) -> np.ndarray:
        return _sigmoid(self._raw(self.classifier_, x) + margins["purchase"].to_numpy())

    def _raw(self, model: lgb.LGBMModel, x: pd.DataFrame | Prepared) -> np.ndarray:
        """A booster's raw scores: from its tables (`training.explain`) on many rows, several
        times quicker than LightGBM's own walk; LightGBM's on few rows or untabulable trees."""
        prepared = x if isinstance(x, Prepared) else None
        rows = prepared.x if prepared is not None else x
        assert isinstance(rows, pd.DataFrame)
        tables = self._tables(model) if len(rows) >= TABULATED_FROM_ROWS else None
        if tables is not None:
            return tables.raw_score_columns(prepared.columns if prepared is not None else feature_major(rows))
        return np.asarray(model.predict(rows, raw_score=True, num_threads=_predict_threads(len(rows))))

    def _tables(self, model: lgb.LGBMModel):
        """The booster's `TreeContributions` (built once per booster, then kept), or None."""
        booster = model.booster_
        cache = self.__dict__.setdefault("_tables_cache", {})
        if id(booster) not in cache:
            cache[id(booster)] = (booster, _tabulated(booster))
        return cache[id(booster)][1]

    def __getstate__(self):
        # The tables are a cache of the boosters: rebuilt on demand, never pickled with the model.
        state = dict(super().__getstate__())  # a copy: the live model keeps its caches
        for cache in _CACHES:
            state.pop(cache, None)
        return state

    def _check_fitted(self) -> None:
        if not hasattr(self, "best_iterations_"):
            raise NotFittedError("PurchaseModel is not fitted yet: call fit first")

    def purchase_probability(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated chance of at least one purchase in the next ``horizon_days`` days."""
        self._check_fitted()
        if self.classifier_ is None:
            raise ValueError("this PurchaseModel was fitted without the 'purchase' part")
        prepared = self.prepare(X)
        p = self.calibrator_.predict(self._raw_probability(prepared.x, prepared.margins))
        carry = self._carried(X)
        return p if carry is None else carry.probability(p)

    def prepare(self, X: pd.DataFrame) -> Prepared:
        """Feature rows made ready for the boosters: BG/NBD's view added, preprocessed, margins.

        Many rows are prepared in slices on all cores: the preprocessing is pandas and
        feature-engine work that spends much of its time in copies that release the GIL
        (1M rows on 2 cores: 3.8 s instead of 6.1 s; the slices' results are the same rows).
        """
        self._check_fitted()
        threads = _predict_threads(len(X))
        if len(X) < PREPARE_SLICED_FROM_ROWS or threads == 1:
            return self._prepare_rows(X)
        slices = np.array_split(np.arange(len(X)), 2 * threads)
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(lambda rows: self._prepare_rows(X.iloc[rows]), slices))
        return Prepared(pd.concat([p.x for p in parts]), pd.concat([p.margins for p in parts]))

    def _prepare_rows(self, X: pd.DataFrame) -> Prepared:
        X = self._scoring_btyd().transform(X)
        return Prepared(self.preprocess_.transform(X[self.inputs_]), base_margins(X))

    def shares_inputs(self, other: "PurchaseModel") -> bool:
        """Whether ``other`` prepares rows and predicts purchase exactly as this model does
        (same BG/NBD fit, preprocessing, classifier and calibration: the churn and
        next-purchase models of one training run), so one `prepare` and one purchase
        probability can serve both."""
        return self._fingerprint() == other._fingerprint()

    def _fingerprint(self) -> str:
        fingerprint = self.__dict__.get("_fingerprint_cache")
        if fingerprint is None:
            self._check_fitted()
            digest = hashlib.blake2b(digest_size=16)
            for part in (self.btyd_, self._scoring_btyd(), self.preprocess_, self.calibrator_, self.inputs_,
                         self.columns_, self.horizon_days, self._label_days()):
                digest.update(pickle.dumps(part))
            digest.update(b"" if self.classifier_ is None else self.classifier_.booster_.model_to_string().encode())
            fingerprint = self.__dict__["_fingerprint_cache"] = digest.hexdigest()
        return fingerprint

    def predict(self, X: pd.DataFrame, prepared: Prepared | None = None,
                purchase_probability: np.ndarray | None = None) -> pd.DataFrame:
        """One row per input row: purchase and churn probability, days to the next purchase
        and the top churn reasons ("purchase" part); expected purchase days and their
        median ("count"); expected revenue ("revenue"), all over the horizon.

        ``prepared`` (`prepare` of ``X``) and ``purchase_probability`` may come from a model
        that `shares_inputs` with this one, which then skips that work.
        """
        self._check_fitted()
        prepared = self.prepare(X) if prepared is None else prepared
        x, margins = prepared.x, prepared.margins
        out = pd.DataFrame(index=x.index)
        carry = self._carried(X)
        p = purchase_probability  # over the horizon: a sharing model answered for the same horizon
        if "purchase" in self.parts:
            # One pass gives both: the contributions add up to the classifier's raw score.
            toward_purchase = self._feature_contributions(prepared)
            raw = toward_purchase.sum(axis=1) + margins["purchase"].to_numpy()
            p = self.calibrator_.predict(_sigmoid(raw))
            p = p if carry is None else carry.probability(p)
            out["purchase_probability"] = p
            out["churn_probability"] = 1.0 - p
            out["days_to_next_purchase"] = days_to_next_purchase(p, self.horizon_days)
            out["top_reasons"] = self._worded_reasons(toward_purchase, margins)
        elif p is None and self.classifier_ is not None:
            p = self.calibrator_.predict(self._raw_probability(prepared, margins))
            p = p if carry is None else carry.probability(p)
        if self.counter_ is not None:
            # The counter is fitted only beside a classifier (its own or a shared one's): p is known.
            assert p is not None
            extra = np.exp(self._raw(self.counter_, prepared) + margins["extra_count"].to_numpy())
            if carry is None:
                expected = p * (1.0 + extra)
            else:
                # The label window's expectation, from its own probability, carried forward.
                p_label = carry.label_probability(p)
                expected = carry.count(p_label * (1.0 + extra))
                extra = np.clip(expected / np.clip(p, 1e-12, None) - 1.0, 0.0, None)
            level = self.__dict__.get("level_", 1.0)  # `anchor_level`; 1 for models from before it
            if level != 1.0:
                expected = expected * level
                extra = np.clip(expected / np.clip(p, 1e-12, None) - 1.0, 0.0, None)
            out["expected_purchases"] = expected
            out["median_purchases"] = hurdle_median(p, extra)
        if self.spender_ is not None:
            revenue = np.exp(self._raw(self.spender_, prepared) + margins["revenue"].to_numpy())
            out["expected_revenue"] = revenue if carry is None else carry.count(revenue)
        return out

    def _reason_features(self) -> list[str]:
        """The names reasons are given in: feature-table columns, and ``purchase_history``."""
        return sorted({source_feature(c, self.inputs_) for c in self.columns_} | {HISTORY_REASON})

    def _feature_contributions(self, x: pd.DataFrame | Prepared) -> np.ndarray:
        """The classifier's TreeSHAP contributions to the purchase log-odds, added up per
        reason feature (`_reason_features` order; one-hot levels and missing flags under
        their feature's name), the expected value in a last column: the row sums are the
        raw scores. From the per-tree tables when its trees are small (`training.explain`:
        exact and many times cheaper on many rows), else from LightGBM's ``pred_contrib``."""
        features = self._reason_features()
        where = {name: i for i, name in enumerate(features)}
        groups = np.array([where[source_feature(c, self.inputs_)] for c in self.columns_], dtype=np.int64)
        prepared = x if isinstance(x, Prepared) else None
        rows = prepared.x if prepared is not None else x
        assert isinstance(rows, pd.DataFrame)
        tables = self._tables(self.classifier_) if len(rows) >= TABULATED_FROM_ROWS else None
        if tables is not None:
            grouped = tables.predict_columns(prepared.columns if prepared is not None else feature_major(rows), groups)
            if grouped.shape[1] == len(features) + 1:
                return grouped
            return np.column_stack([grouped[:, :-1], np.zeros((len(rows), len(features) + 1 - grouped.shape[1])),
                                    grouped[:, -1]])
        contrib = self.classifier_.booster_.predict(rows, pred_contrib=True, num_threads=_predict_threads(len(rows)))
        summing = np.zeros((len(self.columns_) + 1, len(features) + 1))
        summing[np.arange(len(self.columns_)), groups] = 1.0
        summing[-1, -1] = 1.0
        return contrib @ summing

    def reasons(self, x: pd.DataFrame, margins: pd.DataFrame, n: int = N_REASONS) -> list[str]:
        """The ``n`` feature-table columns that raise each row's churn risk the most, comma-separated.

        A positive contribution to churn is a negative contribution to the purchase
        log-odds; contributions of a feature's derived columns (one-hot levels, missing
        flags) are added up under the feature's name. The BG/NBD baseline counts as one
        more reason, ``purchase_history``: its log-odds against the training average
        (a customer buying less often than BG/NBD expects of the average buyer). Rows with
        nothing raising their risk get an empty string.
        """
        return self._worded_reasons(self._feature_contributions(x), margins, n).tolist()

    def _worded_reasons(self, toward_purchase: np.ndarray, margins: pd.DataFrame, n: int = N_REASONS) -> np.ndarray:
        """`reasons` from `_feature_contributions` output, which it overwrites (a copy of a
        million rows' contributions costs more than the rest of the wording)."""
        features = self._reason_features()
        values = np.negative(toward_purchase, out=toward_purchase)[:, :-1]  # toward churn: minus the purchase log-odds
        history = features.index(HISTORY_REASON)
        values[:, history] -= margins["purchase"].to_numpy() - self.mean_margin_
        return top_names(values, features, n)


def top_names(values: np.ndarray, names: Sequence[str], n: int) -> np.ndarray:
    """Per row, the names of the (at most) ``n`` largest positive values, largest first, ", "-joined.

    Ties go to the earlier name. Each distinct choice is joined once, not once per row:
    a million rows hold a few thousand distinct top-``n`` lists.
    """
    if values.ndim != 2 or values.shape[1] != len(names):
        raise ValueError(f"{len(names)} names for {values.shape[-1]} columns of values")
    k = max(0, min(n, values.shape[1]))
    # Each row's choice as one number: its k column indices (len(names) for "none") in base len(names) + 1.
    if (len(names) + 1) ** k >= 2 ** 62:
        raise ValueError(f"top {k} of {len(names)} names do not fit one 64-bit code: ask for fewer")
    values = np.asarray(values, dtype=np.float64)
    if len(values) >= PREDICT_PARALLEL_FROM_ROWS:
        with KERNEL_LOCK:
            key = _top_codes(values, k)
    else:
        key = _top_codes_serial(values, k)
    distinct, inverse = np.unique(key, return_inverse=True)
    labels = np.array(list(names) + [None], dtype=object)
    texts = []
    for code in distinct.tolist():
        digits = []
        for _ in range(k):
            code, digit = divmod(code, len(names) + 1)
            digits.append(digit)
        texts.append(", ".join(labels[d] for d in reversed(digits) if labels[d] is not None))
    return np.array(texts, dtype=object)[inverse.reshape(-1)] if len(values) else np.array([], dtype=object)


@numba.njit(inline="always")
def _top_code(values, row, k):
    """Row ``row``'s ``k`` largest positive values' columns (first column on ties) as one code."""
    width = values.shape[1]
    best = np.full(k, width, dtype=np.int64)
    for column in range(width):
        value = values[row, column]
        if not value > 0:
            continue
        slot = k
        while slot > 0 and (best[slot - 1] == width or value > values[row, best[slot - 1]]):
            slot -= 1
        if slot < k:
            for move in range(k - 1, slot, -1):
                best[move] = best[move - 1]
            best[slot] = column
    code = 0
    for slot in range(k):
        code = code * (width + 1) + best[slot]
    return code


@numba.njit(parallel=True, cache=True, nogil=True)
def _top_codes(values, k):  # pragma: no cover - compiled
    codes = np.zeros(values.shape[0], dtype=np.int64)
    for row in numba.prange(values.shape[0]):
        codes[row] = _top_code(values, row, k)
    return codes


@numba.njit(cache=True, nogil=True)
def _top_codes_serial(values, k):  # pragma: no cover - compiled
    """`_top_codes` on one thread: for a request's few rows (no thread pool to start)."""
    codes = np.zeros(values.shape[0], dtype=np.int64)
    for row in range(values.shape[0]):
        codes[row] = _top_code(values, row, k)
    return codes


def _tabulated(booster):
    """`TreeContributions` of a booster, or None where its trees cannot be tabulated."""
    try:
        return TreeContributions(booster)
    except ValueError:
        return None


@dataclass(frozen=True)
class Carry:
    """Per customer, how answers over a label window of L days carry forward to H > L days.

    ``count_ratio`` is ``E[X(H)] / E[X(L)]`` and ``none_ratio`` is ``P(X(H) = 0) / P(X(L) =
    0)``, the chance of no purchase in days L+1 .. H given none in the first L, both under
    a BTYD model conditional on the customer's history. The learned answers keep their
    ranking and their level; the BTYD model only says how a customer's next L days grow
    into H days (how fast they are expected to die out, how their rate carries on).
    """

    count_ratio: np.ndarray
    none_ratio: np.ndarray

    def probability(self, label_probability: np.ndarray) -> np.ndarray:
        """P(a purchase within H days) from P(a purchase within L days)."""
        return 1.0 - (1.0 - np.asarray(label_probability, dtype=float)) * self.none_ratio

    def label_probability(self, probability: np.ndarray) -> np.ndarray:
        """The inverse of `probability`."""
        return 1.0 - (1.0 - np.asarray(probability, dtype=float)) / self.none_ratio

    def count(self, label_count: np.ndarray) -> np.ndarray:
        """Expected purchase days (or revenue) within H days from those within L days."""
        return np.asarray(label_count, dtype=float) * self.count_ratio


def carry_forward(btyd, summary: pd.DataFrame, label_days: int, horizon_days: int) -> Carry:
    """The `Carry` from ``label_days`` to ``horizon_days`` under a fitted BTYD model.

    ``btyd`` is a :class:`~training.btyd.BetaGeoModel` or
    :class:`~training.pareto_nbd.ParetoNBDModel` (weeks); ``summary`` its inputs, NaN for
    rows without a purchase: with no history to carry forward, their answers stay those of
    the label window (ratios of 1).
    """
    if not 0 < label_days <= horizon_days:
        raise ValueError(f"label_days must be between 1 and horizon_days ({horizon_days}), got {label_days}")
    known = summary[["frequency", "recency", "T"]].notna().all(axis=1).to_numpy()
    count_ratio = np.ones(len(summary))
    none_ratio = np.ones(len(summary))
    if known.any():
        rows = summary[known]
        short, long = label_days / WEEK, horizon_days / WEEK
        count_ratio[known] = (btyd.expected_purchases(rows, long)
                              / np.clip(btyd.expected_purchases(rows, short), 1e-300, None))
        none_ratio[known] = ((1.0 - btyd.purchase_probability(rows, long))
                             / np.clip(1.0 - btyd.purchase_probability(rows, short), 1e-300, None))
    return Carry(count_ratio=count_ratio, none_ratio=np.clip(none_ratio, 1e-12, 1.0))


def base_margins(X: pd.DataFrame) -> pd.DataFrame:
    """BG/NBD's answers as the boosters' starting points (log-odds and log-means).

    The boosters learn a correction to the classical model rather than everything from
    scratch: BG/NBD carries how purchase rates and dropout age with a customer, which
    trees cannot extrapolate when the scoring date lies beyond the training snapshots
    (an aging cohort such as CDNOW's). Revenue starts from expected purchases × the
    customer's mean order value.
    """
    probability = np.clip(X["btyd_purchase_probability"].to_numpy(float), 1e-4, 1 - 1e-4)
    expected = np.clip(X["btyd_expected_purchases"].to_numpy(float), 1e-4, None)
    # BG/NBD's purchase days beyond the first, given at least one: E[N] / P(N > 0) - 1.
    extra = np.clip(np.nan_to_num(X["btyd_expected_purchases"].to_numpy(float), nan=0.0)
                    / probability - 1.0, 1e-3, None)
    order_value = np.clip(np.nan_to_num(X["mean_order_value"].to_numpy(float), nan=1.0), 1.0, None)
    frame = pd.DataFrame({
        "purchase": np.log(probability / (1 - probability)),
        "count": np.log(expected),
        "extra_count": np.log(extra),
        "revenue": np.log(expected * order_value),
    }, index=X.index)
    return frame.fillna(0.0)


ISOTONIC_FROM_ROWS = 5000


class _Platt:
    """Logistic calibration on the log-odds: two parameters, safe on a few hundred rows."""

    def __init__(self, raw: np.ndarray, y: np.ndarray):
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression(C=1e6).fit(_logit(raw).reshape(-1, 1), y)

    def predict(self, raw: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(_logit(raw).reshape(-1, 1))[:, 1]


def _calibrator(raw: np.ndarray, y: np.ndarray):
    """Isotonic regression when there are enough tuning rows to trust a step function,
    Platt scaling below that; either way probabilities stay strictly inside (0, 1), since
    a churn list that says "certain" is never right."""
    if len(y) >= ISOTONIC_FROM_ROWS:
        eps = 1.0 / len(y)
        return IsotonicRegression(y_min=eps, y_max=1 - eps, out_of_bounds="clip").fit(raw, y)
    return _Platt(raw, y)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


PREDICT_PARALLEL_FROM_ROWS = 10_000
PREPARE_SLICED_FROM_ROWS = 100_000
# Built on demand from the fitted boosters; never pickled, dropped by a new fit.
_CACHES = ("_tables_cache", "_fingerprint_cache")
# Below this many rows LightGBM's own pred_contrib is as quick as building the tables.
TABULATED_FROM_ROWS = 5_000


def _predict_threads(rows: int) -> int:
    """LightGBM threads to predict ``rows`` rows: every core for a large frame (prediction
    splits rows between threads with little overhead), one for a handful of rows, where
    starting threads costs more than it saves."""
    return 1 if rows < PREDICT_PARALLEL_FROM_ROWS else max(1, os.cpu_count() or 1)


def _threads(rows: int) -> int:
    """LightGBM threads: one below ``PARALLEL_FROM_ROWS`` rows. OpenMP threads spin while they
    wait, and on a busy 2-core machine two of them made a 12k-row fit 20× slower than one."""
    return 1 if rows < PARALLEL_FROM_ROWS else max(1, os.cpu_count() or 1)


def hurdle_median(probability: np.ndarray, extra: np.ndarray, max_count: int = 100) -> np.ndarray:
    """Median purchase days of the hurdle model: none with chance ``1 - p``, else one plus a
    Poisson count of mean ``extra``.

    The median, not the mean, is the point forecast that minimises the expected absolute
    error (a customer with a 30% chance to buy is best forecast at zero purchase days).
    """
    from scipy.stats import poisson

    p = np.asarray(probability, dtype=float)
    # P(N <= k) = (1 - p) + p F(k - 1): the first k reaching 1/2 is 0 when 1 - p does, else
    # 1 + the Poisson quantile of (1/2 - (1 - p)) / p; one quantile per row, not a table of CDFs.
    needed = np.clip((p - 0.5) / np.where(p > 0, p, 1.0), 0.0, 1.0)
    median = 1.0 + poisson.ppf(needed, np.asarray(extra, dtype=float))
    return np.where(1.0 - p >= 0.5, 0.0, np.minimum(median, max_count + 1)).astype(float)


def days_to_next_purchase(purchase_probability: np.ndarray, horizon_days: int) -> np.ndarray:
    """Median days to the next purchase under a constant daily hazard matching the probability.

    ``p = 1 - exp(-h H)`` gives ``h``; the median wait is ``ln 2 / h``. Beyond the horizon it
    is an extrapolation, trusted up to ``MAX_HORIZONS`` horizons; a longer wait (a customer
    not expected back) is NaN.
    """
    p = np.clip(np.asarray(purchase_probability, dtype=float), 0.0, 1.0 - 1e-9)
    with np.errstate(divide="ignore"):
        hazard = -np.log1p(-p) / horizon_days
        days = np.where(hazard > 0, math.log(2) / np.where(hazard > 0, hazard, 1.0), np.nan)
    return np.where(days <= MAX_HORIZONS * horizon_days, days, np.nan)
