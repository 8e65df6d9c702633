"""Two stores hold the same rows: what the two-engine tests check after every stage."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from store.interface import open_store


def assert_same_tables(one: Path, other: Path, names: Iterable[str], ignore: Iterable[str] = ()) -> None:
    """Every table of ``names`` holds the same rows in both stores (in any order, values
    compared as text, columns in ``ignore`` left out)."""
    with open_store(one, read_only=True) as a, open_store(other, read_only=True) as b:
        for name in names:
            left, right = (s.frame(f'SELECT * FROM "{name}"') for s in (a, b))
            assert list(left.columns) == list(right.columns), name
            key = [c for c in left.columns if c not in set(ignore)]
            left, right = (f[key].astype(str).sort_values(key).reset_index(drop=True) for f in (left, right))
            pd.testing.assert_frame_equal(left, right, obj=name)
