"""Tombstones: keyed hashes of an erased person's identifiers, so old files cannot bring them back.

`cdp forget` deletes a person and writes one row to ``tombstones`` per identifier they
had (normalized email, E.164 phone, external id, customer key within its namespace,
web cookie): ``HMAC-SHA256(key, id_type + US + value)``, never the value itself.
`cdp ingest` hashes the identifiers of every incoming record the same way and drops
the records that hit a tombstone, accepted or rejected alike, keeping nothing of them
but a count.

The key is ``CDP_TOMBSTONE_KEY`` when the operator sets it (read by the CLI and passed
down), otherwise a random key made once per store and kept in its ``meta`` table. A
hash of a phone number is only as strong as its key: there are few enough numbers to
try them all, so a key kept *outside* the store is what stops someone holding a copy
of the store from finding out whom it forgot. Each tombstone records which key made it
(``key_id``, a keyed digest that reveals nothing of the key), so a run that lacks the
key fails loudly instead of letting erased people back in.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass

import pandas as pd

from cdp.config import SourceConfig
from cdp.errors import CdpError
from profiles.normalize import normalize_emails, normalize_phones

TOMBSTONE_TYPES = ("email", "phone", "external_id", "customer_key", "anonymous_id")
STORE_KEY = "tombstone_key"  # meta key of the per-store secret
_SEPARATOR = "\x1f"
_TOKEN_SPLIT = re.compile(r'[,;\t|"\']+')


class TombstoneKeyError(CdpError):
    """Tombstones exist that were made with a key this run does not have."""


def key_id(secret: bytes) -> str:
    """A short keyed digest naming a key without revealing it."""
    return hmac.new(secret, b"cdp-tombstone-key-id", hashlib.sha256).hexdigest()[:16]


def identifier_hash(secret: bytes, id_type: str, value: str) -> str:
    """HMAC-SHA256 of one normalized identifier (hex)."""
    return hmac.new(secret, f"{id_type}{_SEPARATOR}{value}".encode("utf-8"), hashlib.sha256).hexdigest()


def customer_key_value(namespace: str | None, key: str) -> str:
    """A customer key within its namespace: the same CRM id in two namespaces is two people."""
    return f"{namespace or ''}{_SEPARATOR}{key}"


def store_secret(con, create: bool) -> bytes | None:
    """The store's own tombstone key from ``meta``; made (32 random bytes) when asked and missing."""
    row = con.execute("SELECT value FROM meta WHERE key = ?", [STORE_KEY]).fetchall()
    if row:
        return bytes.fromhex(row[0][0])
    if not create:
        return None
    secret = secrets.token_bytes(32)
    con.execute("INSERT INTO meta VALUES (?, ?)", [STORE_KEY, secret.hex()])
    return secret


def writing_secret(con, given: bytes | None) -> bytes:
    """The key new tombstones are made with: the operator's if given, else the store's own."""
    if given:
        return given
    secret = store_secret(con, create=True)
    assert secret is not None  # made when missing
    return secret


@dataclass(frozen=True)
class Tombstones:
    """Every tombstone of a store, grouped by the key that made it, ready to test records against.

    ``by_key`` maps a secret to the set of hashes made with it.
    """

    by_key: tuple[tuple[bytes, frozenset[str]], ...]

    @classmethod
    def load(cls, con, given: bytes | None) -> Tombstones | None:
        """The store's tombstones, or None when there are none (the common case costs nothing).

        Raises `TombstoneKeyError` when some were made with a key that is neither ``given``
        nor the store's own.
        """
        rows = con.execute("SELECT key_id, id_hash FROM tombstones").fetchall()
        if not rows:
            return None
        secrets_by_id = {}
        for secret in (given, store_secret(con, create=False)):
            if secret:
                secrets_by_id[key_id(secret)] = secret
        hashes: dict[str, set[str]] = {}
        for kid, digest in rows:
            hashes.setdefault(kid, set()).add(digest)
        missing = sorted(set(hashes) - set(secrets_by_id))
        if missing:
            raise TombstoneKeyError(
                f"the store holds {sum(len(hashes[k]) for k in missing):,} tombstones of erased people made with a key "
                "this run does not have: set CDP_TOMBSTONE_KEY to the value it had when `cdp forget` ran, so their "
                "records are kept out")
        return cls(tuple((secrets_by_id[k], frozenset(v)) for k, v in hashes.items()))

    def erased_records(self, records: pd.DataFrame) -> pd.Series:
        """True for typed records (as `validate_rows` makes them) carrying any tombstoned identifier."""
        hit = pd.Series(False, index=records.index)
        for id_type, values in record_identifiers(records).items():
            distinct = pd.unique(values.dropna())
            erased = {v for v in distinct if self._hit(id_type, v)}
            if erased:
                hit |= values.isin(erased).fillna(False).astype(bool)
        return hit

    def erased_rejects(self, rejects: pd.DataFrame, source: SourceConfig | None) -> pd.Series:
        """True for rejected rows (``raw`` text) carrying any tombstoned identifier."""
        raws = rejects["raw"].tolist()
        found = raw_identifiers_many(raws, [source] * len(raws))
        flags = [any(self._hit(t, v) for t, v in identifiers) for identifiers in found]
        return pd.Series(flags, index=rejects.index, dtype=bool)

    def _hit(self, id_type: str, value: str) -> bool:
        return any(identifier_hash(secret, id_type, value) in hashes for secret, hashes in self.by_key)


