"""`cdp unify` on Spark: the rules of `profiles.unify`, run as DataFrame operations on a cluster.

The same three parts, with the same results (the two-engine test holds them equal):

1. **Identifiers** and their exclusions: the record–identifier table, each identifier's
   records and co-occurring identifiers, and `profiles.unify.find_exclusions` itself applied
   per partition on the executors.
2. **Linking**: every usable identifier joins its records to its first one; connected
   components of those edges come from large-star/small-star rounds
   (`profiles.components_spark`), never from the graph on the driver. Cookies attach
   cookie-only events as `profiles.unify.attach_anonymous` does, and customer records with no
   usable identifier are people of their own.
3. **Stable ids**: `profiles.unify.assign_ids` in joins and windows: each previous id goes to
   the component holding most of its records (then its founder's, then the earliest); a
   component keeps its oldest id; new components get the id derived from their first record,
   or back the merged or retired id that record founded. Only the rare hash collision (a
   salt to try) is settled on the driver.

Records are told apart by (source, source_key); a component's first record is the least
(source, source_key), as DuckDB numbers them. Golden records take each attribute's most
recent non-null value, ties to the source listed first. Every table goes to a new version of
the Parquet store, switched in one manifest with the others when the run ends.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from cdp.config import Config
from cdp.errors import StoreError
from profiles.components_spark import connected_components
from profiles.unify import UnifyReport, find_exclusions, new_customer_id
from store.parquet_store import ParquetStore

_SOURCES = {"source_customers": 0, "source_orders": 1, "source_events": 2}
_KINDS = {0: "customers", 1: "orders", 2: "events"}
_NEVER = "0001-01-01 00:00:00"  # sorts before every real time, as DuckDB's -infinity does


def unify_on_spark(store: ParquetStore, config: Config, session: Any, work: Path, now: datetime,
                   run_id: str) -> UnifyReport:
    """Resolve identities over everything ingested into ``store`` on ``session``, and write the
    unified tables as one new version of the store. ``work`` is a scratch folder every
    executor reaches (checkpoints)."""
    from pyspark.sql import functions as F

    session.sparkContext.setCheckpointDir(str(work / "checkpoints"))
    tables = store.export_parquet(list(_SOURCES) + ["record_map", "customer_ids", "id_events", "unify_runs"]
                                  if store.has_table("record_map") else
                                  list(_SOURCES) + ["customer_ids", "id_events", "unify_runs"], work)

    def read(name: str):
        return session.read.parquet(str(tables[name]))

    ranks = session.createDataFrame([(s.name, i) for i, s in enumerate(config.sources)],
                                    "source string, source_rank long")
    # Checkpointed, not cached: a record's number (monotonically_increasing_id) must not change if
    # a lost partition is computed again.
    recs = _records(read, ranks).checkpoint()
    n_records = recs.count()
    if n_records == 0:
        raise StoreError(f"store {store.path} holds no ingested records: run `cdp ingest` first")

    edges = _edges(recs).localCheckpoint()
    identifiers = _identifier_counts(edges)
    regions = tuple(sorted({s.default_phone_region for s in config.sources if s.default_phone_region}))
    excluded = _exclusions(identifiers, config, regions).localCheckpoint()
    usable = edges.join(excluded.select("id_key"), "id_key", "left_anti")

    # Every usable identifier joins its records to its first: a star per identifier.
    firsts = usable.groupBy("id_key").agg(F.min("rec").alias("first_rec"))
    links = usable.join(firsts, "id_key").select(F.col("rec").alias("src"), F.col("first_rec").alias("dst"))
    labels = connected_components(links, checkpoint_dir=str(work / "checkpoints")).labels
    labels = labels.select(F.col("node").alias("rec"), "label")
    labelled = recs.join(labels, "rec", "left")
    labelled = _attach_anonymous(labelled)
    # Customer records with no usable identifier still describe a person: their own component.
    labelled = labelled.withColumn(
        "label", F.when(F.col("label").isNull() & (F.col("kind_code") == 0), F.col("rec")).otherwise(F.col("label")))
    labelled = labelled.localCheckpoint()

    previous = (read("record_map").select("source", "source_key", F.col("customer_id").alias("prev"))
                if "record_map" in tables else None)
    registry = read("customer_ids")
    ids = _assign_ids(labelled, previous, registry, session)
    assigned = labelled.join(ids.components, "label", "left").localCheckpoint()

    report = _report(assigned, excluded, ids, n_records)
    with store.writing() as writer:
        _write(session, writer, read, assigned, usable, edges, excluded, ids, config, now, run_id, report)
    return report


def _records(read, ranks):
    """Every source record of a configured source: kind, keys, identifiers and its time, with a
    unique 64-bit ``rec`` (not dense: Spark numbers partitions apart)."""
    from pyspark.sql import functions as F

    parts = []
    for name, kind in _SOURCES.items():
        frame = read(name)
        cookie = F.col("anonymous_id") if kind == 2 else F.lit(None).cast("string")
        when = F.col("created_at") if kind == 0 else F.col("timestamp")
        parts.append(frame.select(
            F.lit(kind).alias("kind_code"), "source", "source_key", "customer_key", "key_namespace", "email_norm",
            "phone_norm", "external_id", cookie.alias("anonymous_id"), when.cast("timestamp_ntz").alias("record_time")))
    stacked = parts[0].unionByName(parts[1]).unionByName(parts[2])
    return stacked.join(F.broadcast(ranks), "source").withColumn("rec", F.monotonically_increasing_id())


def _edges(recs):
    """(record, identifier) pairs: id_type, id_value and the id_key that tells identifiers apart."""
    from pyspark.sql import functions as F

    def pairs(id_type: str, value, key):
        return recs.where(value.isNotNull()).select("rec", F.lit(id_type).alias("id_type"), value.alias("id_value"),
                                                    key.alias("id_key"))

    return (pairs("email", F.col("email_norm"), F.concat(F.lit("email:"), "email_norm"))
            .unionByName(pairs("phone", F.col("phone_norm"), F.concat(F.lit("phone:"), "phone_norm")))
            .unionByName(pairs("external_id", F.col("external_id"), F.concat(F.lit("external_id:"), "external_id")))
            .unionByName(pairs("customer_key", F.col("customer_key"),
                               F.concat(F.lit("customer_key:"), "key_namespace", F.lit("\x1f"), "customer_key"))))


def _identifier_counts(edges):
    """One row per identifier: its records and how many other identifiers share a record with it."""
    from pyspark.sql import functions as F

    multi = edges.join(edges.groupBy("rec").count().where("count > 1").select("rec"), "rec").select("rec", "id_key")
    other = multi.select("rec", F.col("id_key").alias("other_key"))
    degree = (multi.join(other, "rec").where(F.col("id_key") != F.col("other_key"))
              .groupBy("id_key").agg(F.countDistinct("other_key").alias("linked_identifiers")))
    counts = edges.groupBy("id_key").agg(F.first("id_type").alias("id_type"), F.first("id_value").alias("id_value"),
                                         F.countDistinct("rec").alias("records"))
    return (counts.join(degree, "id_key", "left")
            .select("id_key", "id_type", "id_value", "records",
                    F.coalesce("linked_identifiers", F.lit(0)).cast("long").alias("linked_identifiers")))


def _exclusions(identifiers, config: Config, regions: tuple[str, ...]):
    """`find_exclusions` on each partition of the identifiers: the same rules and reasons."""
    settings = config.unify

    def exclude(batches):
        for batch in batches:
            found = find_exclusions(batch.reset_index(drop=True), settings, regions)
            yield found[["id_key", "id_type", "id_value", "records", "linked_identifiers", "reason"]].astype(
                {"reason": object})

    schema = "id_key string, id_type string, id_value string, records long, linked_identifiers long, reason string"
    return identifiers.mapInPandas(exclude, schema)


def _attach_anonymous(labelled):
    """Cookie-only records take the component of the one person their cookie logged in as."""
    from pyspark.sql import functions as F

    owners = (labelled.where(F.col("anonymous_id").isNotNull() & F.col("label").isNotNull())
              .groupBy("anonymous_id").agg(F.countDistinct("label").alias("owners"), F.min("label").alias("owner"))
              .where("owners = 1").select("anonymous_id", "owner"))
    return (labelled.join(owners, "anonymous_id", "left")
            .withColumn("label", F.coalesce("label", F.when(F.col("anonymous_id").isNotNull(), F.col("owner"))))
            .drop("owner"))


class _Ids:
    """What `_assign_ids` decided: ``components`` (label → customer_id) and the id history."""

    def __init__(self, components, created: pd.DataFrame, merges: pd.DataFrame, splits: pd.DataFrame,
                 retired: list[str], revived: list[str]):
        self.components, self.created, self.merges = components, created, merges
        self.splits, self.retired, self.revived = splits, retired, revived


def _assign_ids(labelled, previous, registry, session) -> _Ids:
    """`profiles.unify.assign_ids` as joins and windows over components (see the module doc)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    linked = labelled.where(F.col("label").isNotNull())
    firsts = linked.groupBy("label").agg(F.min(F.struct("source", "source_key")).alias("first"))
    if previous is not None:
        linked = linked.join(previous, ["source", "source_key"], "left")
    else:
        linked = linked.withColumn("prev", F.lit(None).cast("string"))
    founders = (registry.where(F.col("founder_source").isNotNull())
                .select(F.col("customer_id").alias("prev"), F.col("founder_source").alias("source"),
                        F.col("founder_key").alias("source_key"))
                .join(linked.select("source", "source_key", F.col("label").alias("founder_label")),
                      ["source", "source_key"]).select("prev", "founder_label"))
    held = (linked.where(F.col("prev").isNotNull()).groupBy("prev", "label").agg(F.count("*").alias("n"))
            .join(firsts, "label").join(founders, "prev", "left")
            .withColumn("founder", F.coalesce(F.col("founder_label") == F.col("label"), F.lit(False))))
    by_prev = Window.partitionBy("prev").orderBy(F.desc("n"), F.desc("founder"), F.asc("first"))
    winners = held.withColumn("i", F.row_number().over(by_prev)).where("i = 1").select("prev", "label")
    born = registry.select(F.col("customer_id").alias("prev"), F.col("created_at").alias("created"),
                           F.col("status").alias("prev_status"))
    winners = winners.join(born, "prev", "left").localCheckpoint()
    by_comp = Window.partitionBy("label").orderBy(F.asc_nulls_last("created"), F.asc("prev"))  # pandas: NaT last
    survivors = winners.withColumn("i", F.row_number().over(by_comp)).where("i = 1").select(
        "label", F.col("prev").alias("survivor"))
    merges = (winners.join(survivors, "label").where(F.col("prev") != F.col("survivor"))
              .select(F.col("prev").alias("merged"), "survivor"))

    # Components no previous id went to: the id their first record derives, or a salt on a collision.
    fresh = firsts.join(survivors, "label", "left_anti").select(
        "label", F.col("first.source").alias("first_source"), F.col("first.source_key").alias("first_key"))
    candidates = fresh.mapInPandas(_candidate_ids, "label long, first_source string, first_key string, "
                                                   "candidate string").localCheckpoint()
    status = registry.select(F.col("customer_id").alias("candidate"), F.col("status").alias("taken"))
    in_use = survivors.select(F.col("survivor").alias("candidate"), F.lit(True).alias("in_use"))
    dupes = candidates.groupBy("candidate").count().where("count > 1").select("candidate", F.lit(True).alias("dup"))
    decided = (candidates.join(status, "candidate", "left").join(in_use, "candidate", "left")
               .join(dupes, "candidate", "left")
               .withColumn("outcome", F.when(F.col("dup").isNotNull(), "conflict")
                           .when(F.col("taken").isNull(), "created")
                           .when(F.col("taken").isin("merged", "retired") & F.col("in_use").isNull(), "revived")
                           .otherwise("conflict"))).localCheckpoint()
    conflicts = decided.where("outcome = 'conflict'").select("label", "first_source", "first_key").toPandas()
    settled = _settle_conflicts(conflicts, registry, survivors, decided)
    new_ids = decided.where("outcome <> 'conflict'").select("label", "first_source", "first_key", "candidate",
                                                             "outcome")
    if len(settled):
        new_ids = new_ids.unionByName(_frame(
            session, settled, "label long, first_source string, first_key string, candidate string, outcome string"))
    new_ids = new_ids.localCheckpoint()
    components = (survivors.select("label", F.col("survivor").alias("customer_id"))
                  .unionByName(new_ids.select("label", F.col("candidate").alias("customer_id"))))

    created = (new_ids.where("outcome = 'created'")
               .select(F.col("candidate").alias("customer_id"), F.col("first_source").alias("founder_source"),
                       F.col("first_key").alias("founder_key")).toPandas())
    revived = sorted(new_ids.where("outcome = 'revived'").select("candidate").toPandas()["candidate"])

    # Splits: records whose previous id (or the id it merged into) is not the one they now hold.
    now_ids = linked.where(F.col("prev").isNotNull()).join(components, "label")
    merge_map = merges.select(F.col("merged").alias("prev"), F.col("survivor").alias("resolved"))
    moved = (now_ids.join(merge_map, "prev", "left").withColumn("resolved", F.coalesce("resolved", "prev"))
             .where(F.col("resolved") != F.col("customer_id")))
    splits = moved.groupBy("prev", "customer_id").count().toPandas()
    live = winners.select("prev")
    retired = sorted(registry.where("status = 'active'").select(F.col("customer_id").alias("prev"))
                     .join(live, "prev", "left_anti").toPandas()["prev"])
    return _Ids(components.localCheckpoint(), created, merges.toPandas(), splits, retired, revived)


