"""What every marketer's output reads: the store's scores, contacts and serving snapshot, and
the training runs of the models that scored them."""

from __future__ import annotations

from dataclasses import dataclass

from marketing.lists import ListInputs, read_list_inputs
from marketing.model_quality import ModelRun, scored_model_runs, scored_versions
from marketing.model_quality import horizon_days as model_horizon
from store.interface import TableStore, open_store
from store.snapshot import ServingSnapshot
from training.tracking import TrackingConfig

DEFAULT_HORIZON_DAYS = 90


@dataclass(frozen=True)
class MarketingInputs:
    """The list inputs (`marketing.lists.read_list_inputs`), the scoring models' training runs
    with a note when the registry cannot tell, and the horizon to value revenue over."""

    inputs: ListInputs
    runs: dict[str, ModelRun]
    registry_note: str | None
    horizon_days: int


def marketing_inputs(config, tracking: TrackingConfig, horizon_days: int | None = None) -> MarketingInputs:
    """The `MarketingInputs` of the store ``config`` (a `cdp.config.Config`) describes; the
    horizon is ``horizon_days``, else the churn model's, else 90 days."""
    with open_store(config.store.path, read_only=True) as store:
        inputs = read_list_inputs(store, ServingSnapshot.beside(config.store.path))
    runs, note = scored_model_runs(tracking, scored_versions(inputs.scores))
    return MarketingInputs(inputs=inputs, runs=runs, registry_note=note,
                           horizon_days=horizon_days or model_horizon(runs) or DEFAULT_HORIZON_DAYS)


def list_horizon_days(store: TableStore, tracking: TrackingConfig, horizon_days: int | None = None) -> int:
    """The horizon the churn list values revenue over, for a store open already: ``horizon_days``,
    else the churn model's that scored it, else 90 days."""
    if horizon_days is not None:
        return horizon_days
    if not store.has_table("scores"):
        return DEFAULT_HORIZON_DAYS
    runs, _ = scored_model_runs(tracking, scored_versions(store.frame("SELECT * FROM scores")))
    return model_horizon(runs) or DEFAULT_HORIZON_DAYS
