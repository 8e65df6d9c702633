"""`cdp train` and `cdp score` end to end: MLflow runs, registered versions, the gate, and the scores."""

from __future__ import annotations

import datetime as dt
import logging

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from features.engine import duckdb_tables
from training.data import Window, features_as_of
from training.run import MODEL_NAMES, TrainSettings, train
from training.score import SCORE_COLUMNS, champions, score
from training.tracking import TrackingConfig


@pytest.fixture(scope="module")
def trained(shop, tmp_path_factory):
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    saved = mlflow.get_tracking_uri()
    tracking = TrackingConfig.local(tmp_path_factory.mktemp("mlruns"))
    con = shop.connect()
    tables = duckdb_tables(con)
    settings = TrainSettings(window=Window(as_of=shop.end, horizon_days=90, n_snapshots=3, step_days=30))
    first = train(tables, settings, tracking)
    again = train(tables, settings, tracking)
    forced = train(tables, TrainSettings(window=settings.window, families=("churn",), force=True), tracking)
    features = features_as_of(tables, shop.end)
    con.close()
    yield tracking, first, again, forced, features
    mlflow.set_tracking_uri(saved)


def test_each_family_is_registered_and_the_first_version_becomes_champion(trained):
    tracking, first, _, _, _ = trained
    client = MlflowClient(tracking.tracking_uri, registry_uri=tracking.tracking_uri)
    assert [r.family for r in first] == ["segments", "churn", "next-purchase"]
    for result in first:
        aliases = client.get_registered_model(MODEL_NAMES[result.family]).aliases
        assert result.decision.promoted and result.decision.reason == "no champion yet"
        if result.family != "churn":  # churn's champion was later forced to a third version
            assert str(aliases["champion"]) == result.version


def test_a_retrain_that_is_not_better_stays_challenger_unless_forced(trained):
    tracking, first, again, forced, _ = trained
    client = MlflowClient(tracking.tracking_uri, registry_uri=tracking.tracking_uri)
    # Same data, same seeds: the same score, which does not beat the champion.
    for before, after in zip(first, again):
        assert after.decision.challenger_score == pytest.approx(before.decision.challenger_score)
        assert not after.decision.promoted and after.decision.champion_version == before.version
        aliases = client.get_registered_model(MODEL_NAMES[after.family]).aliases
        if after.family != "churn":  # churn was then forced (below)
            assert str(aliases["champion"]) == before.version and str(aliases["challenger"]) == after.version
    (churn,) = forced
    assert churn.decision.promoted and churn.decision.reason.startswith("forced")
    assert str(client.get_registered_model("cdp-churn").aliases["champion"]) == churn.version


def test_runs_carry_params_metrics_digest_plots_and_the_gate(trained):
    tracking, first, _, _, _ = trained
    client = MlflowClient(tracking.tracking_uri)
    churn = next(r for r in first if r.family == "churn")
    run = client.get_run(churn.run_id)
    assert run.data.params["horizon_days"] == "90" and run.data.params["as_of"] == "2026-10-31"
    assert 0.5 < run.data.metrics["churn_roc_auc"] <= 1.0
    assert run.data.tags["gate.decision"] == "promoted" and len(run.data.tags["data.digest"]) == 24
    artifacts = {a.path for a in client.list_artifacts(churn.run_id, "plots")}
    assert {"plots/importance.png", "plots/calibration.png", "plots/lift.png", "plots/contributions.png"} <= artifacts


def test_nothing_personal_reaches_mlflow(trained, shop):
    tracking, first, _, _, _ = trained
    client = MlflowClient(tracking.tracking_uri)
    con = shop.connect()
    personal = {v for (v,) in con.sql("SELECT email FROM customers WHERE email IS NOT NULL "
                                      "UNION SELECT phone FROM customers WHERE phone IS NOT NULL").fetchall()}
    ids = {v for (v,) in con.sql("SELECT customer_id FROM customers").fetchall()}
    con.close()
    texts = []
    for result in first:
        run = client.get_run(result.run_id)
        texts += [*run.data.params.values(), *run.data.tags.values()]
        for artifact in client.list_artifacts(result.run_id):
            if artifact.path.endswith(".csv"):
                texts.append(mlflow.artifacts.load_text(f"runs:/{result.run_id}/{artifact.path}"))
        model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAMES[result.family]}/{result.version}")
        texts.append(str(model.input_example))
    blob = "\n".join(texts)
    assert not [p for p in personal if p in blob]
    assert not [i for i in ids if i in blob]


def test_scores_cover_every_customer_with_consistent_outputs(trained):
    tracking, _, _, forced, features = trained
    models = champions(tracking)
    scores = score(features, models, dt.date(2026, 10, 31))
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert len(scores) == len(features) and scores["customer_id"].is_unique
    prospects = features["recency_days"].isna().to_numpy()
    assert (scores.loc[prospects, "segment"] == "Prospects").all()
    assert scores.loc[prospects, "churn_probability"].isna().all()
    buyers = scores[~prospects]
    np.testing.assert_allclose(buyers["churn_probability"] + buyers["purchase_probability"], 1.0)
    assert buyers["churn_probability"].between(0, 1, inclusive="neither").all()
    assert (buyers["expected_purchases"] >= 0).all() and buyers["top_reasons"].str.len().gt(0).mean() > 0.9
    assert (scores["churn_version"] == forced[0].version).all()
    # Higher churn risk, fewer expected purchases: the two models agree in direction.
    assert np.corrcoef(buyers["churn_probability"], buyers["expected_purchases"])[0, 1] < -0.5
    assert set(buyers["segment"]) - {"Prospects"} and pd.notna(scores["features_as_of"]).all()
