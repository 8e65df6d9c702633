"""How good the models behind the scores are, in words a marketer can weigh.

:func:`scored_model_runs` reads, from the MLflow registry, the training run of each model
version that produced the store's scores (the versions are on every score row, so a
champion promoted since `cdp score` does not describe scores it never made): its
held-out metrics and parameters. :func:`quality_in_words` turns those metrics into
sentences, e.g. "ranks a customer who will leave above one who will stay 88% of the
time (ROC-AUC 0.88)". Without a registry, or without a run for a version, the report
says so instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from training.tracking import MODEL_NAMES, TrackingConfig, has_store, registry_client

__all__ = ["ModelRun", "VERSION_COLUMNS", "horizon_days", "quality_in_words", "scored_model_runs", "scored_versions"]

# Score column holding each family's model version.
VERSION_COLUMNS = {"segments": "segments_version", "churn": "churn_version", "next-purchase": "next_purchase_version",
                   "first-purchase": "first_purchase_version"}


@dataclass(frozen=True)
class ModelRun:
    """One registered model version's training run: held-out metrics and parameters."""

    family: str
    version: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)


def scored_versions(scores: pd.DataFrame) -> dict[str, str]:
    """Family → the model version in the ``scores`` table (the most common one, should a
    table ever mix them)."""
    out = {}
    for family, column in VERSION_COLUMNS.items():
        if column in scores and scores[column].notna().any():
            out[family] = str(scores[column].dropna().astype(str).mode().iloc[0])
    return out


def scored_model_runs(tracking: TrackingConfig, versions: Mapping[str, str]) -> tuple[dict[str, ModelRun], str | None]:
    """The training runs of the given model versions, and a note when some could not be read.

    Never raises for a missing or unreachable registry: the note says what is missing.
    A local SQLite store that does not exist is not created.
    """
    from mlflow.exceptions import MlflowException

    if not has_store(tracking):
        return {}, f"no model registry at {tracking.tracking_uri}: run `cdp train` to see model quality"
    registry = registry_client(tracking)
    runs, missing = {}, []
    for family, version in versions.items():
        try:
            model_version = registry.get_model_version(MODEL_NAMES[family], version)
            if model_version.run_id is None:
                raise KeyError(version)  # a version registered from outside a run: no training run to read
            run = registry.get_run(model_version.run_id)
        except (MlflowException, OSError, KeyError):
            missing.append(f"{family} version {version}")
            continue
        runs[family] = ModelRun(family, version, dict(run.data.metrics), dict(run.data.params))
    note = None
    if missing:
        note = f"not in the model registry at {tracking.tracking_uri}: {', '.join(missing)}"
    return runs, note


def horizon_days(runs: Mapping[str, ModelRun]) -> int | None:
    """The churn model's horizon in days, from its training parameters (None when unknown)."""
    run = runs.get("churn")
    try:
        return int(run.params["horizon_days"]) if run is not None else None
    except (KeyError, ValueError):
        return None


def _ok(metrics: Mapping[str, float], name: str) -> float | None:
    value = metrics.get(name)
    return float(value) if value is not None and math.isfinite(float(value)) else None


def quality_in_words(runs: Mapping[str, ModelRun]) -> list[str]:
    """Plain sentences about each model's held-out quality (metrics that are missing are skipped)."""
    lines: list[str] = []
    churn = runs.get("churn")
    if churn is not None:
        m = churn.metrics
        auc = _ok(m, "churn_roc_auc")
        if auc is not None:
            lines.append(f"Churn model (version {churn.version}): on customers it never saw in training, it ranks a "
                         f"customer who left above one who stayed {auc:.0%} of the time (ROC-AUC {auc:.2f}; "
                         "50% would be a coin toss).")
        baseline = _ok(m, "bgnbd_churn_roc_auc")
        if auc is not None and baseline is not None:
            verdict = "better than" if auc > baseline + 0.005 else ("worse than" if auc < baseline - 0.005
                                                                       else "about as good as")
            lines.append(f"That is {verdict} the classical BG/NBD model on the same customers "
                         f"({baseline:.0%}).")
        lift = _ok(m, "purchase_lift_top10")
        if lift is not None:
            lines.append(f"Among the 10% of customers it rates safest, {lift:.1f} times as many bought again as on "
                         "average.")
    purchases = runs.get("next-purchase")
    if purchases is not None:
        m = purchases.metrics
        mae = _ok(m, "purchase_days_mae")
        if mae is not None:
            lines.append(f"Next-purchase model (version {purchases.version}): its forecast of how many days a "
                         f"customer will buy on is off by {mae:.2f} days per customer on average.")
        ratio = _ok(m, "revenue_total_ratio")
        revenue_mae = _ok(m, "revenue_mae")
        if ratio is not None:
            lines.append(f"It forecast {ratio:.0%} of the revenue the held-out customers really brought"
                         + (f" (off by {revenue_mae:,.0f} per customer on average)." if revenue_mae is not None
                            else "."))
    first = runs.get("first-purchase")
    if first is not None:
        auc = _ok(first.metrics, "first_purchase_roc_auc")
        engaged = _ok(first.metrics, "engagement_first_purchase_roc_auc")
        if auc is not None:
            lines.append(f"First-purchase model (version {first.version}): among people who had not bought yet, it "
                         f"ranks one who then made a first purchase above one who did not {auc:.0%} of the time "
                         f"(ROC-AUC {auc:.2f})" + (f"; their engagement alone did so {engaged:.0%} of the time."
                                                   if engaged is not None else "."))
    segments = runs.get("segments")
    if segments is not None:
        silhouette = _ok(segments.metrics, "silhouette")
        if silhouette is not None:
            how = ("clearly apart" if silhouette >= 0.5 else "fairly distinct" if silhouette >= 0.25
                   else "overlapping: treat the borders between them loosely")
            lines.append(f"Segments (version {segments.version}): the groups are {how} "
                         f"(silhouette {silhouette:.2f} on a scale from -1 to 1).")
    return lines
