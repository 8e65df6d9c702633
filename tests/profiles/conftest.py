"""The Spark stages' tests share the run's one local Spark session (`tests.conftest.spark`)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def small_spark(spark):
    return spark
