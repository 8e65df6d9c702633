"""The scoring feature set: what every model of `training/` reads, as of a day.

The feature families of `features.build` (every one the data can feed) plus each
customer's purchase history by category (``category_history``, family
``purchase_history`` in the catalog), which the next-best-category model reads. One
definition, used to train, to score and to materialize (`features.materialized`), so a
materialized snapshot's fingerprint covers this package's code only.
"""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
from ibis import _

from features.as_of import purchases_until
from features.build import available_families, build_features
from features.engine import SourceTables
from features.text_items import escape_expr

HISTORY_COLUMN = "category_history"


def scoring_features(tables: SourceTables, as_of: dt.date) -> pd.DataFrame:
    """The feature table as of a day, as pandas (every family the data can feed), with each
    customer's `category_history`."""
    return with_category_history(frame(build_features(tables, as_of, available_families(tables))), tables, as_of)


def category_history(tables: SourceTables, as_of: dt.date) -> pd.Series:
    """Per customer, purchases (non-return orders) per category up to and including ``as_of``,
    encoded as ``"category:n;…"`` text (each category escaped, `features.text_items`),
    categories in code-point order: what `training.categories.encode_history` writes, built
    by the engine (pandas' string join took 25 s of each snapshot at 1M customers, the query 5 s)."""
    counts = (purchases_until(tables.orders, as_of).filter(~_.is_return, _.category.notnull())
              .group_by("customer_id", "category").aggregate(purchases=_.count()))
    item = escape_expr(counts.category) + ":" + counts.purchases.cast("string")
    texts = counts.group_by("customer_id").aggregate(**{HISTORY_COLUMN: _in_category_order(counts, item)})
    return frame(texts).set_index("customer_id")[HISTORY_COLUMN]


def _in_category_order(counts, item) -> ibis.Value:
    """The items of a customer joined by ";" in the code-point order of their categories. Spark
    cannot order a string aggregation (Ibis refuses ``order_by`` there): it collects
    (category, item) pairs, sorts them, which orders by category first, in the same binary
    order, and joins their items; DuckDB orders its aggregation, the faster way."""
    if counts._find_backend().name == "pyspark":
        pairs = ibis.struct({"category": counts.category, "item": item}).collect()
        return pairs.sort().map(lambda pair: pair.item).join(";")
    return item.group_concat(";", order_by=counts.category)


def with_category_history(features: pd.DataFrame, tables: SourceTables, as_of: dt.date) -> pd.DataFrame:
    """``features`` with each customer's `category_history` ("" for those without one)."""
    history = category_history(tables, as_of)
    out = features.copy()
    out[HISTORY_COLUMN] = features["customer_id"].map(history).fillna("").astype(object).to_numpy()
    return out


def frame(expr) -> pd.DataFrame:
    """An Ibis expression's rows as pandas, through Arrow: integer columns with gaps become
    float64 (Ibis's own conversion gives Python objects for them, which no model or MLflow
    signature accepts)."""
    return expr.to_pyarrow().to_pandas()
