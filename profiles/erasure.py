"""Right to be forgotten: delete people from every table and file, keep them out, and log it.

`forget` (one person) and `forget_many` (a batch: the store file is rebuilt once) hold the
store's write lock from start to end, so no other writer (`cdp score`, `cdp features
--materialize`, `cdp unify`, `cdp train`'s reads) runs in between, and run in one store
transaction:

1. they find each person (`profiles.subject`) and delete their rows everywhere: source
   records, rejected rows, unified orders and events, record and identifier maps, golden
   record, id registry and history, scores, materialized features: every table
   `store.tables` declares personal (they refuse to run while an undeclared table holds
   customer ids); exclusions of identifiers no record carries any more go too;
2. they write a tombstone (`profiles.tombstones`) for each of their identifiers and
   customer ids, so a later `cdp ingest` of the same files drops their records and a rerun
   of the same request knows the person is already erased;
3. they list the model versions registered so far (every one learned from data that held
   the person; a training run holds the store while it reads and registers, so none is
   half way) and append one `profiles.audit` entry per person; the audiences they were
   sent to (`cdp audience`) owe the platforms their removal, so their recorded hashes move
   to ``audience_removals`` for each audience's next removal list (`owed_removals`);
4. the serving snapshot is rewritten without them *before* the transaction commits;
5. the erasure counter goes up (`store.interface.TableStore.erasures`): a `cdp score` that
   read the store before and writes after leaves them out;
6. after the commit, the store file is rebuilt with only its live rows
   (`store.duckdb_store.Store.compact`), so their values cannot be read back from its
   bytes; killed before that, the file is marked as owing it and the next writer does it.

Killed before the commit, every person is still wholly in the store (only the serving
snapshot may already lack them) and the command can be run again; a rerun for a person
already erased finds their tombstones and says so. Files written elsewhere with ``--out``
(scores, feature tables, lists, reports, exports) are outside the store and are not touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pandas as pd

from cdp.config import Config
from cdp.errors import StoreError
from profiles import audit
from profiles.subject import (
    Lookup,
    RejectIndex,
    Subject,
    SubjectNotFound,
    find_customer,
    lookup_values,
    subject_of,
)
from profiles.tombstones import identifier_hash, key_id, store_secret, writing_secret
from store.duckdb_store import COMPACTION_PENDING, ERASURES, register
from store.interface import SqlStore
from store.snapshot import ServingSnapshot
from store.tables import SOURCE_TABLES, TABLES, personal_tables

# Tables emptied of the person by hand (the rest: every table with a customer_id column).
_BY_RECORD = ("source_customers", "source_orders", "source_events", "rejects", "record_map", "orders", "events",
              "id_events", "identifier_exclusions")


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version that was trained before an erasure."""

    name: str
    version: str
    created_at: datetime
    aliases: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"model": self.name, "version": self.version, "created_at": self.created_at.isoformat(),
                "aliases": list(self.aliases)}


@dataclass(frozen=True)
class ErasureReport:
    """What one `forget` did. ``deleted`` is rows per table; ``tombstones`` new ones per identifier type."""

    audit_id: str
    customer_ref: str
    deleted: dict[str, int]
    tombstones: dict[str, int]
    snapshot: Path
    snapshot_rows_removed: int
    models_to_retrain: tuple[ModelVersion, ...]
    registry_note: str | None
    already_erased: bool = False


@dataclass(frozen=True)
class BatchErasure:
    """What `forget_many` did: one report per person erased (or found erased already) and,
    by line number, the requests that named no one (why, never the identifier)."""

    reports: tuple[ErasureReport, ...]
    not_found: tuple[tuple[int, str], ...]
    snapshot: Path
    snapshot_rows_removed: int
    models_to_retrain: tuple[ModelVersion, ...]
    registry_note: str | None
    online_removed: int | None = None  # answers deleted from a shared online store; None without one


# Lists the registered model versions to retrain, and a note when the registry cannot be read.
ModelLister = Callable[[], tuple[tuple[ModelVersion, ...], "str | None"]]


