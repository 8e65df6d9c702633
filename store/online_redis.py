"""The shared online store on Redis: every customer's answer, serving features and look-up keys,
published whole by the batch job and read by any number of service workers or replicas.

One store's data lives under one prefix (``cdp:<scope>:``), in *generations*: a publish
writes a new generation beside the served one, then moves the ``current`` pointer to it in
one command, then drops the old one. Every read is one Lua script that reads the pointer
and the data together, so a reader sees one generation or the next, never a mix, and never
a generation half written or half dropped. Per generation:

- ``g:<gen>:answer``: hash, customer id → the answer (JSON bytes, as the service returns it);
- ``g:<gen>:features``: hash, customer id → the serving feature row (JSON bytes);
- ``g:<gen>:key``: hash, look-up key (hex of `profiles.lookup`'s keyed hash, never the
  identifier) → the customer id holding it, or ``"\0"`` and a JSON list when several do;
- ``g:<gen>:keys_of``: hash, customer id → that customer's look-up keys (what erasure deletes);
- ``g:<gen>:meta``: JSON bytes (the day the features describe, the typical values, the
  look-up settings, counts).

Erasure (`erase`) deletes a person's answer, features and keys from every generation
present, under the store's write lock like every publish, so a concurrent ``cdp score``
cannot put them back. Redis keeps no copy on disk when run as documented
(``--save '' --appendonly no``); a persistent Redis would keep erased people in its dump
until it is rewritten.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdp.errors import StoreError

BATCH = 5_000  # hash fields sent per command while publishing

# KEYS[1] = the current-generation pointer; ARGV[1] = the prefix, ARGV[2] = the hash's suffix,
# ARGV[3..] = the fields. Returns {generation, values...}, or {false} with no generation.
_READ = """
local gen = redis.call('GET', KEYS[1])
if not gen then return {false} end
local out = {gen}
if #ARGV > 2 then
  local values = redis.call('HMGET', ARGV[1] .. 'g:' .. gen .. ':' .. ARGV[2], unpack(ARGV, 3))
  for i = 1, #values do out[i + 1] = values[i] end
