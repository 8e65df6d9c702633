"""`cdp train`: fit, measure, log, register and gate each model family in MLflow.

One run per family, in an experiment per family (``cdp-segments``, ``cdp-churn``,
``cdp-next-purchase``). The rolling snapshots (`training.data.Window`) are built once
and shared: the latest snapshot's label window ends on the as-of date and is split
by customer into a tuning half (early stopping, calibration) and a held-out half (the
metrics and the promotion gate). Champion and challenger are scored on that same
held-out half. The churn and next-purchase runs also measure the classical baselines on
those held-out customers — BG/NBD (with Gamma-Gamma for revenue) and the recency
heuristic of `training.evaluate` — and log them beside the model's own metrics under the
same names with a prefix (``bgnbd_``, ``gamma_gamma_``, ``recency_``), with the side by
side table ``baselines.csv`` and the plot ``plots/baselines.png``.

Nothing personal reaches MLflow: parameters, aggregate metrics, a digest of the training
data, aggregate tables and plots, and an input example of feature medians (no ids).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import mean_absolute_error, mean_poisson_deviance, silhouette_score  # noqa: E402

from cdp.errors import CdpError  # noqa: E402
from features.engine import SourceTables  # noqa: E402
from training.btyd import GammaGammaModel  # noqa: E402
from training.categories import HISTORY_COLUMN, CategoryRecommender, hit_rate  # noqa: E402
from training.data import Window, digest, features_as_of, labelled_snapshots, sample_customers  # noqa: E402
from training.evaluate import bgnbd, heuristic  # noqa: E402
from training.purchase import PurchaseModel, btyd_summary, classification_metrics, holdout_split  # noqa: E402
from training.pyfunc import CdpModel, model_frame, model_ready, required_columns  # noqa: E402
from training.segments import CustomerSegmenter  # noqa: E402
from training.tracking import Decision, TrackingConfig, experiment, load_champion, log_frame, promote, register_pyfunc  # noqa: E402,E501

MODEL_NAMES = {"segments": "cdp-segments", "churn": "cdp-churn", "next-purchase": "cdp-next-purchase"}
FAMILIES = tuple(MODEL_NAMES)
PIP_REQUIREMENTS = ["mlflow", "lightgbm", "scikit-learn", "feature-engine", "pandas", "scipy"]
MODEL_CONTENDER = "cdp-ml"
# Each baseline's metrics are logged under the model's metric names with its prefix.
BASELINE_PREFIXES = {"BG/NBD": "bgnbd_", "Gamma-Gamma": "gamma_gamma_", "recency heuristic": "recency_"}


# Measured on the generator's 1M customers (bench/training.py): the models learn as much
# from this many customers as from all of them, in a fraction of the time.
DEFAULT_MAX_CUSTOMERS = 50_000


@dataclass(frozen=True)
class TrainSettings:
    """What `cdp train` does: which families, over which snapshots, and whether to force promotion."""

    window: Window
    families: tuple[str, ...] = FAMILIES
    force: bool = False
    max_customers: int | None = DEFAULT_MAX_CUSTOMERS
    """Train on a hash sample of about this many customers when the store has more (None: all)."""


@dataclass(frozen=True)
class FamilyResult:
    """One family's run: its MLflow ids, held-out metrics and the gate's decision."""

    family: str
    run_id: str
    version: str
    metrics: dict[str, float]
    decision: Decision
    notes: dict[str, str] = field(default_factory=dict)
    baselines: dict[str, float] = field(default_factory=dict)
    """The baselines' metrics on the same held-out customers, as logged (``bgnbd_churn_roc_auc`` …)."""


def train(tables: SourceTables, settings: TrainSettings, tracking: TrackingConfig) -> list[FamilyResult]:
    """Train every family of ``settings`` as of ``settings.window.as_of`` and gate it."""
    unknown = set(settings.families) - set(FAMILIES)
    if unknown:
        raise CdpError(f"unknown model families {', '.join(sorted(unknown))}; use {', '.join(FAMILIES)} or all")
    window = settings.window
    tables, share = sample_customers(tables, settings.max_customers)
    results = []
    needs_snapshots = any(f != "segments" for f in settings.families)
    snapshots = labelled_snapshots(tables, window) if needs_snapshots else None
    if snapshots is not None:
        _check_snapshots(snapshots, window)
    churn_model = None
    for family in settings.families:
        if family == "segments":
            result = _train_segments(features_as_of(tables, window.as_of), settings, tracking, share)
        else:
            result, estimator = _train_purchase(family, snapshots, settings, tracking, share, churn_model)
            churn_model = estimator if family == "churn" else churn_model
        results.append(result)
    return results


