"""The canonical fields of each source kind, their types, and what each kind requires.

A source maps its own column names onto these fields in cdp.toml; everything after
ingestion speaks only canonical names.
"""

from __future__ import annotations

from typing import Mapping

# Field types: text (kept verbatim, trimmed), email, phone, id (kept verbatim: "00004"
# stays "00004"), timestamp, date, amount (finite decimal >= 0), count (whole number >= 0),
# number (finite decimal), bool (yes/no/true/false/1/0).
IDENTIFIERS = ("customer_key", "email", "phone", "external_id")

CUSTOMER_FIELDS: dict[str, str] = {
    "source_key": "id",
    "customer_key": "id",
    "email": "email",
    "phone": "phone",
    "external_id": "id",
    "first_name": "text",
    "last_name": "text",
    "birth_date": "date",
    "gender": "text",
    "country": "text",
    "city": "text",
    "consent_email": "bool",
    "consent_sms": "bool",
    "consent_ads": "bool",  # advertising on platforms (Meta, Google): absent or empty means no
    "created_at": "timestamp",
}

ORDER_FIELDS: dict[str, str] = {
    "source_key": "id",
    "customer_key": "id",
    "email": "email",
    "phone": "phone",
    "external_id": "id",
    "timestamp": "timestamp",
    "amount": "amount",
    "quantity": "count",
    "product_id": "id",
    "category": "text",
    "channel": "text",
    "currency": "text",
    "discount": "amount",
    "is_return": "bool",
}

EVENT_FIELDS: dict[str, str] = {
    "source_key": "id",
    "customer_key": "id",
    "email": "email",
    "phone": "phone",
    "external_id": "id",
    "anonymous_id": "id",
    "timestamp": "timestamp",
    "event_type": "text",
    "channel": "text",
    "campaign": "text",
    "product_id": "id",
    "category": "text",
    "value": "number",
}

FIELDS: Mapping[str, Mapping[str, str]] = {
    "customers": CUSTOMER_FIELDS,
    "orders": ORDER_FIELDS,
    "events": EVENT_FIELDS,
}
KINDS = tuple(FIELDS)

REQUIRED: Mapping[str, tuple[str, ...]] = {
    "customers": ("source_key",),
    "orders": ("timestamp", "amount"),
    "events": ("timestamp", "event_type"),
}
# Kinds whose rows must carry at least one identifier (events may be anonymous).
NEEDS_IDENTIFIER_COLUMN: Mapping[str, bool] = {"customers": False, "orders": True, "events": False}


def check_columns(kind: str, columns: Mapping[str, str]) -> str | None:
    """Say what is wrong with a source's column mapping, or None if it is usable."""
    fields = FIELDS[kind]
    unknown = [c for c in columns if c not in fields]
    if unknown:
        return (
            f"unknown canonical field(s) {', '.join(sorted(unknown))} for kind {kind!r}; "
            f"known fields: {', '.join(fields)}"
        )
    missing = [c for c in REQUIRED[kind] if c not in columns]
    if missing:
        return f"kind {kind!r} needs column(s) for {', '.join(missing)} in [sources.columns]"
    if NEEDS_IDENTIFIER_COLUMN[kind] and not any(c in columns for c in IDENTIFIERS):
        return f"kind {kind!r} needs at least one identifier column: {', '.join(IDENTIFIERS)}"
    return None
