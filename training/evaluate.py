"""Backtest: train on what was known by a date, score as of it, compare with what happened next.

Four contenders predict, for every customer who had bought by the as-of date, whether
they buy in the next H days and on how many distinct days:

- ``cdp-ml``: the :class:`~training.purchase.PurchaseModel` trained on rolling snapshots
  whose label windows end by the as-of date (a shorter window carried forward to H when
  the history holds no H-day window, `training.horizons`);
- ``BG/NBD``: the classical model (`training.btyd`) fitted on everyone's history as of the
  date, the benchmark of customer-base analysis since Fader, Hardie & Lee (2005);
- ``Pareto/NBD``: its predecessor (`training.pareto_nbd`), Schmittlein, Morrison &
  Colombo (1987), fitted the same way;
- ``recency heuristic``: the more recent the last purchase, the likelier the next; counts
  from the customer's past purchase-day rate.

Purchases are distinct customer-days throughout (the BTYD convention). `backtest` runs
the whole comparison from the store's tables; the CLI only prints what it returns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import poisson
from sklearn.metrics import mean_absolute_error, roc_auc_score

from cdp.errors import CdpError
from features.labels import LABEL_COLUMNS
from training.btyd import BetaGeoModel
from training.data import Window, features_as_of, labelled_snapshots
from training.horizons import TrainableWindow, trainable_window
from training.pareto_nbd import ParetoNBDModel
from training.purchase import WEEK, PurchaseModel, btyd_summary, classification_metrics

CONTENDERS = ("cdp-ml", "BG/NBD", "Pareto/NBD", "recency heuristic")


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


def pareto_nbd_forecasts(test: pd.DataFrame, horizon_days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pareto/NBD fitted on the test population's own histories: purchase probability and
    expected purchase days over the horizon (no median: its count distribution is not
    implemented, so that column is NaN)."""
    summary = btyd_summary(test)
    model = ParetoNBDModel().fit(summary)
    t = horizon_days / WEEK
    return (model.purchase_probability(summary, t), model.expected_purchases(summary, t),
            np.full(len(summary), np.nan))


def forecasts(model: PurchaseModel, test: pd.DataFrame, horizon_days: int) -> dict[str, tuple[np.ndarray, ...]]:
    """Each contender's answers for every customer of ``test``: purchase probability,
    expected purchase days and median purchase days over the horizon."""
    predicted = model.predict(test)
    recency_probability, recency_count = heuristic(test, horizon_days)
    return {
        "cdp-ml": (predicted["purchase_probability"].to_numpy(), predicted["expected_purchases"].to_numpy(),
                   predicted["median_purchases"].to_numpy()),
        "BG/NBD": bgnbd_forecasts(test, horizon_days),
        "Pareto/NBD": pareto_nbd_forecasts(test, horizon_days),
        "recency heuristic": (recency_probability, recency_count,
                              poisson.median(np.clip(recency_count, 1e-9, None))),
    }


