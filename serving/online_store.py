"""The online feature store: the latest materialized feature row of every known customer.

The service keeps the store's serving snapshot (`store.snapshot.ServingSnapshot`, written
by `cdp score`) in memory behind :class:`OnlineFeatureStore`, so a networked store (Redis,
a feature server) can take its place without touching the scoring code: all it has to do
is answer :meth:`~OnlineFeatureStore.lookup` for a list of ids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import pandas as pd

from profiles.lookup import LookupSettings
from serving.identifiers import IdentifierIndex, Resolved
from store.snapshot import AS_OF_COLUMN, ID_COLUMN, LOOKUP_COLUMN, ServingSnapshot, check_frame


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
