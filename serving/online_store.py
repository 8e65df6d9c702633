"""The online feature store: the latest materialized feature row of every known customer.

The service keeps the store's serving snapshot (`store.snapshot.ServingSnapshot`, written
by `cdp score`) in memory behind :class:`OnlineFeatureStore`, so a networked store (Redis,
a feature server) can take its place without touching the scoring code: all it has to do
is answer :meth:`~OnlineFeatureStore.lookup` for a list of ids.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from cdp.errors import StoreError
from profiles.lookup import LookupSettings
from serving.identifiers import IdentifierIndex, Resolved, resolve_identifier
from store.online_redis import RAW_CHURN, Generation, RedisOnlineStore
from store.snapshot import AS_OF_COLUMN, ID_COLUMN, LOOKUP_COLUMN, ServingSnapshot, check_frame
from training.risk_bands import BAND_LABELS, ChurnRiskBands


@runtime_checkable
class OnlineFeatureStore(Protocol):
    """Feature rows by customer id."""

    @property
    def features_as_of(self) -> dt.date:
        """The day the features describe (data up to and including it)."""

    def __len__(self) -> int:
        """How many customers the store knows."""

    def lookup(self, customer_ids: list[str]) -> pd.DataFrame:
        """The rows of the ids the store knows, in the order asked (unknown ids are left out).

        Columns: ``customer_id``, ``features_as_of`` and every feature column.
        """

    def resolve(self, field: str, value: str, source: str | None = None) -> Resolved:
        """The customer an identifier an app knows names (`serving.identifiers`), or why none."""


class InMemoryFeatureStore:
    """An :class:`OnlineFeatureStore` held in a pandas frame with a hashed id index.

    Read-only after construction, so any number of request threads may share it; a
    newer snapshot is a new object, swapped in whole.

    Parameters
    ----------
    frame : DataFrame
        One row per customer with ``customer_id`` and ``features_as_of`` columns.
    keys : sequence of lists of bytes, optional
        Each row's look-up keys (`profiles.lookup`), aligned with ``frame``; without them
        customers are found by their current customer id only.
    settings : LookupSettings, optional
        How an app's identifiers become keys.
    """

    def __init__(self, frame: pd.DataFrame, keys: Sequence | None = None, settings: LookupSettings | None = None):
        check_frame(frame)
        self._frame = frame.reset_index(drop=True)
        self._index = pd.Index(frame[ID_COLUMN].astype(str).to_numpy(), dtype=object)
        self._as_of = pd.to_datetime(frame[AS_OF_COLUMN]).dt.date.iloc[0]
        self._keys = list(keys) if keys is not None and settings is not None else None
        self._settings = settings
        self._identifiers = (IdentifierIndex(self._index, self._keys, settings)
                             if self._keys is not None and settings is not None else None)

    @classmethod
    def from_parquet(cls, path: Path) -> InMemoryFeatureStore:
        """Read a snapshot written by `cdp score` (`store.snapshot.ServingSnapshot.read`: a
        StoreError naming the file, never its content, when it is missing or unreadable),
        with its look-up keys when it has them."""
        snapshot = ServingSnapshot(path)
        frame = snapshot.read(lookup=True)
        settings = snapshot.lookup_settings()
        if LOOKUP_COLUMN not in frame or settings is None:
            return cls(frame.drop(columns=[LOOKUP_COLUMN], errors="ignore"))
        keys = frame.pop(LOOKUP_COLUMN).tolist()
        return cls(frame, keys, LookupSettings.from_json(settings))

    @property
    def features_as_of(self) -> dt.date:
        return self._as_of

    def __len__(self) -> int:
        return len(self._frame)

    def all_rows(self) -> pd.DataFrame:
        """Every row (read-only): what the service scores in one pass when models or features change."""
        return self._frame

    def ids(self) -> set[str]:
        """Every customer id the snapshot holds."""
        return set(self._index)

    def only(self, customer_ids: set[str]) -> InMemoryFeatureStore | None:
        """The rows of ``customer_ids`` only, as a new store (None when none are left)."""
        mask = self._index.isin(customer_ids)
        kept = self._frame[mask]
        keys = [k for k, keep in zip(self._keys, mask) if keep] if self._keys is not None else None
        return InMemoryFeatureStore(kept, keys, self._settings) if len(kept) else None

    def resolve(self, field: str, value: str, source: str | None = None) -> Resolved:
        if field == "customer_id" and value.strip() in self._index:
            return Resolved(value.strip(), 200, "")
        if self._identifiers is None:
            if field == "customer_id":
                return Resolved(None, 404, "no customer with that customer id in the feature snapshot")
            return Resolved(None, 503, "the feature snapshot has no look-up keys (it predates them): run `cdp score` "
                                       "or `cdp features --materialize` to rewrite it")
        return self._identifiers.resolve(field, value, source)

    def lookup(self, customer_ids: list[str]) -> pd.DataFrame:
        positions = self._index.get_indexer(pd.Index(customer_ids, dtype=object))
        return self._frame.iloc[positions[positions >= 0]].reset_index(drop=True)


class RedisFeatureStore:
    """An :class:`OnlineFeatureStore` over one published generation of a shared online store
    (`store.online_redis`, written by `cdp score` through `serving.publish`): nothing is held
    in the worker, every look-up is one round trip, so any number of workers share one copy."""

    def __init__(self, online: RedisOnlineStore, generation: Generation):
        self._online = online
        self.generation = generation
        self._as_of = dt.date.fromisoformat(str(generation.meta["features_as_of"]))
        lookup = generation.meta.get("lookup")
        self._settings = LookupSettings.from_json(lookup) if lookup else None

    @property
    def features_as_of(self) -> dt.date:
        return self._as_of

    def __len__(self) -> int:
        return int(self.generation.meta.get("customers", 0))

    def resolve(self, field: str, value: str, source: str | None = None) -> Resolved:
        if field == "customer_id":
            _, found = self._online.features([value.strip()])
            if found[0] is not None:
                return Resolved(value.strip(), 200, "")
        if self._settings is None:
            if field == "customer_id":
                return Resolved(None, 404, "no customer with that customer id in the feature snapshot")
            return Resolved(None, 503, "the online store has no look-up keys: run `cdp score` to publish them")
        return resolve_identifier(self._settings, self._online.holders, field, value, source)

    def lookup(self, customer_ids: list[str]) -> pd.DataFrame:
        _, rows = self._online.features(customer_ids)
        records = [{ID_COLUMN: customer_id, AS_OF_COLUMN: pd.Timestamp(self._as_of), **json.loads(row)}
                   for customer_id, row in zip(customer_ids, rows) if row is not None]
        return pd.DataFrame(records)


class RedisAnswers:
    """The published answers of a shared online store, read per request (the in-memory service's
    `serving.answers.AnswerTable` has the same ``answers`` and ``typical``). Each answer's
    churn risk is labelled with this service's bands, from the unrounded probability
    published beside it."""

    def __init__(self, online: RedisOnlineStore, generation: Generation, bands: ChurnRiskBands):
        self._online = online
        self._bands = bands
        self.typical: dict[str, float] = dict(generation.meta.get("typical") or {})
        self._customers = int(generation.meta.get("customers", 0))

    def __len__(self) -> int:
        return self._customers

    def answers(self, customer_ids: Iterable[str]) -> tuple[list[dict], list[str]]:
        """The answers held (in the order asked, repeats once) and the ids not held."""
        wanted = list(dict.fromkeys(customer_ids))
        if not wanted:
            return [], []
        _, values = self._online.answers(wanted)
        found, missing = [], []
        for customer_id, value in zip(wanted, values):
            if value is None:
                missing.append(customer_id)
                continue
            answer = json.loads(value)
            raw = answer.pop(RAW_CHURN, None)
            codes = self._bands.codes(np.array([np.nan if raw is None else raw], dtype="float64"))
            answer["churn_risk"] = BAND_LABELS[codes[0]]
            found.append(answer)
        return found, missing

    def answer(self, customer_id: str) -> dict | None:
        found, _ = self.answers([customer_id])
        return found[0] if found else None


class RedisServing:
    """What `serving.state.ServingState` needs to serve a shared online store instead of a
    snapshot file: its ``stamp`` (the published generation), how to ``open`` it, and its
    answers (``answers``, in place of scoring every customer at start-up)."""

    def __init__(self, online: RedisOnlineStore, bands: ChurnRiskBands):
        self.online = online
        self.bands = bands
        self._generation: Generation | None = None

    def stamp(self) -> str | None:
        self._generation = self.online.current()
        return self._generation.id if self._generation is not None else None

    def open(self, _path: Path | None = None) -> RedisFeatureStore:
        generation = self._generation or self.online.current()
        if generation is None:
            raise StoreError("nothing is published to the online store yet: run `cdp score`")
        return RedisFeatureStore(self.online, generation)

    def answers(self, models, features: OnlineFeatureStore) -> RedisAnswers:
        generation = features.generation if isinstance(features, RedisFeatureStore) else self._generation
        if generation is None:
            raise StoreError("nothing is published to the online store yet: run `cdp score`")
        return RedisAnswers(self.online, generation, self.bands)
