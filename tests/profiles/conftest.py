"""A local Spark session shared by the tests of the Spark stages (it takes seconds to start)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def small_spark(tmp_path_factory):
    """Local Spark for tiny tables: one partition per shuffle keeps each job to a task or two."""
    from store.spark import spark_session

    session = spark_session(tmp_path_factory.mktemp("spark"), app_name="cdp-tests",
                            conf={"spark.sql.shuffle.partitions": "1", "spark.default.parallelism": "2"})
    yield session
    session.stop()