def _candidate_ids(batches):
    for batch in batches:
        yield batch.assign(candidate=[new_customer_id(s, k) for s, k in zip(batch["first_source"], batch["first_key"])])


def _settle_conflicts(conflicts: pd.DataFrame, registry, survivors, decided) -> pd.DataFrame:
    """The few components whose derived id is taken (a 64-bit collision, or an id still in
    use): the salt loop of `profiles.unify.assign_ids`, on the driver, over just their candidates."""
    columns = ["label", "first_source", "first_key", "candidate", "outcome"]
    if conflicts.empty:
        return pd.DataFrame(columns=columns)
    status = {r.customer_id: r.status for r in registry.select("customer_id", "status").toLocalIterator()}
    in_use = {r.survivor for r in survivors.select("survivor").toLocalIterator()}
    in_use |= {r.candidate for r in decided.where("outcome <> 'conflict'").select("candidate").toLocalIterator()}
    taken = set(status) | in_use
    rows = []
    for row in conflicts.sort_values(["first_source", "first_key"]).itertuples():
        source, key = row.first_source, row.first_key
        salt, candidate = 0, new_customer_id(source, key)
        while candidate in taken:
            if status.get(candidate) in ("merged", "retired") and candidate not in in_use:
                break
            salt += 1
            candidate = new_customer_id(source, key, salt)
        taken.add(candidate)
        in_use.add(candidate)
        rows.append((row.label, source, key, candidate, "revived" if candidate in status else "created"))
    return pd.DataFrame(rows, columns=columns)


