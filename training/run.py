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

import contextlib
import copy
import datetime as dt
import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.models import infer_signature
from sklearn.calibration import calibration_curve
from sklearn.metrics import mean_absolute_error, mean_poisson_deviance, silhouette_score

from cdp.errors import CdpError
from features.engine import SourceTables
from features.labels import FIRST_PURCHASE_LABEL_COLUMNS, LABEL_COLUMNS
from store.interface import TableStore
from training.btyd import GammaGammaModel
from training.categories import HISTORY_COLUMN, CategoryRecommender, hit_rate
from training.data import (
    Window,
    digest,
    features_as_of,
    first_purchase_snapshots,
    labelled_snapshots,
    sample_customers,
    snapshot_features,
)
from training.evaluate import bgnbd, heuristic, order_days
from training.first_purchase import EngagementBaseline, FirstPurchaseModel, calibration_summary
from training.horizons import trainable_window
from training.purchase import PurchaseModel, btyd_summary, classification_metrics, holdout_split, lift_at
from training.pyfunc import CdpModel, model_frame, model_ready, required_columns
from training.segments import CustomerSegmenter
from training.tracking import (
    FAMILIES,
    MODEL_NAMES,
    Decision,
    Lineage,
    NoChampionError,
    TrackingConfig,
    apply,
    decide,
    feature_set,
    load_champion,
    load_model_uri,
    log_frame,
    log_pyfunc,
    register_logged_model,
    registry_client,
    start_run,
)

PIP_REQUIREMENTS = ["mlflow", "lightgbm", "scikit-learn", "feature-engine", "pandas", "scipy"]
MODEL_CONTENDER = "cdp-ml"
# Each baseline's metrics are logged under the model's metric names with its prefix.
BASELINE_PREFIXES = {"BG/NBD": "bgnbd_", "Gamma-Gamma": "gamma_gamma_", "recency heuristic": "recency_"}


# Measured on the generator's 1M customers (bench/training.py): the models learn as much
# from this many customers as from all of them, in a fraction of the time.
DEFAULT_MAX_CUSTOMERS = 50_000


_Model = TypeVar("_Model", PurchaseModel, FirstPurchaseModel)
_NOT_FEATURES = frozenset({"customer_id", "as_of", *LABEL_COLUMNS, *FIRST_PURCHASE_LABEL_COLUMNS})

# Guardrails: below these, a model is not trained, or not promoted (its run says why).
MIN_BUYERS_TO_TRAIN = 100
MIN_OUTCOMES_TO_TRAIN = 20
MIN_HELD_OUT_TO_PROMOTE = 200
MIN_OUTCOMES_TO_PROMOTE = 25
MIN_BUYERS_TO_SEGMENT = 100
MIN_BUYERS_TO_PROMOTE_SEGMENTS = 300


@dataclass(frozen=True)
class DataSource:
    """Where a run's data came from: the store, its scope in the registry, the config and
    the source files as last ingested (``(name, file name, sha256)``). No personal data."""

    store: str
    scope: str
    config: str | None = None
    sources: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class TrainSettings:
    """What `cdp train` does: which families, over which snapshots, and whether to force promotion."""

    window: Window
    families: tuple[str, ...] = FAMILIES
    force: bool = False
    max_customers: int | None = DEFAULT_MAX_CUSTOMERS
    """Train on a hash sample of about this many customers when the store has more (None: all)."""
    data: DataSource | None = None
    """Where the training data came from, recorded on every run (MLflow dataset, tags)."""
    model_params: Mapping[str, Any] = field(default_factory=dict)
    """Extra `PurchaseModel` settings (cdp.toml's ``[model]``), logged on the runs."""


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
    warnings: tuple[str, ...] = ()
    """Library warnings met while training (convergence and the like), one line each."""
    skipped: str = ""
    """Why the family was not trained (a store without prospects has no first-purchase model);
    its run records the note and no model, and ``version`` is empty."""


@dataclass
class _Trained:
    """A family's finished run, not yet registered: registration waits until every family
    of the command has trained, so a failed run registers nothing."""

    family: str
    run_id: str
    model_uri: str
    model_id: str
    metrics: dict[str, float]
    decision: Decision
    lineage: Lineage
    notes: dict[str, str] = field(default_factory=dict)
    baselines: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    skipped: str = ""


