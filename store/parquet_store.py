"""The store as a directory of Parquet tables, versioned as a whole by one manifest.

What a Spark cluster reads and writes (every executor reads files, none can share a DuckDB
file), and what DuckDB reads too. The layout::

    <store>/manifest.json              which version of every table is the store now
    <store>/tables/<table>/v<N>/*.parquet   one version of one table (one file or Spark's parts)

A run never changes a version in place. It writes the tables it changes as new versions,
then replaces ``manifest.json`` in one rename: a reader opens the manifest once and sees
every table of one run, and a run that fails or is killed before the rename leaves the
store as it was. The versions no manifest names any more are deleted right after the
rename (and by the next writer, after a crash), so a person erased by `cdp forget` cannot
be read back from an older version.

The stages written in DuckDB's SQL (ingest, unify, erasure, access) run on it unchanged:
``con`` is an in-memory DuckDB connection holding the tables, and `transaction` writes the
tables the block changed when it ends. Reads see the tables as views over the files, so
opening a store to read costs nothing; a writer that asks for ``con`` loads the tables
into memory first (the tables those stages rewrite). Stages that write whole tables
(`writing`: features, scores, marketing) write their files directly, and a Spark stage
writes its version directory itself (`ParquetWriter.stage`).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cdp.errors import StoreError
from store.duckdb_store import SCHEMA_VERSION, DuckDBQueries, DuckDBWriter, WriterLock, fsync, register
from store.interface import COMPACTION_PENDING
from store.tables import ADDED_COLUMNS, TABLES, table

MANIFEST = "manifest.json"
FORMAT = 1
_TABLES_DIR = "tables"
# Small tables read with ``rowid`` (the order rows were appended): held in memory, not as views.
_BOOKKEEPING = tuple(spec.name for spec in TABLES.values() if spec.ddl is not None and not spec.personal)


class Manifest:
    """Which version directory of each table is the store: ``tables`` maps a name to its
    directory relative to the store, ``version`` counts switches."""

    def __init__(self, version: int, tables: dict[str, str]):
        self.version = version
        self.tables = dict(tables)

    @classmethod
    def read(cls, root: Path) -> Manifest | None:
        path = root / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(f"store {root}: {MANIFEST} cannot be read ({type(exc).__name__})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("tables"), dict):
            raise StoreError(f"store {root}: {MANIFEST} is not a cdp-ml manifest of format {FORMAT}")
        return cls(int(data["version"]), {str(k): str(v) for k, v in data["tables"].items()})

    def write(self, root: Path) -> None:
        """Replace ``root``'s manifest with this one in one rename, durably."""
        staged = root / f".{MANIFEST}.{os.getpid()}-{uuid.uuid4().hex[:8]}"
        payload = json.dumps({"format": FORMAT, "version": self.version, "tables": dict(sorted(self.tables.items()))},
                             indent=1)
        with open(staged, "w", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staged, root / MANIFEST)
        fsync(root)

    def files(self, root: Path, name: str) -> list[str]:
        """The Parquet files of ``name``'s version, in order."""
        return sorted(str(p) for p in (root / self.tables[name]).glob("*.parquet"))


