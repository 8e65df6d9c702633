"""Will this customer buy within the horizon: the calibrated classifier behind churn.

Churn is the complement of a purchase within the horizon (``churn_probability = 1 -
purchase_probability``): one event, one calibrated probability, so the churn list and the
purchase score can never disagree. `PurchaseClassifier` learns it as a LightGBM correction
to a starting log-odds (BG/NBD's, in `training.purchase.PurchaseModel`), then calibrates
its probabilities (`training.calibration.ProbabilityCalibrator`) on the evaluation rows.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from training.boosting import MarginBooster, _margin
from training.calibration import ProbabilityCalibrator, logit, sigmoid


class PurchaseClassifier(ClassifierMixin, MarginBooster):
    """A binary LightGBM classifier from per-row starting log-odds, with calibrated probabilities.

    Parameters
    ----------
    calibration : {"auto", "isotonic", "sigmoid"}
        How probabilities are calibrated (`ProbabilityCalibrator`'s ``method``).
    Other parameters as `training.boosting.MarginBooster`.

    Attributes
    ----------
    classes_ : the two labels; probabilities are of ``classes_[1]``
    calibrator_ : ProbabilityCalibrator, fitted on the ``eval_set`` rows (honest: rows the
        early-stopped trees were not fitted on, though a refit saw them), or on the training
        rows when there is no ``eval_set``
    Plus `MarginBooster`'s.

    The calibrator is fitted on the final (refitted) classifier's answers: calibrating the
    early-stopped one and applying it to the refit corrects twice for what the latest
    snapshot taught (on CDNOW 6,074 forecast purchase days for 7,364 bought, against 6,334
    this way). Shallow trees with hundreds of rows per leaf barely fit the rows they saw.
    """

    def __init__(self, calibration: str = "auto", n_estimators: int = 500, learning_rate: float = 0.1,
                 num_leaves: int = 4, min_child_samples: int = 500, early_stopping_rounds: int = 100,
                 refit: bool = True, random_state: int = 0, n_jobs: int | None = None):
        super().__init__(n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
                         min_child_samples=min_child_samples, early_stopping_rounds=early_stopping_rounds,
                         refit=refit, random_state=random_state, n_jobs=n_jobs)
        self.calibration = calibration

    def _objective(self) -> dict[str, Any]:
        return {"objective": "binary"}

    def fit(self, X, y, init_score=None, eval_set=None) -> "PurchaseClassifier":
        """Learn ``y`` (two classes) from ``X``, each row starting at ``init_score`` (log-odds of
        ``classes_[1]``; 0 if None). ``eval_set``: ``(X, y)`` or ``(X, y, init_score)``, to stop
        early on and calibrate on."""
        if y is None:
            raise ValueError("PurchaseClassifier requires y to be passed, but the target y is None")
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind != "binary":
            raise ValueError(f"Only binary classification is supported. The type of the target is {kind}.")
        classes = np.unique(y)
        if len(classes) == 0:
            validate_data(self, X, y, ensure_all_finite="allow-nan")  # says what is empty
        if len(classes) < 2:
            raise ValueError(f"PurchaseClassifier needs two classes to learn from; y holds one class ({classes[0]!r})")
        if eval_set is not None and not np.isin(column_or_1d(eval_set[1]), classes).all():
            raise ValueError("eval_set holds classes the training rows do not")
        X, X_eval = self._fit_booster(X, y, init_score, eval_set)
        self.classes_ = classes
        if X_eval is None:
            tune, tune_y, tune_init = X, y, init_score
        else:
            tune, tune_y = X_eval, column_or_1d(eval_set[1])
            tune_init = eval_set[2] if len(eval_set) == 3 else None
        raw = sigmoid(self.raw_score(tune) + _margin(tune_init, len(tune), "init_score"))
        self.calibrator_ = ProbabilityCalibrator(method=self.calibration).fit(raw, (tune_y == classes[1]).astype(int))
        return self

    def raw_log_odds(self, X, init_score=None) -> np.ndarray:
        """Uncalibrated log-odds of ``classes_[1]``: ``init_score`` + the trees' raw score."""
        X = self._checked(X)
        return self.raw_score(X) + _margin(init_score, len(X), "init_score")

    def calibrated(self, log_odds: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of ``classes_[1]`` from uncalibrated log-odds (`raw_log_odds`,
        or a caller's own sum of `contributions` and margin)."""
        check_is_fitted(self, "calibrator_")
        return self.calibrator_.predict(sigmoid(np.asarray(log_odds, dtype=float)))

    def predict_proba(self, X, init_score=None) -> np.ndarray:
        """Calibrated probabilities: one column per class of ``classes_``."""
        p = self.calibrated(self.raw_log_odds(X, init_score))
        return np.column_stack([1.0 - p, p])

    def decision_function(self, X, init_score=None) -> np.ndarray:
        """Calibrated log-odds of ``classes_[1]``: positive where it is the likelier class."""
        return logit(self.predict_proba(X, init_score)[:, 1])

    def predict(self, X, init_score=None) -> np.ndarray:
        """The likelier class of each row (calibrated probability of ``classes_[1]`` above 0.5)."""
        likelier = self.predict_proba(X, init_score)[:, 1] > 0.5
        return self.classes_[likelier.astype(int)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        assert tags.classifier_tags is not None
        tags.classifier_tags.multi_class = False
        return tags

    @classmethod
    def _from_previous(cls, model: lgb.LGBMClassifier, calibrator: ProbabilityCalibrator,
                       **params) -> "PurchaseClassifier":
        """A classifier around a booster and calibrator pickled by the previous layout."""
        out = cls._holding(model, **params)
        assert isinstance(out, PurchaseClassifier)
        out.classes_ = np.asarray(model.classes_)
        out.calibrator_ = calibrator
        return out
