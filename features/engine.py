"""Where feature expressions run: embedded DuckDB by default, Apache Spark when data outgrows one machine.

Feature families are Ibis expressions over three tables (`customers`, `orders`,
`events`); this module only provides those tables on a backend. Spark is optional
(`pip install .[spark]`) and imported only when asked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import ibis

from cdp.errors import CdpError
from features._compat import ensure_duckdb_compat

TABLES = ("customers", "orders", "events")
ENGINES = ("duckdb", "spark")
_LOG4J = Path(__file__).parent / "conf" / "log4j2.properties"


@dataclass(frozen=True)
class SourceTables:
    """The unified store's tables as Ibis tables on one backend."""

    customers: ibis.Table
    orders: ibis.Table
    events: ibis.Table


def duckdb_tables(con: duckdb.DuckDBPyConnection) -> SourceTables:
    """The store's tables through an open DuckDB connection (the store's own)."""
    ensure_duckdb_compat()
    backend = ibis.duckdb.from_connection(con)
    return SourceTables(*(backend.table(name) for name in TABLES))


def spark_session(work_dir: Path, app_name: str = "cdp-ml"):
    """A local Spark session set up for exact, quiet, UTC feature runs.

    Arrow transfer is on with no silent fallback: pandas 3 data through Spark 4.0's
    non-Arrow path turns missing strings into 'NaN' and nullable integers into NULL.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise CdpError("the Spark engine needs PySpark: pip install 'cdp-ml[spark]' (and Java 17)") from None
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    work_dir.mkdir(parents=True, exist_ok=True)
    builder = (
        SparkSession.builder.master("local[2]").appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.timestampType", "TIMESTAMP_NTZ")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.catalogImplementation", "in-memory")
        .config("spark.sql.warehouse.dir", str(work_dir / "warehouse"))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.pyspark.fallback.enabled", "false")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{_LOG4J}")
    )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def export_parquet(con: duckdb.DuckDBPyConnection, out_dir: Path) -> dict[str, Path]:
    """Write the store's feature input tables as Parquet files, the hand-over to Spark."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in TABLES:
        path = out_dir / f"{name}.parquet"
        con.execute(f"COPY {name} TO '{path}' (FORMAT parquet)")
        paths[name] = path
    return paths


def spark_tables(session, parquet: dict[str, Path]) -> SourceTables:
    """The tables of `export_parquet` as Ibis tables on a Spark session."""
    backend = ibis.pyspark.connect(session)
    return SourceTables(*(backend.read_parquet(str(parquet[name]), table_name=f"cdp_{name}") for name in TABLES))


def store_tables(store, config) -> SourceTables:
    """The unified tables of an open `store.duckdb_store.Store` on DuckDB, amounts in
    ``config``'s base currency: what training and scoring read."""
    from features.currency import tables_in_base_currency

    if not store.has_table("customers"):
        raise CdpError(f"store {store.path} has no unified profiles yet: run `cdp unify` first")
    return tables_in_base_currency(duckdb_tables(store.con), config.currency)
