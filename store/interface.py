"""What the stages above `profiles` need of a store, whatever engine keeps its tables.

`TableStore` is the contract: reads (a declared table, a query, the store's bookkeeping),
the tables as Ibis tables for the feature definitions, the tables as Parquet files for an
engine that reads files, and all-or-nothing writes through a `TableWriter`. `open_store`
gives the implementation a store's path calls for: today the DuckDB file
(`store.duckdb_store.Store`); a directory of Parquet tables switched by one manifest, for
Spark, can stand behind the same contract.

Queries (`TableStore.frame`) are in DuckDB's SQL dialect, which a Parquet store answers with
DuckDB over its files. Identity resolution, ingest and erasure (`profiles`) are written in
that dialect against the DuckDB store's connection; they are the engine-specific stages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import pandas as pd

from cdp.errors import StoreError

# The bookkeeping key (``meta``) of a store that owes a rebuild without its deleted rows: the
# next writer to open it does the rebuild first (`TableStore.compact`).
COMPACTION_PENDING = "compaction_pending"


@runtime_checkable
class TableWriter(Protocol):
    """Writes inside one transaction: all of them land when it ends, none if it fails."""

    def replace(self, name: str, owner: str, frame: pd.DataFrame) -> None:
        """Replace declared table ``name`` with ``frame``; only its owner (`store.tables`) may."""

    def replace_rows(self, name: str, owner: str, match: dict[str, str], frame: pd.DataFrame) -> int:
        """Delete the rows of fixed-shape table ``name`` whose columns equal ``match``, then add
        the rows of ``frame`` (columns named as the table's); only its owner may. The number
        of rows deleted."""

    def set_meta(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key`` in the store's bookkeeping (``meta``)."""

    def delete_meta(self, key: str) -> None:
        """Remove ``key`` from the store's bookkeeping."""

    def meta(self, key: str) -> str | None:
        """The value kept under ``key``, as this transaction sees it."""

    def latest_unify_run(self) -> str:
        """`TableStore.latest_unify_run`, as this transaction sees it."""

    def erasures(self) -> int:
        """`TableStore.erasures`, as this transaction sees it."""

    def present(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``frame`` whose ``customer_id`` the store still holds: what a stage that
        computed from an earlier read may still write once an erasure has run since."""


@runtime_checkable
class TableStore(Protocol):
    """An open store. Use as a context manager; read-only or writable as it was opened."""

    path: Path

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def close(self) -> None: ...

    def has_table(self, name: str) -> bool: ...

    def count(self, table: str) -> int: ...

    def data_days(self) -> tuple[dt.date, dt.date]:
        """The first and last days with an order or event (what an as-of day is checked against)."""

    def frame(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """A query over the store's tables (DuckDB's SQL dialect) as a DataFrame."""

    def read(self, table: str) -> pd.DataFrame:
        """A whole table."""

    def meta(self, key: str) -> str | None:
        """The bookkeeping value kept under ``key`` (None when there is none)."""

    def latest_unify_run(self) -> str:
        """Which unify run the profiles come from: the number of runs so far and the latest's
        id (``"0:"`` before the first). The count tells apart runs within one second."""

    def erasures(self) -> int:
        """How many erasures (`cdp forget` runs) the store has committed. A stage that reads,
        computes outside the store, then writes compares it before writing: a change means
        a person may have been erased from what it read (`TableWriter.present`)."""

    def last_ingestions(self) -> list[tuple[str, str, str]]:
        """Per source, the file last ingested and its SHA-256: ``(source, file, sha256)``."""

    def ibis_backend(self) -> Any:
        """An Ibis backend whose tables are the store's (what `features` compiles against)."""

    def export_parquet(self, names: Sequence[str], out_dir: Path) -> dict[str, Path]:
        """Tables ``names`` as Parquet files (written to ``out_dir`` where the store is not
        already made of them): the hand-over to an engine that reads files."""

    def writing(self) -> AbstractContextManager[TableWriter]:
        """An all-or-nothing transaction to write through."""

    def compact(self) -> None:
        """Rewrite the store with only its live rows, so deleted ones cannot be read back from its files."""




@runtime_checkable
class SqlStore(TableStore, Protocol):
    """A store the stages written in DuckDB's SQL run on (`profiles`: ingest, unify, access,
    erasure): ``con``, a DuckDB connection over its tables, and `transaction`, all-or-nothing
    writes through it. Both formats are one."""

    @property
    def con(self) -> Any: ...

    def transaction(self) -> AbstractContextManager[Any]: ...


def store_format(path: Path, configured: str | None = None, new: str = "duckdb") -> str:
    """The format of the store at ``path``: what is on disk (a directory of Parquet tables or
    a DuckDB file), else ``configured`` (``[store] format``), else ``new``. A store on disk in
    the other format than cdp.toml names is an error, not a silent switch."""
    path = Path(path)
    found = "parquet" if path.is_dir() else "duckdb" if path.exists() else None
    if found is not None and configured is not None and found != configured:
        raise StoreError(f"store {path} is a {'directory of Parquet tables' if found == 'parquet' else 'DuckDB file'}, "
                         f"but store.format is {configured!r}")
    return found or configured or new


def open_store(path: Path, read_only: bool = False, memory_limit: str | None = None,
               format: str | None = None, new_format: str = "duckdb") -> SqlStore:
    """The store at ``path``: a DuckDB file (`store.duckdb_store.Store`) or a directory of
    Parquet tables switched by one manifest (`store.parquet_store.ParquetStore`), as
    `store_format` finds it."""
    if store_format(path, format, new_format) == "parquet":
        from store.parquet_store import ParquetStore

        return ParquetStore(path, read_only=read_only, memory_limit=memory_limit)
    from store.duckdb_store import Store

    return Store(path, read_only=read_only, memory_limit=memory_limit)


def open_configured(settings: Any, read_only: bool = False) -> SqlStore:
    """`open_store` as ``[store]`` of cdp.toml says (`cdp.config.StoreConfig`: path, memory
    limit, format)."""
    return open_store(settings.path, read_only=read_only, memory_limit=settings.memory_limit, format=settings.format,
                      new_format=settings.new_format)
