"""The audit log of privacy requests: who exported or erased whom, when, and what it touched.

One row per request in ``audit_log`` (``audit_id``, ``logged_at``, ``action``, ``actor``,
``details`` as JSON). Nothing personal goes in: the person appears only as a keyed hash
of their customer id (`customer_ref`), and the details hold counts per table, counts of
tombstones per identifier type and model versions, never an email, phone or name.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pandas as pd

from profiles.tombstones import identifier_hash


def customer_ref(secret: bytes, customer_id: str) -> str:
    """A keyed hash of a customer id: it names the person in the log without being their id."""
    return identifier_hash(secret, "customer_id", customer_id)[:24]


def new_audit_id() -> str:
    return uuid.uuid4().hex


def append(con, audit_id: str, action: str, actor: str, details: dict, now: datetime) -> None:
    """Append one entry, inside the caller's transaction (so it stands or falls with what it records)."""
    con.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?)",
                [audit_id, pd.Timestamp(now), action, actor, json.dumps(details, sort_keys=True)])