def _report(assigned, excluded, ids: _Ids, n_records: int) -> UnifyReport:
    from pyspark.sql import functions as F

    counts = assigned.agg(
        F.count(F.col("customer_id")).alias("linked"),
        F.count_if(F.col("customer_id").isNull() & (F.col("kind_code") == 1)).alias("unlinked_orders"),
        F.count_if(F.col("customer_id").isNull() & (F.col("kind_code") == 2)).alias("unlinked_events"),
        F.countDistinct("customer_id").alias("customers")).collect()[0]
    reasons = {r["reason"]: int(r["count"]) for r in excluded.groupBy("reason").count().collect()}
    return UnifyReport(
        records=n_records, linked_records=int(counts["linked"]), unlinked_orders=int(counts["unlinked_orders"]),
        unlinked_events=int(counts["unlinked_events"]), customers=int(counts["customers"]),
        new_customers=len(ids.created), merged_ids=len(ids.merges), split_ids=ids.splits["prev"].nunique(),
        retired_ids=len(ids.retired), revived_ids=len(ids.revived), excluded_identifiers=reasons)


def _write(session, writer, read, assigned, usable, edges, excluded, ids: _Ids, config: Config, now: datetime,
           run_id: str, report: UnifyReport) -> None:
    """Every table unify owns, each as a new version of the store (switched together by ``writer``)."""
    from pyspark.sql import functions as F

    def put(name: str, frame) -> None:
        frame.write.mode("overwrite").parquet(str(writer.stage(name, "unify")))

    linked = assigned.where(F.col("customer_id").isNotNull())
    kind_names = F.create_map(*[x for k, v in _KINDS.items() for x in (F.lit(k), F.lit(v))])
    put("record_map", linked.select("source", "source_key", kind_names[F.col("kind_code")].alias("kind"),
                                    "customer_id"))
    put("identifier_map", usable.join(linked.select("rec", "customer_id", "source"), "rec")
        .select("customer_id", "id_type", "id_value", "source").distinct())
    put("identifier_exclusions", excluded.select("id_type", "id_value", "reason", "records", "linked_identifiers",
                                                 F.lit(run_id).alias("run_id")).orderBy("id_type", "id_value"))
    sources = [s.name for s in config.sources]
    owner = linked.select("source", "source_key", "customer_id")
    orders = read("source_orders").where(F.col("source").isin(sources)).join(owner, ["source", "source_key"], "left")
    put("orders", orders.select(
        F.concat_ws(":", "source", "source_key").alias("order_id"), "customer_id", "source", "source_key",
        "timestamp", "amount", "quantity", "product_id", "category", "channel", "currency", "discount", "is_return"))
    events = read("source_events").where(F.col("source").isin(sources)).join(owner, ["source", "source_key"], "left")
    put("events", events.select(
        F.concat_ws(":", "source", "source_key").alias("event_id"), "customer_id", "anonymous_id", "source",
        "source_key", "timestamp", "event_type", "channel", "campaign", "product_id", "category", "value"))
    put("customers", _golden(read, linked, excluded))

    happened = pd.Timestamp(now)
    history = pd.DataFrame(
        [("created", c, None, 0) for c in ids.created["customer_id"]]
        + [("merged", m, s, 0) for m, s in zip(ids.merges["merged"], ids.merges["survivor"])]
        + [("split", p, q, int(n)) for p, q, n in zip(ids.splits["prev"], ids.splits["customer_id"],
                                                       ids.splits["count"])]
        + [("retired", r, None, 0) for r in ids.retired]
        + [("revived", r, None, 0) for r in ids.revived],
        columns=["event", "customer_id", "other_id", "records"])
    history = history.assign(run_id=run_id, happened_at=happened)[
        ["run_id", "happened_at", "event", "customer_id", "other_id", "records"]]
    schema = ("run_id string, happened_at timestamp_ntz, event string, customer_id string, other_id string, "
              "records long")
    put("id_events", read("id_events").unionByName(_frame(session, history, schema)))
    put("customer_ids", _registry(session, read("customer_ids"), ids, happened, run_id))
    runs = session.createDataFrame(
        [(run_id, now, report.records, report.linked_records, report.customers, report.new_customers,
          report.merged_ids, report.split_ids)],
        "run_id string, ran_at timestamp_ntz, records long, linked_records long, customers long, "
        "new_customers long, merged_ids long, split_ids long")
    put("unify_runs", read("unify_runs").unionByName(runs))


