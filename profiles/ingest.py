"""`cdp ingest`: every configured source into the store, typed, with rejects kept.

One run is one transaction: if any source cannot be read (missing file or column),
nothing of the run is written. Re-ingesting a file that has not changed (same bytes,
same mapping) is skipped; a changed file adds new rows and updates changed ones by
source key (``mode = "upsert"``), or replaces the source (``mode = "replace"``).

Records of people erased with `cdp forget` are kept out: a record (accepted or
rejected) carrying any identifier that has a tombstone is dropped before anything of
it is stored, and only counted (``suppressed``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import numpy as np
import pandas as pd

from cdp.config import Config, SourceConfig
from cdp.sources import FIELDS
from profiles.read import read_source
from profiles.tombstones import Tombstones
from profiles.validate import validate_rows
from store.duckdb_store import register
from store.interface import SqlStore, open_configured
from store.tables import SOURCE_TABLES


@dataclass(frozen=True)
class SourceReport:
    """What one source's ingestion did; printed by the CLI, logged in ``ingestions``."""

    source: str
    file: str
    rows_read: int
    accepted: int
    rejected: int
    added: int
    updated: int
    removed: int
    unchanged: int
    skipped: bool
    invalid_emails: int = 0
    invalid_phones: int = 0
    top_reasons: tuple[tuple[str, int], ...] = ()
    suppressed: int = 0  # records of erased people dropped (rows_read = accepted + rejected + suppressed)


def source_digest(source: SourceConfig) -> str:
    """A digest of everything in a source's config that changes how its file is read."""
    fields = {f.name: getattr(source, f.name) for f in dataclasses.fields(source)}
    fields["columns"] = sorted(source.columns.items())
    fields["path"] = str(source.path)
    return hashlib.sha256(repr(sorted(fields.items())).encode()).hexdigest()[:16]


def ingest(
    store: SqlStore,
    config: Config,
    now: datetime,
    run_id: str,
    sources: tuple[str, ...] = (),
    on_source: Callable[[str], None] | None = None,
    tombstone_key: bytes | None = None,
) -> list[SourceReport]:
    """Ingest the named sources (all when empty) in one transaction; return a report per source.

    ``tombstone_key`` is the operator's key (``CDP_TOMBSTONE_KEY``) for tombstones made with
    it; tombstones made with the store's own key need none.
    """
    chosen = [config.source(name) for name in sources] if sources else list(config.sources)
    reports = []
    phone_cache: dict[str, str | None] = {}  # one number written in several sources is checked once
    with store.transaction() as con:
        tombstones = Tombstones.load(con, tombstone_key)
        for source in chosen:
            if on_source:
                on_source(source.name)
            reports.append(_ingest_source(con, source, now, run_id, phone_cache, tombstones))
    return reports


def _ingest_source(con, source: SourceConfig, now: datetime, run_id: str,
                   phone_cache: dict[str, str | None], tombstones: Tombstones | None = None) -> SourceReport:
    table = SOURCE_TABLES[source.kind]
    file = str(source.path)
    config_digest = source_digest(source)
    raw = read_source(source)
    # `ingestions` is only ever appended to, so rowid is the order runs were logged in;
    # ingested_at is not enough: two runs within one second tie.
    last = con.execute(
        "SELECT sha256, config_digest, rows_read, accepted, rejected FROM ingestions "
        "WHERE source = ? AND NOT skipped ORDER BY rowid DESC LIMIT 1", [source.name]).fetchall()
    last = last[0] if last else None
    if last and last[0] == raw.sha256 and last[1] == config_digest:
        report = SourceReport(source.name, file, last[2], last[3], last[4], 0, 0, 0, last[3], skipped=True)
        _log(con, run_id, report, raw.sha256, config_digest, now)
        return report

    checked = validate_rows(source, raw.rows, phone_cache)
    accepted = checked.accepted
    rejects = pd.concat([raw.rejects, checked.rejected], ignore_index=True).sort_values("row_number")
    suppressed = 0
    if tombstones is not None:
        # Before anything is written: an erased person's rows must not land, not even as rejects.
        erased = tombstones.erased_records(accepted)
        erased_rejects = tombstones.erased_rejects(rejects, source)
        suppressed = int(erased.sum()) + int(erased_rejects.sum())
        accepted = accepted.loc[~erased].reset_index(drop=True)
        rejects = rejects.loc[~erased_rejects]

    content = content_columns(source.kind)
    incoming = accepted[["source", "source_key", "row_number"] + content]
    register(con, "incoming", incoming.assign(row_digest=row_digests(incoming[content])))
    con.execute(f"""CREATE OR REPLACE TEMP TABLE incoming_changes AS
        SELECT i.*, e.source_key IS NULL AS is_new
        FROM incoming i
        LEFT JOIN (SELECT source_key, row_digest FROM {table} WHERE source = ?) e
          ON e.source_key = i.source_key
        WHERE e.row_digest IS DISTINCT FROM i.row_digest""", [source.name])
    added, updated = con.execute(
        "SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE NOT is_new) FROM incoming_changes").fetchall()[0]
    removed = 0
    if source.mode == "replace":
        removed = con.execute(
            f"DELETE FROM {table} WHERE source = ? AND source_key NOT IN (SELECT source_key FROM incoming)",
            [source.name]).fetchall()[0][0]
    con.execute(f"DELETE FROM {table} WHERE source = ? AND source_key IN "
                "(SELECT source_key FROM incoming_changes WHERE NOT is_new)", [source.name])
    columns = ["source", "source_key", "row_number", "row_digest"] + content
    col_list = ", ".join(f'"{c}"' for c in columns)
    con.execute(f"INSERT INTO {table} ({col_list}, file, ingested_at) SELECT {col_list}, ?, ? FROM incoming_changes",
                [file, pd.Timestamp(now)])
    con.execute("DROP TABLE incoming_changes")

    # Replacing a source replaces its rejects. An increment keeps the rejects of earlier
    # versions (those rows were never accepted either) unless the same key has now landed.
    if source.mode == "replace":
        con.execute("DELETE FROM rejects WHERE source = ?", [source.name])
    else:
        con.execute("DELETE FROM rejects WHERE source = ? AND (sha256 = ? OR source_key IN "
                    "(SELECT source_key FROM incoming))", [source.name, raw.sha256])
    con.unregister("incoming")
    if len(rejects):
        frame = rejects.assign(source=source.name, file=file, ingested_at=pd.Timestamp(now), sha256=raw.sha256)
        if "source_key" not in frame:
            frame["source_key"] = pd.NA
        register(con, "incoming_rejects", frame[["source", "file", "row_number", "raw", "reason", "ingested_at",
                                                 "sha256", "source_key"]].astype({"source_key": "string"}))
        con.execute("INSERT INTO rejects SELECT * FROM incoming_rejects")
        con.unregister("incoming_rejects")

    invalid_emails = int((accepted["email"].notna() & accepted["email_norm"].isna()).sum())
    invalid_phones = int((accepted["phone"].notna() & accepted["phone_norm"].isna()).sum())
    top = top_reasons(rejects["reason"])
    report = SourceReport(
        source=source.name, file=file, rows_read=raw.rows_read, accepted=len(accepted),
        rejected=len(rejects), added=int(added), updated=int(updated), removed=int(removed),
        unchanged=len(accepted) - int(added) - int(updated), skipped=False,
        invalid_emails=invalid_emails, invalid_phones=invalid_phones,
        top_reasons=top, suppressed=suppressed,
    )
    _log(con, run_id, report, raw.sha256, config_digest, now)
    return report


