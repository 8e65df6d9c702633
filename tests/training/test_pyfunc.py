"""`training.pyfunc.model_frame`: the types models are trained and scored with, whatever the rows' dtypes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.pyfunc import FEW_ROWS, model_frame

COLUMNS = ["recency_days", "purchase_days", "revenue_total", "email_opens", "country", "top_category"]


def rows(n: int) -> pd.DataFrame:
    """``n`` rows of every dtype a store, Ibis or a request hands over, missing values included."""
    pattern = pd.DataFrame({
        "recency_days": pd.array([3, None, 40], dtype="Int64"),
        "purchase_days": [2, 7, 1],                                              # int64
        "revenue_total": pd.array([12.5, None, 1e9], dtype="float64[pyarrow]"),
        "email_opens": [True, False, True],                                      # bool
        "country": pd.array(["PS", None, "JO"], dtype="string[pyarrow]"),
        "top_category": pd.Series(["Oil, olive", np.nan, "dates"], dtype="str"),
    })
    return pd.concat([pattern] * (n // 3 + 1), ignore_index=True).iloc[:n]


@pytest.mark.parametrize("n", [1, 3, FEW_ROWS - 1])
def test_a_few_rows_get_the_types_and_values_they_get_among_many(n):
    many = model_frame(rows(3 * FEW_ROWS), COLUMNS)
    few = model_frame(rows(n), COLUMNS)
    pd.testing.assert_frame_equal(few, many.iloc[:n])
    assert [str(d) for d in few.dtypes] == ["float64"] * 4 + ["object"] * 2
    assert few["country"].tolist()[:3] == ["PS", None, "JO"][:n]  # None, not NaN, for missing text
    assert few["recency_days"].tolist()[:2] == [3.0, pytest.approx(np.nan, nan_ok=True)][: min(n, 2)]


def test_a_missing_column_is_named():
    with pytest.raises(KeyError, match="lacks column"):
        model_frame(rows(1).drop(columns="country"), COLUMNS)