def _registry(session, registry, ids: _Ids, happened: pd.Timestamp, run_id: str):
    """``customer_ids`` after this run: new ids added; merged, revived and retired ones updated."""
    from pyspark.sql import functions as F

    schema = ("customer_id string, created_at timestamp_ntz, created_run string, status string, "
              "merged_into string, updated_at timestamp_ntz, founder_source string, founder_key string")
    stamp = F.lit(happened.to_pydatetime()).cast("timestamp_ntz")
    if ids.merges.empty:
        merged = registry
    else:
        merges = _frame(session, ids.merges, "merged string, survivor string")
        by_id = merges.select(F.col("merged").alias("customer_id"), F.col("survivor").alias("into_a"))
        by_target = merges.select(F.col("merged").alias("merged_into"), F.col("survivor").alias("into_b"))
        merged = (registry.join(by_id, "customer_id", "left").join(by_target, "merged_into", "left")
                  .withColumn("into", F.coalesce("into_a", "into_b")))
        merged = merged.select(
            "customer_id", "created_at", "created_run",
            F.when(F.col("into").isNotNull(), F.lit("merged")).otherwise(F.col("status")).alias("status"),
            F.coalesce("into", "merged_into").alias("merged_into"),
            F.when(F.col("into").isNotNull(), stamp).otherwise(F.col("updated_at")).alias("updated_at"),
            "founder_source", "founder_key")
    revived = F.col("customer_id").isin(list(ids.revived))
    retired = F.col("customer_id").isin(list(ids.retired))
    updated = merged.select(
        "customer_id", "created_at", "created_run",
        F.when(retired, F.lit("retired")).when(revived, F.lit("active")).otherwise(F.col("status")).alias("status"),
        F.when(revived, F.lit(None).cast("string")).otherwise(F.col("merged_into")).alias("merged_into"),
        F.when(revived | retired, stamp).otherwise(F.col("updated_at")).alias("updated_at"),
        "founder_source", "founder_key")
    created = ids.created.assign(created_at=happened, created_run=run_id, status="active", merged_into=None,
                                 updated_at=happened)[["customer_id", "created_at", "created_run", "status",
                                                       "merged_into", "updated_at", "founder_source", "founder_key"]]
    return updated.unionByName(_frame(session, created, schema))


