"""`cdp features` end to end on a small generated shop: the table, labels, and clear errors."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from typer.testing import CliRunner

from cdp.cli import app
from features.catalog import catalog
from features.labels import LABEL_COLUMNS
from sample import write_sample

runner = CliRunner()


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    write_sample(root, n_customers=300, seed=9, end=dt.date(2026, 10, 31))
    for command in ("ingest", "unify"):
        result = runner.invoke(app, [command, "--config", str(root / "cdp.toml")])
        assert result.exit_code == 0, result.output
    return root


def test_features_as_of_a_day_write_one_row_per_known_customer(shop):
    out = shop / "features.parquet"
    result = runner.invoke(app, ["features", "--config", str(shop / "cdp.toml"), "--as-of", "2026-06-30",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert list(table.columns) == ["customer_id"] + [s.name for s in catalog()]
    assert table["customer_id"].is_unique
    assert f"{len(table):,} customers" in result.output


def test_a_label_horizon_makes_a_training_snapshot_of_buyers(shop):
    out = shop / "snapshot.csv"
    result = runner.invoke(app, ["features", "--config", str(shop / "cdp.toml"), "--as-of", "2026-03-31",
                                 "--label-horizon-days", "90", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert set(LABEL_COLUMNS) <= set(table.columns)
    assert table["recency_days"].notna().all()              # every labelled customer had bought
    assert 0 < table["purchased_in_horizon"].mean() < 1


@pytest.mark.parametrize("arguments, message", [
    (["--as-of", "2026-02-30", "--out", "x.parquet"], "--as-of '2026-02-30' is not a date"),
    (["--as-of", "2026-06-30", "--out", "x.xlsx"], "use a .parquet or .csv file name"),
    (["--as-of", "2026-06-30", "--out", "x.csv", "--engine", "flink"], "--engine 'flink'"),
    (["--out", "x.csv"], "needs --as-of"),
])
def test_bad_options_get_one_clear_line(shop, arguments, message):
    result = runner.invoke(app, ["features", "--config", str(shop / "cdp.toml"), *arguments])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
