"""The data scientist's loop as a user runs it: from an empty working directory, with no
environment variables, on real data (a seeded 10% sample of the CDNOW customers) and on a
generated shop side by side.

Each command runs through the CLI, in-process, exactly as typed at a prompt. What the
files hold is worked out from the files themselves (plain Python over the CDNOW lines),
not from our code.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import duckdb
import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from cdp.cli import app

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cdnow" / "cdp.toml"
MASTER = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
SEED = 15
TRAIN_CDNOW = ("--as-of", "1997-09-30", "--horizon-days", "91", "--snapshots", "7", "--step-days", "14")


def cdp(*args: str) -> str:
    """One `cdp` command as a user types it: no MLflow or cdp-ml variables in the environment."""
    result = CliRunner().invoke(app, list(args), env={"MLFLOW_TRACKING_URI": None, "MLFLOW_REGISTRY_URI": None,
                                                      "CDP_TOMBSTONE_KEY": None})
    assert result.exit_code == 0, f"cdp {' '.join(args)}:\n{result.output}"
    return result.output


def cdnow_sample(folder: Path, share: float = 0.1, seed: int = SEED) -> set[str]:
    """Write a seeded random ``share`` of the CDNOW customers (all their lines, the header and
    the CRLF endings as in the master file) and a copy of the shipped config reading it;
    return the sampled customer ids."""
    assert MASTER.is_file(), f"CDNOW data not found at {MASTER}: clone cdp-ml with ../shared beside it"
    lines = MASTER.read_bytes().split(b"\r\n")
    header, rows = lines[0], [line for line in lines[1:] if line.strip()]
    customers = sorted({row.split()[0].decode() for row in rows})
    chosen = set(random.Random(seed).sample(customers, round(share * len(customers))))
    kept = [row for row in rows if row.split()[0].decode() in chosen]
    (folder / "cdnow_sample.txt").write_bytes(b"\r\n".join([header, *kept, b""]))
    text = EXAMPLE.read_text(encoding="utf-8").replace('path = "../../../shared/data/cdnow/CDNOW_master.txt"',
                                                       'path = "cdnow_sample.txt"')
    assert 'path = "cdnow_sample.txt"' in text
    (folder / "cdnow.toml").write_text(text, encoding="utf-8")
    return chosen


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """An empty working directory the commands run in, restored afterwards (with MLflow's URIs)."""
    folder = tmp_path_factory.mktemp("user")
    saved_cwd, saved_uri = Path.cwd(), mlflow.get_tracking_uri()
    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(saved_cwd)
        mlflow.set_tracking_uri(saved_uri)
        for key, value in saved_env.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


@pytest.fixture(scope="module")
def loop(workdir):
    """The whole loop on the CDNOW sample, then a generated shop trained from the same
    directory, then CDNOW retrained: every command's output, by step."""
    sampled = cdnow_sample(workdir)
    outputs = {"sampled": sampled}
    outputs["ingest"] = cdp("ingest", "--config", "cdnow.toml")
    outputs["unify"] = cdp("unify", "--config", "cdnow.toml")
    outputs["train"] = cdp("train", "all", "--config", "cdnow.toml", *TRAIN_CDNOW)
    outputs["score"] = cdp("score", "--config", "cdnow.toml", "--out", "scores.parquet")
    outputs["list"] = cdp("churn-list", "--config", "cdnow.toml", "--include-no-consent", "--top", "100",
                          "--out", "churn-list.csv")
    outputs["report"] = cdp("report", "--config", "cdnow.toml", "--out", "report.html")
    outputs["evaluate"] = cdp("evaluate", "--config", "cdnow.toml", *TRAIN_CDNOW)
    # A second store trained from the same directory, then the first one again.
    cdp("sample", "--customers", "800", "--seed", "3", "--end", "2026-10-31", "--out", "shop")
    cdp("ingest", "--config", "shop/cdp.toml")
    cdp("unify", "--config", "shop/cdp.toml")
    outputs["shop"] = cdp("train", "all", "--config", "shop/cdp.toml", "--snapshots", "2")
    outputs["retrain"] = cdp("train", "churn", "--config", "cdnow.toml", *TRAIN_CDNOW)
    # A 39-week churn model beside the 13-week one: the cohort's history holds no 39-week label
    # window by 1997-09-30, so it learns 13-week labels and carries them forward.
    outputs["long"] = cdp("train", "churn", "--config", "cdnow.toml", *TRAIN_CDNOW[:2], "--horizon-days", "273",
                          *TRAIN_CDNOW[4:])
    outputs["ambiguous"] = CliRunner().invoke(app, ["score", "--config", "cdnow.toml", "--out", "again.parquet"],
                                              env={"MLFLOW_TRACKING_URI": None})
    return outputs


def test_the_whole_loop_runs_on_a_sample_of_real_cdnow_customers(workdir, loop):
    sampled = loop["sampled"]
    assert len(sampled) == 2357                                  # 10% of CDNOW's 23,570
    assert f"{len(sampled):,} customers" in " ".join(loop["unify"].split())
    scores = pd.read_parquet(workdir / "scores.parquet")
    con = duckdb.connect(str(workdir / "cdnow.duckdb"), read_only=True)
    key_of = dict(con.sql("SELECT customer_id, id_value FROM identifier_map WHERE id_type = 'customer_key'")
                  .fetchall())
    con.close()
    assert scores["customer_id"].is_unique
    assert {key_of[c] for c in scores["customer_id"]} == sampled  # every customer of the file, once
    assert scores["churn_probability"].between(0, 1, inclusive="neither").all()
    assert (scores["features_as_of"].astype(str) == "1998-06-30").all()  # the last day in the file
    listed = pd.read_csv(workdir / "churn-list.csv", dtype={"customer_id": str})
    assert len(listed) == 100 and set(listed["customer_id"]) <= set(scores["customer_id"])
    assert listed["revenue_at_risk"].is_monotonic_decreasing
    assert "churn" in (workdir / "report.html").read_text(encoding="utf-8").lower()
    evaluated = " ".join(loop["evaluate"].split())
    assert "cdp-ml" in evaluated and "BG/NBD" in evaluated


def test_cdnow_has_no_prospects_so_the_first_purchase_model_is_skipped_with_a_note(workdir, loop):
    """Every CDNOW customer is known by their first purchase: no one to learn a first purchase
    from. `cdp train all` still succeeds, says why in its output and on an MLflow run in the
    model's experiment, and registers nothing; the prospects' scores stay empty."""
    said = " ".join(loop["train"].split())
    assert "note (first-purchase): not trained: no prospects: every customer known on the snapshot days had " \
           "bought already" in said
    db = workdir / "cdnow.mlflow" / "mlflow.db"
    client = MlflowClient(f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("cdp-first-purchase")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["cdp.skipped"].startswith("no prospects: every customer known on the snapshot days")
    assert run.data.tags["mlflow.note.content"].startswith("Not trained: no prospects")
    assert run.data.tags["cdp.registered"].startswith("not registered: skipped")
    assert run.data.metrics["prospects"] == 0 and run.data.metrics["first_purchases"] == 0
    assert "cdp-first-purchase" not in {m.name for m in client.search_registered_models()}
    scores = pd.read_parquet(workdir / "scores.parquet")
    assert scores["first_purchase_version"].isna().all() and scores["purchase_probability"].notna().all()


def test_two_stores_trained_from_one_directory_keep_their_own_registries(workdir, loop):
    # Nothing lands in the working directory: each store's MLflow sits beside the store.
    assert not (workdir / "mlruns").exists() and not (workdir / "mlflow.db").exists()
    cdnow_db, shop_db = workdir / "cdnow.mlflow" / "mlflow.db", workdir / "shop" / "cdp.mlflow" / "mlflow.db"
    assert cdnow_db.is_file() and shop_db.is_file()
    for db, store, versions in (
            (cdnow_db, workdir / "cdnow.duckdb", {"cdp-segments": 1, "cdp-churn": 3, "cdp-next-purchase": 1}),
            (shop_db, workdir / "shop" / "cdp.duckdb", {"cdp-segments": 1, "cdp-churn": 1, "cdp-next-purchase": 1,
                                                        "cdp-first-purchase": 1})):
        client = MlflowClient(f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
        found = {m.name: len(client.search_model_versions(f"name = '{m.name}'"))
                 for m in client.search_registered_models()}
        assert found == versions
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        assert {r.data.tags["cdp.store_path"] for r in runs} == {str(store.resolve())}
        # each run records its input: the store, as an MLflow dataset
        assert {i.dataset.name.split(" as of ")[0] for r in runs for i in r.inputs.dataset_inputs} == {store.name}
    # The shop's first models start their own lineage (its segments inherit no CDNOW names);
    # retraining CDNOW afterwards compares with CDNOW's own champion and nothing else.
    shop = MlflowClient(f"sqlite:///{shop_db}", registry_uri=f"sqlite:///{shop_db}")
    for name in ("cdp-segments", "cdp-churn", "cdp-next-purchase"):
        (version,) = shop.search_model_versions(f"name = '{name}'")
        assert version.tags["gate.compared"] == "no" and version.tags["gate.reason"].startswith("no champion yet")
    segments_run = shop.get_run(shop.search_model_versions("name = 'cdp-segments'")[0].run_id)
    assert segments_run.data.params["matched_previous"] == "False"
    cdnow = MlflowClient(f"sqlite:///{cdnow_db}", registry_uri=f"sqlite:///{cdnow_db}")
    second = cdnow.get_model_version("cdp-churn", "2").tags
    assert second["gate.compared"] == "yes" and "champion version 1's" in second["gate.reason"]


def test_a_longer_horizon_lives_beside_the_shorter_one_and_scoring_asks_which(workdir, loop):
    db = workdir / "cdnow.mlflow" / "mlflow.db"
    client = MlflowClient(f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    aliases = {k: str(v) for k, v in client.get_registered_model("cdp-churn").aliases.items()}
    assert aliases["champion-h91d"] in ("1", "2") and aliases["champion-h273d"] == "3"
    long_run = client.get_run(client.get_model_version("cdp-churn", "3").run_id).data
    assert long_run.params["horizon_days"] == "273" and long_run.params["label_horizon_days"] == "91"
    assert long_run.tags["cdp.carried_forward"].startswith("273-day forecast carried forward from 91-day labels")
    assert "carried forward" in " ".join(loop["long"].split())
    # Two horizons: cdp score will not guess which one is meant.
    assert loop["ambiguous"].exit_code == 1
    assert "horizons of 91, 273 days: pass --horizon-days" in " ".join(loop["ambiguous"].output.split())


def test_every_served_cdnow_row_is_a_possible_feature_row(workdir, loop):
    """`/score_features` refuses impossible values (`features.value_rules`); no real customer's
    row is one: the CDNOW sample's serving snapshot passes every rule."""
    from features.value_rules import violations
    from store.snapshot import ServingSnapshot

    features = ServingSnapshot.beside(workdir / "cdnow.duckdb").read()
    assert len(features) == len(loop["sampled"])
    rows = features.set_index("customer_id").drop(columns=["features_as_of"])
    assert {customer: broken for customer, row in rows.iterrows() if (broken := violations(row.to_dict()))} == {}


def test_every_cdnow_reason_raised_the_risk_and_says_truly_where_the_value_lies(workdir, loop):
    """Issue #18: on real customers, every reason scoring gives raised that customer's churn
    risk (LightGBM's own contributions) and its sentence says truly on which side of the
    typical customer the value lies (`tests.reason_checks`)."""
    import datetime as dt

    from cdp.config import load_config
    from store.snapshot import ServingSnapshot
    from tests.reason_checks import repeated_families, share_with_reasons, untrue_reasons
    from training.score import champions, score
    from training.tracking import store_tracking

    features = ServingSnapshot.beside(workdir / "cdnow.duckdb").read()
    models = champions(store_tracking(load_config(workdir / "cdnow.toml"), {}), 91)
    scored = score(features, models, dt.date(1998, 6, 30)).set_index("customer_id")["top_reasons"]
    model = models["churn"][0].unwrap_python_model().estimator
    checked, problems = untrue_reasons(features.set_index("customer_id"), scored, model)
    assert problems == []
    assert repeated_families(scored) == []
    # Measured: 4,207 reasons for 2,357 customers; 90% of them given at least one.
    assert checked > 1.5 * len(features)
    assert share_with_reasons(scored, features.set_index("customer_id")) > 0.85
