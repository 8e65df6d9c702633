"""The data a training run reads: rolling labelled snapshots and the scoring snapshot.

The only module of `training/` that runs queries; everything downstream gets pandas
frames. Snapshots roll back from the as-of date so that every label window ends on or
before it (`features.snapshots`): a model trained "as of" a date never saw what happened
after it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from features.build import available_families, build_features
from features.engine import SourceTables
from features.labels import first_purchase_labels, purchase_labels
from features.scoring import frame, scoring_features, with_category_history
from features.snapshots import snapshot_dates, training_set


@dataclass(frozen=True)
class Window:
    """Which snapshots a run trains on: ``n_snapshots`` as-of dates ``step_days`` apart, the
    latest label window ending on ``as_of``."""

    as_of: dt.date
    horizon_days: int = 90
    n_snapshots: int = 4
    step_days: int = 30

    def dates(self) -> list[dt.date]:
        return snapshot_dates(self.as_of, self.horizon_days, self.n_snapshots, self.step_days)


features_as_of = scoring_features  # the scoring feature set (`features.scoring`), as training reads it


FeatureBuilder = Callable[[dt.date], pd.DataFrame]


def snapshot_features(tables: SourceTables) -> FeatureBuilder:
    """The feature table as of a day (every family the data can feed), each day's built once:
    the buyers' and the prospects' snapshots of one run read the same days' features."""
    families = available_families(tables)
    built: dict[dt.date, pd.DataFrame] = {}

    def build(day: dt.date) -> pd.DataFrame:
        if day not in built:
            built[day] = frame(build_features(tables, day, families))
        return built[day]
    return build


def labelled_snapshots(tables: SourceTables, window: Window, features: FeatureBuilder | None = None) -> pd.DataFrame:
    """Features and labels of every snapshot of ``window``, stacked (an ``as_of`` column first).
    ``features``: where each day's feature table comes from (`snapshot_features`, the default)."""
    build = features or snapshot_features(tables)
    return training_set(
        lambda d: with_category_history(build(d), tables, d),
        lambda d: frame(purchase_labels(tables.orders, d, window.horizon_days)),
        window.dates(),
    )


def first_purchase_snapshots(tables: SourceTables, window: Window,
                             features: FeatureBuilder | None = None) -> pd.DataFrame:
    """Features and first-purchase labels (`features.labels.first_purchase_labels`) of the
    prospects of every snapshot of ``window``, stacked (an ``as_of`` column first): the
    people known by each as-of day who had not bought yet. ``features`` as for
    `labelled_snapshots`."""
    build = features or snapshot_features(tables)
    return training_set(
        build,
        lambda d: frame(first_purchase_labels(tables.customers, tables.orders, d, window.horizon_days)),
        window.dates(),
    )


def digest(frame: pd.DataFrame) -> str:
    """A short content hash of a training frame, logged so a run names the exact data it saw."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    return hashlib.blake2b(hashed + ",".join(frame.columns).encode(), digest_size=12).hexdigest()


def sample_customers(tables: SourceTables, max_customers: int | None) -> tuple[SourceTables, float]:
    """At most about ``max_customers`` customers' rows of every table, and the share kept.

    A training run does not need a million customers: shallow boosted trees and a
    clustering of a few features learn as much from tens of thousands, in a fraction of
    the time and memory (scoring still covers everyone). The sample is by a hash of
    ``customer_id``, the same predicate on every table, so each kept customer keeps all of
    their orders and events, and the same customers are kept run after run on an engine
    (DuckDB and Spark hash differently). ``None`` keeps everyone.
    """
    if max_customers is None:
        return tables, 1.0
    if max_customers < 1:
        raise ValueError(f"max_customers must be at least 1 (or None for everyone), got {max_customers}")
    total = int(tables.customers.count().execute())
    if total <= max_customers:
        return tables, 1.0
    buckets = 1_000_000
    kept = max(1, int(buckets * max_customers / total))

    def keep(table):  # rows of no customer (unlinked orders and events) belong to no sample
        bucket = table.customer_id.hash() % buckets
        return table.filter(table.customer_id.notnull(), ((bucket + buckets) % buckets) < kept)

    return SourceTables(keep(tables.customers), keep(tables.orders), keep(tables.events)), kept / buckets
