"""The backtest: its table by hand, its bootstrap, and `cdp evaluate` on the sample shop."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cdp.cli import app
from cdp.errors import CdpError
from features.engine import duckdb_tables
from training.evaluate import CONTENDERS, backtest, compare, mae_differences, paired_differences, relative_error


def _test_frame() -> pd.DataFrame:
    return pd.DataFrame({"purchased_in_horizon": [1, 0, 1, 0], "purchase_days_in_horizon": [2.0, 0.0, 1.0, 0.0]})


def _answers(ours_count, ours_median) -> dict:
    p = np.array([0.9, 0.2, 0.6, 0.1])
    return {
        "cdp-ml": (p, np.asarray(ours_count, float), np.asarray(ours_median, float)),
        "BG/NBD": (p[::-1], np.array([1.0, 1.0, 1.0, 1.0]), np.array([0.0, 0.0, 0.0, 0.0])),
        "Pareto/NBD": (p, np.array([1.0, 0.0, 1.0, 0.0]), np.full(4, np.nan)),
        "recency heuristic": (p, np.zeros(4), np.zeros(4)),
    }


def test_the_table_by_hand():
    table = compare(_answers([1.5, 0.5, 1.0, 0.0], [2.0, 0.0, 1.0, 0.0]), _test_frame())
    assert list(table.index) == list(CONTENDERS)
    ours, classical = table.loc["cdp-ml"], table.loc["BG/NBD"]
    # |2-1.5| + |0-0.5| + 0 + 0 = 1 over 4 customers; the median forecast is exact.
    assert ours["purchase_days_mae"] == pytest.approx(0.25)
    assert ours["purchase_days_mae_median"] == 0.0
    assert ours["purchase_roc_auc"] == 1.0 and classical["purchase_roc_auc"] == 0.0
    # BG/NBD's answers: |2-1| + 1 + 0 + 1 = 3 → 0.75; medians all zero: (2 + 1) / 4.
    assert classical["purchase_days_mae"] == pytest.approx(0.75)
    assert classical["purchase_days_mae_median"] == pytest.approx(0.75)
    assert ours["predicted_purchase_days"] == 3.0 and ours["actual_purchase_days"] == 3.0
    # Sum of absolute errors over the 3 purchase days bought: 1/3 for ours, 3/3 for BG/NBD.
    assert ours["relative_error"] == pytest.approx(1 / 3) and classical["relative_error"] == pytest.approx(1.0)
    assert ours["total_ratio"] == 1.0 and classical["total_ratio"] == pytest.approx(4 / 3)
    # Pareto/NBD: |2-1| only, a total of 2 for 3; no count distribution, so no median column.
    pareto = table.loc["Pareto/NBD"]
    assert (pareto["relative_error"], pareto["total_ratio"]) == pytest.approx((1 / 3, 2 / 3))
    assert np.isnan(pareto["purchase_days_mae_median"])


def test_relative_error_by_hand():
    assert relative_error([2, 0, 1], [1.5, 0.5, 1.0]) == pytest.approx(1 / 3)
    assert np.isnan(relative_error([0, 0], [1, 1]))


def test_paired_differences_of_an_exact_model_against_a_reversed_one():
    frame = _test_frame()
    gaps = paired_differences(_answers([2.0, 0.0, 1.0, 0.0], [2.0, 0.0, 1.0, 0.0]), frame, resamples=200, seed=1)
    # ROC-AUC 1 against 0; MAE 0 against 0.75; relative error 0 against 3/3.
    assert gaps["difference"].to_dict() == pytest.approx(
        {"purchase_roc_auc": -1.0 + 2.0, "purchase_days_mae": -0.75, "relative_error": -1.0})
    assert (gaps["low_95"] <= gaps["difference"]).all() and (gaps["difference"] <= gaps["high_95"]).all()


def test_the_bootstrap_interval_brackets_the_difference_and_is_empty_without_one():
    frame = _test_frame()
    same = _answers([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0])
    gaps = mae_differences(same, frame)
    assert (gaps.to_numpy() == 0.0).all()
    better = mae_differences(_answers([2.0, 0.0, 1.0, 0.0], [2.0, 0.0, 1.0, 0.0]), frame)
    # Ours is exact: every customer's error drops by BG/NBD's own error (1, 1, 0, 1 and 2, 0, 1, 0).
    assert better.loc["mean", "mae_difference"] == pytest.approx(-0.75)
    assert better.loc["median", "mae_difference"] == pytest.approx(-0.75)
    assert (better["low_95"] <= better["mae_difference"]).all()
    assert (better["mae_difference"] <= better["high_95"]).all()
    assert (better["high_95"] <= 0).all()


def test_cdp_evaluate_prints_the_three_contenders_and_the_gap(shop):
    as_of = (shop.end - dt.timedelta(days=90)).isoformat()
    result = CliRunner().invoke(app, ["evaluate", "--config", str(shop.root / "cdp.toml"), "--as-of", as_of,
                                      "--snapshots", "3", "--horizon-days", "90"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("cdp-ml", "BG/NBD", "recency", "paired bootstrap", "median"):
        assert name in result.output


def test_cdp_evaluate_refuses_a_window_beyond_the_data(shop):
    result = CliRunner().invoke(app, ["evaluate", "--config", str(shop.root / "cdp.toml"),
                                      "--as-of", shop.end.isoformat()])
    assert result.exit_code == 1
    assert "after the data ends" in result.output and "the latest as-of day with a whole 90-day window" in result.output


def test_backtest_checks_its_dates_before_any_query(shop, monkeypatch):
    import training.evaluate as evaluate

    monkeypatch.setattr(evaluate, "labelled_snapshots", lambda *a, **k: pytest.fail("queried before the check"))
    con = shop.connect()
    try:
        with pytest.raises(CdpError, match="needs orders from before"):
            backtest(duckdb_tables(con), shop.end - dt.timedelta(days=30), 90)
    finally:
        con.close()
