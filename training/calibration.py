"""Calibrated probabilities from a classifier's raw ones: isotonic on many rows, Platt on few.

A booster's probabilities rank customers well but are not frequencies: of the customers it
gives 0.3, maybe 0.2 buy. Marketers read the churn probability as a frequency ("one in
five of these will not come back"), and expected purchase days are built on it, so it is
calibrated on customers the booster did not learn from.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

ISOTONIC_FROM_ROWS = 5000
METHODS = ("auto", "isotonic", "sigmoid")


class ProbabilityCalibrator(RegressorMixin, BaseEstimator):
    """Map raw probabilities in [0, 1] to calibrated ones, strictly inside (0, 1).

    One score in, one probability out, like scikit-learn's `IsotonicRegression`: ``X`` is
    a 1-d array of raw probabilities (or one column of them), ``y`` the 0/1 outcomes.

    Parameters
    ----------
    method : {"auto", "isotonic", "sigmoid"}
        ``"isotonic"``: a monotone step function (flexible, needs many rows);
        ``"sigmoid"``: Platt scaling, a logistic regression on the raw log-odds (two
        parameters, safe on a few hundred rows); ``"auto"``: isotonic from
        ``isotonic_from_rows`` tuning rows, Platt below.
    isotonic_from_rows : int
        Where ``"auto"`` switches to isotonic regression.

    Attributes
    ----------
    method_ : str, the method used ("isotonic" or "sigmoid")
    model_ : the fitted IsotonicRegression or LogisticRegression

    Probabilities never reach 0 or 1: a churn list that says "certain" is never right. The
    isotonic fit is clipped to ``[1/n, 1 - 1/n]`` for its ``n`` tuning rows.
    """

    def __init__(self, method: str = "auto", isotonic_from_rows: int = ISOTONIC_FROM_ROWS):
        self.method = method
        self.isotonic_from_rows = isotonic_from_rows

    def fit(self, X, y) -> "ProbabilityCalibrator":
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        raw = _scores(X)
        y = np.asarray(y)
        if y.shape != raw.shape:
            raise ValueError(f"{len(raw)} raw probabilities for {len(y)} outcomes")
        if not np.isin(y, (0, 1)).all():
            raise ValueError("outcomes must be 0 or 1")
        method = self.method
        if method == "auto":
            method = "isotonic" if len(y) >= self.isotonic_from_rows else "sigmoid"
        if method == "isotonic":
            eps = 1.0 / len(y)
            self.model_ = IsotonicRegression(y_min=eps, y_max=1 - eps, out_of_bounds="clip").fit(raw, y)
        else:
            if len(np.unique(y)) < 2:
                raise ValueError("Platt scaling needs both outcomes among the tuning rows")
            self.model_ = LogisticRegression(C=1e6).fit(logit(raw).reshape(-1, 1), y.astype(int))
        self.method_ = method
        return self

    def predict(self, X) -> np.ndarray:
        """Calibrated probabilities of the raw ones in ``X``."""
        check_is_fitted(self, "model_")
        raw = _scores(X)
        if self.method_ == "isotonic":
            return self.model_.predict(raw)
        return self.model_.predict_proba(logit(raw).reshape(-1, 1))[:, 1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        return tags


def _scores(X) -> np.ndarray:
    raw = np.asarray(X, dtype=float)
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw[:, 0]
    if raw.ndim != 1:
        raise ValueError(f"expected one column of raw probabilities, got shape {raw.shape}")
    if np.isnan(raw).any():
        raise ValueError("raw probabilities hold NaN")
    return raw


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class _Platt:
    """Platt scaling as models pickled before `ProbabilityCalibrator` hold it (kept so they load)."""

    model: LogisticRegression

    def predict(self, raw: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(logit(raw).reshape(-1, 1))[:, 1]


def from_previous(calibrator) -> ProbabilityCalibrator:
    """A `ProbabilityCalibrator` holding a calibrator pickled by the previous layout (an
    IsotonicRegression or a `_Platt`): it answers exactly as that one did."""
    out = ProbabilityCalibrator()
    if isinstance(calibrator, IsotonicRegression):
        out.method_, out.model_ = "isotonic", calibrator
    else:
        out.method_, out.model_ = "sigmoid", calibrator.model
    return out


__all__ = ["ProbabilityCalibrator", "from_previous", "logit", "sigmoid"]
