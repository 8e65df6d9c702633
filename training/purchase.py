"""Will this customer buy in the next H days, how often, for how much, and why not.

:class:`PurchaseModel` is fitted on rolling training snapshots (features as of D, labels
over D+1 .. D+H; see `features.snapshots`). It prepares rows (BG/NBD's view of each buyer,
`BtydFeatures`, then the feature-engine preprocessing) and puts together estimators that
each do one thing:

- `training.churn.PurchaseClassifier`: a LightGBM classifier of ``purchased_in_horizon``
  from BG/NBD's log-odds, calibrated on held-out customers
  (`training.calibration.ProbabilityCalibrator`); churn is its complement
  (``churn_probability = 1 - purchase_probability``): one event, one calibrated
  probability, so the churn list and the purchase score can never disagree;
- expected purchase days as a hurdle: the calibrated probability of buying at all times
  one plus a `training.boosting.MarginRegressor` (Poisson) of the further purchase days of
  those who buy, so counts and probability always agree; the count's median too (the
  forecast to judge by absolute error); a Tweedie `MarginRegressor` of
  ``revenue_in_horizon`` (many zeros, a long tail);
- a days-to-next-purchase estimate read off the calibrated probability (constant hazard
  within the horizon);
- `training.reason_codes.ReasonCodes`: the features that push each customer's churn risk
  up the most, from the classifier's per-row contributions, named by feature-table column.

Early stopping and calibration use the latest snapshot only (time-based validation): the
model never tunes on a window older than the one it is judged on, and never on a newer one.
The boosters are then refitted on every snapshot, the latest included, for as many trees.
"""

from __future__ import annotations

import functools
import hashlib
import math
import pickle
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from features.catalog import catalog
from features.compiled import COMPILED_BELOW_ROWS, COMPILED_CACHE, CompiledPreprocessing, compiled_for
from features.preprocess import preprocessing_pipeline
from features.rows import Rows, as_frame, floats, index_of, row_count
from features.rows import values as row_values
from features.rows import where as rows_where
from training.boosting import TABULATED_FROM_ROWS, MarginBooster, MarginRegressor, predict_threads
from training.btyd import BetaGeoModel

# `_Platt` re-exported: models pickled before `training.calibration` find their calibrator's class here.
from training.calibration import _Platt as _Platt
from training.calibration import from_previous
from training.churn import PurchaseClassifier
from training.explain import feature_major
from training.pareto_nbd import ParetoNBDModel
from training.reason_codes import HISTORY_REASON as HISTORY_REASON
from training.reason_codes import ReasonCodes
from training.reason_codes import source_feature as source_feature
from training.reason_codes import top_names as top_names
from training.reasons import reason_families, reason_mask, typical_values

TARGET = "purchased_in_horizon"
COUNT_TARGET = "purchase_days_in_horizon"
REVENUE_TARGET = "revenue_in_horizon"
# "purchase": the calibrated classifier (churn, purchase probability, reasons); "count" and
# "revenue": the expected purchase days and revenue regressors.
PARTS = ("purchase", "count", "revenue")
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


BTYD_COLUMNS = ("btyd_p_alive", "btyd_expected_purchases", "btyd_purchase_probability")
WEEK = 7.0


def btyd_summary(X: pd.DataFrame) -> pd.DataFrame:
    """The BG/NBD summary (repeat purchase days, recency and age in weeks) read off the feature
    table: ``purchase_days - 1``, ``(tenure_days - recency_days) / 7`` and ``tenure_days / 7``."""
    return pd.DataFrame(summary_columns(X), index=X.index)


def summary_columns(X: Rows) -> dict[str, np.ndarray]:
    """`btyd_summary` as arrays by name, of a frame or of `features.rows` columns (the BTYD
    models read either)."""
    purchase_days = floats(X, "purchase_days")
    tenure_days = floats(X, "tenure_days")
    recency_days = floats(X, "recency_days")
    return {
        "frequency": purchase_days - 1,
        "recency": (tenure_days - recency_days) / WEEK,
        "T": tenure_days / WEEK,
    }