def _golden(read, linked, excluded):
    """Golden records: per attribute, the most recent non-null value, then the first-listed source
    (`profiles.unify._write_golden`)."""
    from pyspark.sql import functions as F

    keys = excluded.select("id_key").withColumn("x", F.lit(True))

    ids = linked.select("customer_id", "kind_code", "source", "source_key", "source_rank",
                        F.col("record_time").alias("t"), "email_norm", "phone_norm", "external_id")
    for column, prefix in (("email_norm", "email:"), ("phone_norm", "phone:"), ("external_id", "external_id:")):
        x = keys.select(F.col("id_key").alias(f"{column}_key"), F.col("x").alias(f"x_{column}"))
        ids = ids.withColumn(f"{column}_key", F.concat(F.lit(prefix), column)).join(x, f"{column}_key", "left")
    ids = ids.select("customer_id", "kind_code", "source", "source_key", "source_rank", "t",
                     F.when(F.col("x_email_norm").isNull(), F.col("email_norm")).alias("email"),
                     F.when(F.col("x_phone_norm").isNull(), F.col("phone_norm")).alias("phone"),
                     F.when(F.col("x_external_id").isNull(), F.col("external_id")).alias("external_id"))
    never = F.lit(_NEVER).cast("timestamp_ntz")
    activity = (ids.where("kind_code <> 0")
                .groupBy("customer_id", "kind_code", "source", "source_rank", "email", "phone", "external_id")
                .agg(F.max(F.struct(F.coalesce("t", never).alias("t"), F.col("source_key").alias("key")))
                     .alias("latest"), F.min("t").alias("first_t"), F.max("t").alias("last_t"),
                     F.count("*").alias("n")))
    people = [("first_name", "string"), ("last_name", "string"), ("birth_date", "date"), ("gender", "string"),
              ("country", "string"), ("city", "string"), ("consent_email", "boolean"), ("consent_sms", "boolean"),
              ("consent_ads", "boolean")]
    activity = activity.select(
        "customer_id", "kind_code", "source", "source_rank", F.col("latest.t").alias("t_sort"),
        F.col("latest.key").alias("source_key"), "first_t", "last_t", "n", "email", "phone", "external_id",
        *[F.lit(None).cast(kind).alias(name) for name, kind in people])
    customers = read("source_customers").select("source", "source_key", *[name for name, _ in people])
    records = (ids.where("kind_code = 0").join(customers, ["source", "source_key"])
               .select("customer_id", "kind_code", "source", "source_rank", F.coalesce("t", never).alias("t_sort"),
                       "source_key", F.col("t").alias("first_t"), F.col("t").alias("last_t"),
                       F.lit(1).cast("long").alias("n"), "email", "phone", "external_id",
                       *[name for name, _ in people]))
    rows = activity.unionByName(records)
    order = F.struct("t_sort", (-F.col("source_rank")).alias("rank"), "source_key")
    attributes = ("first_name", "last_name", "email", "phone", "external_id", "birth_date", "gender", "country",
                  "city", "consent_email", "consent_sms", "consent_ads")
    # The greatest (time, -rank, key) among the rows holding a value: a struct's max skips the nulls.
    picks = [F.max(F.when(F.col(a).isNotNull(), F.struct(order.alias("o"), F.col(a).alias("v"))))["v"].alias(a)
             for a in attributes]
    return rows.groupBy("customer_id").agg(
        *picks, F.min("first_t").alias("first_seen"), F.max("last_t").alias("last_seen"),
        F.sum("n").cast("long").alias("n_records"),
        F.coalesce(F.sum(F.when(F.col("kind_code") == 1, F.col("n"))), F.lit(0)).cast("long").alias("n_orders"),
        F.coalesce(F.sum(F.when(F.col("kind_code") == 2, F.col("n"))), F.lit(0)).cast("long").alias("n_events"),
        F.array_join(F.array_sort(F.collect_set("source")), ",").alias("sources"))


def _frame(session, frame: pd.DataFrame, schema: str):
    """A small driver-side frame (the id history) as a Spark DataFrame of ``schema``: plain Python
    values, as Spark's Arrow hand-over takes them whatever pandas made of the columns."""
    def plain(value):
        if value is None or value is pd.NaT or (not isinstance(value, str) and pd.isna(value)):
            return None
        return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value

    rows = [tuple(plain(v) for v in row) for row in frame.astype(object).itertuples(index=False)]
    return session.createDataFrame(rows, schema)