def _check_snapshots(snapshots: pd.DataFrame, window: Window) -> None:
    dates = sorted(snapshots["as_of"].unique())
    if len(dates) < 2:
        raise CdpError(f"training needs at least two snapshots with buyers; as of {window.as_of} with "
                       f"{window.n_snapshots} snapshots {window.step_days} days apart there are {len(dates)}: "
                       "use more snapshots or an as-of date with more history")
    latest = snapshots[snapshots["as_of"] == dates[-1]]
    if latest["purchased_in_horizon"].nunique() < 2:
        raise CdpError(f"the latest snapshot ({pd.Timestamp(dates[-1]).date()}) has a single outcome for all "
                       f"{len(latest)} customers: nothing to validate on; check the store's dates")


def _split(snapshots: pd.DataFrame):
    latest_date = snapshots["as_of"].max()
    latest = snapshots["as_of"] == latest_date
    held_out = snapshots[latest].reset_index(drop=True)
    test_side = holdout_split(held_out["customer_id"])
    return snapshots[~latest], held_out[~test_side], held_out[test_side]


def _input_example(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """One synthetic row of medians (numbers) and most frequent values (text): no real customer."""
    typed = model_frame(frame, columns)
    row = {}
    for column in columns:
        values = typed[column].dropna()
        if typed[column].dtype == object:
            row[column] = values.mode().iloc[0] if len(values) else None
        else:
            row[column] = float(values.median()) if len(values) else float("nan")
    return pd.DataFrame([row])


def _register(family: str, estimator, columns: list[str], frame: pd.DataFrame, horizon_days: int,
              recommender=None) -> str:
    model = CdpModel(estimator, family, columns, horizon_days, recommender)
    example = _input_example(frame, columns)
    signature = infer_signature(example, model.predict(None, example))
    return register_pyfunc(MODEL_NAMES[family], model, signature=signature, input_example=example,
                           pip_requirements=PIP_REQUIREMENTS)


def _log_common(settings: TrainSettings, family: str, frame: pd.DataFrame, share: float) -> None:
    w = settings.window
    mlflow.log_params({"family": family, "as_of": w.as_of.isoformat(), "horizon_days": w.horizon_days,
                       "n_snapshots": w.n_snapshots, "step_days": w.step_days, "forced": settings.force,
                       "max_customers": settings.max_customers, "customer_share": round(share, 6)})
    mlflow.set_tag("data.digest", digest(frame))
    mlflow.log_metric("training_rows", len(frame))


def _train_purchase(family: str, snapshots: pd.DataFrame, settings: TrainSettings, tracking: TrackingConfig,
                    share: float, churn_model: PurchaseModel | None = None) -> tuple[FamilyResult, PurchaseModel]:
    horizon = settings.window.horizon_days
    train_rows, tune, test = _split(snapshots)
    parts = ("purchase",) if family == "churn" else ("count", "revenue")
    client = MlflowClient(tracking_uri=tracking.tracking_uri, registry_uri=tracking.tracking_uri)
    with mlflow.start_run(experiment_id=experiment(tracking, f"cdp-{family}"),
                          run_name=f"{family} as of {settings.window.as_of}") as run:
        _log_common(settings, family, train_rows, share)
        # The churn run's classifier serves next-purchase too: same snapshots, same model.
        estimator = PurchaseModel(horizon_days=horizon, parts=parts).fit(train_rows, tune, purchase_from=churn_model)
        mlflow.log_params({f"best_iteration_{k}": v for k, v in estimator.best_iterations_.items()})
        mlflow.log_metrics({"tune_rows": len(tune), "test_rows": len(test)})
        predicted = estimator.predict(test)
        if family == "churn":
            metrics = classification_metrics(test["churned"].to_numpy(int), predicted["churn_probability"].to_numpy(),
                                             prefix="churn_")
            _log_churn_artifacts(estimator, test, predicted)
            metric, higher, scorer = "churn_roc_auc", True, _churn_auc(test)
        else:
            metrics = _count_metrics(test, predicted)
            metric, higher, scorer = "purchase_days_poisson_deviance", False, _count_deviance(test)
        recommender, columns = None, required_columns(estimator, family)
        if family == "next-purchase" and train_rows[HISTORY_COLUMN].str.len().gt(0).any():
            recommender = CategoryRecommender().fit(train_rows[HISTORY_COLUMN], train_rows["categories_in_horizon"])
            columns = [*columns, HISTORY_COLUMN]
            ours = hit_rate(recommender.recommend(test[HISTORY_COLUMN]), test["categories_in_horizon"])
            popular = ",".join(recommender.popularity_.sort_values(ascending=False, kind="stable")
                               .index[:recommender.k])
            baseline = hit_rate([popular] * len(test), test["categories_in_horizon"])
            metrics |= {"categories_hit_rate_at_3": ours["hit_rate"], "categories_recall_at_3": ours["recall"],
                        "categories_popularity_hit_rate_at_3": baseline["hit_rate"]}
        mlflow.log_metrics(metrics)
        compared, notes = baseline_metrics(family, test, horizon)
        baselines = _log_baselines(family, metrics, compared)
        mlflow.set_tags(notes)
        version = _register(family, estimator, columns, train_rows, horizon, recommender)
        decision = promote(client, MODEL_NAMES[family], version, metric=metric, score=scorer,
                           higher_is_better=higher, force=settings.force, run_id=run.info.run_id)
    return FamilyResult(family, run.info.run_id, version, metrics, decision, notes=notes, baselines=baselines), estimator


def baseline_metrics(family: str, test: pd.DataFrame, horizon_days: int) -> tuple[dict[str, dict[str, float]],
                                                                                 dict[str, str]]:
    """The baselines' answers on the held-out customers ``test``, measured like the model's.

    Returns ``{contender: {metric: value}}`` with the model's metric names (``churn_roc_auc``,
    ``purchase_days_mae``, ``revenue_mae`` …) and tags explaining any baseline left out.

    - BG/NBD (:func:`training.evaluate.bgnbd`): fitted on the held-out customers' own
      histories as of the snapshot date (the RFM summary in the feature table; no label),
      its churn probability is one minus P(a purchase in the horizon), its count the
      expected purchase days.
    - Gamma-Gamma (next-purchase only): revenue = BG/NBD's expected purchase days × the
      Gamma-Gamma expected spend per purchase day, fitted on the same histories.
    - recency heuristic (:func:`training.evaluate.heuristic`): churn ``1 - 1 / (1 +
      recency_days / H)``; purchase days at the customer's past rate; revenue those days ×
      their mean spend per purchase day.
    """
    p_bgnbd, days_bgnbd = bgnbd(test, horizon_days)
    p_recency, days_recency = heuristic(test, horizon_days)
    if family == "churn":
        y = test["churned"].to_numpy(int)
        return {"BG/NBD": classification_metrics(y, 1.0 - p_bgnbd, prefix="churn_"),
                "recency heuristic": classification_metrics(y, 1.0 - p_recency, prefix="churn_")}, {}
    days = test["purchase_days_in_horizon"].to_numpy(float)
    revenue = test["revenue_in_horizon"].to_numpy(float)
    summary = _spend_summary(test)
    compared = {"BG/NBD": _purchase_days_metrics(days, days_bgnbd)}
    notes = {}
    try:
        spend = GammaGammaModel().fit(summary).expected_spend(summary)
    except ValueError as error:  # no repeat buyer with spend, or a fit without a finite mean spend
        notes["baselines.gamma_gamma"] = f"not fitted: {error}"
    else:
        compared["Gamma-Gamma"] = _revenue_metrics(revenue, days_bgnbd * spend)
    compared["recency heuristic"] = (_purchase_days_metrics(days, days_recency)
                                     | _revenue_metrics(revenue, days_recency * summary["monetary_value"].to_numpy()))
    return compared, notes


def _spend_summary(test: pd.DataFrame) -> pd.DataFrame:
    """The BTYD summary with ``monetary_value`` = mean revenue per purchase day. The feature
    table has no first-day revenue, so the first purchase day counts too (the strict
    Gamma-Gamma summary leaves it out)."""
    per_day = test["revenue_total"].astype("float64") / test["purchase_days"].astype("float64")
    return btyd_summary(test).assign(monetary_value=per_day.fillna(0.0).clip(lower=0.0))


def _log_baselines(family: str, metrics: dict[str, float], compared: dict[str, dict[str, float]]) -> dict[str, float]:
    """Log each baseline's metrics under its prefix, the side by side table and its plot; return what was logged."""
    logged = {BASELINE_PREFIXES[name] + key: value
              for name, values in compared.items() for key, value in values.items()}
    mlflow.log_metrics(logged)
    columns = list(dict.fromkeys(key for values in compared.values() for key in values))
    rows = [{"contender": MODEL_CONTENDER, **{key: metrics.get(key, float("nan")) for key in columns}}]
    rows += [{"contender": name, **{key: values.get(key, float("nan")) for key in columns}}
             for name, values in compared.items()]
    table = pd.DataFrame(rows, columns=["contender", *columns])
    log_frame(table, "baselines.csv")
    headline = ["churn_roc_auc", "churn_brier"] if family == "churn" else ["purchase_days_mae", "revenue_mae"]
    fig, axes = plt.subplots(1, len(headline), figsize=(9, 3))
    for ax, key in zip(axes, headline):
        shown = table.dropna(subset=[key])
        ax.barh(shown["contender"], shown[key])
        ax.invert_yaxis()
        ax.set_title(key)
    fig.suptitle(f"{family}: model and baselines on the held-out customers")
    fig.tight_layout()
    mlflow.log_figure(fig, "plots/baselines.png")
    plt.close(fig)
    return logged


def _churn_auc(test: pd.DataFrame):
    from sklearn.metrics import roc_auc_score

    test = model_ready(test)

    def score(model) -> float:
        out = model.predict(test)
        return float(roc_auc_score(test["churned"].to_numpy(int), out["churn_probability"].to_numpy(float)))
    return score


def _count_deviance(test: pd.DataFrame):
    test = model_ready(test)

    def score(model) -> float:
        out = model.predict(test)
        return float(mean_poisson_deviance(test["purchase_days_in_horizon"].to_numpy(float),
                                           np.clip(out["expected_purchases"].to_numpy(float), 1e-9, None)))
    return score


def _count_metrics(test: pd.DataFrame, predicted: pd.DataFrame) -> dict[str, float]:
    return (_purchase_days_metrics(test["purchase_days_in_horizon"].to_numpy(float),
                                   predicted["expected_purchases"].to_numpy(float))
            | _revenue_metrics(test["revenue_in_horizon"].to_numpy(float),
                               predicted["expected_revenue"].to_numpy(float)))


def _purchase_days_metrics(days: np.ndarray, expected: np.ndarray) -> dict[str, float]:
    return {
        "purchase_days_mae": float(mean_absolute_error(days, expected)),
        "purchase_days_poisson_deviance": float(mean_poisson_deviance(days, np.clip(expected, 1e-9, None))),
        "purchase_days_total_ratio": float(expected.sum() / max(days.sum(), 1e-9)),
    }


def _revenue_metrics(revenue: np.ndarray, spend: np.ndarray) -> dict[str, float]:
    return {
        "revenue_mae": float(mean_absolute_error(revenue, spend)),
        "revenue_total_ratio": float(spend.sum() / max(revenue.sum(), 1e-9)),
    }


def _log_churn_artifacts(estimator: PurchaseModel, test: pd.DataFrame, predicted: pd.DataFrame) -> None:
    """Importance, calibration and lift as plots and tables (aggregates only)."""
    y = test["churned"].to_numpy(int)
    p = predicted["churn_probability"].to_numpy(float)
    importance = pd.DataFrame({"feature": estimator.columns_,
                               "gain": estimator.classifier_.booster_.feature_importance("gain")})
    importance = importance.sort_values("gain", ascending=False)
    log_frame(importance, "importance.csv")
    _log_top20(importance, "feature", "gain", "Churn model: top 20 inputs by gain", "plots/importance.png")

    if len(np.unique(y)) == 2:
        observed, expected = calibration_curve(y, p, n_bins=10, strategy="quantile")
        log_frame(pd.DataFrame({"predicted": expected, "observed": observed}), "calibration.csv")
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
        ax.plot(expected, observed, marker="o")
        ax.set_xlabel("predicted churn probability")
        ax.set_ylabel("observed churn rate")
        ax.set_title("Calibration on held-out customers")
        mlflow.log_figure(fig, "plots/calibration.png")
        plt.close(fig)

    deciles = pd.qcut(pd.Series(p).rank(method="first"), 10, labels=False)
    lift = (pd.DataFrame({"decile": 10 - deciles, "churned": y}).groupby("decile")["churned"].mean()
            / max(y.mean(), 1e-9)).rename("lift").reset_index()
    log_frame(lift, "lift.csv")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(lift["decile"], lift["lift"])
    ax.set_xlabel("decile of churn risk (1 = highest)")
    ax.set_ylabel("lift")
    ax.set_title("Churn lift by decile")
    mlflow.log_figure(fig, "plots/lift.png")
    plt.close(fig)

    # SHAP-style summary: mean |contribution| per feature-table column (from pred_contrib).
    x = estimator.preprocess_.transform(estimator.btyd_.transform(test)[estimator.inputs_])
    contrib = np.abs(estimator.classifier_.booster_.predict(x, pred_contrib=True)[:, :-1]).mean(axis=0)
    summary = pd.DataFrame({"column": estimator.columns_, "mean_abs_contribution": contrib})
    summary = summary.sort_values("mean_abs_contribution", ascending=False)
    log_frame(summary, "contributions.csv")
    _log_top20(summary, "column", "mean_abs_contribution", "Mean |contribution| to the churn log-odds",
               "plots/contributions.png")


def _log_top20(table: pd.DataFrame, label: str, value: str, title: str, artifact: str) -> None:
    """A horizontal bar chart of the 20 largest ``value`` rows (``table`` sorted descending)."""
    fig, ax = plt.subplots(figsize=(6, 6))
    top = table.head(20).iloc[::-1]
    ax.barh(top[label], top[value])
    ax.set_title(title)
    fig.tight_layout()
    mlflow.log_figure(fig, artifact)
    plt.close(fig)


def _train_segments(features: pd.DataFrame, settings: TrainSettings, tracking: TrackingConfig,
                    share: float = 1.0) -> FamilyResult:
    client = MlflowClient(tracking_uri=tracking.tracking_uri, registry_uri=tracking.tracking_uri)
    previous = _previous_centroids(tracking)
    with mlflow.start_run(experiment_id=experiment(tracking, "cdp-segments"),
                          run_name=f"segments as of {settings.window.as_of}") as run:
        _log_common(settings, "segments", features.drop(columns=["customer_id"]), share)
        segmenter = CustomerSegmenter().fit(features, previous=previous)
        mlflow.log_params({"method": segmenter.method_, "k": segmenter.k_,
                           "matched_previous": previous is not None})
        profile = segmenter.profile(features).reset_index()
        log_frame(profile, "segment_profile.csv")
        log_frame(segmenter.selection_, "selection.csv")
        log_frame(segmenter.centroids_table(), "centroids.csv")
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.bar(profile["segment"], profile["customers"])
        ax.set_ylabel("customers")
        ax.set_title(f"Segments as of {settings.window.as_of}")
        ax.tick_params(axis="x", rotation=30)
        fig.tight_layout()
        mlflow.log_figure(fig, "plots/segment_profile.png")
        plt.close(fig)
        chosen = segmenter.selection_[segmenter.selection_["chosen"]].iloc[0]
        metrics = {"silhouette": float(chosen["silhouette"]), "k": float(segmenter.k_)}
        mlflow.log_metrics(metrics)
        version = _register("segments", segmenter, required_columns(segmenter, "segments"), features,
                            settings.window.horizon_days)
        decision = promote(client, MODEL_NAMES["segments"], version, metric="silhouette",
                           score=_silhouette(features, segmenter), force=settings.force, run_id=run.info.run_id)
    return FamilyResult("segments", run.info.run_id, version, metrics, decision)


def _silhouette(features: pd.DataFrame, reference: CustomerSegmenter):
    """Silhouette of a model's segments in one fixed space (the new model's scaled features,
    on a seeded sample of buyers), so champion and challenger are measured alike."""
    buyers = features[features["recency_days"].notna()]
    sample = model_ready(buyers.sample(n=min(len(buyers), 5000), random_state=0))
    space = reference.transform_scaled(sample)

    def score(model) -> float:
        labels = model.predict(sample)["segment"].to_numpy()
        if len(set(labels)) < 2:
            return -1.0
        return float(silhouette_score(space, labels))
    return score


def _previous_centroids(tracking: TrackingConfig) -> pd.DataFrame | None:
    try:
        model, _ = load_champion(tracking, MODEL_NAMES["segments"])
    except LookupError:
        return None
    return model.unwrap_python_model().estimator.centroids_table()


def horizon_window(as_of: dt.date, horizon_days: int, n_snapshots: int, step_days: int) -> Window:
    """A `Window`, with the CLI's arguments checked into plain errors."""
    for name, value in (("--horizon-days", horizon_days), ("--snapshots", n_snapshots), ("--step-days", step_days)):
        if value < 1 or math.isnan(value):
            raise CdpError(f"{name} must be at least 1")
    return Window(as_of=as_of, horizon_days=horizon_days, n_snapshots=n_snapshots, step_days=step_days)
