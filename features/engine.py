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
def unified_on_spark(store: TableStore, config, app_name: str = "cdp-ml") -> Iterator[tuple[SourceTables, Path]]:
    """`store_tables` on a Spark session set up by ``config``'s ``[engine]`` (`engine_session`):
    the unified tables, amounts in the base currency, and the session's scratch folder (shared
    by every executor) for stages that write intermediate tables (`held_on_spark`). A DuckDB
    store hands its tables over as Parquet in that folder, a Parquet store as they are."""
    from features.currency import tables_in_base_currency

    _check_unified(store)
    with engine_session(config.engine, app_name=app_name) as (session, work):
        parquet = store.export_parquet(TABLES, work / "tables")
        yield tables_in_base_currency(spark_tables(session, parquet), config.currency), work


def held_on_spark(tables: SourceTables, folder: Path) -> SourceTables:
    """``tables`` (Ibis expressions on a Spark backend) computed once by the executors and
    written to ``folder`` as Parquet, read back as plain tables: the many queries that follow
    (a training run's snapshots) scan the result instead of recomputing it from the store."""
    backend = tables.customers._find_backend()
    held = {}
    for name in TABLES:
        path = folder / name
        backend.to_parquet(getattr(tables, name), path)
        held[name] = path
    return spark_tables(backend._session, held, prefix="cdp_held")


def spark_frame(expr: ibis.Table):
    """An Ibis expression on a Spark backend as a Spark DataFrame (lazy), for stages written
    against PySpark's own API."""
    backend = expr._find_backend()
    return backend._session.sql(backend.compile(expr))


def spark_tables(session, parquet: dict[str, Path], prefix: str = "cdp") -> SourceTables:
    """Tables handed over as Parquet files (`store.interface.TableStore.export_parquet`) as Ibis
    tables on a Spark session, registered as ``{prefix}_{name}``."""
    backend = ibis.pyspark.connect(session)
    return SourceTables(*(backend.read_parquet(str(parquet[name]), table_name=f"{prefix}_{name}")
                          for name in TABLES))


def store_tables(store: TableStore, config) -> SourceTables:
    """The unified tables of an open store on its own engine, amounts in ``config``'s base
    currency: what training and scoring read."""
    from features.currency import tables_in_base_currency

    _check_unified(store)
    return tables_in_base_currency(source_tables(store.ibis_backend()), config.currency)


def _check_unified(store: TableStore) -> None:
    if not store.has_table("customers"):
        raise CdpError(f"store {store.path} has no unified profiles yet: run `cdp unify` first")
