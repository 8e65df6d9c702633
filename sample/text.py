"""Arrow text columns: the vectorized string building behind every generated file.

Every value a file holds is built here as an Arrow string array (no Python loop over
rows, no locale), so the same arguments give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def text_array(values: Sequence[str] | np.ndarray) -> pa.Array:
    """Python or numpy strings as an Arrow string array."""
    return pa.array(values, type=pa.string())


def column_text(column: pd.Series) -> pa.Array:
    """A text column of a DataFrame as one Arrow array."""
    array = pa.array(column, type=pa.string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def const(value: str, n: int) -> pa.Array:
    """``value`` repeated ``n`` times."""
    return take([value], np.zeros(n, dtype=np.int64))


def take(options: Sequence[str], index: np.ndarray) -> pa.Array:
    """``options[index]`` for every row, as an Arrow string array."""
    return text_array(list(options)).take(pa.array(np.asarray(index, dtype=np.int64)))


def cat(*parts: pa.Array | str) -> pa.Array:
    """Row-wise concatenation of text arrays and constants."""
    return pc.binary_join_element_wise(*parts, "")


def where(mask: np.ndarray | pa.Array, if_true: pa.Array | str, if_false: pa.Array | str) -> pa.Array:
    """Row-wise ``if_true`` where ``mask`` holds, else ``if_false`` (arrays or constants)."""
    condition = mask if isinstance(mask, (pa.Array, pa.ChunkedArray)) else pa.array(np.asarray(mask, dtype=bool))
    return pc.if_else(condition, if_true, if_false)


def choose(which: np.ndarray, options: Sequence[pa.Array]) -> pa.Array:
    """Row-wise ``options[which]``."""
    out = options[0]
    for k, option in enumerate(options[1:], start=1):
        out = where(which == k, option, out)
    return out


def scatter(n: int, mask: np.ndarray, values: pa.Array) -> pa.Array:
    """A length-``n`` text array holding ``values`` where ``mask`` is true, in order, else ""."""
    if not len(values):
        return const("", n)
    position = np.cumsum(mask) - 1
    return where(mask, values.take(pa.array(np.clip(position, 0, None))), "")


def int_text(values: np.ndarray) -> pa.Array:
    """Whole numbers as text."""
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def zero_padded(values: np.ndarray, width: int) -> pa.Array:
    """Whole numbers as text zero-padded to ``width`` digits."""
    return pc.utf8_lpad(int_text(values), width=width, padding="0")


def seq_ids(prefix: str, n: int, width: int) -> pa.Array:
    """``prefix`` followed by 1..n zero-padded to ``width`` digits."""
    return cat(prefix, zero_padded(np.arange(1, n + 1), width))


def money(amount: np.ndarray) -> pa.Array:
    """Non-negative amounts as text with two decimals."""
    return fixed_decimals(amount, 2)


def fixed_decimals(x: np.ndarray, decimals: int) -> pa.Array:
    """Numbers as text with a fixed number of decimals (exact, locale-free)."""
    scaled = np.rint(np.asarray(x, dtype=float) * 10**decimals).astype(np.int64)
    sign = where(scaled < 0, "-", "")
    scaled = np.abs(scaled)
    return cat(sign, int_text(scaled // 10**decimals), ".", zero_padded(scaled % 10**decimals, decimals))


def bool_text(x: np.ndarray) -> pa.Array:
    """Booleans as ``true`` / ``false``."""
    return take(["false", "true"], np.asarray(x, dtype=bool))


def dataframe(columns: Mapping[str, pa.Array | np.ndarray]) -> pd.DataFrame:
    """A DataFrame from Arrow text arrays and numpy arrays (text becomes pandas ``str``)."""
    return pa.table({k: v if isinstance(v, pa.Array) else pa.array(v) for k, v in columns.items()}).to_pandas()