def train(tables: SourceTables, settings: TrainSettings, tracking: TrackingConfig,
          on_stage: Callable[[str], None] | None = None,
          hold: Callable[[SourceTables], SourceTables] | None = None) -> list[FamilyResult]:
    """Train every family of ``settings`` as of ``settings.window.as_of``, gate and register it.

    Every family trains and logs its run first; the models are registered, and the gate's
    decisions carried out, only once all of them have succeeded, so a failed command leaves
    the registry as it was (its runs say they were not registered). ``on_stage`` hears a
    short description of each stage as it starts (the CLI's progress line).

    The sample and the snapshots are queries on ``tables``' engine; only the snapshots' rows
    come to this process, where the models are fitted. ``hold``, when given, computes a drawn
    sample once for the snapshots' many queries (`features.engine.held_on_spark`).
    """
    unknown = set(settings.families) - set(FAMILIES)
    if unknown:
        raise CdpError(f"unknown model families {', '.join(sorted(unknown))}; use {', '.join(FAMILIES)} or all")
    stage = on_stage or (lambda text: None)
    window = settings.window
    tables, share = sample_customers(tables, settings.max_customers)
    if hold is not None and share < 1:
        stage(f"drawing a sample of about {settings.max_customers:,} customers")
        tables = hold(tables)
    needs_snapshots = any(f != "segments" for f in settings.families)
    snapshots, prospects, label_days, carry_note = None, None, window.horizon_days, ""
    if needs_snapshots:
        label_days, carry_note = _label_horizon(tables, window)
        labelled = Window(as_of=window.as_of, horizon_days=label_days, n_snapshots=window.n_snapshots,
                          step_days=window.step_days)
        stage(f"building {window.n_snapshots} training snapshots ({label_days}-day labels)")
        snapshot_days = snapshot_features(tables)  # each day's features built once for buyers and prospects
        if any(f in ("churn", "next-purchase") for f in settings.families):
            snapshots = labelled_snapshots(tables, labelled, snapshot_days)
            _check_snapshots(snapshots, labelled)
        if "first-purchase" in settings.families:
            prospects = first_purchase_snapshots(tables, labelled, snapshot_days)
        del snapshot_days  # the days' feature frames are in the snapshots now: not kept twice
    trained: list[_Trained] = []
    churn_model = None

    @functools.cache
    def features_now() -> pd.DataFrame:
        """The feature rows as of the as-of day, queried once for every family that needs them."""
        stage(f"features as of {window.as_of}")
        return features_as_of(tables, window.as_of)

    try:
        for family in settings.families:
            if family == "segments":
                features = features_now()
                stage("segments: clustering")
                trained.append(_train_segments(features, settings, tracking, share))
            elif family == "first-purchase":
                assert prospects is not None
                stage("first-purchase: fitting and measuring on held-out prospects")
                trained.append(_train_first_purchase(prospects, settings, tracking, share, label_days, carry_note))
            else:
                population = features_now() if family == "next-purchase" else None
                stage(f"{family}: fitting and measuring on held-out customers")
                result, estimator = _train_purchase(family, snapshots, settings, tracking, share, churn_model,
                                                    label_days=label_days, carry_note=carry_note,
                                                    population=population)
                trained.append(result)
                churn_model = estimator if family == "churn" else churn_model
    except BaseException as error:
        _mark_unregistered(tracking, trained, f"not registered: the command failed later ({type(error).__name__})")
        raise
    stage("registering the models")
    return [_register(tracking, t) for t in trained]


def _label_horizon(tables: SourceTables, window: Window) -> tuple[int, str]:
    """The label window the store's history can teach for ``window``'s horizon, and a note
    when it is shorter (the forecast is then carried forward: `training.horizons`)."""
    first, _ = order_days(tables)
    try:
        found = trainable_window(first, window.as_of, window.as_of, window.horizon_days, window.n_snapshots,
                                 window.step_days)
    except ValueError as error:
        raise CdpError(str(error)) from None
    return found.label_horizon_days, found.note


def _mark_unregistered(tracking: TrackingConfig, trained: list[_Trained], why: str) -> None:
    client = registry_client(tracking)
    for t in trained:
        with contextlib.suppress(Exception):
            client.set_tag(t.run_id, "cdp.registered", why)


def _register(tracking: TrackingConfig, t: _Trained) -> FamilyResult:
    client = registry_client(tracking)
    if t.skipped:
        client.set_tag(t.run_id, "cdp.registered", "not registered: skipped (see cdp.skipped)")
        return FamilyResult(t.family, t.run_id, "", t.metrics, t.decision, notes=t.notes, warnings=t.warnings,
                            skipped=t.skipped)
    version = register_logged_model(client, MODEL_NAMES[t.family], t.model_uri, t.run_id, t.model_id)
    decision = apply(client, t.decision, lineage=t.lineage, version=version, run_id=t.run_id)
    client.set_tag(t.run_id, "cdp.registered", f"{MODEL_NAMES[t.family]} version {version}")
    return FamilyResult(t.family, t.run_id, version, t.metrics, decision, notes=t.notes, baselines=t.baselines,
                        warnings=t.warnings)


@contextlib.contextmanager
def _noted_warnings():
    """Library warnings (convergence and the like) caught as short one-line notes instead of
    raw multi-line output: the list it yields fills as the block runs."""
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield notes
    seen = set()
    for w in caught:
        if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
            continue  # the libraries' notices to their own users' code, not about this data or model
        text = " ".join(str(w.message).split())
        line = f"{w.category.__name__}: {text[:200]}"
        if line not in seen:
            seen.add(line)
            notes.append(line)


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
    buyers = int(latest["customer_id"].nunique())
    if buyers < MIN_BUYERS_TO_TRAIN:
        raise CdpError(f"too few customers to train on: {buyers} had bought by the latest snapshot "
                       f"({pd.Timestamp(dates[-1]).date()}); at least {MIN_BUYERS_TO_TRAIN} are needed")
    outcomes = snapshots["purchased_in_horizon"].value_counts()
    if outcomes.min() < MIN_OUTCOMES_TO_TRAIN:
        raise CdpError(f"too few examples to learn from: across the snapshots {int(outcomes.get(True, 0))} "
                       f"customers bought in their {window.horizon_days}-day window and "
                       f"{int(outcomes.get(False, 0))} did not; each needs at least {MIN_OUTCOMES_TO_TRAIN}")