def _known_histories(summary) -> np.ndarray:
    """Rows of a `btyd_summary` with every part known."""
    if isinstance(summary, pd.DataFrame):
        return summary[["frequency", "recency", "T"]].notna().all(axis=1).to_numpy()
    return ~(np.isnan(summary["frequency"]) | np.isnan(summary["recency"]) | np.isnan(summary["T"]))


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
        out = X.copy(deep=False)  # copy-on-write: the new columns never reach the caller's frame
        for column, values in self.columns(X).items():
            out[column] = values
        return out

    def columns(self, X: Rows) -> dict[str, np.ndarray]:
        """The columns `transform` adds (``btyd_p_alive``, ``btyd_expected_purchases``,
        ``btyd_purchase_probability``), as arrays: what a few rows need without a new frame."""
        if not hasattr(self, "model_"):
            raise NotFittedError("BtydFeatures is not fitted yet: call fit first")
        summary = summary_columns(X)
        known = _known_histories(summary)
        t = self.horizon_days / WEEK
        rows = rows_where(summary, known) if known.any() else None
        out = {}
        for column, values in (
            ("btyd_p_alive", lambda s: self.model_.probability_alive(s)),
            ("btyd_expected_purchases", lambda s: self.model_.expected_purchases(s, t)),
            ("btyd_purchase_probability", lambda s: self.model_.purchase_probability(s, t)),
        ):
            column_values = np.full(row_count(X), np.nan)
            if rows is not None:
                column_values[known] = values(rows)
            out[column] = column_values
        return out