def compare(answers: dict[str, tuple[np.ndarray, ...]], test: pd.DataFrame) -> pd.DataFrame:
    """One row per contender: ROC-AUC and calibration of the purchase probability, and the
    per-customer mean absolute error of purchase days in the horizon, twice: forecasting
    each customer's expected count (the mean), and forecasting its median, the point
    forecast absolute error rewards (Gneiting 2011, "Making and evaluating point forecasts").
    Then, for the mean: `relative_error` (the figure the Pareto/NBD and BG/NBD papers
    report per customer) and the cohort's forecast total over its actual total.

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
            "purchase_days_mae_median": (mean_absolute_error(days, median) if np.isfinite(median).all()
                                         else float("nan")),
            "relative_error": relative_error(days, count),
            "predicted_purchase_days": float(np.sum(count)),
            "actual_purchase_days": float(np.sum(days)),
            "total_ratio": float(np.sum(count) / np.sum(days)) if np.sum(days) > 0 else float("nan"),
        })
    return pd.DataFrame(rows).set_index("model")


def relative_error(actual: np.ndarray, forecast: np.ndarray) -> float:
    """``sum |actual - forecast| / sum actual`` over customers: the MAE in units of the mean
    actual count, comparable across cohorts and horizons."""
    actual = np.asarray(actual, dtype=float)
    total = actual.sum()
    return float(np.abs(actual - np.asarray(forecast, dtype=float)).sum() / total) if total > 0 else float("nan")


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


def paired_differences(answers: dict[str, tuple[np.ndarray, ...]], test: pd.DataFrame, against: str = "BG/NBD",
                       resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """cdp-ml minus ``against`` on purchase ROC-AUC, per-customer MAE of the mean forecast
    and `relative_error`, with 95% paired bootstrap intervals over customers (the same
    resampled customers for both models and all three figures)."""
    y = test["purchased_in_horizon"].to_numpy(int)
    days = test["purchase_days_in_horizon"].to_numpy(float)
    ours, theirs = answers["cdp-ml"], answers[against]

    def figures(rows):
        yr, dr = y[rows], days[rows]
        auc = (roc_auc_score(yr, ours[0][rows]) - roc_auc_score(yr, theirs[0][rows])
               if 0 < yr.sum() < len(yr) else np.nan)
        mae = np.mean(np.abs(dr - ours[1][rows])) - np.mean(np.abs(dr - theirs[1][rows]))
        rel = relative_error(dr, ours[1][rows]) - relative_error(dr, theirs[1][rows])
        return auc, mae, rel

    rng = np.random.default_rng(seed)
    draws = np.array([figures(rng.integers(0, len(y), len(y))) for _ in range(resamples)])
    point = figures(np.arange(len(y)))
    rows = []
    for i, name in enumerate(("purchase_roc_auc", "purchase_days_mae", "relative_error")):
        low, high = np.nanpercentile(draws[:, i], [2.5, 97.5])
        rows.append({"figure": name, "difference": point[i], "low_95": low, "high_95": high})
    return pd.DataFrame(rows).set_index("figure")


@dataclass(frozen=True)
class Backtest:
    """What `backtest` found: the window trained on, the contenders' table (`compare`) and
    cdp-ml minus BG/NBD with bootstrap intervals (`paired_differences`)."""

    window: TrainableWindow
    table: pd.DataFrame
    differences: pd.DataFrame
    answers: dict = field(repr=False)
    test: pd.DataFrame = field(repr=False)


def order_days(tables) -> tuple[dt.date, dt.date]:
    """The first and the last day with a linked non-return order in ``tables``."""
    from ibis import _

    orders = tables.orders.filter(_.customer_id.notnull(), ~_.is_return.fill_null(False))
    row = orders.aggregate(first=_.timestamp.min().date(), last=_.timestamp.max().date()).to_pandas().iloc[0]
    if pd.isna(row["first"]):
        raise CdpError("the store has no linked orders: run `cdp ingest` and `cdp unify` first")
    return pd.Timestamp(row["first"]).date(), pd.Timestamp(row["last"]).date()


def backtest(tables, as_of: dt.date, horizon_days: int, n_snapshots: int = 7, step_days: int = 14,
             model_params: dict | None = None, resamples: int = 1000, seed: int = 0) -> Backtest:
    """Train cdp-ml on what was known by ``as_of``, forecast the next ``horizon_days`` days
    for every customer who had bought by then, and compare it with BG/NBD, Pareto/NBD and
    the recency heuristic on what they really did.

    The dates are checked first (the orders must run through ``as_of + horizon_days``);
    the label window comes from `training.horizons.trainable_window` (shorter and carried
    forward when the history holds no ``horizon_days`` window); ``model_params`` are
    extra `PurchaseModel` settings. Raises CdpError with one line when the dates do not fit.
    """
    data = backtest_data(tables, as_of, horizon_days, n_snapshots, step_days)
    return backtest_on(data, model_params, resamples=resamples, seed=seed)


def backtest_store(config, as_of: dt.date, horizon_days: int = 90, n_snapshots: int = 4, step_days: int = 30,
                   on_stage=None) -> Backtest:
    """`cdp evaluate` as one function: `backtest` on the store ``config`` (a
    `cdp.config.Config`) describes, with its ``[model]`` settings. The numbers and the
    dates are checked before any work: ``as_of`` must be in the data and so must the
    ``horizon_days`` after it."""
    from features.as_of import resolve_as_of
    from features.engine import store_tables
    from store.interface import open_store

    for name, value in (("--horizon-days", horizon_days), ("--snapshots", n_snapshots), ("--step-days", step_days)):
        if value < 1:
            raise CdpError(f"{name} must be at least 1")
    with open_store(config.store.path, read_only=True) as store:
        day = resolve_as_of(store, as_of, label_horizon_days=horizon_days)
        if on_stage is not None:
            on_stage(f"backtest as of {day}: training on what was known, then scoring")
        return backtest(store_tables(store, config), day, horizon_days, n_snapshots=n_snapshots, step_days=step_days,
                        model_params=config.model.params())


@dataclass(frozen=True)
class BacktestData:
    """The rows a backtest learns from and is judged on: labelled training snapshots
    (`training.data.labelled_snapshots`) and the as-of feature table joined to what
    happened in the next ``horizon_days`` days."""

    window: TrainableWindow
    train_rows: pd.DataFrame = field(repr=False)
    test: pd.DataFrame = field(repr=False)


def backtest_data(tables, as_of: dt.date, horizon_days: int, n_snapshots: int = 7,
                  step_days: int = 14) -> BacktestData:
    """The queries of `backtest`, its dates checked before any of them runs."""
    first, last = order_days(tables)
    end = as_of + dt.timedelta(days=horizon_days)
    if not first <= as_of < last or last < end:
        raise CdpError(f"the orders run from {first} to {last}: a {horizon_days}-day backtest as of {as_of} "
                       f"needs orders from before {as_of} through {end}")
    try:
        window = trainable_window(first, as_of, as_of, horizon_days, n_snapshots, step_days)
    except ValueError as error:
        raise CdpError(str(error)) from None
    train_rows = labelled_snapshots(tables, Window(as_of=as_of, horizon_days=window.label_horizon_days,
                                                   n_snapshots=n_snapshots, step_days=step_days))
    test = features_as_of(tables, as_of).merge(_labels(tables, as_of, horizon_days), on="customer_id")
    return BacktestData(window=window, train_rows=train_rows, test=test)


def backtest_on(data: BacktestData, model_params: dict | None = None, resamples: int = 1000,
                seed: int = 0, anchor: bool = True) -> Backtest:
    """`backtest` on rows already queried: fit cdp-ml (the latest snapshot for early
    stopping and calibration), anchor its level on the as-of customers' histories as
    `cdp train` does (`PurchaseModel.anchor_level`; ``anchor=False`` leaves the boosters'
    own level), forecast with every contender and compare."""
    window, train_rows = data.window, data.train_rows
    latest = train_rows["as_of"] == train_rows["as_of"].max()
    model = PurchaseModel(horizon_days=window.horizon_days, label_horizon_days=window.label_horizon_days,
                          **(model_params or {})).fit(train_rows[~latest], train_rows[latest])
    if anchor:
        # What was known on the as-of day: its feature rows, never the labels after it.
        model.anchor_level(data.test.drop(columns=[c for c in LABEL_COLUMNS if c in data.test.columns]))
    answers = forecasts(model, data.test, window.horizon_days)
    return Backtest(window=window, table=compare(answers, data.test),
                    differences=paired_differences(answers, data.test, resamples=resamples, seed=seed),
                    answers=answers, test=data.test)


def _labels(tables, as_of: dt.date, horizon_days: int) -> pd.DataFrame:
    from features.labels import purchase_labels

    return purchase_labels(tables.orders, as_of, horizon_days).to_pyarrow().to_pandas()
