"""Shared fixtures for feature tests: one local Spark session for the whole run (it takes seconds to start)."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from store.ibis_compat import ensure_duckdb_compat


def in_memory(**tables: pd.DataFrame) -> ibis.BaseBackend:
    """A fresh in-memory DuckDB backend holding the given frames as tables."""
    ensure_duckdb_compat()
    con = ibis.duckdb.connect()
    for name, frame in tables.items():
        con.create_table(name, frame)
    return con


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from features.engine import spark_session

    session = spark_session(tmp_path_factory.mktemp("spark"), app_name="cdp-tests")
    yield session
    session.stop()
