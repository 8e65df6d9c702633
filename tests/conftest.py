"""Shared test helpers: a throwaway project folder with source files, a cdp.toml and a store."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from cdp.config import Config, load_config
from profiles.ingest import SourceReport, ingest
from store.interface import open_configured, open_store

NOW = datetime(2024, 7, 1, 12, 0)


def toml_value(value) -> str:
    """A Python value as TOML (strings, booleans, numbers and lists of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


class Project:
    """A folder holding source files, a cdp.toml written from dicts, and a store in ``format``
    (a DuckDB file, or a directory of Parquet tables: every ingest rule holds on both)."""

    def __init__(self, root: Path, format: str = "duckdb"):
        self.root = root
        self.format = format
        self.store_path = root / ("store.duckdb" if format == "duckdb" else "store")
        self.runs = 0

    def write(self, name: str, content: str | bytes) -> Path:
        """Write a source file byte for byte (str is encoded as UTF-8, newlines untouched)."""
        path = self.root / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    def config(self, *sources: dict) -> Config:
        """Write cdp.toml with these [[sources]] (each a dict with a 'columns' dict) and load it."""
        parts = [f'[store]\npath = "{self.store_path.name}"\nformat = "{self.format}"\n']
        for source in sources:
            lines = ["[[sources]]"] + [f"{k} = {toml_value(v)}" for k, v in source.items() if k != "columns"]
            lines += ["[sources.columns]"] + [f"{k} = {toml_value(v)}" for k, v in source["columns"].items()]
            parts.append("\n".join(lines) + "\n")
        (self.root / "cdp.toml").write_text("\n".join(parts), encoding="utf-8")
        return load_config(self.root / "cdp.toml")

    def ingest(self, config: Config, *names: str) -> dict[str, SourceReport]:
        """One `cdp ingest` run; reports by source name. Every report must add up."""
        self.runs += 1
        with open_configured(config.store) as store:
            reports = ingest(store, config, now=NOW, run_id=f"run{self.runs}", sources=names)
        for r in reports:
            assert r.accepted + r.rejected == r.rows_read, r
        return {r.source: r for r in reports}

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with open_store(self.store_path, read_only=True) as store:
            return store.frame(sql, params)

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every ingest table, in a stable order: for before/after comparisons."""
        order = {"source_customers": "source, source_key", "source_orders": "source, source_key",
                 "source_events": "source, source_key", "rejects": "source, file, row_number",
                 "ingestions": "ingested_at, run_id, source"}
        return {t: self.query(f"SELECT * FROM {t} ORDER BY {o}") for t, o in order.items()}


@pytest.fixture(params=["duckdb", "parquet"])
def project(tmp_path, request) -> Project:
    return Project(tmp_path, request.param)


# The trained sample shop of the serving and marketing tests (one per session, built on first use).
from tests.trained_shop import trained_shop  # noqa: E402,F401


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One local Spark session for the whole run (it takes seconds to start), shared by every
    package's engine tests, two partitions per shuffle for their small tables; stages that open
    a session of their own (`store.spark.engine_session`) use this one while it runs."""
    from store.spark import spark_session

    session = spark_session(tmp_path_factory.mktemp("spark"), app_name="cdp-tests",
                            conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})
    yield session
    session.stop()
