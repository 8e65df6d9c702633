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

    def write(self, features: pd.DataFrame, as_of: dt.date, stamp: str = "") -> None:
        """``features`` with ``features_as_of`` after the id column, atomically.

        ``stamp`` (the store's materialized snapshot it copies, `features.materialized`) is
        kept in the file's metadata, so a later `cdp score` of the same snapshot knows the
        file is current (`stamp`).
        """
        frame = features.copy(deep=False)
        frame.insert(1, AS_OF_COLUMN, pd.Timestamp(as_of))
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), STAMP_KEY: stamp.encode()})
        self._replace(table, "writing")

    def stamp(self) -> str | None:
        """The materialized snapshot the file copies ("" if none), None without a readable file."""
        try:
            metadata = pq.read_schema(self.path).metadata or {}
        except (OSError, pa.ArrowException):
            return None
        return metadata.get(STAMP_KEY, b"").decode()

    def read(self) -> pd.DataFrame:
        """Every row, checked: an id and an as-of column, each id once, one as-of day.

        Raises StoreError naming the file (never its content) when it is missing, unreadable
        or not one snapshot.
        """
        if not self.path.exists():
            raise StoreError(f"no feature snapshot at {self.path}: run `cdp score` to write it")
        try:
            frame = pq.read_table(self.path).to_pandas()
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
        return table.filter(self._holding(table, customer_ids)).to_pandas()

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