class OnlineErasure(Protocol):
    """A shared online store people are erased from (`store.online_redis.RedisOnlineStore`)."""

    def erase(self, customer_ids: Iterable[str]) -> int:
        """Delete these customers' data; how many answers were deleted."""


def forget(store: SqlStore, config: Config, lookup: Lookup, *, actor: str, now: datetime, snapshot: ServingSnapshot,
           tombstone_key: bytes | None, list_models: ModelLister | None = None,
           on_stage: Callable[[str], None] | None = None, online: OnlineErasure | None = None) -> ErasureReport:
    """Erase the person ``lookup`` names; see the module docstring for what that covers.

    Raises `SubjectNotFound` when no one (living or erased) matches."""
    batch = forget_many(store, config, [lookup], actor=actor, now=now, snapshot=snapshot,
                        tombstone_key=tombstone_key, list_models=list_models, on_stage=on_stage, online=online)
    if batch.not_found:
        raise SubjectNotFound(batch.not_found[0][1])
    return batch.reports[0]


def forget_many(store: SqlStore, config: Config, lookups: Sequence[Lookup], *, actor: str, now: datetime,
                snapshot: ServingSnapshot, tombstone_key: bytes | None, list_models: ModelLister | None = None,
                on_stage: Callable[[str], None] | None = None, online: OnlineErasure | None = None) -> BatchErasure:
    """Erase every person ``lookups`` name, all or none, then rebuild the store file once.

    A request that names no one is reported by its position (1-based), not erased and not
    an error: the batch goes on. Ambiguous or malformed requests stop the batch (CdpError)
    before anything is deleted. ``online``: a shared online store (`store.online_redis`)
    the people's answers, features and look-up keys are deleted from, like the snapshot,
    before the store's transaction commits (a failure there erases no one)."""
    stage = on_stage or (lambda text: None)
    staged: Path | None = None
    removed = 0
    online_removed: int | None = None
    models: tuple[ModelVersion, ...] = ()
    registry_note: str | None = None
    reports: list[ErasureReport] = []
    not_found: list[tuple[int, str]] = []
    try:
        with store.transaction() as con:
            check_declared(con)
            secret = writing_secret(con, tombstone_key)
            subjects: dict[str, tuple[Subject, Lookup]] = {}
            rejects: RejectIndex | None = None
            for number, lookup in enumerate(lookups, start=1):
                try:
                    customer_id = find_customer(store, config, lookup)
                except SubjectNotFound as missing:
                    if _tombstoned(con, lookup, config, tombstone_key):
                        reports.append(_already_erased(snapshot))
                    else:
                        not_found.append((number, str(missing)))
                    continue
                if customer_id not in subjects:
                    rejects = rejects or RejectIndex(store, config)
                    subjects[customer_id] = (subject_of(store, config, customer_id, rejects), lookup)
            stage(f"erasing {len(subjects):,} person(s)")
            deleted_by_person = {}
            for customer_id, (subject, _) in subjects.items():
                owed_removals(con, subject.customer_ids, now)
                deleted_by_person[customer_id] = delete_subject(store, subject)
            # Listed inside the lock: every version registered before it saw the people, and a
            # training run cannot read or register while the erasure holds the store.
            if list_models is not None and subjects:
                models, registry_note = list_models()
            erased_ids = tuple(i for subject, _ in subjects.values() for i in subject.customer_ids)
            staged, removed = snapshot.stage_without(erased_ids)
            if online is not None and erased_ids:
                stage("erasing them from the online store")
                online_removed = online.erase(erased_ids)
            for customer_id, (subject, lookup) in subjects.items():
                audit_id = audit.new_audit_id()
                ref = audit.customer_ref(secret, customer_id)
                deleted = deleted_by_person[customer_id]
                tombstones = _write_tombstones(con, subject, secret, now, audit_id)
                audit.append(con, audit_id, "forget", actor, {
                    "customer_ref": ref,
                    "looked_up_by": lookup.by,
                    "deleted_rows": {t: n for t, n in deleted.items() if n},
                    "tombstones_written": tombstones,
                    "tombstone_key": "CDP_TOMBSTONE_KEY" if tombstone_key else "store",
                    "snapshot": {"file": str(snapshot.path), "rows_removed": removed},
                    "online_store_answers_removed": online_removed,
                    "models_to_retrain": [m.as_dict() for m in models],
                    "registry_note": registry_note,
                    "batch_size": len(lookups),
                }, now)
                reports.append(ErasureReport(audit_id=audit_id, customer_ref=ref, deleted=deleted,
                                             tombstones=tombstones, snapshot=snapshot.path,
                                             snapshot_rows_removed=removed, models_to_retrain=tuple(models),
                                             registry_note=registry_note))
            if subjects:
                mark_erased(con)
            if staged is not None:
                stage("replacing the serving snapshot")
                snapshot.commit(staged)  # before the commit: the service never serves them past it
                staged = None
            stage("committing the erasure")
    except BaseException:
        if staged is not None:
            staged.unlink(missing_ok=True)
        raise
    if subjects:
        stage("rebuilding the store file without the erased rows")
        store.compact()
    return BatchErasure(reports=tuple(reports), not_found=tuple(not_found), snapshot=snapshot.path,
                        snapshot_rows_removed=removed, models_to_retrain=tuple(models), registry_note=registry_note,
                        online_removed=online_removed)


