"""Shared fixtures for feature tests: the generator's shop, unified, and in-memory tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ibis
import pandas as pd

from store.ibis_compat import ensure_duckdb_compat


def unified_shop(root: Path, customers: int, seed: int) -> Path:
    """The generator's shop under ``root``, ingested and unified; its cdp.toml's path."""
    from cdp.config import load_config
    from profiles.ingest import ingest
    from profiles.unify import unify
    from sample import write_sample
    from store.duckdb_store import Store

    write_sample(root, n_customers=customers, seed=seed, end=dt.date(2026, 10, 31))
    config = load_config(root / "cdp.toml")
    with Store(config.store.path) as store:
        ingest(store, config, now=dt.datetime(2026, 11, 1), run_id="i")
        unify(store, config, now=dt.datetime(2026, 11, 1), run_id="u")
    return root / "cdp.toml"


def in_memory(**tables: pd.DataFrame) -> ibis.BaseBackend:
    """A fresh in-memory DuckDB backend holding the given frames as tables."""
    ensure_duckdb_compat()
    con = ibis.duckdb.connect()
    for name, frame in tables.items():
        con.create_table(name, frame)
    return con
