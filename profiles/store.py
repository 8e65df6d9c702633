"""The embedded DuckDB store: the one place tables are created and written.

Every stage writes inside one transaction (`Store.transaction`): a run that fails or is
killed leaves the store as the previous run left it, because DuckDB discards
uncommitted work on the next open.

Tables of the ingest stage: ``source_customers``, ``source_orders``, ``source_events``
(typed canonical rows, one per source record, with normalized identifiers),
``rejects`` and ``ingestions``. Tables of the unify stage: ``customers`` (golden
records), ``orders``, ``events``, ``record_map``, ``identifier_map``,
``identifier_exclusions``, ``customer_ids`` (every id ever issued and what became of
it), ``id_events`` (creations, merges, splits) and ``unify_runs``. Tables of the
privacy commands: ``tombstones`` (keyed hashes of erased people's identifiers, which
`cdp ingest` keeps out) and ``audit_log`` (who exported or erased whom, when, and what
was deleted, with no personal data).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import pandas as pd
import pyarrow as pa

from cdp.errors import StoreError

SCHEMA_VERSION = 1

_IDENTITY = """
    source VARCHAR NOT NULL, source_key VARCHAR NOT NULL, row_number BIGINT NOT NULL,
    row_digest UBIGINT NOT NULL, file VARCHAR NOT NULL, ingested_at TIMESTAMP NOT NULL,
    customer_key VARCHAR, key_namespace VARCHAR, email VARCHAR, email_norm VARCHAR,
    phone VARCHAR, phone_norm VARCHAR, external_id VARCHAR,
"""

DDL = {
    "meta": "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    "source_customers": f"""CREATE TABLE IF NOT EXISTS source_customers ({_IDENTITY}
        first_name VARCHAR, last_name VARCHAR, birth_date DATE, gender VARCHAR, country VARCHAR,
        city VARCHAR, consent_email BOOLEAN, consent_sms BOOLEAN, created_at TIMESTAMP)""",
    "source_orders": f"""CREATE TABLE IF NOT EXISTS source_orders ({_IDENTITY}
        timestamp TIMESTAMP NOT NULL, amount DOUBLE NOT NULL, quantity BIGINT, product_id VARCHAR,
        category VARCHAR, channel VARCHAR, currency VARCHAR, discount DOUBLE, is_return BOOLEAN)""",
    "source_events": f"""CREATE TABLE IF NOT EXISTS source_events ({_IDENTITY}
        anonymous_id VARCHAR, timestamp TIMESTAMP NOT NULL, event_type VARCHAR NOT NULL,
        channel VARCHAR, campaign VARCHAR, product_id VARCHAR, category VARCHAR, value DOUBLE)""",
    "rejects": """CREATE TABLE IF NOT EXISTS rejects (source VARCHAR NOT NULL, file VARCHAR NOT NULL,
        row_number BIGINT NOT NULL, raw VARCHAR, reason VARCHAR NOT NULL, ingested_at TIMESTAMP NOT NULL,
        sha256 VARCHAR NOT NULL, source_key VARCHAR)""",
    "ingestions": """CREATE TABLE IF NOT EXISTS ingestions (run_id VARCHAR NOT NULL, source VARCHAR NOT NULL,
        file VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, config_digest VARCHAR NOT NULL,
        rows_read BIGINT, accepted BIGINT, rejected BIGINT, added BIGINT, updated BIGINT,
        removed BIGINT, unchanged BIGINT, skipped BOOLEAN, ingested_at TIMESTAMP NOT NULL)""",
    "customer_ids": """CREATE TABLE IF NOT EXISTS customer_ids (customer_id VARCHAR PRIMARY KEY,
        created_at TIMESTAMP NOT NULL, created_run VARCHAR NOT NULL, status VARCHAR NOT NULL,
        merged_into VARCHAR, updated_at TIMESTAMP NOT NULL, founder_source VARCHAR, founder_key VARCHAR)""",
    "id_events": """CREATE TABLE IF NOT EXISTS id_events (run_id VARCHAR NOT NULL, happened_at TIMESTAMP NOT NULL,
        event VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, other_id VARCHAR, records BIGINT)""",
    "unify_runs": """CREATE TABLE IF NOT EXISTS unify_runs (run_id VARCHAR NOT NULL, ran_at TIMESTAMP NOT NULL,
        records BIGINT, linked_records BIGINT, customers BIGINT, new_customers BIGINT,
        merged_ids BIGINT, split_ids BIGINT)""",
    "tombstones": """CREATE TABLE IF NOT EXISTS tombstones (id_type VARCHAR NOT NULL, id_hash VARCHAR NOT NULL,
        key_id VARCHAR NOT NULL, erased_at TIMESTAMP NOT NULL, audit_id VARCHAR NOT NULL)""",
    "audit_log": """CREATE TABLE IF NOT EXISTS audit_log (audit_id VARCHAR NOT NULL, logged_at TIMESTAMP NOT NULL,
        action VARCHAR NOT NULL, actor VARCHAR NOT NULL, details VARCHAR NOT NULL)""",
}

SOURCE_TABLES = {"customers": "source_customers", "orders": "source_orders", "events": "source_events"}


class Store:
    """An open connection to the store file. Use as a context manager."""

    def __init__(self, path: Path, read_only: bool = False, memory_limit: str | None = None):
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise StoreError(f"store {self.path} does not exist yet: run `cdp ingest` first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreError(f"store {self.path} is in use by another process; wait for it to finish") from None
            raise StoreError(f"store {self.path} cannot be opened: {exc}") from None
        except duckdb.Error as exc:
            raise StoreError(f"store {self.path} cannot be opened: {exc}") from None
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
            # Where DuckDB spills what does not fit; read-only connections have none by default.
            spill = self.path.with_name(self.path.name + ".spill")
            self.con.execute(f"SET temp_directory = '{spill}'")
        if not read_only:
            self._create()

    def _create(self) -> None:
        with self.transaction() as con:
            for ddl in DDL.values():
                con.execute(ddl)
            con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        version = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()[0][0]
        if int(version) != SCHEMA_VERSION:
            raise StoreError(f"store {self.path} has schema version {version}; this cdp-ml expects {SCHEMA_VERSION}")

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All-or-nothing: commit when the block ends, roll back if it raises."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def has_table(self, name: str) -> bool:
        row = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchall()[0]
        return bool(row[0])

    def count(self, table: str) -> int:
        return int(self.con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0])

    def frame(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run a query and return its result as a DataFrame (through Arrow: fast and typed)."""
        return self.con.sql(sql, params=params or None).to_arrow_table().to_pandas(types_mapper=_arrow_types)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _arrow_types(arrow_type: pa.DataType):
    """Strings stay Arrow-backed (no Python objects); everything else takes pandas' defaults."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype("pyarrow")
    return None


def register(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    """Expose a DataFrame to SQL as ``name`` (through Arrow, which keeps nullable types)."""
    con.register(name, pa.Table.from_pandas(frame, preserve_index=False))
