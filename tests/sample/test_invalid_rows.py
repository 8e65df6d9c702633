"""The planted invalid rows are exactly those listed in truth/expected_rejects.csv."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from cdp.config import load_config
from sample import write_sample
from tests.sample.conftest import END, SPECS, order_times_utc, read


def test_expected_rejects_are_exactly_the_invalid_order_and_event_rows(sample):
    rejects = read(sample, "truth/expected_rejects")
    assert set(rejects["problem"]) == {"bad_timestamp", "bad_amount", "negative_amount", "no_identifier"}
    for name, spec in SPECS.items():
        if spec.kind == "customers":
            continue
        frame = read(sample, name)
        ids = [c for f, c in spec.columns.items() if f in ("customer_key", "email", "phone", "external_id")]
        if spec.kind == "orders":
            bad_time = order_times_utc(frame, name).isna()
            amount = pd.to_numeric(frame[spec.columns["amount"]], errors="coerce")
            problem = pd.Series("", index=frame.index)
            problem[(frame[ids] == "").all(axis=1)] = "no_identifier"
            problem[amount < 0] = "negative_amount"
            problem[amount.isna()] = "bad_amount"
            problem[bad_time] = "bad_timestamp"
        else:
            parsed = pd.to_datetime(frame[spec.columns["timestamp"]], format="ISO8601", utc=True, errors="coerce")
            problem = pd.Series(np.where(parsed.isna(), "bad_timestamp", ""), index=frame.index)
        found = {(i + 1, p) for i, p in problem.items() if p}
        expected = rejects[rejects["source"] == name]
        assert found == set(zip(expected["row_number"].astype(int), expected["problem"])), name
        assert len(found) >= 1


@pytest.mark.slow
def test_ingest_rejects_exactly_the_expected_rows(tmp_path):
    from profiles.ingest import ingest
    from store.duckdb_store import Store

    write_sample(tmp_path, n_customers=400, seed=9, end=END)
    config = load_config(tmp_path / "cdp.toml")
    with Store(config.store.path) as store:
        ingest(store, config, now=dt.datetime(2025, 4, 1), run_id="sample-test")
        rejected = store.frame("SELECT source, row_number FROM rejects")
    expected = read(tmp_path, "truth/expected_rejects")
    assert set(zip(rejected["source"], rejected["row_number"].astype(int))) == set(
        zip(expected["source"], expected["row_number"].astype(int)))