end
return out
"""
# The generation and its meta, together.
_META = """
local gen = redis.call('GET', KEYS[1])
if not gen then return {false} end
return {gen, redis.call('GET', ARGV[1] .. 'g:' .. gen .. ':meta')}
"""
PARTS = ("answer", "features", "key", "keys_of", "meta")
# The unrounded churn probability rides along in each published answer, so a service with
# other risk bands than `cdp score`'s defaults labels every customer exactly as it would have
# (`serving.online_store.RedisAnswers` takes it out before answering).
RAW_CHURN = "_churn_probability"


@dataclass(frozen=True)
class Generation:
    """One published generation: its id and its meta (what `publish` was given)."""

    id: str
    meta: Mapping[str, Any]


class RedisOnlineStore:
    """One store's online data on a Redis server.

    Parameters
    ----------
    url : str
        ``redis://[:password@]host:port/db`` (or ``rediss://`` for TLS).
    scope : str
        Which store the data belongs to (`training.tracking.store_scope`): several stores
        can share one Redis.
    client : optional
        A ready ``redis.Redis`` (tests); otherwise one is made from ``url``.
    """

    def __init__(self, url: str, scope: str, client=None):
        import redis

        self.url = url
        self.scope = scope
        self.prefix = f"cdp:{scope}:"
        self._redis: Any = client if client is not None else redis.Redis.from_url(url)
        self._read = self._redis.register_script(_READ)
        self._meta = self._redis.register_script(_META)

    @property
    def shown_url(self) -> str:
        """The URL without its password, for messages."""
        return _shown(self.url)

    def _key(self, generation: str, part: str) -> str:
        return f"{self.prefix}g:{generation}:{part}"

    @property
    def _pointer(self) -> str:
        return self.prefix + "current"

    @property
    def _generations(self) -> str:
        return self.prefix + "generations"

    def ping(self) -> None:
        """Raise StoreError (naming the server, not its password) when Redis does not answer."""
        import redis

        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise StoreError(f"the online store at {_shown(self.url)} does not answer ({type(exc).__name__})") from None

    def publish(self, answers: Iterable[tuple[str, bytes]], features: Iterable[tuple[str, bytes]],
                keys_of: Iterable[tuple[str, Sequence[bytes]]], meta: Mapping[str, Any]) -> str:
        """Write a new generation and serve it: the old one is dropped once the pointer moved.

        ``answers`` and ``features``: (customer id, JSON bytes); ``keys_of``: (customer id,
        its look-up keys). A key held by several customers keeps all of them (`holders`).
        A failure before the pointer moves drops the half-written generation and leaves the
        served one as it was."""
        generation = f"{time.time_ns():x}{secrets.token_hex(4)}"
        self._redis.sadd(self._generations, generation)
        try:
            self._write_hash(self._key(generation, "answer"), answers)
            self._write_hash(self._key(generation, "features"), features)
            holders: dict[str, list[str]] = {}
            owned: list[tuple[str, bytes]] = []
            for customer_id, keys in keys_of:
                hexes = list(dict.fromkeys(bytes(key).hex() for key in keys))
                owned.append((customer_id, json.dumps(hexes).encode()))
                for key in hexes:
                    holders.setdefault(key, []).append(customer_id)
            self._write_hash(self._key(generation, "keys_of"), owned)
            self._write_hash(self._key(generation, "key"), ((k, _holders_value(v)) for k, v in holders.items()))
            counted = {**meta, "customers": self._redis.hlen(self._key(generation, "answer"))}
            self._redis.set(self._key(generation, "meta"), json.dumps(counted, default=str).encode())
            previous = self._redis.getset(self._pointer, generation)
        except BaseException:
            self._drop(generation)
            raise
        if previous is not None and previous.decode() != generation:
            self._drop(previous.decode())
        return generation

    def _write_hash(self, name: str, items: Iterable[tuple[str, bytes]]) -> None:
        batch: dict[str, bytes] = {}
        for field, value in items:
            batch[field] = value
            if len(batch) >= BATCH:
                self._redis.hset(name, mapping=batch)
                batch = {}
        if batch:
            self._redis.hset(name, mapping=batch)

    def _drop(self, generation: str) -> None:
        self._redis.unlink(*(self._key(generation, part) for part in PARTS))
        self._redis.srem(self._generations, generation)

    def current(self) -> Generation | None:
        """The served generation and its meta, or None before the first publish."""
        found = self._meta(keys=[self._pointer], args=[self.prefix])
        if not found or found[0] is None or len(found) < 2 or found[1] is None:
            return None
        return Generation(found[0].decode(), json.loads(found[1]))

    def _values(self, part: str, fields: Sequence[str]) -> tuple[str | None, list[bytes | None]]:
        found = self._read(keys=[self._pointer], args=[self.prefix, part, *fields])
        if not found or found[0] is None:
            return None, [None] * len(fields)
        values = list(found[1:]) + [None] * (len(fields) - len(found) + 1)
        return found[0].decode(), values[:len(fields)]

    def answers(self, customer_ids: Sequence[str]) -> tuple[str | None, list[bytes | None]]:
        """The served generation and the answers of ``customer_ids`` (None where not held), read together."""
        return self._values("answer", customer_ids)

    def features(self, customer_ids: Sequence[str]) -> tuple[str | None, list[bytes | None]]:
        """The served generation and the feature rows of ``customer_ids`` (None where not held)."""
        return self._values("features", customer_ids)

    def holders(self, keys: Sequence[bytes]) -> list[set[str]]:
        """For each look-up key, the customers holding it (empty when none)."""
        if not keys:
            return []
        _, values = self._values("key", [bytes(key).hex() for key in keys])
        return [_holders_of(value) for value in values]

    def erase(self, customer_ids: Iterable[str]) -> int:
        """Delete these customers' answers, features and look-up keys from every generation
        present. Returns how many answers were deleted (in the served generation)."""
        ids = list(dict.fromkeys(customer_ids))
        if not ids:
            return 0
        served = self._redis.get(self._pointer)
        removed = 0
        for raw in self._redis.smembers(self._generations):
            generation = raw.decode()
            owned = self._redis.hmget(self._key(generation, "keys_of"), ids)
            keys = list(dict.fromkeys(key for value in owned if value is not None for key in json.loads(value)))
            if keys:
                # A key another customer shares stays theirs: only the erased holders go.
                gone = set(ids)
                current = self._redis.hmget(self._key(generation, "key"), keys)
                kept = {key: [c for c in _holders_of(value) if c not in gone] for key, value in zip(keys, current)}
                lost = [key for key, rest in kept.items() if not rest]
                if lost:
                    self._redis.hdel(self._key(generation, "key"), *lost)
                still = {key: _holders_value(rest) for key, rest in kept.items() if rest}
                if still:
                    self._redis.hset(self._key(generation, "key"), mapping=still)
            self._redis.hdel(self._key(generation, "keys_of"), *ids)
            self._redis.hdel(self._key(generation, "features"), *ids)
            deleted = int(self._redis.hdel(self._key(generation, "answer"), *ids))
            if served is not None and raw == served:
                removed = deleted
        return removed

    def clear(self) -> None:
        """Drop every generation and the pointer (this store's data only)."""
        for raw in self._redis.smembers(self._generations):
            self._drop(raw.decode())
        self._redis.delete(self._pointer)


def _holders_value(customer_ids: list[str]) -> bytes:
    if len(customer_ids) == 1:
        return customer_ids[0].encode()
    return b"\0" + json.dumps(customer_ids).encode()


def _holders_of(value: bytes | None) -> set[str]:
    if value is None:
        return set()
    if value.startswith(b"\0"):
        return set(json.loads(value[1:]))
    return {value.decode()}


def _shown(url: str) -> str:
    """A Redis URL without its password."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://…@{rest.split('@', 1)[1]}"
    return url
