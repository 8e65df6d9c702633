"""Shared by the tests of the sample-data generator: one sample, and readers of its files.

One sample of 1,500 persons is written once for the package; each test reads the files as
a user of them would (CSV text, cdp.toml) and compares what it sees with ``truth/``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import phonenumbers
import pytest

from sample import SOURCE_SPECS, write_sample

END = dt.date(2025, 3, 31)
N_PERSONS = 1500
SPECS = {s.name: s for s in SOURCE_SPECS}
ORDER_SOURCES = [s.name for s in SOURCE_SPECS if s.kind == "orders"]


@pytest.fixture(scope="package")
def sample(tmp_path_factory) -> Path:
    """The sample every test of the package reads (written once)."""
    out = tmp_path_factory.mktemp("sample")
    write_sample(out, n_customers=N_PERSONS, seed=5, end=END)
    return out


def read(sample: Path, name: str) -> pd.DataFrame:
    """A source or truth file exactly as written: all text, empty cells as ""."""
    path = sample / f"{name}.csv"
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def source_with_truth(sample: Path, name: str) -> pd.DataFrame:
    """A source's rows with their true person and journey (from truth/records.csv)."""
    frame = read(sample, name)
    records = read(sample, "truth/records")
    records = records[records["source"] == name].reset_index(drop=True)
    assert (records["source_key"].to_numpy() == frame.iloc[:, 0].to_numpy()).all()
    return frame.assign(person_id=records["person_id"].to_numpy(), journey_id=records["journey_id"].to_numpy(),
                        row_number=records["row_number"].astype(int).to_numpy())


def rejected_rows(sample: Path, name: str) -> set[int]:
    rejects = read(sample, "truth/expected_rejects")
    return set(rejects.loc[rejects["source"] == name, "row_number"].astype(int))


def order_times_utc(frame: pd.DataFrame, name: str) -> pd.Series:
    """Order timestamps as UTC instants, read the way cdp.toml describes them (NaT if unreadable)."""
    spec = SPECS[name]
    text = frame[spec.columns["timestamp"]]
    if "timestamp_format" in spec.options:
        local = pd.to_datetime(text, format=spec.options["timestamp_format"], errors="coerce")
        return local.dt.tz_localize(spec.options["timezone"], nonexistent="shift_forward",
                                    ambiguous="NaT").dt.tz_convert("UTC")
    return pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")


def order_local_dates(frame: pd.DataFrame, name: str) -> pd.Series:
    """The shop-local calendar day of each order as written (web: the offset's wall clock)."""
    text = frame[SPECS[name].columns["timestamp"]]
    if name == "pos_receipts":
        return pd.to_datetime(text.str.slice(0, 8), format="%Y%m%d", errors="coerce")
    return pd.to_datetime(text.str.slice(0, 10), format="%Y-%m-%d", errors="coerce")


def all_orders(sample: Path) -> pd.DataFrame:
    """Valid purchases (not returns, not expected rejects) of both order sources, with person and day."""
    parts = []
    for name in ORDER_SOURCES:
        frame = source_with_truth(sample, name)
        is_return = frame[SPECS[name].columns["is_return"]].isin(["true", "1"])
        valid = ~frame["row_number"].isin(rejected_rows(sample, name))
        frame = frame.assign(day=order_local_dates(frame, name), at=order_times_utc(frame, name), source=name)
        parts.append(frame.loc[valid & ~is_return, ["source", "person_id", "journey_id", "day", "at"]])
    return pd.concat(parts, ignore_index=True)


def persons(sample: Path) -> pd.DataFrame:
    frame = read(sample, "truth/persons")
    for column in ("first_seen_date", "first_purchase_date", "death_date"):
        frame[column] = pd.to_datetime(frame[column])
    frame["purchase_rate_per_day"] = frame["purchase_rate_per_day"].astype(float)
    return frame


def normalize_identifier(name: str, field: str, value: str) -> str:
    """A plain normalization of identifiers: the least a resolver must do."""
    if field == "email":
        return "email:" + value.strip().lower()
    if field == "phone":
        number = phonenumbers.parse(value, SPECS[name].options.get("default_phone_region"))
        return "phone:" + phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if field == "customer_key":
        return f"key:{SPECS[name].options.get('customer_key_namespace', name)}:{value}"
    return f"{field}:{value}"

