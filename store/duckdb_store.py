"""The embedded DuckDB store: one file, every table declared in `store.tables`.

Every stage writes inside one transaction (`Store.transaction`): a run that fails or is
killed leaves the store as the previous run left it, because DuckDB discards
uncommitted work on the next open. Tables of fixed shape are created here when the store
opens for writing; the others are written whole by their owners (`store.tables.replace_table`).
"""

from __future__ import annotations

import datetime as dt
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from cdp.errors import StoreError
from store.interface import COMPACTION_PENDING
from store.locks import FileLock, LockHeld
from store.tables import ADDED_COLUMNS, TABLES, append_rows, delete_rows, replace_table

SCHEMA_VERSION = 1

class DuckDBQueries(ABC):
    """The reads of a `store.interface.TableStore` answered by DuckDB SQL over the store's
    tables, whether they live in a DuckDB file or are views over Parquet files."""

    path: Path

    @abstractmethod
    def reads(self) -> duckdb.DuckDBPyConnection:
        """The connection reads go through (a Parquet store's: views over its files, nothing loaded)."""

    def has_table(self, name: str) -> bool:
        row = self.reads().execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchall()[0]
        return bool(row[0])

    def count(self, table: str) -> int:
        return int(self.reads().execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0])

    def data_days(self) -> tuple["dt.date", "dt.date"]:
        """The first and last days with an order or event (what an as-of day is checked against)."""
        if not self.has_table("orders"):
            raise StoreError(f"store {self.path} has no unified profiles yet: run `cdp ingest` and `cdp unify` first")
        con = self.reads()
        row = con.sql("SELECT min(f), max(d) FROM (SELECT min(timestamp)::DATE AS f, max(timestamp)::DATE AS d "
                           "FROM orders UNION ALL SELECT min(timestamp)::DATE, max(timestamp)::DATE FROM events)"
                           ).fetchall()
        if not row or row[0][1] is None:
            raise StoreError("the store has no orders or events yet: run `cdp ingest` and `cdp unify` first")
        return row[0][0], row[0][1]

    def frame(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run a query and return its result as a DataFrame (through Arrow: fast and typed)."""
        return self.reads().sql(sql, params=params or None).to_arrow_table().to_pandas(types_mapper=_arrow_types)

    def read(self, table: str) -> pd.DataFrame:
        """A whole table, its values as DuckDB gives them to Arrow (nullable types kept)."""
        return self.reads().sql(f'SELECT * FROM "{table}"').to_arrow_table().to_pandas()

    def meta(self, key: str) -> str | None:
        return _meta(self.reads(), key)

    def latest_unify_run(self) -> str:
        return _latest_unify_run(self.reads())

    def last_ingestions(self) -> list[tuple[str, str, str]]:
        if not self.has_table("ingestions"):
            return []
        rows = self.reads().sql("SELECT source, file, sha256 FROM ingestions QUALIFY row_number() OVER "
                            "(PARTITION BY source ORDER BY ingested_at DESC) = 1 ORDER BY source").fetchall()
        return [(str(source), str(file), str(sha)) for source, file, sha in rows]

    def ibis_backend(self):
        """Ibis on this connection: the feature queries run inside the store's own DuckDB."""
        import ibis

        from store.ibis_compat import ensure_duckdb_compat

        ensure_duckdb_compat()
        return ibis.duckdb.from_connection(self.reads())

    def erasures(self) -> int:
        return _erasures(self.reads())


class Store(DuckDBQueries):
    """The store as one DuckDB file: a `store.interface.TableStore`. Use as a context manager.

    Beyond the interface, ``con`` and `transaction` give the DuckDB connection itself, for
    the stages written in DuckDB's SQL (`profiles`: ingest, unify, access, erasure)."""

    def __init__(self, path: Path, read_only: bool = False, memory_limit: str | None = None):
        self.path = Path(path)
        self.read_only = read_only
        self.memory_limit = memory_limit
        if read_only and not self.path.exists():
            raise StoreError(f"store {self.path} does not exist yet: run `cdp ingest` first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Writers also hold a lock file of their own: DuckDB's lock is let go while `compact`
        # swaps the file, and no other writer may slip in between.
        self._lock = None if read_only else WriterLock.take(self.path)
        try:
            self.con = self._connect()
            if not read_only:
                self._create()
                self._tidy()
        except BaseException:
            self.close()
            raise

    def _connect(self) -> duckdb.DuckDBPyConnection:
        settings: dict[str, str | bool | int | float | list[str]] = {}
        if self.memory_limit:
            # And where DuckDB spills what does not fit (read-only connections have none by default).
            settings = {"memory_limit": self.memory_limit,
                        "temp_directory": str(self.path.with_name(self.path.name + ".spill"))}
        try:
            return duckdb.connect(str(self.path), read_only=self.read_only, config=settings)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreError(f"store {self.path} is in use by another process; wait for it to finish") from None
            raise StoreError(f"store {self.path} cannot be opened: {type(exc).__name__}") from None
        except duckdb.Error as exc:
            raise StoreError(f"store {self.path} cannot be opened: {type(exc).__name__}") from None

    def _create(self) -> None:
        with self.transaction() as con:
            for spec in TABLES.values():
                if spec.ddl is not None:
                    con.execute(spec.ddl)
            for name, column, kind in ADDED_COLUMNS:  # a store made before the column was declared
                con.execute(f'ALTER TABLE "{name}" ADD COLUMN IF NOT EXISTS "{column}" {kind}')
            con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        version = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()[0][0]
        if int(version) != SCHEMA_VERSION:
            raise StoreError(f"store {self.path} has schema version {version}; this cdp-ml expects {SCHEMA_VERSION}")

    def reads(self) -> duckdb.DuckDBPyConnection:
        return self.con

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

    def export_parquet(self, names: Sequence[str], out_dir: Path) -> dict[str, Path]:
        """Each table of ``names`` copied to ``out_dir/<name>.parquet``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in names:
            path = out_dir / f"{name}.parquet"
            self.con.table(name).write_parquet(str(path))
            paths[name] = path
        return paths

    @contextmanager
    def writing(self) -> Iterator["DuckDBWriter"]:
        """`transaction`, written through the engine-neutral `store.interface.TableWriter`."""
        with self.transaction() as con:
            yield DuckDBWriter(con)

    def compact(self) -> None:
        """Rewrite the file with only its live rows, then put it in place of the old one.

        Deleted rows stay in a DuckDB file's free blocks (and in its write-ahead log) until
        they happen to be overwritten: an erased person's email could be read back from the
        bytes. The live rows are copied into a new file beside it, which replaces the old
        one in one rename; a crash before the rename leaves the old file, still marked as
        owing a compaction (`COMPACTION_PENDING`), and the next writer compacts it first.
        """
        if self.read_only:
            raise StoreError("a store opened read-only cannot be compacted")
        fresh = self.path.with_name(f".{self.path.name}.compacting-{os.getpid()}")
        fresh.unlink(missing_ok=True)
        database = self.con.execute("SELECT current_database()").fetchall()[0][0]
        self.con.execute("ATTACH ? AS cdp_compacted", [str(fresh)])
        try:
            self.con.execute(f"COPY FROM DATABASE {_identifier(database)} TO cdp_compacted")
            self.con.execute("DELETE FROM cdp_compacted.meta WHERE key = ?", [COMPACTION_PENDING])
        finally:
            self.con.execute("DETACH cdp_compacted")
        self.con.close()
        try:
            fsync(fresh)
            os.replace(fresh, self.path)
            fsync(self.path.parent)
            for leftover in (self.path.with_name(self.path.name + ".wal"),):
                leftover.unlink(missing_ok=True)
        finally:
            fresh.unlink(missing_ok=True)
            self.con = self._connect()

    def _tidy(self) -> None:
        """What a writer does first: finish a compaction a crash left owing, and remove the
        files killed writers left beside the store (a half-written snapshot or compaction
        may hold rows an erasure has removed since)."""
        for leftover in self.path.parent.glob(f".{self.path.name}.compacting-*"):
            leftover.unlink(missing_ok=True)
        for leftover in staged_files(self.path):
            leftover.unlink(missing_ok=True)
        if _meta(self.con, COMPACTION_PENDING) is not None:
            self.compact()

    def close(self) -> None:
        con = self.__dict__.get("con")
        if con is not None:
            con.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class DuckDBWriter:
    """A `store.interface.TableWriter` on a DuckDB connection inside a transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def replace(self, name: str, owner: str, frame: pd.DataFrame) -> None:
        view = f"cdp_replacing_{name}"
        register(self.con, view, frame)
        try:
            replace_table(self.con, name, owner, f"SELECT * FROM {view}")
        finally:
            self.con.unregister(view)

    def replace_rows(self, name: str, owner: str, match: dict[str, str], frame: pd.DataFrame) -> int:
        deleted = delete_rows(self.con, name, owner, match)
        if len(frame):
            view = f"cdp_rows_{name}"
            register(self.con, view, frame)
            try:
                append_rows(self.con, name, owner, view)
            finally:
                self.con.unregister(view)
        return deleted

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    def delete_meta(self, key: str) -> None:
        self.con.execute("DELETE FROM meta WHERE key = ?", [key])

    def meta(self, key: str) -> str | None:
        return _meta(self.con, key)

    def latest_unify_run(self) -> str:
        return _latest_unify_run(self.con)

    def erasures(self) -> int:
        return _erasures(self.con)

    def present(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``frame`` whose ``customer_id`` the store still holds."""
        view = "cdp_present_ids"
        register(self.con, view, pd.DataFrame({"customer_id": frame["customer_id"].astype("string").unique()}))
        try:
            held = {row[0] for row in self.con.execute(
                f"SELECT customer_id FROM {view} WHERE customer_id IN (SELECT customer_id FROM customers)").fetchall()}
        finally:
            self.con.unregister(view)
        return frame[frame["customer_id"].astype("string").isin(held).to_numpy()]


ERASURES = "erasure_generation"


class WriterLock:
    """The lock on ``<store>.lock`` held by the one process writing the store (`store.locks.FileLock`)."""

    @staticmethod
    def take(store_path: Path) -> FileLock:
        try:
            return FileLock.take(store_path.with_name(store_path.name + ".lock"))
        except LockHeld:
            raise StoreError(f"store {store_path} is in use by another process; wait for it to finish") from None


def staged_files(store_path: Path) -> list[Path]:
    """Files a writer stages beside the store before renaming them into place (see
    `store.snapshot.ServingSnapshot`): ``.<name>.<why>-<pid>``."""
    from store.snapshot import SNAPSHOT_FILE

    return sorted(store_path.parent.glob(f".{SNAPSHOT_FILE}.*-*"))


def _erasures(con: duckdb.DuckDBPyConnection) -> int:
    value = _meta(con, ERASURES)
    return int(value) if value is not None else 0


def _identifier(name: str) -> str:
    """A SQL identifier, quoted (a database is named after its file, which may hold any character)."""
    return '"' + name.replace('"', '""') + '"'


def fsync(path: Path) -> None:
    """Make ``path`` (a file, or a folder's entries) durable on disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _meta(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    rows = con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
    return str(rows[0][0]) if rows else None


def _latest_unify_run(con: duckdb.DuckDBPyConnection) -> str:
    count, run = con.execute("SELECT count(*), arg_max(run_id, (ran_at, run_id)) FROM unify_runs").fetchall()[0]
    return f"{count}:{run or ''}"


def _arrow_types(arrow_type: pa.DataType):
    """Strings stay Arrow-backed (no Python objects); everything else takes pandas' defaults."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype("pyarrow")
    return None


def register(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    """Expose a DataFrame to SQL as ``name`` (through Arrow, which keeps nullable types)."""
    con.register(name, pa.Table.from_pandas(frame, preserve_index=False))
