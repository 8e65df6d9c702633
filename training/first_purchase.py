"""Will a prospect make their first purchase within the horizon.

The purchase models (`training.purchase`) score customers who have bought: they start
from BG/NBD's view of a purchase history. A lead, a newsletter sign-up or a known visitor
has no history to start from, only who they are and what they did: email opens and
clicks, web sessions, product views and carts, ad clicks, social engagement, how long ago
they were first seen. :class:`FirstPurchaseModel` learns, on rolling snapshots of the
prospects of each as-of day (`features.labels.first_purchase_labels`), the calibrated
probability of a first purchase within the horizon from those features.

- Inputs: the catalog's model inputs of the profile, behaviour and engagement families
  that a person without orders can have (`first_purchase_inputs`): never consent flags
  or contact details (the catalog marks them), never the purchase-history columns, which
  are empty for every prospect.
- A LightGBM classifier starting from the training rows' base rate, constrained monotone
  in the customer-initiated engagement counts and rates (`ENGAGEMENT_DIRECTIONS`): more
  opens, clicks, sessions or carts never lower the probability, all else equal, which
  keeps a small population's trees from learning noise the other way and makes the
  score explainable to a marketer ("engage them more").
- Early stopping and calibration on the latest snapshot's tuning customers, as for the
  purchase models (`training.churn.PurchaseClassifier`, `training.calibration`).

:class:`EngagementBaseline`, a logistic regression on a few engagement counts, is the
baseline the model must beat to be promoted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from features.catalog import catalog
from features.compiled import COMPILED_BELOW_ROWS, COMPILED_CACHE, compiled_for
from features.preprocess import preprocessing_pipeline
from features.rows import Rows, as_frame, has_column, row_count
from training.churn import PurchaseClassifier

TARGET = "purchased_in_horizon"
FAMILIES = ("profile", "behaviour", "engagement")

# +1: more of it never lowers the probability (customer-initiated engagement); -1: more of
# it never raises it (days since the person last engaged). Sends and impressions are what
# the shop did, not the person: unconstrained.
_COUNTS = ("web_sessions", "page_views", "product_views", "searches", "cart_adds", "checkouts", "email_opens",
           "email_clicks")
ENGAGEMENT_DIRECTIONS: Mapping[str, int] = {
    **{f"{stem}{window}": 1 for stem in _COUNTS for window in ("", "_30d", "_90d")},
    **{f"{stem}{window}": 1 for stem in ("email_open_rate", "email_click_rate") for window in ("", "_30d", "_90d")},
    **{f"ad_clicks_{c}_90d": 1 for c in ("facebook", "instagram", "google_search")},
    "social_engagements_organic_social_90d": 1,
    "active_days_90d": 1,
    "engagement_events_90d": 1,
    "days_since_last_engagement": -1,
    "days_since_last_email_open": -1,
}

# What the baseline reads: the person's own recent engagement, nothing else.
BASELINE_INPUTS = ("web_sessions_90d", "product_views_90d", "cart_adds_90d", "email_opens_90d", "email_clicks_90d",
                   "engagement_events_90d", "active_days_90d")


def first_purchase_inputs(columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """The numeric and categorical inputs of the first-purchase model among ``columns``, in catalog order.

    The catalog's model inputs (never consent flags, contact details, dates or segment
    names) of the profile, behaviour and engagement families, less those read from orders
    alone: a prospect has none, so they are empty for every row the model sees.
    """
    present = set(columns)
    specs = [s for s in catalog() if s.model_input and s.name in present and s.family in FAMILIES
             and s.sources != ("orders",)]
    numeric = [s.name for s in specs if s.kind in ("numeric", "flag")]
    categorical = [s.name for s in specs if s.kind == "categorical"]
    return numeric, categorical


class MonotoneClassifier(PurchaseClassifier):
    """A `PurchaseClassifier` whose trees respect LightGBM monotone constraints.

    Parameters
    ----------
    monotone_constraints : sequence of {-1, 0, 1} or None
        One per input column, by position (LightGBM's ``monotone_constraints``); None for none.
    Other parameters as `PurchaseClassifier`.
    """

    def __init__(self, monotone_constraints: Sequence[int] | None = None, calibration: str = "auto",
                 n_estimators: int = 500, learning_rate: float = 0.1, num_leaves: int = 4,
                 min_child_samples: int = 500, early_stopping_rounds: int = 100, refit: bool = True,
                 random_state: int = 0, n_jobs: int | None = None):
        super().__init__(calibration=calibration, n_estimators=n_estimators, learning_rate=learning_rate,
                         num_leaves=num_leaves, min_child_samples=min_child_samples,
                         early_stopping_rounds=early_stopping_rounds, refit=refit, random_state=random_state,
                         n_jobs=n_jobs)
        self.monotone_constraints = monotone_constraints

    def _lgbm(self, rows: int) -> lgb.LGBMModel:
        model = super()._lgbm(rows)
        if self.monotone_constraints is not None and any(self.monotone_constraints):
            # "advanced" keeps more of the trees' fit than the default "basic" method while
            # guaranteeing the same monotonicity (LightGBM's parameter docs).
            model.set_params(monotone_constraints=list(self.monotone_constraints),
                             monotone_constraints_method="advanced")
        return model


class FirstPurchaseModel(BaseEstimator):
    """Calibrated probability that a prospect (no purchase yet) buys within the horizon.

    Parameters
    ----------
    horizon_days : int
        Days ahead the model forecasts.
    label_horizon_days : int or None
        The label window the snapshots were built with; None means ``horizon_days``. A
        shorter one is carried forward to ``horizon_days`` at a constant daily chance
        (``1 - (1 - p) ** (H / L)``): a prospect has no history for a BTYD model to
        carry it forward with.
    numeric, categorical : sequence of str or None
        Model inputs; None picks them from the catalog (`first_purchase_inputs`).
    monotone : bool
        Constrain the engagement inputs as `ENGAGEMENT_DIRECTIONS` says.
    n_estimators, learning_rate, num_leaves, min_child_samples, early_stopping_rounds, refit,
    random_state, n_jobs : LightGBM settings (`training.boosting.MarginBooster`). Smaller
        leaves than the purchase models': prospects are a few hundred to a few thousand
        rows per snapshot in a shop's store.

    Attributes
    ----------
    numeric_, categorical_, inputs_ : the inputs read
    preprocess_ : sklearn Pipeline (feature-engine steps)
    columns_ : list of str, the preprocessed columns, by position
    constraints_ : dict of preprocessed column → direction, for the constrained ones
    base_rate_ : float, the training rows' first-purchase rate (the trees' starting point)
    classifier_ : MonotoneClassifier, calibrated on the ``valid`` rows
    best_iteration_ : int, trees kept by early stopping
    """

    def __init__(self, horizon_days: int = 90, label_horizon_days: int | None = None,
                 numeric: Sequence[str] | None = None, categorical: Sequence[str] | None = None,
                 monotone: bool = True, n_estimators: int = 300, learning_rate: float = 0.05, num_leaves: int = 4,
                 min_child_samples: int = 40, early_stopping_rounds: int = 50, refit: bool = True,
                 random_state: int = 0, n_jobs: int | None = None):
        self.horizon_days = horizon_days
        self.label_horizon_days = label_horizon_days
        self.numeric = numeric
        self.categorical = categorical
        self.monotone = monotone
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.refit = refit
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame) -> "FirstPurchaseModel":
        """Learn from the ``train`` snapshots' prospects; stop early and calibrate on ``valid``
        (the latest snapshot's tuning prospects). Both need ``purchased_in_horizon`` with
        both outcomes."""
        self._label_days()
        for name, frame in (("train", train), ("valid", valid)):
            if TARGET not in frame.columns:
                raise ValueError(f"{name} rows lack the label column {TARGET}")
            if frame[TARGET].nunique() < 2:
                outcome = frame[TARGET].iloc[0] if len(frame) else "no rows"
                raise ValueError(f"{name} rows have only one outcome ({outcome}): nothing to learn")
        default_numeric, default_categorical = first_purchase_inputs(train.columns)
        self.numeric_ = list(self.numeric) if self.numeric is not None else default_numeric
        self.categorical_ = list(self.categorical) if self.categorical is not None else default_categorical
        self.inputs_ = self.numeric_ + self.categorical_
        if not self.inputs_:
            raise ValueError("no first-purchase model inputs among the training columns")
        self.preprocess_ = preprocessing_pipeline(self.numeric_, self.categorical_).fit(train[self.inputs_])
        x_train = self.preprocess_.transform(train[self.inputs_])
        x_valid = self.preprocess_.transform(valid[self.inputs_])
        self.columns_ = list(x_train.columns)
        directions = ENGAGEMENT_DIRECTIONS if self.monotone else {}
        # The winsorizer and the median imputer keep order, so a constraint on the
        # preprocessed column holds for the raw feature; a missing flag ("<name>_na") is free.
        self.constraints_ = {c: directions[c] for c in self.columns_ if c in directions}
        y_train = train[TARGET].to_numpy(int)
        y_valid = valid[TARGET].to_numpy(int)
        self.base_rate_ = float(y_train.mean())
        start = math.log(self.base_rate_ / (1.0 - self.base_rate_))
        self.classifier_ = MonotoneClassifier(
            monotone_constraints=[self.constraints_.get(c, 0) for c in self.columns_],
            n_estimators=self.n_estimators, learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples, early_stopping_rounds=self.early_stopping_rounds,
            refit=self.refit, random_state=self.random_state, n_jobs=self.n_jobs,
        ).fit(x_train, y_train, init_score=np.full(len(x_train), start),
              eval_set=(x_valid, y_valid, np.full(len(x_valid), start)))
        self.best_iteration_ = self.classifier_.best_iteration_
        return self

    def _label_days(self) -> int:
        label = self.horizon_days if self.label_horizon_days is None else self.label_horizon_days
        if not 0 < label <= self.horizon_days:
            raise ValueError(f"label_horizon_days must be between 1 and horizon_days ({self.horizon_days}), "
                             f"got {self.label_horizon_days!r}")
        return label

    def purchase_probability(self, X: Rows) -> np.ndarray:
        """Calibrated chance of a first purchase within ``horizon_days``, one per row of ``X``
        (rows are read as prospects, whatever their purchase columns hold)."""
        if not hasattr(self, "classifier_"):
            raise NotFittedError("FirstPurchaseModel is not fitted yet: call fit first")
        missing = [c for c in self.inputs_ if not has_column(X, c)]
        if missing:
            raise KeyError(f"rows lack the first-purchase model's input(s) {', '.join(missing)}")
        x = self._preprocessed(X)
        start = math.log(self.base_rate_ / (1.0 - self.base_rate_))
        p = self.classifier_.predict_proba(x, init_score=np.full(len(x), start))[:, 1]
        label = self._label_days()
        return p if label == self.horizon_days else 1.0 - (1.0 - p) ** (self.horizon_days / label)

    def _preprocessed(self, X: Rows) -> pd.DataFrame:
        """``X``'s inputs preprocessed: a few rows (`/score_features`) by the Pipeline's NumPy
        replay (`features.compiled`, the same values), more by the Pipeline itself."""
        compiled = compiled_for(self, self.preprocess_) if row_count(X) < COMPILED_BELOW_ROWS else None
        return (compiled.transform(X) if compiled is not None
                else self.preprocess_.transform(as_frame(X)[self.inputs_]))

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: the live model keeps its compiled form
        state.pop(COMPILED_CACHE, None)  # rebuilt from preprocess_ on first use
        return state

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """``purchase_probability`` of every row, indexed as ``X``."""
        return pd.DataFrame({"purchase_probability": self.purchase_probability(X)}, index=X.index)

    def importance(self) -> pd.DataFrame:
        """Gain of each preprocessed column, largest first (an aggregate: safe to log)."""
        gain = self.classifier_.booster_.feature_importance("gain")
        table = pd.DataFrame({"feature": self.columns_, "gain": gain,
                              "monotone": [self.constraints_.get(c, 0) for c in self.columns_]})
        return table.sort_values("gain", ascending=False, kind="stable").reset_index(drop=True)


class EngagementBaseline(BaseEstimator):
    """The baseline a first-purchase model must beat: a logistic regression on
    ``log(1 + count)`` of a few of the person's own engagement counts over the last 90
    days (`BASELINE_INPUTS`, those present), missing counts read as none.

    Parameters
    ----------
    inputs : sequence of str
    C : float, the inverse regularization strength

    Attributes
    ----------
    inputs_ : the inputs present in the training rows
    model_ : LogisticRegression, or None where no input was present (then the base rate)
    base_rate_ : float
    """

    def __init__(self, inputs: Sequence[str] = BASELINE_INPUTS, C: float = 1.0):
        self.inputs = inputs
        self.C = C

    def fit(self, X: pd.DataFrame, y) -> "EngagementBaseline":
        y = np.asarray(y, dtype=int)
        self.inputs_ = [c for c in self.inputs if c in X.columns]
        self.base_rate_ = float(y.mean())
        self.model_ = (LogisticRegression(C=self.C, max_iter=1000).fit(self._x(X), y)
                       if self.inputs_ and len(np.unique(y)) == 2 else None)
        return self

    def _x(self, X: pd.DataFrame) -> np.ndarray:
        values = X[self.inputs_].apply(pd.to_numeric, errors="coerce").astype("float64").fillna(0.0)
        return np.log1p(values.clip(lower=0.0).to_numpy())

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "base_rate_"):
            raise NotFittedError("EngagementBaseline is not fitted yet: call fit first")
        if self.model_ is None:
            p = np.full(len(X), self.base_rate_)
        else:
            p = self.model_.predict_proba(self._x(X))[:, 1]
        return np.column_stack([1.0 - p, p])


def calibration_summary(y_true: np.ndarray, probability: np.ndarray, prefix: str = "") -> dict[str, Any]:
    """Mean predicted probability, observed rate, their gap, and the expected calibration
    error over ten equal-count bins of the prediction."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(probability, dtype=float)
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, min(10, len(p))) if len(p) else []
    ece = sum(len(b) * abs(float(p[b].mean()) - float(y[b].mean())) for b in bins if len(b)) / max(len(p), 1)
    return {f"{prefix}mean_predicted": float(p.mean()), f"{prefix}observed_rate": float(y.mean()),
            f"{prefix}calibration_gap": float(abs(p.mean() - y.mean())), f"{prefix}ece": float(ece)}
