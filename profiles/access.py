"""Right of access: everything the store holds about one person, with where each part came from.

`personal_data` gathers, for a `Subject`, their golden record, every source record (each
with its source, file, row number and ingestion time), their rejected rows, unified
orders and events, identifiers, id history, the feature row the scoring service serves,
their latest scores and segment, and the audiences they were sent to (`cdp audience`: the
platform, and the hashes it got). `write_export` writes it as one JSON document with
dates as ISO strings.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from profiles.subject import Subject
from store.duckdb_store import register
from store.interface import SqlStore, open_configured
from store.snapshot import ServingSnapshot
from store.tables import SOURCE_TABLES

_INTERNAL_COLUMNS = ("row_digest",)


def personal_data(store: SqlStore, subject: Subject, snapshot: ServingSnapshot, now: datetime) -> dict:
    """One JSON-ready document of everything held about ``subject``."""
    con = store.con
    register(con, "access_ids", pd.DataFrame({"customer_id": list(subject.customer_ids)}, dtype="string"))
    register(con, "access_records", subject.records)
    try:
        source_records = {}
        for kind, table in SOURCE_TABLES.items():
            frame = store.frame(f"""SELECT s.* FROM {table} s JOIN access_records r USING (source, source_key)
                                    WHERE r.kind = ? ORDER BY s.source, s.source_key""", [kind])
            source_records[kind] = _records(frame.drop(columns=list(_INTERNAL_COLUMNS), errors="ignore"))
        unified = {}
        for table, key in (("orders", "order_id"), ("events", "event_id")):
            unified[table] = _records(store.frame(f"""
                SELECT t.* FROM {table} t
                WHERE t.customer_id IN (SELECT customer_id FROM access_ids)
                   OR t.{key} IN (SELECT source || ':' || source_key FROM access_records)
                ORDER BY t.timestamp, t.{key}""")) if store.has_table(table) else []
        golden = store.frame("SELECT * FROM customers WHERE customer_id = ?", [subject.customer_id])
        ids = store.frame("SELECT * FROM customer_ids WHERE customer_id IN (SELECT customer_id FROM access_ids) "
                          "ORDER BY created_at, customer_id")
        history = store.frame("""SELECT * FROM id_events WHERE customer_id IN (SELECT customer_id FROM access_ids)
                                    OR other_id IN (SELECT customer_id FROM access_ids)
                                 ORDER BY happened_at, event, customer_id""")
        scores = (store.frame("SELECT * FROM scores WHERE customer_id IN (SELECT customer_id FROM access_ids)")
                  if store.has_table("scores") else pd.DataFrame())
        # The feature row `cdp features --materialize` keeps for scoring (features.materialized).
        materialized = (store.frame("SELECT * FROM scoring_features "
                                    "WHERE customer_id IN (SELECT customer_id FROM access_ids)")
                        if store.has_table("scoring_features") else pd.DataFrame())
        # Recipients of their data: the audiences (`cdp audience`) the person was last sent in.
        audiences = store.frame("""SELECT audience, format, exported_at, email_sha256, phone_sha256
                                   FROM audience_members WHERE customer_id IN (SELECT customer_id FROM access_ids)
                                   ORDER BY audience, format""")
    finally:
        con.unregister("access_ids")
        con.unregister("access_records")
    register(con, "access_rejects", subject.rejects)
    try:
        rejects = store.frame("""SELECT j.source, j.file, j.row_number, j.reason, j.raw, j.ingested_at FROM rejects j
                                 JOIN access_rejects a USING (source, file, row_number, sha256)
                                 ORDER BY j.source, j.file, j.row_number""")
    finally:
        con.unregister("access_rejects")
    identifiers = store.frame("SELECT id_type, id_value, source FROM identifier_map WHERE customer_id = ? "
                              "ORDER BY id_type, id_value, source", [subject.customer_id])
    score_rows = _records(scores)
    return {
        "customer_id": subject.customer_id,
        "exported_at": now,
        "about": ("Everything this customer-data store holds about one person. Source records name the source, "
                  "file, row and time they were ingested from; orders and events are those records as unified; "
                  "features are the row the scoring service serves; scores come from the models named in them; "
                  "audiences are the lists for ad or email platforms they were last sent in, with the hashes sent."),
        "golden_record": _records(golden)[0] if len(golden) else None,
        "identifiers": _records(identifiers),
        "customer_ids": _records(ids),
        "id_history": _records(history),
        "source_records": source_records,
        "rejected_rows": _records(rejects),
        "orders": unified["orders"],
        "events": unified["events"],
        "features": {"file": str(snapshot.path), "rows": _records(snapshot.rows_of(subject.customer_ids)),
                     "materialized_in_store": _records(materialized)},
        "scores": score_rows,
        "segment": score_rows[0].get("segment") if score_rows else None,
        "audiences": _records(audiences),
    }


def counts(data: dict) -> dict[str, int]:
    """How many rows of each kind an export holds (for the CLI's summary and the audit log)."""
    return {
        "source_records": sum(len(v) for v in data["source_records"].values()),
        "rejected_rows": len(data["rejected_rows"]),
        "orders": len(data["orders"]),
        "events": len(data["events"]),
        "identifiers": len(data["identifiers"]),
        "feature_rows": len(data["features"]["rows"]) + len(data["features"]["materialized_in_store"]),
        "score_rows": len(data["scores"]),
        "audience_memberships": len(data["audiences"]),
    }


def write_export(data: dict, path: Path) -> None:
    """Write the document as UTF-8 JSON (dates ISO 8601, missing values null), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_plain(data), ensure_ascii=False, indent=2, allow_nan=False)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _plain(value):
    """JSON-ready: ISO strings for dates, None for missing values, lists for arrays."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class Export:
    """What `export_person` wrote: whose data (their customer id) and how many rows of what."""

    customer_id: str
    counts: dict[str, int]
    path: Path


def export_person(config, lookup, out_file: Path, *, actor: str, now: datetime,
                  tombstone_key: bytes | None = None) -> Export:
    """`cdp export` as one function: everything held about the person ``lookup`` names
    (`personal_data`) written to ``out_file`` as JSON, and an audit entry saying who asked,
    in one store transaction (a failed write rolls the entry back)."""
    from profiles import audit
    from profiles.subject import find_customer, subject_of
    from profiles.tombstones import writing_secret

    with open_configured(config.store) as store, store.transaction() as con:
        subject = subject_of(store, config, find_customer(store, config, lookup))
        data = personal_data(store, subject, ServingSnapshot.beside(config.store.path), now)
        shown = counts(data)
        ref = audit.customer_ref(writing_secret(con, tombstone_key), subject.customer_id)
        audit.append(con, audit.new_audit_id(), "export", actor,
                     {"customer_ref": ref, "looked_up_by": lookup.by, "exported_rows": shown}, now)
        write_export(data, out_file)  # last: a failed write rolls the audit entry back
    return Export(customer_id=subject.customer_id, counts=shown, path=Path(out_file))
