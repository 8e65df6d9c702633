"""A bridge between ibis-framework 12.0.0 and duckdb 2.0.

duckdb 2.0 dropped ``fetch_arrow_table`` and ``fetch_record_batch`` from connection
results; ibis 12.0.0 still calls them (fixed upstream in ibis PR #12001, not yet
released). `ensure_duckdb_compat` puts the two names back as thin aliases of their
duckdb 2.0 replacements. Remove this module once an ibis release carries the fix.
"""

from __future__ import annotations

import warnings

import duckdb


def ensure_duckdb_compat() -> None:
    """Alias the duckdb 1.x result methods ibis 12.0.0 calls (idempotent)."""
    connection = duckdb.DuckDBPyConnection
    if hasattr(connection, "fetch_arrow_table"):
        return

    def fetch_arrow_table(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # duckdb's "extra copy" note
            return self.to_arrow_table()

    def fetch_record_batch(self, rows_per_batch: int = 1_000_000):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return self.to_arrow_reader(rows_per_batch)

    connection.fetch_arrow_table = fetch_arrow_table  # type: ignore[attr-defined]
    connection.fetch_record_batch = fetch_record_batch  # type: ignore[attr-defined]
