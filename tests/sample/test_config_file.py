"""The cdp.toml written beside the sources loads and describes every file."""

from __future__ import annotations

from cdp.config import load_config
from sample import STORE_TIMEZONE
from tests.sample.conftest import SPECS, read


def test_config_loads_and_every_mapped_column_is_in_its_file(sample):
    config = load_config(sample / "cdp.toml")
    assert [s.name for s in config.sources] == list(SPECS)
    assert config.store.path == sample / "cdp.duckdb"
    for source in config.sources:
        assert source.path == sample / f"{source.name}.csv"
        header = read(sample, source.name).columns
        missing = [c for c in source.columns.values() if c not in header]
        assert not missing, (source.name, missing)
    pos = config.source("pos_receipts")
    assert (pos.timestamp_format, pos.timezone, pos.default_phone_region) == ("%Y%m%d %H:%M", STORE_TIMEZONE, "PS")
    assert config.source("ad_touchpoints").key_namespace == "crm_customers"
