"""The serving snapshot: the feature row of every customer the scoring service answers for.

One Parquet file beside the store (``online_features.parquet``), one row per customer:
``customer_id``, ``features_as_of`` and the feature table the models read. One class owns
it: `cdp score` and `cdp features --materialize` write it, the service and the churn lists
read it (checked the same way for both), `cdp export` reads a person's rows from it and
`cdp forget` rewrites it without them. Every write goes to a temporary file beside it,
then over it with ``os.replace``: the service, which polls the file, never sees half of one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdp.errors import StoreError

ID_COLUMN = "customer_id"
AS_OF_COLUMN = "features_as_of"
SNAPSHOT_FILE = "online_features.parquet"
STAMP_KEY = b"cdp.materialized"  # Parquet metadata: which materialized snapshot the rows are
LOOKUP_COLUMN = "lookup_keys"  # each customer's look-up keys (`profiles.lookup`), never a model input
LOOKUP_KEY = b"cdp.lookup"  # Parquet metadata: how an app's identifiers become look-up keys (JSON)


class ServingSnapshot:
    """The snapshot file at ``path``: write, read, stamp, a person's rows, and a copy without people."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def beside(cls, store_path: Path) -> ServingSnapshot:
        """The snapshot of the store at ``store_path``: `SNAPSHOT_FILE` in its folder."""
        return cls(Path(store_path).with_name(SNAPSHOT_FILE))

    def exists(self) -> bool:
        return self.path.exists()

    def write(self, features: pd.DataFrame, as_of: dt.date, stamp: str = "",
              lookup: tuple[pd.Series, dict] | None = None) -> None:
        """``features`` with ``features_as_of`` after the id column, atomically.

        ``stamp`` (the store's materialized snapshot it copies, `features.materialized`) is
        kept in the file's metadata, so a later `cdp score` of the same snapshot knows the
        file is current (`stamp`). ``lookup`` (customer id → look-up keys, and the JSON
        settings to match an app's identifiers: `profiles.lookup`) adds each row's keys as
        `LOOKUP_COLUMN`; they go with the row, so `stage_without` removes them with it.
        """
        frame = features.copy(deep=False)
        frame.insert(1, AS_OF_COLUMN, pd.Timestamp(as_of))
        metadata = {STAMP_KEY: stamp.encode()}
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if lookup is not None:
            keys, settings = lookup
            mapped = frame[ID_COLUMN].astype(str).map(keys)
            values = [k if isinstance(k, list) else None for k in mapped.tolist()]
            table = table.append_column(LOOKUP_COLUMN, pa.array(values, pa.list_(pa.binary())))
            metadata[LOOKUP_KEY] = json.dumps(settings).encode()
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
        self._replace(table, "writing")

    def lookup_settings(self) -> dict | None:
        """The JSON settings the file's look-up keys were made with, None without them."""
        try:
            metadata = pq.read_schema(self.path).metadata or {}
        except (OSError, pa.ArrowException):
            return None
        raw = metadata.get(LOOKUP_KEY)
        return json.loads(raw) if raw else None

    def stamp(self) -> str | None:
        """The materialized snapshot the file copies ("" if none), None without a readable file."""
        try:
            metadata = pq.read_schema(self.path).metadata or {}
        except (OSError, pa.ArrowException):
            return None
        return metadata.get(STAMP_KEY, b"").decode()

    def read(self, lookup: bool = False) -> pd.DataFrame:
        """Every row, checked: an id and an as-of column, each id once, one as-of day. The
        look-up keys (`LOOKUP_COLUMN`) only when ``lookup`` is asked for (the service's index).

        Raises StoreError naming the file (never its content) when it is missing, unreadable
        or not one snapshot.
        """
        if not self.path.exists():
            raise StoreError(f"no feature snapshot at {self.path}: run `cdp score` to write it")
        try:
            table = pq.read_table(self.path)
            if not lookup and LOOKUP_COLUMN in table.column_names:
                table = table.drop_columns([LOOKUP_COLUMN])
            frame = table.to_pandas()
        except Exception as exc:  # noqa: BLE001 - any reader failure is "unreadable" to the caller
            raise StoreError(f"feature snapshot {self.path} cannot be read ({type(exc).__name__}): rewrite it with "
                             "`cdp score`") from None
        check_frame(frame)
        return frame

    def rows_of(self, customer_ids: tuple[str, ...]) -> pd.DataFrame:
        """The rows of ``customer_ids`` (a person's, for `cdp export`); none without a file."""
        if not self.path.exists():
            return pd.DataFrame()
        table = pq.read_table(self.path)
        rows = table.filter(self._holding(table, customer_ids)).to_pandas()
        if LOOKUP_COLUMN in rows:  # digests of their identifiers, shown as hex
            rows[LOOKUP_COLUMN] = rows[LOOKUP_COLUMN].map(lambda keys: [k.hex() for k in keys] if keys is not None
                                                          else [])
        return rows

    def stage_without(self, customer_ids: tuple[str, ...]) -> tuple[Path | None, int]:
        """The snapshot without ``customer_ids``, written beside it under a temporary name,
        and the rows removed; nothing is staged when there is no file or it holds none of
        them. `commit` moves the staged file over the snapshot (after the store's erasure
        has committed); the caller removes it if the erasure fails."""
        if not self.path.exists():
            return None, 0
        table = pq.read_table(self.path)
        erased = self._holding(table, customer_ids)
        removed = int(pc.sum(erased).as_py() or 0)
        if not removed:
            return None, 0
        staged = self._staged("erasing")
        pq.write_table(table.filter(pc.invert(erased)), staged)
        return staged, removed

    def commit(self, staged: Path) -> None:
        """Move a file `stage_without` wrote over the snapshot."""
        os.replace(staged, self.path)

    @staticmethod
    def _holding(table: pa.Table, customer_ids: tuple[str, ...]) -> pa.ChunkedArray:
        return pc.is_in(table[ID_COLUMN].cast(pa.string()), value_set=pa.array(list(customer_ids), pa.string()))

    def _staged(self, why: str) -> Path:
        return self.path.with_name(f".{self.path.name}.{why}-{os.getpid()}")

    def _replace(self, table: pa.Table, why: str) -> None:
        staged = self._staged(why)
        try:
            pq.write_table(table, staged)
            os.replace(staged, self.path)
        finally:
            staged.unlink(missing_ok=True)


def check_frame(frame: pd.DataFrame) -> None:
    """A snapshot's rows are one snapshot: id and as-of columns, each id once, one as-of day."""
    for column in (ID_COLUMN, AS_OF_COLUMN):
        if column not in frame.columns:
            raise StoreError(f"the feature snapshot has no {column!r} column: rewrite it with `cdp score`")
    if frame[ID_COLUMN].astype(str).duplicated().any():
        raise StoreError("the feature snapshot lists a customer_id twice: rewrite it with `cdp score`")
    days = pd.to_datetime(frame[AS_OF_COLUMN]).dt.date.unique()
    if len(days) != 1:
        raise StoreError(f"the feature snapshot mixes {len(days)} as-of days; expected one: rewrite it with "
                         "`cdp score`")