def _tombstoned(con, lookup: Lookup, config: Config, given: bytes | None) -> bool:
    """Whether the identifier ``lookup`` gives was tombstoned by an earlier erasure (under
    the operator's key or the store's own): the person was erased already."""
    keys = [k for k in (given, store_secret(con, create=False)) if k]
    hashes = [identifier_hash(k, lookup.by, v) for k in keys for v in lookup_values(lookup, config)]
    if not hashes:
        return False
    placeholders = ", ".join("?" * len(hashes))
    return bool(con.execute(f"SELECT count(*) FROM tombstones WHERE id_hash IN ({placeholders})",
                            hashes).fetchall()[0][0])


def _already_erased(snapshot: ServingSnapshot) -> ErasureReport:
    return ErasureReport(audit_id="", customer_ref="", deleted={}, tombstones={}, snapshot=snapshot.path,
                         snapshot_rows_removed=0, models_to_retrain=(), registry_note=None, already_erased=True)


def owed_removals(con, customer_ids: Sequence[str], now: datetime) -> int:
    """Move the people's recorded audience memberships (`cdp audience`) to the removals the
    next export of each audience owes its platform, as hashes only (inside the erasure's
    transaction, before `delete_subject` empties ``audience_members`` of them).

    The platforms hold the people's hashed email and phone: they must delete them too, and
    only the next export can tell them. The plain format's customer id goes as its SHA-256;
    the membership rows themselves are deleted with the person. Rows moved."""
    if not customer_ids:
        return 0
    placeholders = ", ".join("?" * len(customer_ids))
    return int(con.execute(f"""INSERT INTO audience_removals
        SELECT DISTINCT audience, format,
               CASE WHEN email_sha256 IS NULL AND phone_sha256 IS NULL THEN sha256(customer_id) END,
               email_sha256, phone_sha256, ?::TIMESTAMP
        FROM audience_members WHERE customer_id IN ({placeholders})""",
                           [pd.Timestamp(now), *customer_ids]).fetchall()[0][0])


def mark_erased(con) -> None:
    """Count one more erasure and mark the file as owing a compaction (inside the erasure's transaction)."""
    count = con.execute("SELECT value FROM meta WHERE key = ?", [ERASURES]).fetchall()
    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [ERASURES, str(int(count[0][0]) + 1 if count else 1)])
    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [COMPACTION_PENDING, "1"])


