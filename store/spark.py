"""Spark sessions for the stages that run on a cluster (`[engine] kind = "spark"`): set up for
exact, quiet, UTC runs, on the master and with the settings cdp.toml names. PySpark is optional
(`pip install .[spark]`) and imported only when a session is asked for."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cdp.errors import CdpError

_LOG4J = Path(__file__).parent / "conf" / "log4j2.properties"


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
def engine_session(engine, app_name: str = "cdp-ml") -> Iterator[tuple[Any, Path]]:
    """A Spark session set up by ``engine`` (`cdp.config.EngineConfig`: master, conf) and a
    scratch folder of its own under ``engine.work_dir`` (every executor must reach it: shared
    storage on a real cluster) for checkpoints and hand-overs; the session is stopped and
    the folder removed after, failed or not.

    Where this process already has an active session (a notebook's, a test's), that one is
    used as it is, master and settings included, and left running after."""
    import tempfile

    work_root = engine.work_dir
    if work_root is not None:
        Path(work_root).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cdp-spark-", dir=work_root) as work:
        active = _active_session()
        session = active or spark_session(Path(work), app_name=app_name, master=engine.master, conf=engine.conf)
        try:
            yield session, Path(work)
        finally:
            if active is None:
                session.stop()


def _active_session():
    """This process's active Spark session, if PySpark is installed and one is running."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return None
    return SparkSession.getActiveSession()
