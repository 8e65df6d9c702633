"""Backtest: train on what was known by a date, score as of it, compare with what happened next.

Three contenders predict, for every customer who had bought by the as-of date, whether
they buy in the next H days and on how many distinct days:

- ``cdp-ml``: the :class:`~training.purchase.PurchaseModel` trained on rolling snapshots
  whose label windows end by the as-of date;
- ``BG/NBD``: the classical model (`training.btyd`) fitted on everyone's history as of the
  date, the benchmark of customer-base analysis since Fader, Hardie & Lee (2005);
- ``recency heuristic``: the more recent the last purchase, the likelier the next; counts
  from the customer's past purchase-day rate.

Purchases are distinct customer-days throughout (the BTYD convention).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import poisson
from sklearn.metrics import mean_absolute_error, roc_auc_score

from training.btyd import BetaGeoModel
from training.purchase import WEEK, PurchaseModel, btyd_summary, classification_metrics

CONTENDERS = ("cdp-ml", "BG/NBD", "recency heuristic")


def heuristic(test: pd.DataFrame, horizon_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Recency-only probability (``1 / (1 + recency_days / horizon)``, monotone in recency) and a
    count at the customer's own past rate of purchase days per day of tenure."""
    recency = test["recency_days"].to_numpy(float)
    tenure = np.maximum(test["tenure_days"].to_numpy(float), 1.0)
    probability = 1.0 / (1.0 + recency / horizon_days)
    count = test["purchase_days"].to_numpy(float) / tenure * horizon_days
    return probability, count


def bgnbd(test: pd.DataFrame, horizon_days: int) -> tuple[np.ndarray, np.ndarray]:
    """BG/NBD fitted on the test population's own histories (all it may know), then its
    probability of at least one purchase and expected purchase days over the horizon."""
    probability, expected, _ = bgnbd_forecasts(test, horizon_days)
    return probability, expected


def bgnbd_forecasts(test: pd.DataFrame, horizon_days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`bgnbd`'s answers and the median purchase days, from its exact conditional
    distribution of the count."""
    summary = btyd_summary(test)
    model = BetaGeoModel().fit(summary)
    t = horizon_days / WEEK
    pmf = model.purchase_count_pmf(summary, t, max_count=100)
    median = (np.cumsum(pmf, axis=1) < 0.5).sum(axis=1).astype(float)
    return model.purchase_probability(summary, t), model.expected_purchases(summary, t), median


def forecasts(model: PurchaseModel, test: pd.DataFrame, horizon_days: int) -> dict[str, tuple[np.ndarray, ...]]:
    """Each contender's answers for every customer of ``test``: purchase probability,
    expected purchase days and median purchase days over the horizon."""
    predicted = model.predict(test)
    recency_probability, recency_count = heuristic(test, horizon_days)
    return {
        "cdp-ml": (predicted["purchase_probability"].to_numpy(), predicted["expected_purchases"].to_numpy(),
                   predicted["median_purchases"].to_numpy()),
        "BG/NBD": bgnbd_forecasts(test, horizon_days),
        "recency heuristic": (recency_probability, recency_count,
                              poisson.median(np.clip(recency_count, 1e-9, None))),
    }


def compare(answers: dict[str, tuple[np.ndarray, ...]], test: pd.DataFrame) -> pd.DataFrame:
    """One row per contender: ROC-AUC and calibration of the purchase probability, and the
    per-customer mean absolute error of purchase days in the horizon, twice: forecasting
    each customer's expected count (the mean), and forecasting its median, the point
    forecast absolute error rewards (Gneiting 2011, "Making and evaluating point forecasts").

    ``test`` is the feature table as of the as-of date joined to the labels of the window
    after it (buyers by the as-of date only); ``answers`` come from `forecasts`.
    """
    y = test["purchased_in_horizon"].to_numpy(int)
    days = test["purchase_days_in_horizon"].to_numpy(float)
    rows = []
    for name in CONTENDERS:
        probability, count, median = answers[name]
        metrics = classification_metrics(y, probability)
        rows.append({
            "model": name,
            "customers": len(test),
            "purchase_roc_auc": roc_auc_score(y, probability),
            "purchase_pr_auc": metrics["pr_auc"],
            "purchase_brier": metrics["brier"],
            "purchase_days_mae": mean_absolute_error(days, count),
            "purchase_days_mae_median": mean_absolute_error(days, median),
            "predicted_purchase_days": float(np.sum(count)),
            "actual_purchase_days": float(np.sum(days)),
        })
    return pd.DataFrame(rows).set_index("model")


def mae_differences(answers: dict[str, tuple[np.ndarray, ...]], test: pd.DataFrame, against: str = "BG/NBD",
                    resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """cdp-ml's purchase-days MAE minus ``against``'s, for the mean and the median forecast,
    with a 95% paired bootstrap interval over customers: whether a gap in the table is
    more than the luck of which customers happened to buy."""
    days = test["purchase_days_in_horizon"].to_numpy(float)
    rows = []
    for forecast, column in (("mean", 1), ("median", 2)):
        gap = np.abs(days - answers["cdp-ml"][column]) - np.abs(days - answers[against][column])
        rng = np.random.default_rng(seed)          # the same resamples for both forecasts
        means = np.array([gap[rng.integers(0, len(gap), len(gap))].mean() for _ in range(resamples)])
        low, high = np.percentile(means, [2.5, 97.5])
        rows.append({"forecast": forecast, "mae_difference": gap.mean(), "low_95": low, "high_95": high})
    return pd.DataFrame(rows).set_index("forecast")
