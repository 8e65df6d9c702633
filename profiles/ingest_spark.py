"""`cdp ingest` on Spark: the rules of `profiles.ingest`, with validation on the executors.

Each source file is parsed on the driver (`profiles.read.read_source`: one file is one
stream of bytes, and its malformed lines are found there), handed to the cluster as Parquet,
and spread over partitions by source key, so every row of one key lands in one partition.
Each partition then runs `profiles.validate.validate_rows` itself (types, normalized emails
and phones with ``phonenumbers``, the "already used by row N" check, every reason) and the
tombstone check, in ``mapInArrow``: a row is accepted or rejected with the same reason as on
DuckDB. The merge with what the store holds (new, updated, unchanged, removed by key, by
`profiles.ingest.row_digests`) and the rejects' bookkeeping are DataFrame operations. All
sources of a run land as one new version of the store, or none does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cdp.config import Config, SourceConfig
from profiles.ingest import SourceReport, content_columns, first_reasons, row_digests, source_digest
from profiles.read import ROW, read_source
from profiles.tombstones import Tombstones
from profiles.validate import derived_keys, validate_rows
from store.parquet_store import ParquetStore
from store.tables import SOURCE_TABLES

_KEY = "_cdp_key"  # the stripped source key each row is partitioned by
_OUTCOME = "_cdp_outcome"
_ROWS_PER_PARTITION = 200_000


def ingest_on_spark(store: ParquetStore, config: Config, session: Any, work: Path, now: datetime, run_id: str,
                    sources: tuple[str, ...] = (), on_source: Callable[[str], None] | None = None,
                    tombstone_key: bytes | None = None) -> list[SourceReport]:
    """Ingest the named sources (all when empty) into ``store`` on ``session``; one new store
    version for the run. ``work`` is a scratch folder every executor reaches."""
    chosen = [config.source(name) for name in sources] if sources else list(config.sources)
    tombstones = Tombstones.load(store.reads(), tombstone_key)
    names = list(SOURCE_TABLES.values()) + ["rejects"]
    tables = {name: session.read.parquet(str(path)) for name, path in store.export_parquet(names, work).items()}
    changed: set[str] = set()
    logged: list[tuple] = []
    reports = []
    for number, source in enumerate(chosen):
        if on_source:
            on_source(source.name)
        report, sha, digest = _ingest_source(session, store, tables, changed, source, work / f"source-{number}", now,
                                             tombstones)
        reports.append(report)
        logged.append((run_id, report.source, report.file, sha, digest, report.rows_read, report.accepted,
                       report.rejected, report.added, report.updated, report.removed, report.unchanged,
                       report.skipped, pd.Timestamp(now)))
    with store.writing() as writer:
        for name in sorted(changed):
            tables[name].write.mode("overwrite").parquet(str(writer.stage(name, "ingest")))
        log = pd.DataFrame(logged, columns=["run_id", "source", "file", "sha256", "config_digest", "rows_read",
                                            "accepted", "rejected", "added", "updated", "removed", "unchanged",
                                            "skipped", "ingested_at"])
        writer.replace("ingestions", "ingest", pd.concat([store.read("ingestions"), log], ignore_index=True))
    return reports


def _ingest_source(session, store: ParquetStore, tables: dict, changed: set[str], source: SourceConfig, work: Path,
                   now: datetime, tombstones: Tombstones | None) -> tuple[SourceReport, str, str]:
    from pyspark.sql import functions as F

    table = SOURCE_TABLES[source.kind]
    file = str(source.path)
    config_digest = source_digest(source)
    raw = read_source(source)
    last = store.frame("SELECT sha256, config_digest, rows_read, accepted, rejected FROM ingestions "
                       "WHERE source = ? AND NOT skipped ORDER BY rowid DESC LIMIT 1", [source.name])
    if len(last) and last["sha256"].iloc[0] == raw.sha256 and last["config_digest"].iloc[0] == config_digest:
        row = last.iloc[0]
        return (SourceReport(source.name, file, int(row["rows_read"]), int(row["accepted"]), int(row["rejected"]),
                             0, 0, 0, int(row["accepted"]), skipped=True), raw.sha256, config_digest)

    existing = tables[table]
    target = existing.drop("file", "ingested_at")
    checked = _validated(session, source, raw.rows, target.schema, work, tombstones).persist()
    accepted = checked.where(F.col(_OUTCOME) == "accepted").select(*target.columns)
    rejected = checked.where(F.col(_OUTCOME) == "rejected")
    counts = checked.groupBy(_OUTCOME).count().collect()
    by_outcome = {row[_OUTCOME]: int(row["count"]) for row in counts}

    # Rows read as malformed (on the driver), minus those of erased people.
    read_rejects = raw.rejects
    suppressed = by_outcome.get("suppressed", 0)
    if tombstones is not None and len(read_rejects):
        erased = tombstones.erased_rejects(read_rejects, source)
        suppressed += int(erased.sum())
        read_rejects = read_rejects.loc[~erased]

    keys = existing.where(F.col("source") == source.name).select("source_key", F.col("row_digest").alias("held"))
    changes = (accepted.join(keys, "source_key", "left")
               .where(~F.col("row_digest").eqNullSafe(F.col("held")))
               .withColumn("is_new", F.col("held").isNull()).drop("held").persist())
    flags = changes.agg(F.count_if("is_new").alias("added"), F.count_if(~F.col("is_new")).alias("updated")).collect()[0]
    added, updated = int(flags["added"] or 0), int(flags["updated"] or 0)
    incoming_keys = accepted.select("source_key").distinct()
    mine = F.col("source") == source.name
    updated_keys = changes.where(~F.col("is_new")).select("source_key").withColumn("_updated", F.lit(True))
    kept = existing.join(updated_keys, "source_key", "left").where(~mine | F.col("_updated").isNull()).drop("_updated")
    removed = 0
    if source.mode == "replace":
        gone = existing.where(mine).join(incoming_keys, "source_key", "left_anti")
        removed = gone.count()
        present = incoming_keys.withColumn("_present", F.lit(True))
        kept = kept.join(present, "source_key", "left").where(~mine | F.col("_present").isNotNull()).drop("_present")
    stamped = changes.drop("is_new").withColumn("file", F.lit(file)).withColumn(
        "ingested_at", F.lit(pd.Timestamp(now).to_pydatetime()).cast("timestamp_ntz"))
    tables[table] = kept.select(*existing.columns).unionByName(stamped.select(*existing.columns))
    changed.add(table)

    # Replacing a source replaces its rejects; an increment keeps earlier ones unless their key landed.
    rejects = tables["rejects"]
    if source.mode == "replace":
        rejects = rejects.where(~mine)
    else:
        landed = incoming_keys.withColumn("_landed", F.lit(True))
        rejects = (rejects.join(landed, "source_key", "left")
                   .where(~mine | ((F.col("sha256") != raw.sha256) & F.col("_landed").isNull())).drop("_landed"))
    new_rejects = rejected.select("row_number", "raw", "reason", "source_key")
    if len(read_rejects):
        frame = read_rejects.assign(source_key=None)[["row_number", "raw", "reason", "source_key"]]
        new_rejects = new_rejects.unionByName(session.createDataFrame(
            [(int(r.row_number), r.raw, r.reason, None) for r in frame.itertuples()],
            "row_number long, raw string, reason string, source_key string"))
    new_rejects = new_rejects.select(
        F.lit(source.name).alias("source"), F.lit(file).alias("file"), "row_number", "raw", "reason",
        F.lit(pd.Timestamp(now).to_pydatetime()).cast("timestamp_ntz").alias("ingested_at"),
        F.lit(raw.sha256).alias("sha256"), "source_key")
    tables["rejects"] = rejects.select(*tables["rejects"].columns).unionByName(
        new_rejects.select(*tables["rejects"].columns))
    changed.add("rejects")
    for name in (table, "rejects"):  # the next source reads these; the store's files stay as they are
        tables[name] = tables[name].localCheckpoint()

    n_accepted = by_outcome.get("accepted", 0)
    invalid = accepted.agg(
        F.count_if(F.col("email").isNotNull() & F.col("email_norm").isNull()).alias("emails"),
        F.count_if(F.col("phone").isNotNull() & F.col("phone_norm").isNull()).alias("phones")).collect()[0]
    reasons = {row["first_reason"]: int(row["count"]) for row in
               rejected.groupBy("first_reason").count().collect()}
    for reason, count in first_reasons(read_rejects["reason"]).value_counts().items():
        reasons[str(reason)] = reasons.get(str(reason), 0) + int(count)
    top = tuple(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))[:3])
    n_rejected = by_outcome.get("rejected", 0) + len(read_rejects)
    report = SourceReport(
        source=source.name, file=file, rows_read=raw.rows_read, accepted=n_accepted, rejected=n_rejected,
        added=added, updated=updated, removed=removed, unchanged=n_accepted - added - updated, skipped=False,
        invalid_emails=int(invalid["emails"] or 0), invalid_phones=int(invalid["phones"] or 0), top_reasons=top,
        suppressed=suppressed)
    checked.unpersist()
    changes.unpersist()
    return report, raw.sha256, config_digest


def _validated(session, source: SourceConfig, rows: pd.DataFrame, accepted_schema, work: Path,
               tombstones: Tombstones | None):
    """Every row of ``rows`` validated on the executors: accepted (typed as ``accepted_schema``,
    with its digest), rejected (``raw``, ``reason``, ``first_reason``) or suppressed (erased)."""
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StringType, StructField, StructType

    names = [str(c) for c in rows.columns if c != ROW]
    handed = pd.DataFrame({f"c{i}": rows[name] for i, name in enumerate(names)})
    handed[ROW] = rows[ROW].to_numpy(dtype=np.int64)
    if "source_key" in source.columns:
        keys = rows[source.columns["source_key"]].str.strip()
    else:  # a derived key's digest: identical rows meet in one partition, which numbers them in row order
        keys = derived_keys(rows, source).str.rsplit("-", n=1).str[0]
    handed[_KEY] = keys.astype("string").fillna("")
    work.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(handed, preserve_index=False), work / "rows.parquet")
    partitions = max(1, -(-len(rows) // _ROWS_PER_PARTITION), session.sparkContext.defaultParallelism)
    spread = session.read.parquet(str(work / "rows.parquet")).repartition(partitions, _KEY)

    out = StructType([StructField(_OUTCOME, StringType()), *accepted_schema.fields,
                      StructField("raw", StringType()), StructField("reason", StringType()),
                      StructField("first_reason", StringType())])
    arrow_out = to_arrow_schema(out)
    digest_type = arrow_out.field("row_digest").type
    content = content_columns(source.kind)

    def validate(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        received = list(batches)
        if not received or sum(b.num_rows for b in received) == 0:
            return
        frame = _rows_frame(pa.Table.from_batches(received), names)
        checked = validate_rows(source, frame, {})
        accepted, rejected = checked.accepted, checked.rejected
        outcome_accepted = np.full(len(accepted), "accepted", dtype=object)
        outcome_rejected = np.full(len(rejected), "rejected", dtype=object)
        if tombstones is not None:
            outcome_accepted[tombstones.erased_records(accepted).to_numpy()] = "suppressed"
            outcome_rejected[tombstones.erased_rejects(rejected, source).to_numpy()] = "suppressed"
        digests = pa.array(row_digests(accepted[content]), pa.uint64()).cast(digest_type)
        columns = {}
        for field in arrow_out:
            if field.name == _OUTCOME:
                values = pa.array(np.concatenate([outcome_accepted, outcome_rejected]).tolist(), pa.string())
            elif field.name == "row_digest":
                values = pa.concat_arrays([digests, pa.nulls(len(rejected), field.type)])
            elif field.name in ("raw", "reason"):
                values = pa.array([None] * len(accepted) + rejected[field.name].tolist(), pa.string())
            elif field.name == "first_reason":
                values = pa.array([None] * len(accepted) + first_reasons(rejected["reason"]).tolist(), pa.string())
            elif field.name in ("row_number", "source_key"):
                values = pa.concat_arrays([_array(accepted[field.name], field.type),
                                           _array(rejected[field.name], field.type)])
            elif field.name == "source":
                values = pa.array([source.name] * (len(accepted) + len(rejected)), pa.string())
            else:
                values = pa.concat_arrays([_array(accepted[field.name], field.type),
                                           pa.nulls(len(rejected), field.type)])
            columns[field.name] = values
        yield from pa.Table.from_pydict(columns, schema=arrow_out).to_batches()

    return spread.mapInArrow(validate, out)


def _array(values: pd.Series, kind: pa.DataType) -> pa.Array:
    """A column as one Arrow array of ``kind`` (an Arrow-backed column may come in chunks)."""
    got = pa.array(values, from_pandas=True)
    if isinstance(got, pa.ChunkedArray):
        got = got.combine_chunks()
    return got.cast(kind)


def _rows_frame(table: pa.Table, names: list[str]) -> pd.DataFrame:
    """The handed-over rows with the file's own column names and types back (as `read_source` made them)."""
    frame = pd.DataFrame({name: table.column(f"c{i}").to_pandas().astype("string") for i, name in enumerate(names)})
    frame[ROW] = table.column(ROW).to_numpy().astype(np.int64)
    return frame.sort_values(ROW, kind="stable").reset_index(drop=True)
