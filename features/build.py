"""Assemble the feature table: every family, one row per customer, as of a date.

Families are joined on ``customer_id``; the stage reads only the unified tables and
returns an Ibis expression, so the caller chooses the engine and where the rows go.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cdp.cells import safe_arrow
from cdp.errors import CdpError
from features.behaviour import behaviour_features
from features.catalog import EVENT_FAMILIES, FAMILIES, catalog
from features.engagement import engagement_features
from features.engine import SourceTables
from features.labels import purchase_labels
from features.profile import profile_features
from features.rfm import rfm_features

OUTPUT_SUFFIXES = (".parquet", ".csv")


def available_families(tables: SourceTables) -> tuple[str, ...]:
    """The families the data can feed: without any event (CDNOW has orders only), no
    behavioural or engagement columns at all, rather than columns of zeros."""
    has_events = int(tables.events.count().execute()) > 0
    return tuple(f for f in FAMILIES if has_events or f not in EVENT_FAMILIES)


def build_features(
    tables: SourceTables, as_of: dt.date, families: tuple[str, ...] = FAMILIES, *, materialize: bool = False,
) -> ibis.Table:
    """The feature table as of ``as_of`` (data up to and including that whole day).

    One row per customer first seen by then; a family with nothing on a customer (no
    purchase yet) leaves that customer's columns empty. Columns in catalog order.

    ``materialize`` runs each family on its own and caches its result (a temporary table
    on DuckDB, a persisted frame on Spark) before the join: the engine then holds one
    family's intermediate state at a time instead of all of them at once, which is what
    keeps a 20M-event build inside a few GB. Off, the result is one lazy expression.
    """
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown feature families: {', '.join(sorted(unknown))}")
    parts = {
        "rfm": lambda: rfm_features(tables.orders, as_of),
        "behaviour": lambda: behaviour_features(tables.events, tables.orders, as_of),
        "engagement": lambda: engagement_features(tables.events, tables.orders, as_of),
    }
    table = profile_features(tables.customers, as_of)
    for family in FAMILIES:
        if family in families and family in parts:
            part = parts[family]().cache() if materialize else parts[family]()
            table = table.left_join(part, "customer_id").drop("customer_id_right")
    return table.select("customer_id", *[spec.name for spec in catalog(families)]).order_by("customer_id")


def with_labels(features: ibis.Table, orders: ibis.Table, as_of: dt.date, horizon_days: int) -> ibis.Table:
    """Features of the customers who can be labelled (bought by ``as_of``), with their labels
    over the ``horizon_days`` after it: one training snapshot."""
    labels = purchase_labels(orders, as_of, horizon_days)
    return features.join(labels, "customer_id").order_by("customer_id")


def check_output(out: Path) -> None:
    """Refuse an output file type we cannot write, before any work is done."""
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise CdpError(f"--out {out}: use a .parquet or .csv file name")


def write_table(table: pa.Table, out: Path) -> None:
    """Write features as Parquet or CSV, chosen by the file's extension (straight from Arrow)."""
    check_output(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        pq.write_table(table, out)
    else:
        pacsv.write_csv(safe_arrow(lists_as_json(table)), out)  # text a spreadsheet would run stays text


def lists_as_json(table: pa.Table) -> pa.Table:
    """``table`` with each list column (``next_best_categories``) as JSON array text, for CSV,
    which has no lists: ``["Oil, olive", "soap"]`` keeps apart items that hold commas or
    quotes, and any JSON reader splits it back. Missing lists stay missing."""
    for i, field in enumerate(table.schema):
        if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            texts = [None if v is None else json.dumps(v, ensure_ascii=False) for v in table.column(i).to_pylist()]
            table = table.set_column(i, field.name, pa.array(texts, type=pa.string()))
    return table


def store_feature_table(config, as_of: dt.date, engine: str | None = None, label_horizon_days: int | None = None,
                        on_stage=None) -> pa.Table:
    """`cdp features --out` as one function: every family's features of every customer of
    the store ``config`` (a `cdp.config.Config`) describes, as of ``as_of`` (checked against
    the store's data, and with ``label_horizon_days`` that its label window ends within
    it), with labels of the next ``label_horizon_days`` days when given (a training
    snapshot: buyers only), on ``engine`` (default ``[engine] kind``): embedded DuckDB, or
    a Spark session on ``[engine] master`` fed the store's tables as Parquet and always
    stopped."""
    from features.as_of import resolve_as_of
    from features.engine import ENGINES, store_tables, unified_on_spark
    from store.interface import open_store

    engine = engine or config.engine.kind
    if engine not in ENGINES:
        raise CdpError(f"--engine {engine!r}: use one of {', '.join(ENGINES)}")
    stage = on_stage or (lambda text: None)

    def table_of(tables: SourceTables) -> pa.Table:  # tables in the base currency
        table = build_features(tables, as_of, available_families(tables), materialize=True)
        if label_horizon_days:
            table = with_labels(table, tables.orders, as_of, label_horizon_days)
        return table.to_pyarrow()

    # No memory_limit here: the feature queries' window operators do not spill well, and a
    # read-only store holds nothing to protect. BENCHMARKS.md has what they use.
    with open_store(config.store.path, read_only=True) as store:
        if not store.has_table("customers"):
            raise CdpError(f"store {config.store.path} has no unified profiles yet: run `cdp unify` first")
        resolve_as_of(store, as_of, label_horizon_days)
        stage(f"building features as of {as_of} on {engine}")
        if engine == "duckdb":
            return table_of(store_tables(store, config))
        with unified_on_spark(store, config) as (tables, _work):
            return table_of(tables)
