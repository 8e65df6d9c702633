"""The data a training run reads: rolling labelled snapshots and the scoring snapshot.

The only module of `training/` that runs queries; everything downstream gets pandas
frames. Snapshots roll back from the as-of date so that every label window ends on or
before it (`features.snapshots`): a model trained "as of" a date never saw what happened
after it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import pandas as pd

from ibis import _

from features.as_of import purchases_until
from features.build import available_families, build_features
from features.engine import SourceTables
from features.labels import purchase_labels
from features.snapshots import snapshot_dates, training_set
from features.text_items import escape_expr
from training.categories import HISTORY_COLUMN


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


def features_as_of(tables: SourceTables, as_of: dt.date) -> pd.DataFrame:
    """The feature table as of a day, as pandas (every family the data can feed), with each
    customer's `category_history` (what the next-best-category model reads)."""
    return with_category_history(_pandas(build_features(tables, as_of, available_families(tables))), tables, as_of)


def category_history(tables: SourceTables, as_of: dt.date) -> pd.Series:
    """Per customer, purchases (non-return orders) per category up to and including ``as_of``,
    encoded as ``"category:n;…"`` text (each category escaped, `features.text_items`),
    categories in code-point order: what `training.categories.encode_history` writes, built
    by the engine (pandas' string join took 25 s of each snapshot at 1M customers, the query 5 s)."""
    counts = (purchases_until(tables.orders, as_of).filter(~_.is_return, _.category.notnull())
              .group_by("customer_id", "category").aggregate(purchases=_.count()))
    item = escape_expr(counts.category) + ":" + counts.purchases.cast("string")
    texts = counts.group_by("customer_id").aggregate(
        **{HISTORY_COLUMN: item.group_concat(";", order_by=counts.category)})
    return _pandas(texts).set_index("customer_id")[HISTORY_COLUMN]


def with_category_history(frame: pd.DataFrame, tables: SourceTables, as_of: dt.date) -> pd.DataFrame:
    history = category_history(tables, as_of)
    out = frame.copy()
    out[HISTORY_COLUMN] = frame["customer_id"].map(history).fillna("").astype(object).to_numpy()
    return out


def labelled_snapshots(tables: SourceTables, window: Window) -> pd.DataFrame:
    """Features and labels of every snapshot of ``window``, stacked (an ``as_of`` column first)."""
    families = available_families(tables)
    return training_set(
        lambda d: with_category_history(_pandas(build_features(tables, d, families)), tables, d),
        lambda d: _pandas(purchase_labels(tables.orders, d, window.horizon_days)),
        window.dates(),
    )


def _pandas(expr) -> pd.DataFrame:
    """Through Arrow: integer columns with gaps become float64 (Ibis's own conversion gives
    Python objects for them, which no model or MLflow signature accepts)."""
    return expr.to_pyarrow().to_pandas()


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
    their orders and events, and the same customers are kept run after run on an engine.
    ``None`` keeps everyone.
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

    def keep(table):
        bucket = table.customer_id.hash() % buckets
        return table.filter(((bucket + buckets) % buckets) < kept)

    return SourceTables(keep(tables.customers), keep(tables.orders), keep(tables.events)), kept / buckets