def _promotion_refusal(test: pd.DataFrame, target: str) -> str | None:
    """Why the held-out customers are too few to judge a model on, or None."""
    outcomes = test[target].astype(bool).value_counts()
    if len(test) < MIN_HELD_OUT_TO_PROMOTE:
        return f"only {len(test)} held-out customers (at least {MIN_HELD_OUT_TO_PROMOTE} are needed to judge a model)"
    if outcomes.min() < MIN_OUTCOMES_TO_PROMOTE or len(outcomes) < 2:
        return (f"only {int(outcomes.get(True, 0))} held-out buyers and {int(outcomes.get(False, 0))} non-buyers "
                f"(at least {MIN_OUTCOMES_TO_PROMOTE} of each are needed to judge a model)")
    return None


def _split(snapshots: pd.DataFrame):
    latest_date = snapshots["as_of"].max()
    latest = snapshots["as_of"] == latest_date
    held_out = snapshots[latest].reset_index(drop=True)
    test_side = holdout_split(held_out["customer_id"])
    return snapshots[~latest], held_out[~test_side], held_out[test_side]


def _input_example(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """One synthetic row that every model can score, built from no real customer.

    Medians (numbers) and most frequent values (text) of the training rows, except the
    purchase history, which is made consistent by construction: the median buyer's tenure
    and purchase days, and a recency that such a history allows (a one-day buyer's last
    purchase is their first). A row of independent medians can be a history no customer
    could have (on CDNOW, one purchase day with a recency shorter than the tenure), which
    BG/NBD refuses. The category history is left empty (a valid history of no purchases).
    """
    typed = model_frame(frame, columns)
    row: dict[str, object] = {}
    for column in columns:
        values = typed[column].dropna()
        if typed[column].dtype == object:
            row[column] = values.mode().iloc[0] if len(values) else None
        else:
            row[column] = float(values.median()) if len(values) else float("nan")
    if HISTORY_COLUMN in row:
        row[HISTORY_COLUMN] = ""
    history = {"recency_days", "tenure_days", "purchase_days"}
    if history <= set(columns):
        buyers = typed[typed["recency_days"].notna() & typed["tenure_days"].notna() & typed["purchase_days"].notna()]
        if len(buyers):
            days = max(1.0, float(round(buyers["purchase_days"].median())))
            tenure = max(days - 1.0, float(round(buyers["tenure_days"].median())))
            recency = tenure if days == 1 else min(float(round(buyers["recency_days"].median())), tenure - days + 1)
            row.update(purchase_days=days, tenure_days=tenure, recency_days=max(recency, 0.0))
    return pd.DataFrame([row])


def _log_model(family: str, estimator, columns: list[str], frame: pd.DataFrame, horizon_days: int,
               recommender=None):
    """Log the family's pyfunc to the active run (registration comes later), with a signature
    and input example that come from a synthetic row the model has just scored."""
    model = CdpModel(estimator, family, columns, horizon_days, recommender)
    example = _input_example(frame, columns)
    signature = infer_signature(example, model.predict(None, example))
    return log_pyfunc(model, signature=signature, input_example=example, pip_requirements=PIP_REQUIREMENTS)


def _log_common(settings: TrainSettings, family: str, frame: pd.DataFrame, share: float) -> str:
    """Parameters, the data's digest and provenance, and the run's input as an MLflow dataset;
    returns the digest."""
    w = settings.window
    data_digest = digest(frame)
    mlflow.log_params({"family": family, "as_of": w.as_of.isoformat(), "horizon_days": w.horizon_days,
                       "n_snapshots": w.n_snapshots, "step_days": w.step_days, "forced": settings.force,
                       "max_customers": settings.max_customers, "customer_share": round(share, 6),
                       **{f"model.{k}": v for k, v in settings.model_params.items()}})
    mlflow.set_tag("data.digest", data_digest)
    mlflow.log_metric("training_rows", len(frame))
    source = settings.data
    if source is not None:
        mlflow.set_tags({"cdp.store": source.scope or "none", "cdp.store_path": source.store,
                         "cdp.config": source.config or "",
                         "cdp.sources": "; ".join(f"{name}={file}@{sha[:12]}" for name, file, sha in source.sources)})
        with warnings.catch_warnings():  # "can be interpreted in multiple ways": both are the local file
            warnings.simplefilter("ignore", UserWarning)
            located = resolve_dataset_source(str(Path(source.store).resolve()))
        # MLflow marks `profile` abstract but MetaDataset is no ABC: it is made this way in MLflow's own docs.
        dataset = MetaDataset(  # type: ignore[abstract]
            source=located,
            name=f"{Path(source.store).name} as of {w.as_of.isoformat()}",
            digest=data_digest[:32],
        )
        mlflow.log_input(dataset, context="training", tags={"as_of": w.as_of.isoformat(),
                                                           "sources": ",".join(n for n, _, _ in source.sources)})
    return data_digest


def _lineage(settings: TrainSettings, tracking: TrackingConfig, family: str, offered) -> Lineage:
    """The lineage of a family's model: this store, its horizon (none for segments) and the
    feature-table columns it was offered."""
    horizon = None if family == "segments" else settings.window.horizon_days
    return Lineage(store=tracking.scope, horizon_days=horizon, feature_set=feature_set(offered))


def _offered_columns(frame: pd.DataFrame) -> list[str]:
    """The feature-table columns of a training frame (not ids, dates or labels)."""
    return [c for c in frame.columns if c not in _NOT_FEATURES]


def _train_purchase(family: str, snapshots: pd.DataFrame, settings: TrainSettings, tracking: TrackingConfig,
                    share: float, churn_model: PurchaseModel | None = None, label_days: int | None = None,
                    carry_note: str = "", population: pd.DataFrame | None = None) -> tuple[_Trained, PurchaseModel]:
    """Fit and measure one purchase family on ``snapshots`` labelled over ``label_days``.

    ``population`` (the feature rows as of the as-of day) anchors the level of the
    next-purchase model's expected purchase days, at the label window for its measures
    and at the horizon for the model registered (`PurchaseModel.anchor_level`).

    Where the history holds no window as long as the horizon, the model learns (and is
    measured, and gated) at ``label_days``; the model registered answers at the horizon,
    carrying its answers forward with BTYD's conditional expectations (`PurchaseModel`'s
    ``label_horizon_days``), and the run says so (``carry_note``).
    """
    horizon = settings.window.horizon_days
    label_days = label_days or horizon
    train_rows, tune, test = _split(snapshots)
    parts = ("purchase",) if family == "churn" else ("count", "revenue")
    client = registry_client(tracking)
    lineage = _lineage(settings, tracking, family, _offered_columns(train_rows))
    with start_run(tracking, f"cdp-{family}", f"{family} as of {settings.window.as_of}") as run, \
            _noted_warnings() as noted:
        _log_common(settings, family, train_rows, share)
        # The churn run's classifier serves next-purchase too: same snapshots, same model.
        estimator = PurchaseModel(horizon_days=label_days, parts=parts, **settings.model_params).fit(
            train_rows, tune, purchase_from=churn_model)
        if population is not None and "count" in parts:
            estimator.anchor_level(population)
            mlflow.log_metric(f"count_level_{label_days}d", estimator.level_)
        if carry_note:
            mlflow.set_tag("cdp.carried_forward", carry_note)
        mlflow.log_param("label_horizon_days", label_days)
        mlflow.log_params({f"best_iteration_{k}": v for k, v in estimator.best_iterations_.items()})
        mlflow.log_metrics({"tune_rows": len(tune), "test_rows": len(test)})
        predicted = estimator.predict(test)
        if family == "churn":
            metrics = _churn_metrics(test["churned"].to_numpy(int), predicted["churn_probability"].to_numpy())
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
            popular = list(recommender.popularity_.sort_values(ascending=False, kind="stable").index[:recommender.k])
            baseline = hit_rate([popular] * len(test), test["categories_in_horizon"])
            metrics |= {"categories_hit_rate_at_3": ours["hit_rate"], "categories_recall_at_3": ours["recall"],
                        "categories_popularity_hit_rate_at_3": baseline["hit_rate"]}
        mlflow.log_metrics(metrics)
        compared, notes = baseline_metrics(family, test, label_days)
        baselines = _log_baselines(family, metrics, compared)
        mlflow.set_tags(notes)
        served = _answering_at(estimator, horizon)
        if served is not estimator and population is not None and "count" in parts:
            served.anchor_level(population)
            mlflow.log_metric(f"count_level_{horizon}d", served.level_)
        info = _log_model(family, served, columns, train_rows, horizon, recommender)
        decision = decide(client, MODEL_NAMES[family], load_model_uri(client, info.model_uri), metric=metric,
                          score=scorer, higher_is_better=higher, force=settings.force, lineage=lineage,
                          refuse=_promotion_refusal(test, "purchased_in_horizon"))
    warned = _log_warnings(client, run.info.run_id, noted)
    if carry_note:
        notes = {**notes, "cdp.carried_forward": carry_note}
    return _Trained(family, run.info.run_id, info.model_uri, info.model_id, metrics, decision, lineage,
                    notes=notes, baselines=baselines, warnings=warned), estimator


def _answering_at(estimator: _Model, horizon_days: int) -> _Model:
    """``estimator`` (fitted on shorter labels) answering at ``horizon_days``: a shallow copy
    with the horizon raised and the label window kept, which carries its answers forward.
    The fitted model itself stays as it is, so the next family can share its classifier."""
    if estimator.horizon_days == horizon_days:
        return estimator
    served = copy.copy(estimator)
    served.__dict__ = {k: v for k, v in estimator.__dict__.items() if not k.endswith("_cache")}
    return served.set_params(horizon_days=horizon_days, label_horizon_days=estimator.horizon_days)


def _log_warnings(client, run_id: str, noted: list[str]) -> tuple[str, ...]:
    if noted:
        client.set_tag(run_id, "cdp.warnings", " | ".join(noted)[:5000])
    return tuple(noted)


def _churn_metrics(churned: np.ndarray, churn_probability: np.ndarray) -> dict[str, float]:
    """The churn classifier's held-out metrics. Lift is measured on buyers, the rarer outcome:
    among the 10% a model rates least at risk, how many times the average share bought. The
    churners' lift in the riskiest 10% saturates where most customers leave (on CDNOW every
    model's riskiest tenth all left, so it told nothing)."""
    metrics = classification_metrics(churned, churn_probability, prefix="churn_")
    metrics.pop("churn_lift_top10", None)
    metrics["purchase_lift_top10"] = lift_at(1 - churned, 1.0 - churn_probability, 0.1)
    return metrics


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
        return {"BG/NBD": _churn_metrics(y, 1.0 - p_bgnbd),
                "recency heuristic": _churn_metrics(y, 1.0 - p_recency)}, {}
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
    fig = Figure(figsize=(9, 3))
    axes = fig.subplots(1, len(headline))
    for ax, key in zip(axes, headline):
        shown = table.dropna(subset=[key])
        ax.barh(shown["contender"], shown[key])
        ax.invert_yaxis()
        ax.set_title(key)
    fig.suptitle(f"{family}: model and baselines on the held-out customers")
    fig.tight_layout()
    mlflow.log_figure(fig, "plots/baselines.png")
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
    classifier = estimator.classifier_
    assert classifier is not None  # a churn model is fitted with its "purchase" part
    importance = pd.DataFrame({"feature": estimator.columns_,
                               "gain": classifier.booster_.feature_importance("gain")})
    importance = importance.sort_values("gain", ascending=False)
    log_frame(importance, "importance.csv")
    _log_top20(importance, "feature", "gain", "Churn model: top 20 inputs by gain", "plots/importance.png")

    _log_calibration(y, p, 10, "churn probability", "churn rate", "customers")

    deciles = pd.qcut(pd.Series(p).rank(method="first"), 10, labels=False)
    lift = (pd.DataFrame({"decile": 10 - deciles, "churned": y}).groupby("decile")["churned"].mean()
            / max(y.mean(), 1e-9)).rename("lift").reset_index()
    log_frame(lift, "lift.csv")
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.bar(lift["decile"], lift["lift"])
    ax.set_xlabel("decile of churn risk (1 = highest)")
    ax.set_ylabel("lift")
    ax.set_title("Churn lift by decile")
    mlflow.log_figure(fig, "plots/lift.png")

    # SHAP-style summary: mean |contribution| per preprocessed column (TreeSHAP).
    x = estimator.preprocess_.transform(estimator.btyd_.transform(test)[estimator.inputs_])
    contrib = np.abs(classifier.contributions(x)[:, :-1]).mean(axis=0)
    summary = pd.DataFrame({"column": estimator.columns_, "mean_abs_contribution": contrib})
    summary = summary.sort_values("mean_abs_contribution", ascending=False)
    log_frame(summary, "contributions.csv")
    _log_top20(summary, "column", "mean_abs_contribution", "Mean |contribution| to the churn log-odds",
               "plots/contributions.png")


def _log_top20(table: pd.DataFrame, label: str, value: str, title: str, artifact: str) -> None:
    """A horizontal bar chart of the 20 largest ``value`` rows (``table`` sorted descending)."""
    fig = Figure(figsize=(6, 6))
    ax = fig.subplots()
    top = table.head(20).iloc[::-1]
    ax.barh(top[label], top[value])
    ax.set_title(title)
    fig.tight_layout()
    mlflow.log_figure(fig, artifact)


FIRST_PURCHASE = "first-purchase"
FIRST_PURCHASE_METRIC = "first_purchase_roc_auc"
# The baselines of the first-purchase model, logged under its metric names with these prefixes.
FIRST_PURCHASE_BASELINES = {"base rate": "base_rate_", "engagement logistic regression": "engagement_"}


def first_purchase_skip(prospects: pd.DataFrame, label_days: int) -> str | None:
    """Why a first-purchase model cannot be learned from ``prospects`` (the stacked
    first-purchase snapshots), or None: no prospects at all (every customer known on a
    snapshot day had bought already, as in CDNOW), too few first purchases or non-buyers
    across the snapshots, or a latest snapshot whose tuning half lacks an outcome."""
    if prospects.empty:
        return ("no prospects: every customer known on the snapshot days had bought already, so there is no "
                "first purchase to learn; customers who have not bought are scored without a purchase probability")
    y = prospects["purchased_in_horizon"].astype(int)
    bought, not_bought = int(y.sum()), int(len(y) - y.sum())
    snapshots = prospects["as_of"].nunique()
    if min(bought, not_bought) < MIN_OUTCOMES_TO_TRAIN:
        return (f"too few first purchases to learn from: across {snapshots} snapshot(s) {bought} of {len(y)} "
                f"prospects made a first purchase within {label_days} days and {not_bought} did not; each needs "
                f"at least {MIN_OUTCOMES_TO_TRAIN}")
    if snapshots < 2:
        return f"prospects on {snapshots} snapshot day only; training needs at least two (older ones to learn from)"
    train_rows, tune, _ = _split(prospects)
    for name, rows in (("the older snapshots", train_rows), ("the latest snapshot's tuning half", tune)):
        found = rows["purchased_in_horizon"].astype(int)
        if found.nunique() < 2:
            return (f"too few first purchases to learn from: {name} hold {int(found.sum())} first purchase(s) "
                    f"among {len(found)} prospects; both outcomes are needed")
    return None


def _train_first_purchase(prospects: pd.DataFrame, settings: TrainSettings, tracking: TrackingConfig,
                          share: float, label_days: int, carry_note: str = "") -> _Trained:
    """Fit, measure and gate the first-purchase model on the prospects' snapshots, like the
    purchase families: the older snapshots to learn from, the latest one's tuning half to
    stop early and calibrate on, its held-out half for the metrics and the gate.

    Where the store cannot teach one (`first_purchase_skip`) the run is logged with the
    reason (tag ``cdp.skipped``) and no model, and the family is reported skipped.
    """
    horizon = settings.window.horizon_days
    client = registry_client(tracking)
    skip = first_purchase_skip(prospects, label_days)
    run_name = f"{FIRST_PURCHASE} as of {settings.window.as_of}"
    if skip is not None:
        with start_run(tracking, f"cdp-{FIRST_PURCHASE}", run_name) as run:
            _log_common(settings, FIRST_PURCHASE, prospects.drop(columns=["customer_id"]), share)
            y = prospects["purchased_in_horizon"].astype(int) if len(prospects) else pd.Series(dtype=int)
            mlflow.log_metrics({"prospects": len(prospects), "first_purchases": int(y.sum())})
            mlflow.set_tags({"cdp.skipped": skip, "mlflow.note.content": f"Not trained: {skip}"})
        decision = Decision(model_name=MODEL_NAMES[FIRST_PURCHASE], version="", promoted=False,
                            reason=f"skipped: {skip}", metric=FIRST_PURCHASE_METRIC, challenger_score=float("nan"),
                            champion_version=None, champion_score=None, compared=False)
        lineage = _lineage(settings, tracking, FIRST_PURCHASE, _offered_columns(prospects))
        return _Trained(FIRST_PURCHASE, run.info.run_id, "", "", {}, decision, lineage,
                        notes={"cdp.skipped": f"not trained: {skip}"}, skipped=skip)

    train_rows, tune, test = _split(prospects)
    lineage = _lineage(settings, tracking, FIRST_PURCHASE, _offered_columns(train_rows))
    with start_run(tracking, f"cdp-{FIRST_PURCHASE}", run_name) as run, _noted_warnings() as noted:
        _log_common(settings, FIRST_PURCHASE, train_rows, share)
        estimator = FirstPurchaseModel(horizon_days=label_days).fit(train_rows, tune)
        mlflow.log_params({"label_horizon_days": label_days, "best_iteration_purchase": estimator.best_iteration_,
                           "monotone_inputs": len(estimator.constraints_), "inputs": len(estimator.inputs_)})
        if carry_note:
            mlflow.set_tag("cdp.carried_forward", carry_note + " (first purchase: at a constant daily chance)")
        y = test["purchased_in_horizon"].to_numpy(int)
        mlflow.log_metrics({"tune_rows": len(tune), "test_rows": len(test), "test_first_purchases": int(y.sum()),
                            "prospects": len(prospects),
                            "first_purchases": int(prospects["purchased_in_horizon"].sum())})
        p = estimator.purchase_probability(test)
        metrics = (classification_metrics(y, p, prefix="first_purchase_")
                   | calibration_summary(y, p, prefix="first_purchase_"))
        mlflow.log_metrics(metrics)
        compared = _first_purchase_baselines(train_rows, test)
        baselines = _log_first_purchase_baselines(metrics, compared)
        _log_first_purchase_artifacts(estimator, y, p)
        served = _answering_at(estimator, horizon)
        columns = [*estimator.inputs_, "recency_days"]  # recency_days: empty for a prospect, who is scored
        info = _log_model(FIRST_PURCHASE, served, columns, train_rows, horizon)
        engagement_auc = compared["engagement logistic regression"]["first_purchase_roc_auc"]
        refuse = _promotion_refusal(test, "purchased_in_horizon")
        if refuse is None and not metrics[FIRST_PURCHASE_METRIC] > engagement_auc:
            refuse = (f"its held-out ROC-AUC {metrics[FIRST_PURCHASE_METRIC]:.4f} does not beat the engagement "
                      f"baseline's {engagement_auc:.4f}")
        decision = decide(client, MODEL_NAMES[FIRST_PURCHASE], load_model_uri(client, info.model_uri),
                          metric=FIRST_PURCHASE_METRIC, score=_first_purchase_auc(test), force=settings.force,
                          lineage=lineage, refuse=refuse)
    warned = _log_warnings(client, run.info.run_id, noted)
    notes = {"cdp.carried_forward": carry_note} if carry_note else {}
    return _Trained(FIRST_PURCHASE, run.info.run_id, info.model_uri, info.model_id, metrics, decision, lineage,
                    notes=notes, baselines=baselines, warnings=warned)


def _first_purchase_baselines(train_rows: pd.DataFrame, test: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The baselines' metrics on the held-out prospects: the training rows' first-purchase
    rate for everyone, and `EngagementBaseline` fitted on the training rows."""
    y = test["purchased_in_horizon"].to_numpy(int)
    rate = np.full(len(test), float(train_rows["purchased_in_horizon"].mean()))
    engaged = EngagementBaseline().fit(train_rows, train_rows["purchased_in_horizon"]).predict_proba(test)[:, 1]
    return {name: classification_metrics(y, p, prefix="first_purchase_") | calibration_summary(
        y, p, prefix="first_purchase_") for name, p in (("base rate", rate),
                                                        ("engagement logistic regression", engaged))}


def _log_first_purchase_baselines(metrics: dict[str, float],
                                  compared: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each baseline's metrics under its prefix, the side by side table and its plot; returns what was logged."""
    logged = {FIRST_PURCHASE_BASELINES[name] + key: value for name, values in compared.items()
              for key, value in values.items() if math.isfinite(value)}
    mlflow.log_metrics(logged)
    keys = list(metrics)
    rows = [{"contender": MODEL_CONTENDER, **metrics}]
    rows += [{"contender": name, **{k: values.get(k, float("nan")) for k in keys}} for name, values in compared.items()]
    table = pd.DataFrame(rows, columns=["contender", *keys])
    log_frame(table, "baselines.csv")
    fig = Figure(figsize=(9, 3))
    for ax, key in zip(fig.subplots(1, 2), ("first_purchase_roc_auc", "first_purchase_brier")):
        ax.barh(table["contender"], table[key])
        ax.invert_yaxis()
        ax.set_title(key)
    fig.suptitle("first-purchase: model and baselines on the held-out prospects")
    fig.tight_layout()
    mlflow.log_figure(fig, "plots/baselines.png")
    return logged


def _log_first_purchase_artifacts(estimator: FirstPurchaseModel, y: np.ndarray, p: np.ndarray) -> None:
    """Importance (with each input's monotone direction) and calibration, as tables and plots."""
    importance = estimator.importance()
    log_frame(importance, "importance.csv")
    _log_top20(importance, "feature", "gain", "First-purchase model: top 20 inputs by gain", "plots/importance.png")
    _log_calibration(y, p, 5, "first-purchase probability", "first-purchase rate", "prospects")


def _log_calibration(y: np.ndarray, p: np.ndarray, n_bins: int, predicted: str, observed_rate: str,
                     who: str) -> None:
    """The held-out calibration curve (quantile bins) as ``calibration.csv`` and a plot; nothing
    when the held-out rows have one outcome only."""
    if len(np.unique(y)) != 2:
        return
    observed, expected = calibration_curve(y, p, n_bins=n_bins, strategy="quantile")
    log_frame(pd.DataFrame({"predicted": expected, "observed": observed}), "calibration.csv")
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.plot(expected, observed, marker="o")
    ax.set_xlabel(f"predicted {predicted}")
    ax.set_ylabel(f"observed {observed_rate}")
    ax.set_title(f"Calibration on held-out {who}")
    mlflow.log_figure(fig, "plots/calibration.png")


def _first_purchase_auc(test: pd.DataFrame):
    from sklearn.metrics import roc_auc_score

    test = model_ready(test)

    def score(model) -> float:
        out = model.predict(test)
        return float(roc_auc_score(test["purchased_in_horizon"].to_numpy(int),
                                   out["purchase_probability"].to_numpy(float)))
    return score


def _train_segments(features: pd.DataFrame, settings: TrainSettings, tracking: TrackingConfig,
                    share: float = 1.0) -> _Trained:
    buyers = int(features["recency_days"].notna().sum())
    if buyers < MIN_BUYERS_TO_SEGMENT:
        raise CdpError(f"too few customers to segment: {buyers} had bought by {settings.window.as_of}; "
                       f"at least {MIN_BUYERS_TO_SEGMENT} are needed")
    client = registry_client(tracking)
    lineage = _lineage(settings, tracking, "segments", _offered_columns(features))
    previous = _previous_centroids(tracking, lineage)
    with start_run(tracking, "cdp-segments", f"segments as of {settings.window.as_of}") as run, \
            _noted_warnings() as noted:
        _log_common(settings, "segments", features.drop(columns=["customer_id"]), share)
        segmenter = CustomerSegmenter().fit(features, previous=previous)
        mlflow.log_params({"method": segmenter.method_, "k": segmenter.k_,
                           "matched_previous": previous is not None})
        profile = segmenter.profile(features).reset_index()
        log_frame(profile, "segment_profile.csv")
        log_frame(segmenter.selection_, "selection.csv")
        log_frame(segmenter.centroids_table(), "centroids.csv")
        fig = Figure(figsize=(7, 4))
        ax = fig.subplots()
        ax.bar(profile["segment"], profile["customers"])
        ax.set_ylabel("customers")
        ax.set_title(f"Segments as of {settings.window.as_of}")
        ax.tick_params(axis="x", rotation=30)
        fig.tight_layout()
        mlflow.log_figure(fig, "plots/segment_profile.png")
        chosen = segmenter.selection_[segmenter.selection_["chosen"]].iloc[0]
        metrics = {"silhouette": float(chosen["silhouette"]), "k": float(segmenter.k_)}
        mlflow.log_metrics(metrics)
        info = _log_model("segments", segmenter, required_columns(segmenter, "segments"), features,
                          settings.window.horizon_days)
        refuse = (f"only {buyers} buyers to judge segments on (at least {MIN_BUYERS_TO_PROMOTE_SEGMENTS} are needed)"
                  if buyers < MIN_BUYERS_TO_PROMOTE_SEGMENTS else None)
        decision = decide(client, MODEL_NAMES["segments"], load_model_uri(client, info.model_uri),
                          metric="silhouette", score=_silhouette(features, segmenter), force=settings.force,
                          lineage=lineage, refuse=refuse)
    warned = _log_warnings(client, run.info.run_id, noted)
    return _Trained("segments", run.info.run_id, info.model_uri, info.model_id, metrics, decision, lineage,
                    warnings=warned)


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


def _previous_centroids(tracking: TrackingConfig, lineage: Lineage) -> pd.DataFrame | None:
    """The centroids of the segments champion of the same lineage (same store and feature
    set), whose names new segments inherit; None where there is no such champion."""
    try:
        model, version = load_champion(tracking, MODEL_NAMES["segments"])
    except NoChampionError:
        return None
    tags = registry_client(tracking).get_model_version(MODEL_NAMES["segments"], version).tags
    if any(tags.get(key) != value for key, value in lineage.tags().items()):
        return None
    return model.unwrap_python_model().estimator.centroids_table()


def horizon_window(as_of: dt.date, horizon_days: int, n_snapshots: int, step_days: int) -> Window:
    """A `Window`, with the CLI's arguments checked into plain errors."""
    for name, value in (("--horizon-days", horizon_days), ("--snapshots", n_snapshots), ("--step-days", step_days)):
        if value < 1 or math.isnan(value):
            raise CdpError(f"{name} must be at least 1")
    return Window(as_of=as_of, horizon_days=horizon_days, n_snapshots=n_snapshots, step_days=step_days)


@dataclass(frozen=True)
class TrainedStore:
    """What `train_store` did: the as-of day it trained at and each family's result."""

    as_of: dt.date
    results: list[FamilyResult]


def train_store(config, tracking: TrackingConfig, families: Sequence[str] = FAMILIES, as_of: dt.date | None = None,
                horizon_days: int = 90, n_snapshots: int = 4, step_days: int = 30, force: bool = False,
                max_customers: int | None = None,
                on_stage: Callable[[str], None] | None = None) -> TrainedStore:
    """`cdp train` as one function: train ``families`` on the store ``config`` (a
    `cdp.config.Config`) describes, as of ``as_of`` (default: its last day with data), log
    them to ``tracking`` (`training.tracking.store_tracking`), register and gate them
    (`train`). The config's ``[model]`` settings and the store's provenance are recorded.

    ``max_customers``: the sample size (default ``[training] max_customers``; 0 trains on
    everyone). With ``[engine] kind = "spark"`` the sample and the snapshots are drawn by the
    cluster, the sample written once to the engine's scratch folder; the models are fitted here."""
    from features.as_of import resolve_as_of
    from features.engine import held_on_spark, store_tables, unified_on_spark
    from store.interface import open_store

    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise CdpError(f"unknown model family {', '.join(map(repr, unknown)) or '(none)'}: "
                       f"use {', '.join(FAMILIES)} or all")
    if max_customers is None:
        max_customers = config.training.max_customers
    if max_customers < 0:
        raise CdpError(f"--max-customers must be at least 0 (0: everyone), got {max_customers}")
    with open_store(config.store.path, read_only=True) as store:
        day = resolve_as_of(store, as_of)
        settings = TrainSettings(window=horizon_window(day, horizon_days, n_snapshots, step_days),
                                 families=tuple(families), force=force, max_customers=max_customers or None,
                                 data=data_source(store, config, tracking), model_params=config.model.params())
        if config.engine.kind != "spark":
            results = train(store_tables(store, config), settings, tracking, on_stage=on_stage)
            return TrainedStore(as_of=day, results=results)
        with unified_on_spark(store, config, app_name="cdp-ml train") as (tables, work):
            results = train(tables, settings, tracking, on_stage=on_stage,
                            hold=lambda sample: held_on_spark(sample, work / "sample"))
    return TrainedStore(as_of=day, results=results)


def data_source(store: TableStore, config, tracking: TrackingConfig) -> DataSource:
    """What a training run records of where its data came from: the store, its registry
    scope, the config file and each source file's name and digest as last ingested."""
    rows = store.last_ingestions()
    return DataSource(store=str(Path(config.store.path).resolve()), scope=tracking.scope,
                      config=str(Path(config.path).resolve()),
                      sources=tuple((name, Path(file).name, sha) for name, file, sha in rows))
