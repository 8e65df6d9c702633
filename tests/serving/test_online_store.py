"""The in-memory online store: rows by id, in the order asked, and clear errors for a bad snapshot."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from cdp.errors import StoreError
from serving.online_store import InMemoryFeatureStore, OnlineFeatureStore


def frame(ids=("c1", "c2", "c3"), days=("2026-10-31",) * 3) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": list(ids), "features_as_of": pd.to_datetime(list(days)),
                         "recency_days": [1.0, 2.0, 3.0][:len(ids)]})


def test_lookup_returns_known_rows_in_the_order_asked_and_leaves_out_the_unknown():
    store = InMemoryFeatureStore(frame())
    assert isinstance(store, OnlineFeatureStore)
    rows = store.lookup(["c3", "nobody", "c1", "c3"])
    assert rows["customer_id"].tolist() == ["c3", "c1", "c3"]
    assert rows["recency_days"].tolist() == [3.0, 1.0, 3.0]
    assert store.lookup(["nobody"]).empty and len(store) == 3
    assert store.features_as_of == dt.date(2026, 10, 31)


@pytest.mark.parametrize(("table", "message"), [
    (frame(ids=("c1", "c1", "c2")), "lists a customer_id twice"),
    (frame(days=("2026-10-31", "2026-10-31", "2026-09-30")), "mixes 2 as-of days"),
    (frame().drop(columns="features_as_of"), "no 'features_as_of' column"),
])
def test_a_snapshot_that_is_not_one_row_per_customer_of_one_day_is_refused(table, message):
    with pytest.raises(StoreError, match=message):
        InMemoryFeatureStore(table)


def test_a_missing_or_unreadable_file_says_to_run_cdp_score(tmp_path):
    with pytest.raises(StoreError, match="no feature snapshot at .*run `cdp score`"):
        InMemoryFeatureStore.from_parquet(tmp_path / "online_features.parquet")
    (tmp_path / "bad.parquet").write_text("c1,omar@example.com")
    with pytest.raises(StoreError, match="cannot be read") as caught:
        InMemoryFeatureStore.from_parquet(tmp_path / "bad.parquet")
    assert "omar" not in str(caught.value)
