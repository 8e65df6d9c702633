"""The store: every table declared once with its owner (`store.tables`), the contract every
engine's store keeps (`store.interface.TableStore`, opened with `store.interface.open_store`),
the DuckDB file behind it today (`store.duckdb_store`), and the serving snapshot beside it
(`store.snapshot`).

Stages above `profiles` read and write through the contract only, so another
implementation (Parquet tables on Spark) can stand behind the same declarations.
"""