def delete_subject(store: SqlStore, subject: Subject) -> dict[str, int]:
    """Delete every row of ``subject`` from every table (inside the caller's transaction); rows per table."""
    con = store.con
    register(con, "erase_ids", pd.DataFrame({"customer_id": list(subject.customer_ids)}, dtype="string"))
    register(con, "erase_records", subject.records)
    register(con, "erase_rejects", subject.rejects)
    deleted: dict[str, int] = {}

    def delete(table: str, where: str, params: list | None = None) -> None:
        if store.has_table(table):
            n = con.execute(f"DELETE FROM {table} t WHERE {where}", params or []).fetchall()[0][0]
            deleted[table] = deleted.get(table, 0) + int(n)

    try:
        for kind, table in SOURCE_TABLES.items():
            delete(table, "EXISTS (SELECT 1 FROM erase_records r WHERE r.kind = ? AND r.source = t.source "
                          "AND r.source_key = t.source_key)", [kind])
        delete("rejects", "EXISTS (SELECT 1 FROM erase_rejects r WHERE r.source = t.source AND r.file = t.file "
                          "AND r.row_number = t.row_number AND r.sha256 = t.sha256)")
        ids = "t.customer_id IN (SELECT customer_id FROM erase_ids)"
        delete("record_map", f"{ids} OR EXISTS (SELECT 1 FROM erase_records r WHERE r.source = t.source "
                             "AND r.source_key = t.source_key)")
        delete("orders", f"{ids} OR t.order_id IN (SELECT source || ':' || source_key FROM erase_records)")
        delete("events", f"{ids} OR t.event_id IN (SELECT source || ':' || source_key FROM erase_records)")
        delete("id_events", f"{ids} OR t.other_id IN (SELECT customer_id FROM erase_ids)")
        # An excluded identifier that no record carries any more was the person's.
        delete("identifier_exclusions", " AND ".join(
            f"""NOT EXISTS (SELECT 1 FROM {table} s WHERE
                   (t.id_type = 'email' AND s.email_norm = t.id_value)
                OR (t.id_type = 'phone' AND s.phone_norm = t.id_value)
                OR (t.id_type = 'external_id' AND s.external_id = t.id_value)
                OR (t.id_type = 'customer_key' AND s.customer_key = t.id_value))"""
            for table in SOURCE_TABLES.values()))
        for table in personal_tables():
            if table not in _BY_RECORD:
                delete(table, ids)
    finally:
        for name in ("erase_ids", "erase_records", "erase_rejects"):
            con.unregister(name)
    return deleted


def check_declared(con) -> None:
    """Refuse to erase while the store holds a table with customer ids that `store.tables`
    does not declare: its rows could not be promised gone."""
    undeclared = [t for t in _tables_with_customer_id(con) if t not in TABLES]
    if undeclared:
        raise StoreError(f"the store holds table(s) {', '.join(undeclared)} with a customer_id column that "
                         "store/tables.py does not declare: erasure cannot promise their rows are gone; "
                         "declare or drop them first")


def _tables_with_customer_id(con) -> list[str]:
    rows = con.execute("""SELECT c.table_name FROM information_schema.columns c
                          JOIN information_schema.tables t USING (table_catalog, table_schema, table_name)
                          WHERE c.column_name = 'customer_id' AND t.table_type = 'BASE TABLE'
                            AND c.table_catalog = current_database() AND c.table_schema = 'main'
                          ORDER BY c.table_name""").fetchall()
    return [r[0] for r in rows]


def _write_tombstones(con, subject: Subject, secret: bytes, now: datetime, audit_id: str) -> dict[str, int]:
    """One tombstone per identifier not tombstoned already under this key; new ones per type."""
    kid = key_id(secret)
    existing = {r[0] for r in con.execute("SELECT id_hash FROM tombstones WHERE key_id = ?", [kid]).fetchall()}
    rows = []
    for id_type, value in [*subject.tombstone_values(), *(("customer_id", i) for i in subject.customer_ids)]:
        digest = identifier_hash(secret, id_type, value)
        if digest not in existing:
            existing.add(digest)
            rows.append((id_type, digest))
    if rows:
        frame = pd.DataFrame(rows, columns=["id_type", "id_hash"]).assign(
            key_id=kid, erased_at=pd.Timestamp(now), audit_id=audit_id)
        register(con, "erase_tombstones", frame)
        con.execute("INSERT INTO tombstones SELECT id_type, id_hash, key_id, erased_at, audit_id FROM erase_tombstones")
        con.unregister("erase_tombstones")
    written: dict[str, int] = {}
    for id_type, _ in rows:
        written[id_type] = written.get(id_type, 0) + 1
    return written
