"""Where feature expressions run: embedded DuckDB by default, Apache Spark when data outgrows one machine.

Feature families are Ibis expressions over three tables (`customers`, `orders`,
`events`); this module only provides those tables on a backend. Spark is optional
(`pip install .[spark]`) and imported only when asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import ibis

from cdp.errors import CdpError
from store.ibis_compat import ensure_duckdb_compat
from store.interface import TableStore
from store.spark import engine_session

TABLES = ("customers", "orders", "events")
ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class SourceTables:
    """The unified store's tables as Ibis tables on one backend."""

    customers: ibis.Table
    orders: ibis.Table
    events: ibis.Table


def source_tables(backend) -> SourceTables:
    """The three tables on an Ibis backend that holds them (`store.interface.TableStore.ibis_backend`)."""
    return SourceTables(*(backend.table(name) for name in TABLES))


def duckdb_tables(con: duckdb.DuckDBPyConnection) -> SourceTables:
    """The tables through an open DuckDB connection (a store's, or a test's own)."""
    ensure_duckdb_compat()
    return source_tables(ibis.duckdb.from_connection(con))


@contextmanager
def spark_store_tables(store: TableStore, engine) -> Iterator[SourceTables]:
    """The store's three tables on a Spark session set up by ``engine`` (`engine_session`); a
    DuckDB store hands them over as Parquet in its scratch folder, a Parquet store as they are."""
    with engine_session(engine) as (session, work):
        parquet = store.export_parquet(TABLES, work / "tables")
        yield spark_tables(session, parquet)


def spark_tables(session, parquet: dict[str, Path]) -> SourceTables:
    """Tables handed over as Parquet files (`store.interface.TableStore.export_parquet`) as Ibis
    tables on a Spark session."""
    backend = ibis.pyspark.connect(session)
    return SourceTables(*(backend.read_parquet(str(parquet[name]), table_name=f"cdp_{name}") for name in TABLES))


def store_tables(store: TableStore, config) -> SourceTables:
    """The unified tables of an open store on its own engine, amounts in ``config``'s base
    currency: what training and scoring read."""
    from features.currency import tables_in_base_currency

    if not store.has_table("customers"):
        raise CdpError(f"store {store.path} has no unified profiles yet: run `cdp unify` first")
    return tables_in_base_currency(source_tables(store.ibis_backend()), config.currency)