class ParquetStore(DuckDBQueries):
    """The store as a directory of Parquet tables: a `store.interface.TableStore`, and, like
    `store.duckdb_store.Store`, ``con`` and `transaction` for the stages written in SQL."""

    def __init__(self, path: Path, read_only: bool = False, memory_limit: str | None = None):
        self.path = Path(path)
        self.read_only = read_only
        self.memory_limit = memory_limit
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"store {self.path} is a file, not a directory of Parquet tables "
                             "(store.format = \"duckdb\" reads it)")
        if read_only and Manifest.read(self.path) is None:
            raise StoreError(f"store {self.path} does not exist yet: run `cdp ingest` first")
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = None if read_only else WriterLock.take(self.path)
        # Readers hold this shared for as long as they are open: no version they read is deleted under them.
        self._reading = _ReadersLock(self.path).share() if read_only else None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._loaded = False
        self._fingerprints: dict[str, tuple[int, int, str]] = {}
        try:
            manifest = Manifest.read(self.path)
            if manifest is None:
                manifest = self._create()
            self.manifest = manifest
            self._open_views()
            if not read_only:
                self._tidy()
        except BaseException:
            self.close()
            raise

    # -- the connection -------------------------------------------------------------------

    def _connect(self) -> duckdb.DuckDBPyConnection:
        # Spilled rows go inside the store, where `compact` deletes them (DuckDB's default is ./.tmp).
        settings: dict[str, str | bool | int | float | list[str]] = {"temp_directory": str(self._spill_dir())}
        if self.memory_limit:
            settings["memory_limit"] = self.memory_limit
        return duckdb.connect(":memory:", config=settings)

    def _spill_dir(self) -> Path:
        return self.path / ".spill"

    def _open_views(self) -> None:
        self._con = self._connect()
        for name in self.manifest.tables:
            self._view(name)
        for name in _BOOKKEEPING:
            if name in self.manifest.tables:
                self._load(name)

    def _view(self, name: str) -> None:
        files = self.manifest.files(self.path, name)
        assert self._con is not None
        self._drop(name)
        self._con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM read_parquet({_sql_list(files)})')

    def _drop(self, name: str) -> None:
        """Forget ``name``, a view over its files or a table loaded from them."""
        assert self._con is not None
        kinds = self._con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = ? "
                                  "AND table_schema = 'main'", [name]).fetchall()
        for (kind,) in kinds:
            self._con.execute(f'DROP {"VIEW" if kind == "VIEW" else "TABLE"} "{name}"')

    def _load(self, name: str) -> None:
        """``name`` as a table in memory (declared DDL and constraints kept), its rows from its files."""
        assert self._con is not None
        files = self.manifest.files(self.path, name)
        self._drop(name)
        spec = TABLES.get(name)
        if spec is not None and spec.ddl is not None:
            self._con.execute(spec.ddl)
            self._con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM read_parquet({_sql_list(files)})')
        else:
            self._con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM read_parquet({_sql_list(files)})')

    def reads(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise StoreError(f"store {self.path} is closed")
        return self._con

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection over the tables. A writer's holds them in memory (loaded on
        first use), so the SQL stages can update them inside `transaction`."""
        if self._con is None:
            raise StoreError(f"store {self.path} is closed")
        if not self.read_only and not self._loaded:
            self._load_all()
        return self._con

    def _load_all(self) -> None:
        for name in self.manifest.tables:
            if name not in _BOOKKEEPING:
                self._load(name)
        self._loaded = True
        self._fingerprints = self._fingerprint_all()
        for name, column, kind in ADDED_COLUMNS:  # after the fingerprints: a table that gains one is written
            assert self._con is not None
            self._con.execute(f'ALTER TABLE "{name}" ADD COLUMN IF NOT EXISTS "{column}" {kind}')

    def _fingerprint_all(self) -> dict[str, tuple[int, int, str]]:
        assert self._con is not None
        names = [row[0] for row in self._con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary AND schema_name = 'main' "
            "AND database_name = current_database()").fetchall()]
        return {name: _fingerprint(self._con, name) for name in names}

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All-or-nothing: when the block ends, the tables it changed are written as new
        versions and the manifest switched to them; if it raises, nothing is written."""
        if self.read_only:
            raise StoreError(f"store {self.path} is open read-only")
        con = self.con
        con.execute("BEGIN TRANSACTION")
        staged: list[Path] = []
        try:
            yield con
            after = self._fingerprint_all()
            changed = [name for name, fp in after.items() if self._fingerprints.get(name) != fp]
            dropped = [name for name in self._fingerprints if name not in after]
            tables = dict(self.manifest.tables)
            for name in dropped:
                tables.pop(name, None)
            for name in changed:
                directory = self._new_version_dir(name)
                staged.append(directory)
                con.execute(f'COPY (SELECT * FROM "{name}") TO \'{_sql_text(str(directory / "part-0.parquet"))}\' '
                            "(FORMAT parquet)")
                tables[name] = str(directory.relative_to(self.path))
        except BaseException:
            con.execute("ROLLBACK")
            for directory in staged:
                shutil.rmtree(directory, ignore_errors=True)
            raise
        con.execute("COMMIT")
        if changed or dropped:
            self._switch(Manifest(self.manifest.version + 1, tables), staged)
        self._fingerprints = after

    @contextmanager
    def writing(self) -> Iterator[ParquetWriter]:
        """Whole tables and rows written as new versions, switched in together when the block ends."""
        if self.read_only:
            raise StoreError(f"store {self.path} is open read-only")
        writer = ParquetWriter(self)
        try:
            yield writer
        except BaseException:
            writer.discard()
            raise
        writer.commit()

    def _new_version_dir(self, name: str) -> Path:
        directory = self.path / _TABLES_DIR / name / f"v{self.manifest.version + 1}-{uuid.uuid4().hex[:8]}"
        directory.mkdir(parents=True)
        return directory

    def _switch(self, manifest: Manifest, staged: Sequence[Path], staged_by_writer: bool = False) -> None:
        for directory in staged:  # the files, their folder and its entry: all on disk before the manifest names them
            for file in directory.iterdir():
                if file.is_file():
                    fsync(file)
            fsync(directory)
            fsync(directory.parent)
        manifest.write(self.path)
        in_memory = self._loaded
        self.manifest = manifest
        if not in_memory or staged_by_writer:
            # Tables loaded for the SQL stages are older than what a writer just switched in:
            # back to views of the new version (the next use of ``con`` loads them again).
            self._loaded = False
            self._fingerprints = {}
            for name in manifest.tables:
                if name in _BOOKKEEPING:
                    self._load(name)
                else:
                    self._view(name)
        self.purge(wait=False)

    def purge(self, wait: bool = True) -> list[Path] | None:
        """Delete every table version the manifest does not name, and what a killed run left
        (staged manifests): the files an erased person could be read back from.

        Stores open for reading may still read older versions: ``wait`` waits for them to
        close (what an erasure does); otherwise the versions stay for a later writer and
        None is returned."""
        readers = _ReadersLock(self.path)
        if not readers.exclude(wait):
            return None
        try:
            return self._purge(strict=wait)
        finally:
            readers.release()

    def _purge(self, strict: bool) -> list[Path]:
        """Delete the unnamed versions; ``strict`` (an erasure's compaction): a version that
        cannot be deleted is an error, not a silent leftover."""
        removed: list[Path] = []
        kept = {(self.path / rel).resolve() for rel in self.manifest.tables.values()}
        root = self.path / _TABLES_DIR
        if root.exists():
            for table_dir in root.iterdir():
                for version in table_dir.iterdir() if table_dir.is_dir() else ():
                    if version.resolve() not in kept:
                        shutil.rmtree(version, ignore_errors=not strict)
                        if version.exists():
                            raise StoreError(f"store {self.path}: an older version of table {table_dir.name} could "
                                             "not be deleted; check its permissions and run `cdp forget` again")
                        removed.append(version)
                if table_dir.is_dir() and not any(table_dir.iterdir()):
                    table_dir.rmdir()
        for leftover in self.path.glob(f".{MANIFEST}.*"):
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
        return removed

    def _create(self) -> Manifest:
        """A new store: every fixed-shape table, empty, and the schema version."""
        con = duckdb.connect(":memory:")
        try:
            tables = {}
            for spec in TABLES.values():
                if spec.ddl is None:
                    continue
                con.execute(spec.ddl)
                if spec.name == "meta":
                    con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
                directory = self.path / _TABLES_DIR / spec.name / f"v1-{uuid.uuid4().hex[:8]}"
                directory.mkdir(parents=True)
                target = _sql_text(str(directory / "part-0.parquet"))
                con.execute(f'COPY "{spec.name}" TO \'{target}\' (FORMAT parquet)')
                tables[spec.name] = str(directory.relative_to(self.path))
        finally:
            con.close()
        manifest = Manifest(1, tables)
        manifest.write(self.path)
        return manifest

    def _tidy(self) -> None:
        """What a writer does first: delete what killed runs left, check the schema version,
        and finish a compaction a crash left owing."""
        self.purge(wait=False)
        shutil.rmtree(self._spill_dir(), ignore_errors=True)
        version = self.meta("schema_version")
        if version is not None and int(version) != SCHEMA_VERSION:
            raise StoreError(f"store {self.path} has schema version {version}; this cdp-ml expects {SCHEMA_VERSION}")
        if self.meta(COMPACTION_PENDING) is not None:
            self.compact()

    def compact(self) -> None:
        """Leave only the live version of every table on disk, and clear the mark an erasure
        leaves until that is done (`COMPACTION_PENDING`)."""
        if self.read_only:
            raise StoreError("a store opened read-only cannot be compacted")
        self.purge()
        shutil.rmtree(self._spill_dir(), ignore_errors=True)
        if self.meta(COMPACTION_PENDING) is not None:
            with self.writing() as writer:
                writer.delete_meta(COMPACTION_PENDING)

    # -- reads the interface asks for beyond `DuckDBQueries` ------------------------------

    def has_table(self, name: str) -> bool:
        return name in self.manifest.tables or super().has_table(name)

    def export_parquet(self, names: Sequence[str], out_dir: Path) -> dict[str, Path]:
        """The tables' own version directories: nothing is copied (``out_dir`` is unused)."""
        missing = [name for name in names if name not in self.manifest.tables]
        if missing:
            raise StoreError(f"store {self.path} has no table {missing[0]!r} yet")
        return {name: self.path / self.manifest.tables[name] for name in names}

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        shutil.rmtree(self._spill_dir(), ignore_errors=True) if not self.read_only else None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._reading is not None:
            self._reading.release()
            self._reading = None

    def __enter__(self) -> ParquetStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ParquetWriter:
    """A `store.interface.TableWriter` on a Parquet store: each table written goes to a new
    version directory; `commit` switches the manifest to all of them at once."""

    def __init__(self, store: ParquetStore):
        self.store = store
        self.tables = dict(store.manifest.tables)
        self.staged: list[Path] = []
        self._meta: dict[str, str | None] = {}

    def stage(self, name: str, owner: str) -> Path:
        """An empty version directory for ``name`` that its ``owner`` (a Spark job) writes
        Parquet files into; it becomes the table at `commit`."""
        table(name, owner)
        directory = self.store._new_version_dir(name)
        self.staged.append(directory)
        self.tables[name] = str(directory.relative_to(self.store.path))
        return directory

    def replace(self, name: str, owner: str, frame: pd.DataFrame) -> None:
        self._write(self.stage(name, owner), pa.Table.from_pandas(frame, preserve_index=False))

    def replace_rows(self, name: str, owner: str, match: dict[str, str], frame: pd.DataFrame) -> int:
        spec = table(name, owner)
        if spec.ddl is None:
            raise StoreError(f"table {name!r} is written whole; it has no rows to delete by value")
        con = self.store.reads()
        where = " AND ".join(f'"{column}" IS NOT DISTINCT FROM ?' for column in match) or "TRUE"
        current = f"read_parquet({_sql_list(self._files(name))})"
        found = con.execute(f"SELECT count(*) FROM {current} WHERE {where}", list(match.values())).fetchall()
        deleted = int(found[0][0])
        kept = con.sql(f"SELECT * FROM {current} WHERE NOT ({where})", params=list(match.values())).to_arrow_table()
        if len(frame):
            view = f"cdp_rows_{name}"
            register(con, view, frame)
            try:
                added = con.sql(f"SELECT * FROM (SELECT * FROM {current} LIMIT 0) UNION ALL BY NAME "
                                f"SELECT * FROM {view}").to_arrow_table().select(kept.column_names)
            finally:
                con.unregister(view)
            kept = pa.concat_tables([kept, added.cast(kept.schema)])
        self._write(self.stage(name, owner), kept)
        return deleted

    def set_meta(self, key: str, value: str) -> None:
        self._meta[key] = value

    def delete_meta(self, key: str) -> None:
        self._meta[key] = None

    def meta(self, key: str) -> str | None:
        return self._meta[key] if key in self._meta else self.store.meta(key)

    def latest_unify_run(self) -> str:
        return self.store.latest_unify_run()

    def erasures(self) -> int:
        return self.store.erasures()

    def present(self, frame: pd.DataFrame) -> pd.DataFrame:
        return DuckDBWriter(self.store.reads()).present(frame)

    def _files(self, name: str) -> list[str]:
        return sorted(str(p) for p in (self.store.path / self.tables[name]).glob("*.parquet"))

    @staticmethod
    def _write(directory: Path, data: pa.Table) -> None:
        pq.write_table(data, directory / "part-0.parquet")

    def commit(self) -> None:
        if self._meta:
            con = self.store.reads()
            rows = dict(con.execute("SELECT key, value FROM meta").fetchall())
            for key, value in self._meta.items():
                if value is None:
                    rows.pop(key, None)
                else:
                    rows[key] = value
            directory = self.store._new_version_dir("meta")
            self.staged.append(directory)
            self.tables["meta"] = str(directory.relative_to(self.store.path))
            self._write(directory, pa.table({"key": pa.array(list(rows), pa.string()),
                                             "value": pa.array(list(rows.values()), pa.string())}))
        if self.staged:
            self.store._switch(Manifest(self.store.manifest.version + 1, self.tables), self.staged,
                               staged_by_writer=True)

    def discard(self) -> None:
        for directory in self.staged:
            shutil.rmtree(directory, ignore_errors=True)


class _ReadersLock:
    """``<store>/.readers``: shared by every open reader, exclusive while old versions are deleted."""

    def __init__(self, root: Path):
        self.handle = open(root / ".readers", "a+")

    def share(self) -> _ReadersLock:
        fcntl.flock(self.handle, fcntl.LOCK_SH)
        return self

    def exclude(self, wait: bool) -> bool:
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            self.handle.close()
            return False
        return True

    def release(self) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def _fingerprint(con: duckdb.DuckDBPyConnection, name: str) -> tuple[int, int, str]:
    """Rows, an order-free sum of row hashes and the columns with their types: what tells a
    table the block changed (values, rows or shape)."""
    count, total = con.execute(f'SELECT count(*), sum(hash(t))::HUGEINT FROM "{name}" t').fetchall()[0]
    shape = con.execute("SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY column_index) "
                        "FROM duckdb_columns() WHERE table_name = ? AND schema_name = 'main' AND NOT internal",
                        [name]).fetchall()[0][0]
    return int(count), int(total or 0), str(shape)


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def _sql_list(files: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{_sql_text(f)}'" for f in files) + "]"
