"""The serving snapshot: one class writes, reads, stamps it, and rewrites it without people."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from cdp.errors import StoreError
from store.snapshot import SNAPSHOT_FILE, ServingSnapshot

AS_OF = dt.date(2026, 10, 31)


def features(ids=("c1", "c2", "c3")) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": list(ids), "recency_days": [float(i) for i in range(len(ids))]})


def test_written_rows_read_back_with_the_as_of_day_after_the_id_and_the_stamp_in_the_metadata(tmp_path):
    snapshot = ServingSnapshot.beside(tmp_path / "cdp.duckdb")
    assert snapshot.path == tmp_path / SNAPSHOT_FILE and not snapshot.exists() and snapshot.stamp() is None
    snapshot.write(features(), AS_OF, stamp="materialized-7")
    read = snapshot.read()
    assert list(read.columns) == ["customer_id", "features_as_of", "recency_days"]
    assert read["customer_id"].tolist() == ["c1", "c2", "c3"]
    assert (read["features_as_of"] == pd.Timestamp(AS_OF)).all()
    assert snapshot.stamp() == "materialized-7"
    snapshot.write(features(), AS_OF)
    assert snapshot.stamp() == ""
    assert [p.name for p in tmp_path.iterdir()] == [SNAPSHOT_FILE]  # no temporary file left


def test_a_persons_rows_are_found_and_a_copy_without_them_replaces_the_file_only_on_commit(tmp_path):
    snapshot = ServingSnapshot(tmp_path / SNAPSHOT_FILE)
    assert snapshot.rows_of(("c2",)).empty and snapshot.stage_without(("c2",)) == (None, 0)
    snapshot.write(features(), AS_OF)
    assert snapshot.rows_of(("c2", "nobody"))["customer_id"].tolist() == ["c2"]
    assert snapshot.stage_without(("nobody",)) == (None, 0)
    staged, removed = snapshot.stage_without(("c2", "c3"))
    assert removed == 2 and staged.exists()
    assert snapshot.read()["customer_id"].tolist() == ["c1", "c2", "c3"]  # untouched until the commit
    snapshot.commit(staged)
    after = snapshot.read()
    assert after["customer_id"].tolist() == ["c1"] and after["recency_days"].tolist() == [0.0]
    assert not staged.exists()


def test_a_missing_unreadable_or_mixed_file_is_refused_by_name_never_by_content(tmp_path):
    with pytest.raises(StoreError, match="no feature snapshot at .*run `cdp score`"):
        ServingSnapshot(tmp_path / "none.parquet").read()
    (tmp_path / "bad.parquet").write_text("c1,omar@example.com")
    with pytest.raises(StoreError, match="cannot be read") as caught:
        ServingSnapshot(tmp_path / "bad.parquet").read()
    assert "omar" not in str(caught.value)
    twice = ServingSnapshot(tmp_path / "twice.parquet")
    twice.write(features(("c1", "c1")), AS_OF)
    with pytest.raises(StoreError, match="lists a customer_id twice"):
        twice.read()
