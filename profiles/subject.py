"""The data subject of an access or erasure request: who they are and which rows are theirs.

A request names a person by customer id, email or phone. `find_customer` turns that into
one unified customer id (the email and phone normalized as at ingestion, so
``" Omar@Example.com"`` finds ``omar@example.com``); `subject_of` then gathers
everything the store holds about them:

- their customer id and every id that was merged into it;
- their identifiers: the normalized emails, phones, external ids and customer keys
  (within their namespace) of their records, *minus* the junk ones (placeholders, the
  block list, shared identifiers listed in ``identifier_exclusions``): a shop's walk-in
  phone on a receipt is not the person's, and erasing it would erase everyone;
- their web cookies: those of their events that no other customer was seen with;
- their source records: every record linked to them, and every record carrying one of
  their identifiers or cookies (records ingested after the last unify included);
- their rejected rows: rejects whose raw text carries one of their identifiers.

The same `Subject` feeds the export and the erasure, so what `cdp export` shows is
exactly what `cdp forget` deletes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from cdp.config import Config
from cdp.errors import CdpError
from profiles.normalize import placeholder_emails, placeholder_phones
from profiles.tombstones import (
    customer_key_value,
    emails_in,
    phones_in,
    raw_identifiers_many,
)
from store.duckdb_store import register
from store.interface import SqlStore
from store.tables import SOURCE_TABLES

LOOKUPS = ("customer_id", "email", "phone")


class SubjectNotFound(CdpError):
    """No customer matches the request (the message never repeats the identifier)."""


@dataclass(frozen=True)
class Lookup:
    """How a request names the person: ``by`` is customer_id, email or phone."""

    by: str
    value: str

    def __post_init__(self):
        if self.by not in LOOKUPS:
            raise CdpError(f"a person is looked up by {', '.join(LOOKUPS)}, not {self.by!r}")


@dataclass(frozen=True)
class Subject:
    """Everything that identifies one person in the store, and where their rows are.

    ``records`` has ``kind``, ``source`` and ``source_key`` (one row per source record);
    ``rejects`` has ``source``, ``file``, ``row_number`` and ``sha256`` of their rejected rows.
    """

    customer_id: str
    customer_ids: tuple[str, ...]
    identifiers: frozenset[tuple[str, str]]
    anonymous_ids: frozenset[str]
    records: pd.DataFrame
    rejects: pd.DataFrame

    def tombstone_values(self) -> list[tuple[str, str]]:
        """Every (id_type, normalized value) to tombstone, sorted."""
        return sorted(self.identifiers | {("anonymous_id", a) for a in self.anonymous_ids})


def lookup_values(lookup: Lookup, config: Config) -> list[str]:
    """The normalized values ``lookup`` may stand for (a customer id as given; an email
    normalized; a phone read in every region the sources use); CdpError when malformed."""
    if lookup.by == "customer_id":
        return [lookup.value.strip()]
    if lookup.by == "email":
        values = emails_in([lookup.value])
        if not values:
            raise CdpError("--email is not a valid email address")
        return values
    regions = sorted({s.default_phone_region for s in config.sources if s.default_phone_region})
    values = sorted({v for region in [None, *regions] for v in phones_in([lookup.value], region)})
    if not values:
        raise CdpError("--phone is not a valid phone number (write it with its country code, e.g. +970...)")
    return values


def find_customer(store: SqlStore, config: Config, lookup: Lookup) -> str:
    """The active customer id a request names; `SubjectNotFound` if none, `CdpError` if ambiguous."""
    if not store.has_table("identifier_map") or not store.has_table("customers"):
        raise CdpError(f"store {store.path} has no unified profiles yet: run `cdp unify` first")
    if lookup.by == "customer_id":
        return _active_id(store, lookup.value.strip())
    values = lookup_values(lookup, config)
    found = store.con.execute(
        f"SELECT DISTINCT customer_id FROM identifier_map WHERE id_type = ? AND id_value IN "
        f"({', '.join('?' * len(values))}) ORDER BY customer_id", [lookup.by, *values]).fetchall()
    if len(found) > 1:
        raise CdpError(f"that {lookup.by} matches {len(found)} customers (a local number read in different regions): "
                       "write it with its country code, or use --customer-id")
    if not found:
        excluded = store.has_table("identifier_exclusions") and store.con.execute(
            f"SELECT count(*) FROM identifier_exclusions WHERE id_type = ? AND id_value IN "
            f"({', '.join('?' * len(values))})", [lookup.by, *values]).fetchall()[0][0]
        if excluded:
            raise SubjectNotFound(f"that {lookup.by} identifies no one: it is a placeholder or shared identifier "
                                  "(see table identifier_exclusions); look the person up by another identifier")
        raise SubjectNotFound(f"no customer with that {lookup.by}")
    return found[0][0]


def _active_id(store: SqlStore, customer_id: str) -> str:
    """The id itself if it is a customer, the id it was merged into if it was merged away."""
    if store.con.execute("SELECT count(*) FROM customers WHERE customer_id = ?", [customer_id]).fetchall()[0][0]:
        return customer_id
    row = store.con.execute("SELECT status, merged_into FROM customer_ids WHERE customer_id = ?",
                            [customer_id]).fetchall()
    if row and row[0][0] == "merged" and row[0][1]:
        return _active_id(store, row[0][1])
    raise SubjectNotFound("no customer with that customer id")


class RejectIndex:
    """The store's rejected rows by the identifiers their raw text carries, parsed once (for a
    batch of erasures, not once per person)."""

    def __init__(self, store: SqlStore, config: Config):
        self.rejects = store.frame("SELECT source, file, row_number, sha256, raw FROM rejects "
                                   "ORDER BY source, file, row_number")
        sources = {s.name: s for s in config.sources}
        found = raw_identifiers_many(self.rejects["raw"].tolist(), [sources.get(s) for s in self.rejects["source"]])
        self._rows: dict[tuple[str, str], list[int]] = {}
        for position, identifiers in enumerate(found):
            for identifier in identifiers:
                self._rows.setdefault(identifier, []).append(position)

    def carrying(self, identifiers: set[tuple[str, str]]) -> pd.DataFrame:
        """``source``, ``file``, ``row_number``, ``sha256`` of the rows carrying any of ``identifiers``."""
        positions = sorted({p for identifier in identifiers for p in self._rows.get(identifier, ())})
        return self.rejects.iloc[positions][["source", "file", "row_number", "sha256"]].reset_index(drop=True)


def subject_of(store: SqlStore, config: Config, customer_id: str, rejects: RejectIndex | None = None) -> Subject:
    """Everything that identifies ``customer_id`` and the keys of every row that is theirs
    (``rejects``: the store's `RejectIndex`, when a batch already built it)."""
    con = store.con
    ids = [customer_id] + [r[0] for r in con.execute(
        "SELECT customer_id FROM customer_ids WHERE merged_into = ? ORDER BY customer_id", [customer_id]).fetchall()]
    linked = store.frame("SELECT kind, source, source_key FROM record_map WHERE customer_id = ?", [customer_id])
    register(con, "subject_linked", linked)
    identifiers: set[tuple[str, str]] = set()
    cookies: set[str] = set()
    try:
        for kind, table in SOURCE_TABLES.items():
            cookie = "anonymous_id" if kind == "events" else "NULL::VARCHAR AS anonymous_id"
            rows = store.frame(f"""SELECT s.email_norm, s.phone_norm, s.external_id, s.customer_key, s.key_namespace,
                                          {cookie}
                                   FROM {table} s JOIN subject_linked l USING (source, source_key)
                                   WHERE l.kind = ?""", [kind])
            identifiers |= _identifiers_of(rows)
            cookies |= set(rows["anonymous_id"].dropna().tolist())
    finally:
        con.unregister("subject_linked")
    mapped = store.frame("SELECT id_type, id_value FROM identifier_map WHERE customer_id = ? AND id_type <> "
                         "'customer_key'", [customer_id])
    identifiers |= set(zip(mapped["id_type"], mapped["id_value"]))
    identifiers = _without_junk(store, config, identifiers)
    cookies = _own_cookies(store, cookies, ids)
    records = _records_of(store, linked, identifiers, cookies)
    rejects_index = rejects if rejects is not None else RejectIndex(store, config)
    held = rejects_index.carrying(identifiers | {("anonymous_id", c) for c in cookies})
    return Subject(customer_id=customer_id, customer_ids=tuple(ids), identifiers=frozenset(identifiers),
                   anonymous_ids=frozenset(cookies), records=records, rejects=held)


def _identifiers_of(rows: pd.DataFrame) -> set[tuple[str, str]]:
    found = set()
    for id_type, column in (("email", "email_norm"), ("phone", "phone_norm"), ("external_id", "external_id")):
        found |= {(id_type, v) for v in rows[column].dropna().tolist()}
    keys = rows.dropna(subset=["customer_key"])
    found |= {("customer_key", customer_key_value(ns if pd.notna(ns) else None, k))
              for ns, k in zip(keys["key_namespace"], keys["customer_key"])}
    return found


def _without_junk(store: SqlStore, config: Config, identifiers: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Drop placeholders, the block list and shared identifiers: they are not this person's alone."""
    excluded = set()
    if store.has_table("identifier_exclusions"):
        excluded = set(store.con.execute("SELECT id_type, id_value FROM identifier_exclusions").fetchall())
    blocked = set(config.unify.blocked_identifiers)
    kept = set()
    for id_type, value in identifiers:
        plain = value.split("\x1f", 1)[1] if id_type == "customer_key" else value
        if (id_type, plain) in excluded or plain in blocked:
            continue
        if id_type == "email" and placeholder_emails(pd.Series([value], dtype="string")).iloc[0]:
            continue
        if id_type == "phone" and placeholder_phones(pd.Series([value], dtype="string")).iloc[0]:
            continue
        kept.add((id_type, value))
    return kept


def _own_cookies(store: SqlStore, cookies: set[str], ids: list[str]) -> set[str]:
    """The cookies no other customer was seen with (a shared browser is not one person's)."""
    if not cookies:
        return set()
    register(store.con, "subject_cookies", pd.DataFrame({"anonymous_id": sorted(cookies)}, dtype="string"))
    register(store.con, "subject_ids", pd.DataFrame({"customer_id": ids}, dtype="string"))
    try:
        shared = store.con.execute("""SELECT DISTINCT e.anonymous_id FROM events e
                                      JOIN subject_cookies c USING (anonymous_id)
                                      WHERE e.customer_id IS NOT NULL
                                        AND e.customer_id NOT IN (SELECT customer_id FROM subject_ids)""").fetchall()
    finally:
        store.con.unregister("subject_cookies")
        store.con.unregister("subject_ids")
    return cookies - {r[0] for r in shared}


def _records_of(store: SqlStore, linked: pd.DataFrame, identifiers: set[tuple[str, str]],
                cookies: set[str]) -> pd.DataFrame:
    """Every source record linked to the person or carrying one of their identifiers or cookies."""
    con = store.con
    ids = pd.DataFrame(sorted(identifiers), columns=["id_type", "id_value"], dtype="string")
    register(con, "subject_identifiers", ids)
    register(con, "subject_linked", linked)
    register(con, "subject_cookies", pd.DataFrame({"anonymous_id": sorted(cookies)}, dtype="string"))
    parts = []
    try:
        for kind, table in SOURCE_TABLES.items():
            cookie = " OR s.anonymous_id IN (SELECT anonymous_id FROM subject_cookies)" if kind == "events" else ""
            parts.append(store.frame(f"""
                SELECT ? AS kind, s.source, s.source_key FROM {table} s
                WHERE EXISTS (SELECT 1 FROM subject_linked l
                              WHERE l.kind = ? AND l.source = s.source AND l.source_key = s.source_key)
                   OR s.email_norm IN (SELECT id_value FROM subject_identifiers WHERE id_type = 'email')
                   OR s.phone_norm IN (SELECT id_value FROM subject_identifiers WHERE id_type = 'phone')
                   OR s.external_id IN (SELECT id_value FROM subject_identifiers WHERE id_type = 'external_id')
                   OR coalesce(s.key_namespace, '') || chr(31) || s.customer_key
                      IN (SELECT id_value FROM subject_identifiers WHERE id_type = 'customer_key')
                   {cookie}
                ORDER BY s.source, s.source_key""", [kind, kind]))
    finally:
        for name in ("subject_identifiers", "subject_linked", "subject_cookies"):
            con.unregister(name)
    return pd.concat(parts, ignore_index=True)
