"""Right to be forgotten: delete one person from every table, keep them out, and log it.

`forget` runs in one store transaction, so a failed run leaves the store as it was:

1. it finds the person (`profiles.subject`) and deletes their rows everywhere: source
   records, rejected rows, unified orders and events, record and identifier maps, golden
   record, id registry and history, scores, materialized features: every table
   `store.tables` declares personal (it refuses to run while an undeclared table holds
   customer ids); exclusions of identifiers no record carries any more go too;
2. it writes a tombstone (`profiles.tombstones`) for each of their identifiers, so a
   later `cdp ingest` of the same files drops their records;
3. it appends an `profiles.audit` entry: who, when, counts per table, tombstones,
   and the model versions trained before the erasure (they learned from the person and
   should be retrained).

The online feature snapshot the scoring service reads is rewritten without the person
after the commit, atomically (a temporary file, then ``os.replace``): the service sees
the new file at its next poll and stops answering for them, without a restart. Files
written elsewhere with ``--out`` (scores, feature tables, lists, reports, exports) are
outside the store and are not touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from cdp.config import Config
from cdp.errors import StoreError
from profiles import audit
from profiles.subject import Lookup, Subject, find_customer, subject_of
from profiles.tombstones import identifier_hash, key_id, writing_secret
from store.duckdb_store import Store, register
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


def forget(store: Store, config: Config, lookup: Lookup, *, actor: str, now: datetime, snapshot: ServingSnapshot,
           tombstone_key: bytes | None, models_to_retrain: tuple[ModelVersion, ...] = (),
           registry_note: str | None = None) -> ErasureReport:
    """Erase the person ``lookup`` names; see the module docstring for what that covers."""
    audit_id = audit.new_audit_id()
    staged: Path | None = None
    try:
        with store.transaction() as con:
            check_declared(con)
            customer_id = find_customer(store, config, lookup)
            subject = subject_of(store, config, customer_id)
            secret = writing_secret(con, tombstone_key)
            ref = audit.customer_ref(secret, customer_id)
            deleted = delete_subject(store, subject)
            tombstones = _write_tombstones(con, subject, secret, now, audit_id)
            staged, removed = snapshot.stage_without(subject.customer_ids)
            audit.append(con, audit_id, "forget", actor, {
                "customer_ref": ref,
                "looked_up_by": lookup.by,
                "deleted_rows": {t: n for t, n in deleted.items() if n},
                "tombstones_written": tombstones,
                "tombstone_key": "CDP_TOMBSTONE_KEY" if tombstone_key else "store",
                "snapshot": {"file": str(snapshot.path), "rows_removed": removed},
                "models_to_retrain": [m.as_dict() for m in models_to_retrain],
                "registry_note": registry_note,
            }, now)
    except BaseException:
        if staged is not None:
            staged.unlink(missing_ok=True)
        raise
    if staged is not None:
        snapshot.commit(staged)
    return ErasureReport(audit_id=audit_id, customer_ref=ref, deleted=deleted, tombstones=tombstones,
                         snapshot=snapshot.path, snapshot_rows_removed=removed,
                         models_to_retrain=tuple(models_to_retrain), registry_note=registry_note)


def delete_subject(store: Store, subject: Subject) -> dict[str, int]:
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
    for id_type, value in subject.tombstone_values():
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
