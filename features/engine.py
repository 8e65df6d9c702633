"""Where feature expressions run: embedded DuckDB by default, Apache Spark when data outgrows one machine.

Feature families are Ibis expressions over three tables (`customers`, `orders`,
`events`); this module only provides those tables on a backend. Spark is optional
(`pip install .[spark]`) and imported only when asked for.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import ibis

from cdp.errors import CdpError
from store.ibis_compat import ensure_duckdb_compat
from store.interface import TableStore

TABLES = ("customers", "orders", "events")
ENGINES = ("duckdb", "spark")
_LOG4J = Path(__file__).parent / "conf" / "log4j2.properties"


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


def spark_session(work_dir: Path, app_name: str = "cdp-ml", master: str = "local[2]",
                  conf: Mapping[str, str] | None = None):
    """A Spark session set up for exact, quiet, UTC feature runs, on ``master`` (``[engine]
    master`` of cdp.toml: local, a local cluster or a standalone cluster's ``spark://`` URL),
    with ``conf`` (``[engine] conf``) applied last.

    Arrow transfer is on with no silent fallback: pandas 3 data through Spark 4.0's
    non-Arrow path turns missing strings into 'NaN' and nullable integers into NULL.
    Executors run this interpreter (``spark.pyspark.python``): theirs would lack pyarrow.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise CdpError("the Spark engine needs PySpark: pip install 'cdp-ml[spark]' (and Java 17)") from None
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # PySpark starts the executors' Python from PYSPARK_PYTHON (the conf below serves spark-submit).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    work_dir.mkdir(parents=True, exist_ok=True)
    builder = (
        SparkSession.builder.master(master).appName(app_name)
        .config("spark.pyspark.python", sys.executable)
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
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


@contextmanager
def spark_store_tables(store: TableStore, engine) -> Iterator[SourceTables]:
    """The store's three tables on a Spark session set up by ``engine`` (`cdp.config.EngineConfig`:
    master, conf, and ``work_dir`` where the tables are handed over as Parquet); the session
    is stopped and the files removed after, failed or not."""
    import tempfile

    work_root = engine.work_dir
    if work_root is not None:
        Path(work_root).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cdp-spark-", dir=work_root) as work:
        parquet = store.export_parquet(TABLES, Path(work) / "tables")
        session = spark_session(Path(work), master=engine.master, conf=engine.conf)
        try:
            yield spark_tables(session, parquet)
        finally:
            session.stop()


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
