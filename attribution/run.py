"""`cdp attribution` as functions: credit a store's journeys, or a paths file's, to channels.

Each returns an `AttributionRun`: the channel × model table and what MLflow records of
it (parameters, metrics) with one-line notes for people. Writing the marketer's report
(`marketing.attribution_report`) and logging the run (`attribution.tracking`) are the
caller's next steps, so a notebook can stop at the table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from attribution.credit import ModelSettings, attribute, bootstrap_shares, parse_model_names
from attribution.journeys import JourneySettings, journeys_from_tables
from attribution.paths import PathCounts
from attribution.paths_file import read_paths_file


@dataclass(frozen=True)
class AttributionRun:
    """A channel × model credit table (with bootstrap intervals when asked), the paths it
    came from, MLflow's parameters and metrics of the run, and notes for people."""

    table: pd.DataFrame
    paths: PathCounts
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def attribute_store(config, as_of: dt.date | None = None, window_days: float = 30.0, models: str = "all",
                    half_life_days: float = 7.0, bootstrap: int = 0, seed: int = 7) -> AttributionRun:
    """Journeys of the store ``config`` (a `cdp.config.Config`) describes, as of ``as_of``
    (default: its last day with data; touches within ``window_days`` before each order),
    credited by ``models`` (``all`` or comma-separated names)."""
    from features.engine import store_tables
    from store.interface import open_store

    names = parse_model_names(models)
    settings = JourneySettings(window_days=window_days)
    with open_store(config.store.path, read_only=True) as store:
        day = store.data_days()[1] if as_of is None else as_of
        if config.engine.kind == "spark":
            found = _journeys_on_spark(store, config, day, settings)
        else:
            found = journeys_from_tables(store_tables(store, config), day, settings)
    orders = found.converting_journeys + found.conversions_without_touches
    untouched = found.conversions_without_touches / orders if orders else 0.0
    notes = [f"{found.converting_journeys:,} converting and {found.non_converting_journeys:,} non-converting "
             f"journeys as of {day} (window {window_days:g} days); {found.conversions_without_touches:,} of the "
             f"{orders:,} orders ({untouched:.0%}) had no touch in their window and are not attributed: the "
             f"shares below are of the other {1 - untouched:.0%}; {found.open_journeys:,} recent journeys without "
             "an order yet are left out"]
    metrics = {"converting_journeys": found.converting_journeys,
               "non_converting_journeys": found.non_converting_journeys,
               "conversions_without_touches": found.conversions_without_touches,
               "open_journeys": found.open_journeys}
    return _credited(found.paths, names, half_life_days, bootstrap, seed,
                     {"input": "store", "as_of": day, "window_days": window_days}, metrics, notes)


def _journeys_on_spark(store, config, day: dt.date, settings: JourneySettings):
    """The store's journeys built by ``[engine]``'s Spark session (`attribution.journeys_spark`)."""
    from attribution.journeys_spark import journeys_on_spark
    from features.engine import spark_frame, unified_on_spark

    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    with unified_on_spark(store, config, app_name="cdp-ml attribution") as (tables, _work):
        return journeys_on_spark(spark_frame(tables.events), spark_frame(tables.orders), end, settings)


def attribute_paths_file(paths_file: Path, models: str = "all", half_life_days: float = 7.0, bootstrap: int = 0,
                         seed: int = 7) -> AttributionRun:
    """A marketer's paths file (``path;total_conversions;total_conversion_value;total_null``)
    credited by ``models``; time decay counts touches back from the conversion."""
    names = parse_model_names(models)
    return _credited(read_paths_file(paths_file), names, half_life_days, bootstrap, seed,
                     {"input": "paths_file", "paths_file": Path(paths_file).name}, {}, [])


def _credited(paths: PathCounts, names, half_life_days: float, bootstrap: int, seed: int, params: dict,
              metrics: dict, notes: list[str]) -> AttributionRun:
    settings = ModelSettings(half_life_days=half_life_days)
    table = attribute(paths, names, settings)
    if bootstrap:
        table = table.merge(bootstrap_shares(paths, names, settings, bootstrap, seed, attributed=table),
                            on=["channel", "model"])
    notes = [*notes, f"{paths.total_conversions:,.0f} conversions worth {paths.total_value:,.2f} over "
                     f"{paths.n_paths:,} distinct paths of {len(paths.channels)} channels"]
    params = {"models": ",".join(names), "half_life_days": half_life_days, "bootstrap": bootstrap, **params}
    metrics = {**metrics, "total_conversions": paths.total_conversions, "total_value": paths.total_value,
               "total_null": paths.total_nulls, "distinct_paths": paths.n_paths}
    return AttributionRun(table=table, paths=paths, params=params, metrics=metrics, notes=notes)
