"""Shared fixtures for feature tests: one local Spark session for the whole run (it takes seconds to start)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from features.engine import spark_session

    session = spark_session(tmp_path_factory.mktemp("spark"), app_name="cdp-tests")
    yield session
    session.stop()
