"""Look-up keys: how an app finds a customer by the identifiers it knows, without the values.

An app knows people by email, phone, its own CRM id (a source's ``customer_key``) or an old
customer id; the service knows them by customer id. The serving snapshot carries, for each
customer, a *look-up key* for every identifier that is theirs: a 16-byte digest (SHA-256,
truncated) of the identifier's type and normalized value, so the file and the service's
memory hold no email or phone in clear. An app's identifier is normalized exactly as
`cdp ingest` normalizes it (`profiles.normalize`: ``" Omar@Example.com "`` is
``omar@example.com``, a local phone is read in each source's ``default_phone_region``),
digested the same way, and matched.

What is indexed, from the store's unified profiles:

- every email, phone, external id and customer key (within its namespace) of the
  ``identifier_map``, i.e. the identifiers unify linked, junk excluded;
- every customer id that was merged away, under the id it was merged into (followed to
  the end of the chain), so an app holding an old id still finds the person;
- the identifiers unify excluded as placeholders or shared (``identifier_exclusions``),
  listed apart: a look-up by one of them is answered "identifies no one", never by picking
  one of the people who used it.

An identifier held by two customers is a key in both rows; the service answers 409 for
it rather than choose. The keys are personal data (a digest of an email is still the
email's stand-in): they live in the snapshot's rows, so `cdp forget` removes them with the
row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pandas as pd

from profiles.tombstones import emails_in, phones_in

KEY_BYTES = 16
ID_TYPES = ("customer_id", "email", "phone", "customer_key", "external_id")
_SEPARATOR = "\x1f"


def lookup_key(id_type: str, value: str, namespace: str = "") -> bytes:
    """The look-up key of one normalized identifier (``namespace``: a customer key's)."""
    text = _SEPARATOR.join((id_type, namespace if id_type == "customer_key" else "", value))
    return hashlib.sha256(text.encode("utf-8")).digest()[:KEY_BYTES]


@dataclass(frozen=True)
class LookupSettings:
    """What a service needs to turn an app's identifier into keys: the phone regions the
    sources read local numbers in, each source's customer-key namespace, and the keys of
    the excluded identifiers. None of it is personal (excluded identifiers are
    placeholders and shared numbers, and only their digests are kept)."""

    phone_regions: tuple[str, ...] = ()
    namespaces: dict[str, str] = field(default_factory=dict)
    excluded: frozenset[bytes] = frozenset()

    def keys(self, id_type: str, value: str, source: str | None = None) -> list[bytes]:
        """The keys ``value`` may stand for, normalized as at ingestion; none when it is not
        a valid identifier of that type (a malformed email, a number no region reads)."""
        value = value.strip()
        if not value:
            return []
        if id_type == "email":
            return [lookup_key("email", v) for v in emails_in([value])]
        if id_type == "phone":
            found = {v for region in (None, *self.phone_regions) for v in phones_in([value], region)}
            return [lookup_key("phone", v) for v in sorted(found)]
        if id_type == "customer_key":
            namespace = self.namespaces.get(source or "", source or "")
            return [lookup_key("customer_key", value, namespace)]
        if id_type in ("customer_id", "external_id"):
            return [lookup_key(id_type, value)]
        raise ValueError(f"unknown identifier type {id_type!r}")

    def to_json(self) -> dict:
        return {"phone_regions": list(self.phone_regions), "namespaces": self.namespaces,
                "excluded": sorted(k.hex() for k in self.excluded)}

    @classmethod
    def from_json(cls, data: dict) -> LookupSettings:
        return cls(phone_regions=tuple(data.get("phone_regions", ())), namespaces=dict(data.get("namespaces", {})),
                   excluded=frozenset(bytes.fromhex(k) for k in data.get("excluded", ())))


@dataclass(frozen=True)
class LookupKeys:
    """Every customer's look-up keys (``keys``: customer id → list of keys) and the settings."""

    keys: pd.Series
    settings: LookupSettings


def lookup_keys(store, config) -> LookupKeys:
    """The look-up keys of every customer of ``store`` (a `store.interface.TableStore`) and the
    settings to match an app's identifiers against them; empty before `cdp unify`. The
    digests are computed by the store's engine (`SQL_KEY`, the same bytes as `lookup_key`)."""
    namespaces = {s.name: s.key_namespace for s in config.sources}
    regions = tuple(sorted({s.default_phone_region for s in config.sources if s.default_phone_region}))
    if not store.has_table("identifier_map"):
        return LookupKeys(pd.Series(dtype=object), LookupSettings(regions, namespaces))
    names = " UNION ALL ".join(["SELECT ?::VARCHAR AS source, ?::VARCHAR AS namespace"] * len(namespaces)) or \
        "SELECT NULL::VARCHAR AS source, NULL::VARCHAR AS namespace"
    params = [v for pair in namespaces.items() for v in pair]
    mapped = store.frame(f"""
        WITH ns AS ({names})
        SELECT m.customer_id, {SQL_KEY.format(type="m.id_type", namespace="CASE WHEN m.id_type = 'customer_key' THEN "
                                                                       "coalesce(ns.namespace, m.source) ELSE '' END",
                                             value="m.id_value")} AS key
        FROM identifier_map m LEFT JOIN ns USING (source)""", params)
    frames = [mapped]
    if store.has_table("customer_ids"):
        merged = store.frame("SELECT customer_id, merged_into FROM customer_ids WHERE status = 'merged' "
                             "AND merged_into IS NOT NULL")
        survivor = _survivors(dict(zip(merged["customer_id"], merged["merged_into"])))
        frames.append(pd.DataFrame({"customer_id": list(survivor.values()),
                                    "key": [lookup_key("customer_id", old) for old in survivor]}))
    excluded: frozenset[bytes] = frozenset()
    if store.has_table("identifier_exclusions"):
        # A customer key's namespace is not recorded there; a CRM id is never a placeholder.
        excluded = frozenset(store.frame(f"""
            SELECT {SQL_KEY.format(type="id_type", namespace="''", value="id_value")} AS key
            FROM identifier_exclusions WHERE id_type <> 'customer_key'""")["key"].map(bytes))
    frame = pd.concat(frames, ignore_index=True)
    frame["key"] = frame["key"].map(bytes)
    keys = frame.drop_duplicates().groupby("customer_id", sort=True)["key"].agg(list)
    return LookupKeys(keys, LookupSettings(regions, namespaces, excluded))


SQL_KEY = "unhex(left(sha256({type} || chr(31) || {namespace} || chr(31) || {value}), 32))"
"""`lookup_key` as a DuckDB expression over a type, a namespace and a value."""


def _survivors(merged_into: dict[str, str]) -> dict[str, str]:
    """Each merged-away id → the id at the end of its chain (cycles, which unify never
    writes, are cut where they close)."""
    found = {}
    for start in merged_into:
        seen, current = {start}, merged_into[start]
        while current in merged_into and merged_into[current] not in seen:
            seen.add(current)
            current = merged_into[current]
        found[start] = current
    return found