def record_identifiers(records: pd.DataFrame) -> dict[str, pd.Series]:
    """The normalized identifiers of typed records, by tombstone type (NA where a record has none)."""
    found: dict[str, pd.Series] = {}
    if "email_norm" in records:
        found["email"] = records["email_norm"].astype("string")
    if "phone_norm" in records:
        found["phone"] = records["phone_norm"].astype("string")
    if "external_id" in records:
        found["external_id"] = records["external_id"].astype("string")
    if "customer_key" in records:
        keys = records["customer_key"].astype("string")
        namespaces = records["key_namespace"].astype("string").fillna("") if "key_namespace" in records else ""
        found["customer_key"] = (namespaces + _SEPARATOR + keys).where(keys.notna(), pd.NA)
    if "anonymous_id" in records:
        found["anonymous_id"] = records["anonymous_id"].astype("string")
    return found


def raw_identifiers(raw: str | None, source: SourceConfig | None) -> set[tuple[str, str]]:
    """The normalized identifiers in a rejected row's raw text: ``{(id_type, value)}``.

    A row kept as JSON (column -> text) is read through the source's mapping, so every
    identifier column counts. A line that could not be split into columns, or a row of a
    source no longer configured, is searched for anything that normalizes as an email
    or a phone number: without columns, a short id cannot be told from an amount.
    """
    return raw_identifiers_many([raw], [source])[0]


def raw_identifiers_many(raws: list[str | None], sources: list[SourceConfig | None]) -> list[set[tuple[str, str]]]:
    """`raw_identifiers` of many rows at once: the texts are split row by row, but every
    candidate email is normalized in one call and every candidate phone in one call per
    region (a row at a time, a store's rejects took seconds per person to search)."""
    found: list[set[tuple[str, str]]] = [set() for _ in raws]
    emails: list[tuple[int, str]] = []
    phones: dict[str | None, list[tuple[int, str]]] = {}
    for row_number, (raw, source) in enumerate(zip(raws, sources)):
        if not isinstance(raw, str) or not raw:
            continue
        try:
            row = json.loads(raw)
        except ValueError:
            row = None
        region = source.default_phone_region if source else None
        if isinstance(row, dict) and source is not None:
            mapped = {field: row.get(column) for field, column in source.columns.items()}
            text = {f: str(v).strip() for f, v in mapped.items() if v is not None and str(v).strip()}
            if "email" in text:
                emails.append((row_number, text["email"]))
            if "phone" in text:
                phones.setdefault(region, []).append((row_number, text["phone"]))
            if "external_id" in text:
                found[row_number].add(("external_id", text["external_id"]))
            if "customer_key" in text:
                found[row_number].add(("customer_key", customer_key_value(source.key_namespace, text["customer_key"])))
            if "anonymous_id" in text:
                found[row_number].add(("anonymous_id", text["anonymous_id"]))
            continue
        values = [str(v) for v in row.values()] if isinstance(row, dict) else _tokens(raw, source)
        for token in sorted({t.strip() for t in values if t and t.strip()}):
            emails.append((row_number, token))
            phones.setdefault(region, []).append((row_number, token))
    if emails:
        normalized = normalize_emails(pd.Series([t for _, t in emails], dtype="string"))
        for (row_number, _), value in zip(emails, normalized.tolist()):
            if isinstance(value, str):
                found[row_number].add(("email", value))
    cache: dict[str, str | None] = {}
    for region, items in phones.items():
        normalized = normalize_phones(pd.Series([t for _, t in items], dtype="string"), region, cache)
        for (row_number, _), value in zip(items, normalized.tolist()):
            if isinstance(value, str):
                found[row_number].add(("phone", value))
    return found


def _tokens(line: str, source: SourceConfig | None) -> list[str]:
    tokens = list(_TOKEN_SPLIT.split(line)) + line.split()
    if source is not None and len(source.delimiter) == 1:
        try:
            tokens += next(csv.reader([line], delimiter=source.delimiter))
        except (csv.Error, StopIteration):
            pass
    return tokens


def emails_in(values: list[str]) -> list[str]:
    """The values that are emails, normalized (the rest dropped)."""
    return normalize_emails(pd.Series(values, dtype="string")).dropna().tolist()


def phones_in(values: list[str], region: str | None) -> list[str]:
    """The values that are valid phone numbers, in E.164 (the rest dropped)."""
    return normalize_phones(pd.Series(values, dtype="string"), region).dropna().tolist()