@dataclass(frozen=True)
class Prepared:
    """Rows ready for a `PurchaseModel`'s boosters: preprocessed inputs and BG/NBD margins
    (frames for a frame; for `features.rows` columns, a float64 matrix and arrays by name)."""

    x: pd.DataFrame | np.ndarray
    margins: pd.DataFrame | Mapping[str, np.ndarray]

    @functools.cached_property
    def columns(self) -> np.ndarray:
        """``x`` feature-major, as the tree tables read it: built once for every booster."""
        return feature_major(self.x)

    def tabulated(self) -> np.ndarray | None:
        """`columns` where the boosters read tables (many rows), None where they walk their trees."""
        return self.columns if len(self.x) >= TABULATED_FROM_ROWS else None


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
    parts : subset of ("purchase", "count", "revenue")
        "purchase": the calibrated classifier (churn, purchase probability, reasons);
        "count" and "revenue": the expected purchase days and revenue regressors.
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
    btyd_, scoring_btyd_ : BtydFeatures, BTYD fitted on the training rows' histories and
        on the scoring date's (the training one when no ``population`` was given)
    preprocess_ : sklearn Pipeline (feature-engine steps)
    classifier_ : PurchaseClassifier (calibrated), fitted whenever "purchase" or "count"
        is among ``parts``
    counter_, spender_ : MarginRegressor: purchase days beyond the first among buyers
        (Poisson), revenue (Tweedie)
    reasons_ : ReasonCodes, with the "purchase" part
    columns_ : list of str, the preprocessed column names the boosters read, by position
        (the boosters themselves name them ``f0``, ``f1``, …: `features.preprocess.booster_names`)
    best_iterations_ : dict of model name → trees kept by early stopping
    level_ : float, set by `anchor_level` only: the factor on expected purchase days that
        gives the scoring date's cohort BG/NBD's total
    """

    # Fitted state (see Attributes); the estimators are None for parts not fitted.
    btyd_: BtydFeatures
    scoring_btyd_: BtydFeatures
    numeric_: list[str]
    categorical_: list[str]
    inputs_: list[str]
    preprocess_: Any
    columns_: list[str]
    best_iterations_: dict[str, int]
    classifier_: PurchaseClassifier | None
    counter_: MarginRegressor | None
    spender_: MarginRegressor | None
    reasons_: ReasonCodes | None
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

    def _booster_params(self) -> dict[str, Any]:
        """The LightGBM settings every booster of this model shares."""
        return dict(n_estimators=self.n_estimators, learning_rate=self.learning_rate, num_leaves=self.num_leaves,
                    min_child_samples=self.min_child_samples, early_stopping_rounds=self.early_stopping_rounds,
                    refit=self.refit, random_state=self.random_state, n_jobs=self.n_jobs)

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame,
            purchase_from: "PurchaseModel | None" = None,
            population: pd.DataFrame | None = None) -> "PurchaseModel":
        """Learn from ``train`` snapshots; stop early and calibrate on ``valid`` (the latest snapshot).

        ``population`` (optional, no labels needed): the feature rows as of the date the
        model will score, whose histories the BTYD model behind scoring is fitted on, as
        the classical models are fitted at the scoring date. The training rows' own BTYD
        view stays fitted on their histories (nothing after a snapshot reaches its
        margins); without ``population`` that one serves scoring too.

        ``purchase_from``: a model of the same run whose calibrated classifier, BTYD fits
        and preprocessing this one reuses (see `_shared_classifier`).
        """
        self.__dict__.pop(_FINGERPRINT, None)  # it fingerprinted the estimators being replaced
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

        def boost(estimator: MarginBooster, target: str, margin: str, rows=None, kind=float, shift: float = 0.0):
            """``estimator`` fitted on ``train``, early-stopped on ``valid``; ``rows`` picks rows of each."""
            def take(x, m, frame):
                keep = np.ones(len(frame), bool) if rows is None else rows(frame)
                return x[keep], m[margin][keep].to_numpy(), (frame[target][keep] - shift).astype(kind).to_numpy()

            (xt, mt, yt), (xv, mv, yv) = take(x_train, m_train, train), take(x_valid, m_valid, valid)
            return estimator.fit(xt, yt, init_score=mt, eval_set=(xv, yv, mv))

        self.best_iterations_ = {}
        self.classifier_ = self.counter_ = self.spender_ = self.reasons_ = None
        if shared:
            self.classifier_ = shared.classifier_
            self.best_iterations_["purchase"] = shared.best_iterations_["purchase"]
        elif {"purchase", "count"} & set(self.parts):
            self.classifier_ = boost(PurchaseClassifier(**self._booster_params()), TARGET, "purchase", kind=int)
            self.best_iterations_["purchase"] = self.classifier_.best_iteration_
        if "purchase" in self.parts:
            self.reasons_ = ReasonCodes(inputs=self.inputs_).fit(x_train, m_train["purchase"])
        if "count" in self.parts:
            # Purchase days beyond the first, among buyers (zero-truncated counts, shifted by one).
            self.counter_ = boost(MarginRegressor("poisson", **self._booster_params()), COUNT_TARGET, "extra_count",
                                  rows=lambda f: (f[COUNT_TARGET] > 0).to_numpy(), shift=1.0)
            self.best_iterations_["count"] = self.counter_.best_iteration_
        if "revenue" in self.parts:
            self.spender_ = boost(MarginRegressor("tweedie", 1.5, **self._booster_params()), REVENUE_TARGET, "revenue")
            self.best_iterations_["revenue"] = self.spender_.best_iteration_
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

    def _carried(self, X: Rows) -> "Carry | None":
        """How the label-window answers for ``X`` carry forward to the horizon; None when they need not."""
        label = self._label_days()
        if label == self.horizon_days:
            return None
        return carry_forward(self._scoring_btyd().model_, summary_columns(X), label, self.horizon_days)

    def _scoring_btyd(self) -> BtydFeatures:
        """The BTYD view rows are scored with (models pickled before it existed: the training one)."""
        return self.__dict__.get("scoring_btyd_", self.btyd_)

    def _purchase(self, prepared: Prepared) -> np.ndarray:
        """The calibrated purchase probability over the label window."""
        assert self.classifier_ is not None
        raw = self.classifier_.raw_score(prepared.x, prepared.tabulated())
        return self.classifier_.calibrated(raw + np.asarray(prepared.margins["purchase"]))

    def _check_fitted(self) -> None:
        if not hasattr(self, "best_iterations_"):
            raise NotFittedError("PurchaseModel is not fitted yet: call fit first")

    def purchase_probability(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated chance of at least one purchase in the next ``horizon_days`` days."""
        self._check_fitted()
        if self.classifier_ is None:
            raise ValueError("this PurchaseModel was fitted without the 'purchase' part")
        p = self._purchase(self.prepare(X))
        carry = self._carried(X)
        return p if carry is None else carry.probability(p)

    def prepare(self, X: Rows) -> Prepared:
        """Feature rows made ready for the boosters: BG/NBD's view added, preprocessed, margins.

        Many rows are prepared in slices on all cores: the preprocessing is pandas and
        feature-engine work that spends much of its time in copies that release the GIL
        (1M rows on 2 cores: 3.8 s instead of 6.1 s; the slices' results are the same rows).
        """
        self._check_fitted()
        threads = predict_threads(row_count(X))
        if row_count(X) < PREPARE_SLICED_FROM_ROWS or threads == 1:
            return self._prepare_rows(X)
        X = as_frame(X)
        slices = np.array_split(np.arange(len(X)), 2 * threads)
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(lambda rows: self._prepare_rows(X.iloc[rows]), slices))
        return Prepared(pd.concat([p.x for p in parts]), pd.concat([p.margins for p in parts]))

    def _prepare_rows(self, X: Rows) -> Prepared:
        """BTYD's view added, then the preprocessing: for fewer than ``COMPILED_BELOW_ROWS`` rows
        its NumPy replay (`features.compiled`: the same values), which reads the BTYD columns as
        arrays rather than from a new frame; for more, the feature-engine Pipeline. `features.rows`
        columns (one request's row) stay arrays throughout."""
        btyd = self._scoring_btyd()
        compiled = self._compiled() if row_count(X) < COMPILED_BELOW_ROWS else None
        if compiled is not None:
            added = btyd.columns(X)
            margin_inputs = {**added, "mean_order_value": row_values(X, "mean_order_value")}
            if not isinstance(X, pd.DataFrame):
                matrix = compiled.matrix(X, extra=added)
                if matrix is not None:
                    return Prepared(matrix, margin_columns(margin_inputs))
            else:
                return Prepared(compiled.transform(X, extra=added),
                                pd.DataFrame(margin_columns(margin_inputs), index=X.index))
        X = btyd.transform(as_frame(X))
        return Prepared(self.preprocess_.transform(X[self.inputs_]), base_margins(X))

    def _compiled(self) -> CompiledPreprocessing | None:
        """`preprocess_` compiled (`features.compiled`), built on first use and never pickled, so
        models registered before it existed get it too; None where it cannot be compiled."""
        return compiled_for(self, self.preprocess_)

    def shares_inputs(self, other: "PurchaseModel") -> bool:
        """Whether ``other`` prepares rows and predicts purchase exactly as this model does
        (same BG/NBD fit, preprocessing, classifier and calibration: the churn and
        next-purchase models of one training run), so one `prepare` and one purchase
        probability can serve both."""
        return self._fingerprint() == other._fingerprint()

    def _fingerprint(self) -> str:
        fingerprint = self.__dict__.get(_FINGERPRINT)
        if fingerprint is None:
            self._check_fitted()
            digest = hashlib.blake2b(digest_size=16)
            classifier = self.classifier_
            for part in (self.btyd_, self._scoring_btyd(), self.preprocess_,
                         None if classifier is None else classifier.calibrator_, self.inputs_,
                         self.columns_, self.horizon_days, self._label_days()):
                digest.update(pickle.dumps(part))
            digest.update(b"" if classifier is None else classifier.booster_.model_to_string().encode())
            fingerprint = self.__dict__[_FINGERPRINT] = digest.hexdigest()
        return fingerprint

    def predict(self, X: pd.DataFrame, prepared: Prepared | None = None,
                purchase_probability: np.ndarray | None = None,
                typical: Mapping[str, float] | None = None) -> pd.DataFrame:
        """`predict_columns` as a frame indexed as ``X``."""
        return pd.DataFrame(self.predict_columns(X, prepared, purchase_probability, typical), index=index_of(X))

    def predict_columns(self, X: Rows, prepared: Prepared | None = None,
                        purchase_probability: np.ndarray | None = None,
                        typical: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
        """One value per input row: purchase and churn probability, days to the next purchase
        and the top churn reasons ("purchase" part); expected purchase days and their
        median ("count"); expected revenue ("revenue"), all over the horizon.

        ``prepared`` (`prepare` of ``X``) and ``purchase_probability`` may come from a model
        that `shares_inputs` with this one, which then skips that work.

        ``typical``: the typical customer's values (`training.reasons.typical_values` of the
        whole population scored; default: of ``X``) that decide which contributions can be
        given as reasons (`training.reasons.reason_mask`). Pass the population's when
        ``X`` is a slice of it or a single row.
        """
        self._check_fitted()
        prepared = self.prepare(X) if prepared is None else prepared
        x, margins, columns = prepared.x, prepared.margins, prepared.tabulated()
        out: dict[str, np.ndarray] = {}
        carry = self._carried(X)
        p = purchase_probability  # over the horizon: a sharing model answered for the same horizon
        if "purchase" in self.parts:
            assert self.classifier_ is not None and self.reasons_ is not None
            # One pass gives both: the contributions add up to the classifier's raw score.
            toward_purchase = self.classifier_.contributions(x, self.reasons_.groups_, columns)
            p = self.classifier_.calibrated(toward_purchase.sum(axis=1) + np.asarray(margins["purchase"]))
            p = p if carry is None else carry.probability(p)
            out["purchase_probability"] = p
            out["churn_probability"] = 1.0 - p
            out["days_to_next_purchase"] = days_to_next_purchase(p, self.horizon_days)
            typical = typical if typical is not None else typical_values(as_frame(X))
            eligible = reason_mask(X, self.reasons_.features_, typical)
            out["top_reasons"] = self.reasons_.predict(toward_purchase, np.asarray(margins["purchase"]), eligible,
                                                       families=reason_families(tuple(self.reasons_.features_)))
        elif p is None and self.classifier_ is not None:
            p = self._purchase(prepared)
            p = p if carry is None else carry.probability(p)
        if self.counter_ is not None:
            # The counter is fitted only beside a classifier (its own or a shared one's): p is known.
            assert p is not None
            extra = np.exp(self.counter_.raw_score(x, columns) + np.asarray(margins["extra_count"]))
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
            revenue = np.exp(self.spender_.raw_score(x, columns) + np.asarray(margins["revenue"]))
            out["expected_revenue"] = revenue if carry is None else carry.count(revenue)
        return out

    def __getstate__(self):
        # The fingerprint is a cache of the fitted parts: rebuilt on demand, never pickled.
        state = dict(super().__getstate__())  # a copy: the live model keeps its cache
        state.pop(_FINGERPRINT, None)
        state.pop(COMPILED_CACHE, None)  # rebuilt from preprocess_ on first use
        return state

    def __setstate__(self, state):
        super().__setstate__(_from_previous_layout(state))


def _from_previous_layout(state: dict) -> dict:
    """A `PurchaseModel`'s pickled state, models pickled before the estimators were split out
    (bare LightGBM boosters, the calibrator and the reasons' mean margin beside them) put
    into today's: the same boosters and calibrator inside `PurchaseClassifier`,
    `MarginRegressor` and `ReasonCodes`, so they answer exactly as before."""
    if not isinstance(state.get("classifier_"), lgb.LGBMModel) and not isinstance(state.get("counter_"),
                                                                                   lgb.LGBMModel):
        return state
    state = dict(state)
    params = {k: state[k] for k in ("n_estimators", "learning_rate", "num_leaves", "min_child_samples",
                                    "early_stopping_rounds", "refit", "random_state", "n_jobs") if k in state}
    calibrator = state.pop("calibrator_", None)
    mean_margin = state.pop("mean_margin_", None)
    if isinstance(state.get("classifier_"), lgb.LGBMModel):
        state["classifier_"] = PurchaseClassifier._from_previous(state["classifier_"], from_previous(calibrator),
                                                                 **params)
    for name, objective in (("counter_", "poisson"), ("spender_", "tweedie")):
        if isinstance(state.get(name), lgb.LGBMModel):
            state[name] = MarginRegressor._holding(state[name], objective=objective, **params)
    state["reasons_"] = None
    if "purchase" in state.get("parts", ()) and mean_margin is not None:
        state["reasons_"] = ReasonCodes(inputs=state["inputs_"])._learn(list(state["columns_"]), mean_margin)
    return state


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


def carry_forward(btyd, summary: pd.DataFrame | Mapping[str, np.ndarray], label_days: int, horizon_days: int) -> Carry:
    """The `Carry` from ``label_days`` to ``horizon_days`` under a fitted BTYD model.

    ``btyd`` is a :class:`~training.btyd.BetaGeoModel` or
    :class:`~training.pareto_nbd.ParetoNBDModel` (weeks); ``summary`` its inputs, NaN for
    rows without a purchase: with no history to carry forward, their answers stay those of
    the label window (ratios of 1).
    """
    if not 0 < label_days <= horizon_days:
        raise ValueError(f"label_days must be between 1 and horizon_days ({horizon_days}), got {label_days}")
    known = _known_histories(summary)
    count_ratio = np.ones(len(known))
    none_ratio = np.ones(len(known))
    if known.any():
        rows = rows_where(summary, known)
        short, long = label_days / WEEK, horizon_days / WEEK
        count_ratio[known] = (btyd.expected_purchases(rows, long)
                              / np.clip(btyd.expected_purchases(rows, short), 1e-300, None))
        none_ratio[known] = ((1.0 - btyd.purchase_probability(rows, long))
                             / np.clip(1.0 - btyd.purchase_probability(rows, short), 1e-300, None))
    return Carry(count_ratio=count_ratio, none_ratio=np.clip(none_ratio, 1e-12, 1.0))


def base_margins(X: pd.DataFrame) -> pd.DataFrame:
    """`margin_columns` as a frame indexed as ``X``."""
    return pd.DataFrame(margin_columns(X), index=X.index)


def margin_columns(X: Rows) -> dict[str, np.ndarray]:
    """BG/NBD's answers as the boosters' starting points (log-odds and log-means).

    The boosters learn a correction to the classical model rather than everything from
    scratch: BG/NBD carries how purchase rates and dropout age with a customer, which
    trees cannot extrapolate when the scoring date lies beyond the training snapshots
    (an aging cohort such as CDNOW's). Revenue starts from expected purchases × the
    customer's mean order value.
    """
    probability = np.clip(floats(X, "btyd_purchase_probability"), 1e-4, 1 - 1e-4)
    btyd_expected = floats(X, "btyd_expected_purchases")
    expected = np.clip(btyd_expected, 1e-4, None)
    # BG/NBD's purchase days beyond the first, given at least one: E[N] / P(N > 0) - 1.
    extra = np.clip(np.nan_to_num(btyd_expected, nan=0.0) / probability - 1.0, 1e-3, None)
    order_value = np.clip(np.nan_to_num(floats(X, "mean_order_value"), nan=1.0), 1.0, None)
    margins = {
        "purchase": np.log(probability / (1 - probability)),
        "count": np.log(expected),
        "extra_count": np.log(extra),
        "revenue": np.log(expected * order_value),
    }
    return {name: np.nan_to_num(values, nan=0.0, posinf=np.inf, neginf=-np.inf) for name, values in margins.items()}


PREPARE_SLICED_FROM_ROWS = 100_000
_FINGERPRINT = "_fingerprint_cache"
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
