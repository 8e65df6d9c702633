"""`cdp score` from the features `cdp features --materialize` kept in the store: the same
scores as building them, used only while they describe the store, and erased with the person."""

from __future__ import annotations

import json
import shutil

import duckdb
import pandas as pd
import pytest

from tests.serving.conftest import run_cli


def test_scores_from_materialized_features_equal_scores_from_built_ones(trained_shop, tmp_path):
    # A private copy: the session's shop is shared with other tests and must not change.
    shop = tmp_path / "shop"
    shutil.copytree(trained_shop.root / "shop", shop)
    config, uri = str(shop / "cdp.toml"), trained_shop.tracking_uri
    with duckdb.connect(str(shop / "cdp.duckdb"), read_only=True) as con:
        day = con.sql("SELECT max(features_as_of) FROM scores").fetchall()[0][0]

    output = run_cli("features", "--config", config, "--materialize", tracking_uri=uri)
    assert "scoring_features table (read by cdp score)" in output and str(day) in output
    output = run_cli("score", "--config", config, "--out", str(tmp_path / "materialized.parquet"), tracking_uri=uri)
    assert "features materialized at " in output and f"for {day}" in output
    built = pd.read_parquet(trained_shop.root / "scores.parquet")  # the session's `cdp score`, features built
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "materialized.parquet"), built)

    # Another day's snapshot is not used for this day: the features are built, with the reason said.
    earlier = (pd.Timestamp(day) - pd.Timedelta(days=7)).date()
    run_cli("features", "--config", config, "--materialize", "--as-of", str(earlier), tracking_uri=uri)
    output = run_cli("score", "--config", config, "--out", str(tmp_path / "rebuilt.parquet"), tracking_uri=uri)
    assert f"materialized features are as of {earlier}, not {day}: building them" in output
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "rebuilt.parquet"), built)

    # A later unify makes the snapshot stale.
    run_cli("features", "--config", config, "--materialize", tracking_uri=uri)
    run_cli("unify", "--config", config, tracking_uri=uri)
    output = run_cli("score", "--config", config, "--out", str(tmp_path / "after-unify.parquet"), tracking_uri=uri)
    assert "materialized features predate the latest `cdp unify`: building them" in output

    # The right of access shows the materialized row; an erasure deletes it with everything
    # else of theirs, from the store and from the serving snapshot, which stays current.
    run_cli("features", "--config", config, "--materialize", tracking_uri=uri)
    erased = built["customer_id"].iloc[0]
    run_cli("export", "--customer-id", erased, "--config", config, "--out", str(tmp_path / "access.json"),
            tracking_uri=uri)
    held = json.loads((tmp_path / "access.json").read_text())["features"]["materialized_in_store"]
    assert [row["customer_id"] for row in held] == [erased]
    run_cli("forget", "--customer-id", erased, "--config", config, tracking_uri=uri)
    with duckdb.connect(str(shop / "cdp.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT count(*) FILTER (WHERE customer_id = ?), count(*) FROM scoring_features",
                           [erased]).fetchall()[0]
    assert rows == (0, len(built) - 1)
    output = run_cli("score", "--config", config, "--out", str(tmp_path / "after-forget.parquet"), tracking_uri=uri)
    assert "is the materialized one already" in output
    served = pd.read_parquet(shop / "online_features.parquet")
    assert erased not in set(served["customer_id"]) and len(served) == len(built) - 1
    assert erased not in set(pd.read_parquet(tmp_path / "after-forget.parquet")["customer_id"])


@pytest.mark.parametrize(("extra", "message"), [
    (["--label-horizon-days", "90"], "--materialize keeps the scoring snapshot, which has no labels"),
    (["--engine", "flink"], "--engine 'flink': use one of duckdb, spark"),
])
def test_materialize_refuses_what_scoring_cannot_use(trained_shop, extra, message):
    from typer.testing import CliRunner

    from cdp.cli import app

    result = CliRunner().invoke(app, ["features", "--config", str(trained_shop.config), "--materialize", *extra],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
