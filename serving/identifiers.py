"""Finding a customer by an identifier an app knows: email, phone, a source's customer key,
an external id or an old customer id.

The serving snapshot carries each customer's look-up keys (`profiles.lookup`); this index
holds them sorted, as fixed-width bytes, so one look-up is a binary search and a
million customers' keys take tens of megabytes, not a dict of Python objects. The
outcome of a look-up is one of:

- found: exactly one customer holds the identifier;
- ambiguous: more than one does (HTTP 409: the service never picks one);
- excluded: unify excluded it as a placeholder or shared identifier (HTTP 404, saying so);
- not found (HTTP 404), also when it is no valid identifier (not an email, a number no
  region reads): the answer says which.

Messages never repeat the identifier.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from profiles.lookup import KEY_BYTES, LookupSettings

LOOKUP_FIELDS = ("customer_id", "email", "phone", "customer_key", "external_id")


@dataclass(frozen=True)
class Resolved:
    """The outcome of one look-up: ``customer_id`` when found, else a status and a reason."""

    customer_id: str | None
    status: int
    reason: str


class IdentifierIndex:
    """Look-up keys → customer ids.

    Parameters
    ----------
    customer_ids : sequence of str
        The snapshot's customers, in row order.
    keys : sequence of lists of bytes
        Each customer's look-up keys, aligned with ``customer_ids``.
    settings : LookupSettings
        How an app's identifier becomes keys, and the keys of excluded identifiers.
    """

    def __init__(self, customer_ids: Sequence[str], keys: Sequence[Sequence[bytes] | None], settings: LookupSettings):
        self.settings = settings
        self._ids = np.asarray(list(customer_ids), dtype=object)
        lengths = np.fromiter((len(k) if k is not None else 0 for k in keys), dtype=np.int64, count=len(keys))
        flat = [key for row in keys if row is not None for key in row]
        values = np.array(flat, dtype=f"S{KEY_BYTES}") if flat else np.empty(0, dtype=f"S{KEY_BYTES}")
        rows = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
        order = np.argsort(values, kind="stable")
        self._keys, self._rows = values[order], rows[order]

    def __len__(self) -> int:
        return len(self._keys)

    def holders(self, key: bytes) -> set[str]:
        """The customers holding ``key``."""
        needle = np.array([key], dtype=f"S{KEY_BYTES}")
        start = int(np.searchsorted(self._keys, needle, side="left")[0])
        stop = int(np.searchsorted(self._keys, needle, side="right")[0])
        return {str(self._ids[row]) for row in self._rows[start:stop]}

    def resolve(self, field: str, value: str, source: str | None = None) -> Resolved:
        """Which customer ``value`` (an identifier of kind ``field``) names, or why none."""
        return resolve_identifier(self.settings, lambda keys: [self.holders(k) for k in keys], field, value, source)


def resolve_identifier(settings: LookupSettings, holders: Callable[[list[bytes]], list[set[str]]], field: str,
                       value: str, source: str | None = None) -> Resolved:
    """Which customer ``value`` (an identifier of kind ``field``) names, or why none, with
    ``holders`` (look-up keys → the customers holding each) over any index: the in-memory
    one above or a shared online store's (`serving.online_store.RedisFeatureStore`)."""
    what = field.replace("_", " ")
    try:
        keys = settings.keys(field, value, source)
    except ValueError:
        return Resolved(None, 400, f"{field} is not an identifier the service looks up")
    if not keys:
        hint = " (write a phone number with its country code, e.g. +970...)" if field == "phone" else ""
        return Resolved(None, 404, f"no customer with that {what}: it is not a valid {what}{hint}")
    found = set().union(*holders(keys))
    if len(found) == 1:
        return Resolved(found.pop(), 200, "")
    if len(found) > 1:
        return Resolved(None, 409, f"that {what} belongs to {len(found)} customers; look the customer up by "
                                   "another identifier or by customer_id")
    if any(k in settings.excluded for k in keys):
        return Resolved(None, 404, f"that {what} identifies no one: it is a placeholder or shared by many "
                                   "customers; look the customer up by another identifier")
    return Resolved(None, 404, f"no customer with that {what} in the feature snapshot")
