"""The store: every table declared once with its owner (`store.tables`), the DuckDB file
behind them (`store.duckdb_store`), and the serving snapshot beside it (`store.snapshot`).

Stages read and write through this package only, so another implementation (Parquet
tables on Spark) can stand behind the same declarations.
"""