def content_columns(kind: str) -> list[str]:
    """The typed columns of a source record of ``kind`` that its digest covers (all but the keys)."""
    identity = ["customer_key", "key_namespace", "email", "email_norm", "phone", "phone_norm", "external_id"]
    return identity + [f for f in FIELDS[kind] if f not in ("source_key",) + tuple(identity)]


def row_digests(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit digest of each row's typed values, the same on every engine: a file re-saved
    with other line endings or number formatting is unchanged; an edited value is an update."""
    return pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)


def first_reasons(reasons: pd.Series) -> pd.Series:
    """Each reject's first reason with the value quoted in it left out: what rows fail alike share."""
    return reasons.str.split("; ").str[0].str.replace(r"(\)|is) '[^']*'", r"\1 '…'", regex=True)


def top_reasons(reasons: pd.Series, n: int = 3) -> tuple[tuple[str, int], ...]:
    """The ``n`` commonest `first_reasons`, most rows first, ties in text order."""
    counts = first_reasons(reasons).value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))[:n]
    return tuple((str(k), int(v)) for k, v in ranked)


def _log(con, run_id: str, r: SourceReport, sha: str, config_digest: str, now: datetime) -> None:
    con.execute(
        "INSERT INTO ingestions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, r.source, r.file, sha, config_digest, r.rows_read, r.accepted, r.rejected,
         r.added, r.updated, r.removed, r.unchanged, r.skipped, now],
    )


def ingest_on_engine(store: SqlStore, config: Config, now: datetime, run_id: str, sources: tuple[str, ...] = (),
                     on_source: Callable[[str], None] | None = None,
                     tombstone_key: bytes | None = None) -> list[SourceReport]:
    """`ingest` where ``[engine]`` says: validation on Spark's executors (`profiles.ingest_spark`)
    for a Parquet store with ``kind = "spark"``, else in this process and the store's DuckDB."""
    from store.parquet_store import ParquetStore

    if config.engine.kind == "spark" and isinstance(store, ParquetStore):
        from profiles.ingest_spark import ingest_on_spark
        from store.spark import engine_session

        with engine_session(config.engine, app_name="cdp-ml ingest") as (session, work):
            return ingest_on_spark(store, config, session, work, now=now, run_id=run_id, sources=sources,
                                   on_source=on_source, tombstone_key=tombstone_key)
    return ingest(store, config, now=now, run_id=run_id, sources=sources, on_source=on_source,
                  tombstone_key=tombstone_key)


def ingest_store(config: Config, now: datetime, run_id: str, sources: tuple[str, ...] = (),
                 tombstone_key: bytes | None = None) -> list[SourceReport]:
    """`ingest_on_engine` on the store ``config`` describes, opened (and closed) here: what a
    notebook or a scheduled job calls."""
    with open_configured(config.store) as store:
        return ingest_on_engine(store, config, now=now, run_id=run_id, sources=sources, tombstone_key=tombstone_key)
