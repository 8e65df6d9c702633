"""Forecasts beyond the labelled history: which window a store can teach, and how a
short window's answers carry forward to the horizon asked for."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from training.btyd import BetaGeoModel
from training.horizons import trainable_window
from training.pareto_nbd import ParetoNBDModel
from training.purchase import PurchaseModel, btyd_summary, carry_forward

D = dt.date
CDNOW_FIRST, CDNOW_LAST = D(1997, 1, 1), D(1998, 6, 30)


def test_cdnow_holds_13_week_labels_but_not_39_week_ones_as_of_september_1997():
    # Earliest snapshot 91 days after the first order: 1997-04-02. Seven snapshots 14 days
    # apart take 84 days, so the latest can be 1997-06-25 at the earliest, leaving 97 days
    # to 1997-09-30: 13 whole weeks.
    long = trainable_window(CDNOW_FIRST, CDNOW_LAST, D(1997, 9, 30), 273, n_snapshots=7, step_days=14)
    assert long.label_horizon_days == 91 and long.carried_forward
    assert long.snapshot_dates[0] == D(1997, 4, 8) and long.snapshot_dates[-1] == D(1997, 7, 1)
    assert len(long.snapshot_dates) == 7
    assert "273-day forecast carried forward from 91-day labels" in long.note
    short = trainable_window(CDNOW_FIRST, CDNOW_LAST, D(1997, 9, 30), 91, n_snapshots=7, step_days=14)
    assert (short.label_horizon_days, short.carried_forward, short.note) == (91, False, "")
    assert short.snapshot_dates == long.snapshot_dates
    # A year later the full 39 weeks fit.
    later = trainable_window(CDNOW_FIRST, CDNOW_LAST, D(1998, 6, 1), 273, n_snapshots=7, step_days=14)
    assert later.label_horizon_days == 273 and later.snapshot_dates[-1] == D(1997, 9, 1)


def test_too_young_a_store_or_dates_outside_the_orders_are_refused():
    with pytest.raises(ValueError, match="no 28-day label window"):
        trainable_window(CDNOW_FIRST, CDNOW_LAST, D(1997, 5, 1), 91, n_snapshots=7, step_days=14)
    with pytest.raises(ValueError, match="outside the orders"):
        trainable_window(CDNOW_FIRST, CDNOW_LAST, D(1998, 7, 1), 91, n_snapshots=2, step_days=14)
    with pytest.raises(ValueError, match="horizon_days"):
        trainable_window(CDNOW_FIRST, CDNOW_LAST, D(1997, 9, 30), 0, n_snapshots=2, step_days=14)


def bgnbd(r, alpha, a, b) -> BetaGeoModel:
    model = BetaGeoModel()
    model.r_, model.alpha_, model.a_, model.b_ = r, alpha, a, b
    return model


def pnbd(r, alpha, s, beta) -> ParetoNBDModel:
    model = ParetoNBDModel()
    model.r_, model.alpha_, model.s_, model.beta_ = r, alpha, s, beta
    return model


SUMMARY = pd.DataFrame({"frequency": [0, 1, 4, 12, np.nan], "recency": [0.0, 3.0, 20.0, 30.0, np.nan],
                        "T": [30.0, 35.0, 36.0, 31.0, np.nan]})


@pytest.mark.parametrize("model", [bgnbd(0.25, 4.4, 0.79, 2.43), pnbd(0.55, 10.58, 0.61, 11.67)])
def test_carrying_a_btyd_models_own_short_answers_forward_gives_its_long_answers(model):
    known = SUMMARY.iloc[:4]
    carry = carry_forward(model, known, 91, 273)
    assert carry.probability(model.purchase_probability(known, 13)) == pytest.approx(
        model.purchase_probability(known, 39), rel=1e-12)
    assert carry.count(model.expected_purchases(known, 13)) == pytest.approx(
        model.expected_purchases(known, 39), rel=1e-12)
    assert carry.label_probability(carry.probability([0.2] * 4)) == pytest.approx([0.2] * 4)
    # No history, nothing to carry: the label window's answers stand.
    with_unknown = carry_forward(model, SUMMARY, 91, 273)
    assert with_unknown.count_ratio[:4] == pytest.approx(carry.count_ratio)
    assert (with_unknown.count_ratio[4], with_unknown.none_ratio[4]) == (1.0, 1.0)


@pytest.fixture(scope="module")
def shop_rows(shop):
    """Three 90-day snapshots of the sample shop ending 180 days before its end, the
    features as of then, and which rows are the latest snapshot."""
    from features.engine import duckdb_tables
    from training.data import Window, features_as_of, labelled_snapshots

    con = shop.connect()
    tables = duckdb_tables(con)
    as_of = shop.end - dt.timedelta(days=180)
    rows = labelled_snapshots(tables, Window(as_of=as_of, horizon_days=90, n_snapshots=3, step_days=30))
    test = features_as_of(tables, as_of)
    con.close()
    return rows, test, (rows["as_of"] == rows["as_of"].max()).to_numpy()


def test_a_model_asked_beyond_its_labels_carries_its_own_answers_forward(shop_rows):
    """Fitted on 90-day labels for a 180-day horizon, the model learns exactly what the
    90-day model learns, and its answers are those carried forward with its BG/NBD."""
    rows, test, latest = shop_rows
    settings = dict(n_estimators=60, min_child_samples=50)
    short = PurchaseModel(horizon_days=90, **settings).fit(rows[~latest], rows[latest])
    long = PurchaseModel(horizon_days=180, label_horizon_days=90, **settings).fit(rows[~latest], rows[latest])
    a, b = short.predict(test), long.predict(test)
    buyers = test["purchase_days"].notna().to_numpy()
    summary = btyd_summary(test[buyers])
    fitted = long.btyd_.model_
    none = ((1 - fitted.purchase_probability(summary, 180 / 7)) / (1 - fitted.purchase_probability(summary, 90 / 7)))
    grow = fitted.expected_purchases(summary, 180 / 7) / fitted.expected_purchases(summary, 90 / 7)
    assert b["purchase_probability"][buyers].to_numpy() == pytest.approx(
        1 - (1 - a["purchase_probability"][buyers].to_numpy()) * none, rel=1e-9)
    assert b["expected_purchases"][buyers].to_numpy() == pytest.approx(
        a["expected_purchases"][buyers].to_numpy() * grow, rel=1e-9)
    assert b["expected_revenue"][buyers].to_numpy() == pytest.approx(
        a["expected_revenue"][buyers].to_numpy() * grow, rel=1e-9)
    assert (b["purchase_probability"] >= a["purchase_probability"] - 1e-12).all()
    assert long.purchase_probability(test) == pytest.approx(b["purchase_probability"].to_numpy())
    with pytest.raises(ValueError, match="label_horizon_days"):
        PurchaseModel(horizon_days=90, label_horizon_days=180).fit(rows[~latest], rows[latest])


def test_the_btyd_behind_scoring_can_be_pareto_nbd_fitted_on_the_scoring_population(shop_rows):
    """``population``: the BTYD model that scores (margins and carrying forward) is fitted on
    the histories as of the scoring date, as the classical contenders are; training margins
    keep the one fitted on the training snapshots."""
    rows, test, latest = shop_rows
    model = PurchaseModel(horizon_days=180, label_horizon_days=90, btyd="pareto_nbd", n_estimators=20,
                          min_child_samples=50).fit(rows[~latest], rows[latest], population=test)
    direct = ParetoNBDModel().fit(btyd_summary(test).dropna())
    scoring = model.scoring_btyd_.model_
    assert isinstance(model.btyd_.model_, ParetoNBDModel)
    assert (scoring.r_, scoring.alpha_, scoring.s_, scoring.beta_) == pytest.approx(
        (direct.r_, direct.alpha_, direct.s_, direct.beta_), rel=1e-9)
    assert model.btyd_.model_.r_ != pytest.approx(scoring.r_, rel=1e-6)   # the training view is its own fit
    prepared = model.prepare(test)
    buyers = test["purchase_days"].notna().to_numpy()
    assert prepared.margins["count"].to_numpy()[buyers] == pytest.approx(
        np.log(np.clip(direct.expected_purchases(btyd_summary(test[buyers]), 90 / 7), 1e-4, None)), rel=1e-9)
    with pytest.raises(ValueError, match="model must be one of"):
        PurchaseModel(btyd="pareto").fit(rows[~latest], rows[latest])
