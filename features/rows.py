"""Feature rows as a frame or as plain columns: the few helpers both kinds answer the same.

Scoring many customers passes pandas frames. Scoring one (``/score_features``) passes
`Columns`: a mapping of column name to a NumPy array, one value per row, already
model-ready (float64 numbers with NaN for missing, object text with ``None`` for missing;
`training.pyfunc.model_frame`'s types). A pandas operation costs tens of microseconds
whatever the size, and one row went through about two hundred of them; the estimators read
either kind through these helpers, so batch and one row run the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Union

import numpy as np
import pandas as pd

Columns = Mapping[str, np.ndarray]
Rows = Union[pd.DataFrame, Columns]


def is_frame(rows: Rows) -> bool:
    return isinstance(rows, pd.DataFrame)


def row_count(rows: Rows) -> int:
    """How many rows (a frame's length; a mapping's column length, 0 without columns)."""
    if isinstance(rows, pd.DataFrame):
        return len(rows)
    for values in rows.values():
        return len(values)
    return 0


def has_column(rows: Rows, name: str) -> bool:
    return name in rows.columns if isinstance(rows, pd.DataFrame) else name in rows


def column_names(rows: Rows) -> list[str]:
    return [str(c) for c in rows.columns] if isinstance(rows, pd.DataFrame) else list(rows)


def values(rows: Rows, name: str) -> np.ndarray:
    """One column as a NumPy array (a frame's ``to_numpy()``, as it is)."""
    return rows[name].to_numpy() if isinstance(rows, pd.DataFrame) else np.asarray(rows[name])


def floats(rows: Rows, name: str) -> np.ndarray:
    """One numeric column as float64, missing as NaN (a frame's column through
    ``astype("float64")``, which reads nullable and Arrow numbers too)."""
    if isinstance(rows, pd.DataFrame):
        return rows[name].astype("float64").to_numpy()
    return np.asarray(rows[name], dtype=np.float64)


def as_numbers(given) -> np.ndarray:
    """An array as float64, anything not a number NaN."""
    given = np.asarray(given)
    if given.dtype.kind in "fiu":
        return given.astype(np.float64, copy=False)
    return pd.to_numeric(pd.Series(given, dtype=object), errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def has_number(rows: Rows, name: str) -> np.ndarray:
    """Which rows hold a number in column ``name`` (``recency_days``: who has bought)."""
    if isinstance(rows, pd.DataFrame):
        return pd.to_numeric(rows[name], errors="coerce").notna().to_numpy()
    return ~np.isnan(np.asarray(rows[name], dtype=np.float64))


def where(rows: Rows, mask: np.ndarray) -> Rows:
    """The rows where ``mask`` holds (a frame keeps its index)."""
    if isinstance(rows, pd.DataFrame):
        return rows[mask]
    return {name: np.asarray(column)[mask] for name, column in rows.items()}


def select(rows: Rows, names: Sequence[str]) -> Rows:
    """Only the columns ``names``, in that order."""
    if isinstance(rows, pd.DataFrame):
        return rows[list(names)]
    return {name: rows[name] for name in names}


def as_frame(rows: Rows, index: pd.Index | None = None) -> pd.DataFrame:
    """A frame of the rows (a frame as it is): for the pandas steps many rows go through."""
    if isinstance(rows, pd.DataFrame):
        return rows
    return pd.DataFrame(dict(rows), index=index if index is not None else pd.RangeIndex(row_count(rows)))


def index_of(rows: Rows) -> pd.Index:
    """A frame's index, or 0 .. n-1 for columns."""
    return rows.index if isinstance(rows, pd.DataFrame) else pd.RangeIndex(row_count(rows))
