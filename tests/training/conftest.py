"""A unified sample shop with its ground truth, shared by the training tests (built once per run)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from cdp.config import load_config
from profiles.ingest import ingest
from profiles.unify import unify
from sample import write_sample
from store.duckdb_store import Store

END = dt.date(2026, 10, 31)
N_CUSTOMERS = 4000
SEED = 5


@dataclass(frozen=True)
class Shop:
    """A sample shop after ingest and unify: its folder, store and ground truth."""

    root: Path
    store_path: Path
    end: dt.date
    persons: pd.DataFrame          # truth/persons.csv, indexed by person_id
    person_of: pd.Series           # customer_id -> the true person behind most of its records

    def connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.store_path), read_only=True)


def build_shop(root: Path, n_customers: int = N_CUSTOMERS, seed: int = SEED, end: dt.date = END) -> Shop:
    write_sample(root, n_customers=n_customers, seed=seed, end=end)
    config = load_config(root / "cdp.toml")
    with Store(config.store.path) as store:
        ingest(store, config, now=dt.datetime(2026, 11, 1), run_id="i1")
        unify(store, config, now=dt.datetime(2026, 11, 1), run_id="u1")
        linked = store.frame("SELECT source, source_key, customer_id FROM record_map WHERE customer_id IS NOT NULL")
    truth = pd.read_csv(root / "truth" / "records.csv", dtype=str, keep_default_na=False)
    merged = linked.merge(truth[["source", "source_key", "person_id"]], on=["source", "source_key"])
    merged = merged[merged["person_id"] != ""]
    person_of = (merged.groupby(["customer_id", "person_id"]).size().rename("n").reset_index()
                 .sort_values(["customer_id", "n", "person_id"], ascending=[True, False, True])
                 .drop_duplicates("customer_id").set_index("customer_id")["person_id"])
    persons = pd.read_csv(root / "truth" / "persons.csv", dtype={"person_id": str}).set_index("person_id")
    return Shop(root=root, store_path=config.store.path, end=end, persons=persons, person_of=person_of)


@pytest.fixture(scope="session")
def shop(tmp_path_factory) -> Shop:
    return build_shop(tmp_path_factory.mktemp("training-shop"))
