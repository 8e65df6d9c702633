"""What `cdp status` shows of a store: rows per table, the latest runs, where customers come from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from store.interface import TableStore

SHOWN_TABLES = ("customers", "orders", "events", "record_map", "identifier_map", "identifier_exclusions", "rejects",
                "source_customers", "source_orders", "source_events")


@dataclass(frozen=True)
class StoreStatus:
    """Rows of each `SHOWN_TABLES` table the store has, when ingest and unify last ran
    (None: never), and how many customers appear in each combination of sources."""

    rows: dict[str, int]
    last_ingest: datetime | None
    last_unify: datetime | None
    customers_by_sources: pd.DataFrame


def store_status(store: TableStore, top_sources: int = 8) -> StoreStatus:
    """The `StoreStatus` of an open store."""
    rows = {name: store.count(name) for name in SHOWN_TABLES if store.has_table(name)}
    runs = store.frame("""SELECT 'ingest' AS step, max(ingested_at) AS at
                          FROM ingestions WHERE run_id = (SELECT run_id FROM ingestions ORDER BY rowid DESC LIMIT 1)
                          UNION ALL SELECT 'unify', max(ran_at) FROM unify_runs""")
    at = {row.step: (None if pd.isna(row.at) else row.at.to_pydatetime()) for row in runs.itertuples()}
    sources = (store.frame("SELECT sources, count(*) AS n FROM customers GROUP BY sources ORDER BY n DESC LIMIT ?",
                           [top_sources]) if store.has_table("customers") else pd.DataFrame(columns=["sources", "n"]))
    return StoreStatus(rows=rows, last_ingest=at.get("ingest"), last_unify=at.get("unify"),
                       customers_by_sources=sources)


def rejected_rows(store: TableStore, source: str | None = None, limit: int = 20) -> pd.DataFrame:
    """The first ``limit`` rejected rows (of ``source``, or every source): where they were
    and why, never their raw values (they may hold personal data)."""
    return store.frame("SELECT source, file, row_number, reason FROM rejects WHERE ? IS NULL OR source = ? "
                       "ORDER BY source, file, row_number LIMIT ?", [source, source, limit])
