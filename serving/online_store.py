"""The online feature store: the latest materialized feature row of every known customer.

`cdp score` and `cdp features --materialize` write ``online_features.parquet`` next to
the DuckDB store (`write_snapshot_file`): one row per customer, the feature table the
models read plus ``features_as_of``. The service keeps
it in memory behind :class:`OnlineFeatureStore`, so a networked store (Redis, a feature
server) can take its place without touching the scoring code: all it has to do is
answer :meth:`~OnlineFeatureStore.lookup` for a list of ids.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cdp.errors import StoreError

ID_COLUMN = "customer_id"
AS_OF_COLUMN = "features_as_of"
SNAPSHOT_FILE = "online_features.parquet"
STAMP_KEY = b"cdp.materialized"  # Parquet metadata: which materialized snapshot the rows are


def snapshot_path(store_path: Path) -> Path:
    """Where `cdp score` writes the snapshot the service reads: beside the DuckDB store."""
    return Path(store_path).with_name(SNAPSHOT_FILE)


def write_snapshot_file(features: pd.DataFrame, as_of: dt.date, path: Path, stamp: str = "") -> None:
    """Write the serving snapshot: ``features`` with ``features_as_of`` after the id column.

    Written beside ``path`` under a temporary name, then moved over it: the service, which
    polls the file, never reads a half-written one. ``stamp`` (the store's materialized
    snapshot it copies, `features.materialized`) is kept in the file's metadata, so a
    later `cdp score` of the same snapshot knows the file is current (`snapshot_stamp`).
    """
    frame = features.copy(deep=False)
    frame.insert(1, AS_OF_COLUMN, pd.Timestamp(as_of))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), STAMP_KEY: stamp.encode()})
    path = Path(path)
    staged = path.with_name(f".{path.name}.writing-{os.getpid()}")
    try:
        pq.write_table(table, staged)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


def snapshot_stamp(path: Path) -> str | None:
    """The materialized snapshot a serving snapshot file copies ("" if none), None without a readable file."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return None
    return metadata.get(STAMP_KEY, b"").decode()


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


class InMemoryFeatureStore:
    """An :class:`OnlineFeatureStore` held in a pandas frame with a hashed id index.

    Read-only after construction, so any number of request threads may share it; a
    newer snapshot is a new object, swapped in whole.

    Parameters
    ----------
    frame : DataFrame
        One row per customer with ``customer_id`` and ``features_as_of`` columns.
    """

    def __init__(self, frame: pd.DataFrame):
        for column in (ID_COLUMN, AS_OF_COLUMN):
            if column not in frame.columns:
                raise StoreError(f"the feature snapshot has no {column!r} column: rewrite it with `cdp score`")
        ids = frame[ID_COLUMN].astype(str)
        if ids.duplicated().any():
            raise StoreError("the feature snapshot lists a customer_id twice: rewrite it with `cdp score`")
        days = pd.to_datetime(frame[AS_OF_COLUMN]).dt.date.unique()
        if len(days) != 1:
            raise StoreError(f"the feature snapshot mixes {len(days)} as-of days; expected one: rewrite it with "
                             "`cdp score`")
        self._frame = frame.reset_index(drop=True)
        self._index = pd.Index(ids.to_numpy(), dtype=object)
        self._as_of = days[0]

    @classmethod
    def from_parquet(cls, path: Path) -> InMemoryFeatureStore:
        """Read a snapshot written by `cdp score`.

        Raises
        ------
        StoreError
            The file is missing or unreadable (the message names it, never its content).
        """
        path = Path(path)
        if not path.exists():
            raise StoreError(f"no feature snapshot at {path}: run `cdp score` to write it")
        try:
            frame = pq.read_table(path).to_pandas()
        except Exception as exc:  # noqa: BLE001 - any reader failure is "unreadable" to the caller
            raise StoreError(f"feature snapshot {path} cannot be read ({type(exc).__name__}): rewrite it with "
                             "`cdp score`") from None
        return cls(frame)

    @property
    def features_as_of(self) -> dt.date:
        return self._as_of

    def __len__(self) -> int:
        return len(self._frame)

    def all_rows(self) -> pd.DataFrame:
        """Every row (read-only): what the service scores in one pass when models or features change."""
        return self._frame

    def lookup(self, customer_ids: list[str]) -> pd.DataFrame:
        positions = self._index.get_indexer(pd.Index(customer_ids, dtype=object))
        return self._frame.iloc[positions[positions >= 0]].reset_index(drop=True)
