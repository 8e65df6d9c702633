"""The MLflow glue: where runs go, the champion/challenger gate, loading the champion.

Every test uses a throw-away local store under tmp_path (never the repo's mlruns/) and
a tiny pyfunc whose prediction for x is k * x, so a version's score is its k, known in
advance. Only synthetic numbers go to MLflow.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import mlflow
import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow import MlflowClient

from training.tracking import (
    Decision,
    Lineage,
    NoChampionError,
    TrackingConfig,
    champion_horizons,
    champion_version,
    decide,
    default_root,
    experiment,
    load_champion,
    promote,
    register_pyfunc,
    store_scope,
    tracking_config,
    versions_created_before,
)

pytestmark = pytest.mark.filterwarnings(
    # from MLflow's own SQLAlchemy store, not from our calls
    "ignore:The ``noload`` loader strategy is deprecated"
)

HOLDOUT = pd.DataFrame({"x": [1.0]})   # the same "held-out window" for every score


class Scaled(mlflow.pyfunc.PythonModel):
    """Predicts k * x: a model whose score on HOLDOUT is exactly k."""

    def __init__(self, k: float):
        self.k = k

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.Series:
        return model_input["x"] * self.k


class RecordingScore:
    """score(model) = the prediction for x=1 (the model's k, exactly); remembers every k it saw."""

    def __init__(self):
        self.seen: list[float] = []

    def __call__(self, model: mlflow.pyfunc.PyFuncModel) -> float:
        value = float(pd.Series(model.predict(HOLDOUT)).iloc[0])
        self.seen.append(value)
        return value


@pytest.fixture(scope="module", autouse=True)
def quiet_mlflow_logs():
    """Keep MLflow's INFO chatter (database creation, registrations) out of the output."""
    logger = logging.getLogger("mlflow")
    saved_level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(saved_level)


@contextlib.contextmanager
def restoring_mlflow_uris():
    """Undo what experiment() sets process-wide: MLflow's URIs and the env vars it exports with them."""
    saved_env = {key: os.environ.get(key) for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(autouse=True)
def restored_mlflow_uris():
    with restoring_mlflow_uris():
        yield


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory, quiet_mlflow_logs) -> tuple[Path, str]:
    """A store made by experiment() in a folder that did not exist: (its database, the experiment id).

    Built once and copied for each test, because creating a database costs 2-9 s of schema migrations.
    """
    root = tmp_path_factory.mktemp("template") / "not-yet" / "mlruns"
    with restoring_mlflow_uris():
        experiment_id = experiment(TrackingConfig.local(root), "warmup")
    return root / "mlflow.db", experiment_id


@pytest.fixture
def config(tmp_path, empty_store) -> TrackingConfig:
    """A fresh local store under tmp_path (a copy of the empty database; artifacts start empty)."""
    (tmp_path / "mlruns").mkdir()
    shutil.copyfile(empty_store[0], tmp_path / "mlruns" / "mlflow.db")
    return TrackingConfig.local(tmp_path / "mlruns")


@pytest.fixture
def client(config) -> MlflowClient:
    experiment(config, "churn")
    return MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)


def register(model_name: str, k: float) -> tuple[str, str]:
    """Train-and-register stand-in: one run, one new version of model_name predicting k * x.
    Returns (version, run_id)."""
    with mlflow.start_run(experiment_id=mlflow.get_experiment_by_name("churn").experiment_id) as run:
        version = register_pyfunc(model_name, Scaled(k), input_example=pd.DataFrame({"x": [1.0, 2.0]}),
                                  pip_requirements=["mlflow"])
    return version, run.info.run_id


def gate(client, model_name, version, run_id=None, **kwargs) -> Decision:
    kwargs.setdefault("score", RecordingScore())
    return promote(client, model_name, version, metric="auc", run_id=run_id, **kwargs)


def champion_and_challenger(client, model_name) -> tuple[str, str]:
    aliases = client.get_registered_model(model_name).aliases
    return str(aliases["champion"]), str(aliases["challenger"])


# --- where runs go ---------------------------------------------------------------------------

def test_local_config_is_sqlite_and_artifacts_under_an_absolute_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    local = TrackingConfig.local(Path("mlruns"))
    assert local.tracking_uri == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    assert local.tracking_uri.startswith("sqlite:////")
    assert local.artifact_location == f"{tmp_path.resolve()}/mlruns/artifacts"


def test_tracking_config_prefers_the_env_uri_else_the_local_default(tmp_path):
    root = tmp_path / "mlruns"
    assert tracking_config({"MLFLOW_TRACKING_URI": "http://mlflow:5000"}, root) == \
        TrackingConfig(tracking_uri="http://mlflow:5000", artifact_location=None)
    assert tracking_config({}, root) == TrackingConfig.local(root)
    assert tracking_config({"MLFLOW_TRACKING_URI": "  "}, root) == TrackingConfig.local(root)
    # cdp.toml's [tracking] uri, unless the environment says otherwise; the store's scope travels along
    assert tracking_config({}, root, uri="http://shared:5000", scope="s1") == \
        TrackingConfig(tracking_uri="http://shared:5000", artifact_location=None, scope="s1")
    assert tracking_config({}, root, scope="s1") == TrackingConfig.local(root)   # its own registry: unscoped
    assert tracking_config({"MLFLOW_TRACKING_URI": "http://env:5000"}, root, uri="http://shared:5000").tracking_uri \
        == "http://env:5000"


def test_each_store_has_its_own_default_tracking_folder_beside_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_root(Path("shop/cdp.duckdb")) == tmp_path / "shop" / "cdp.mlflow"
    assert default_root(Path("shop/cdnow.duckdb")) == tmp_path / "shop" / "cdnow.mlflow"
    # a store is told apart by its path, or by the name it is given in cdp.toml
    a, b = store_scope(Path("shop/cdp.duckdb")), store_scope(Path("other/cdp.duckdb"))
    assert a != b and a == store_scope(tmp_path / "shop" / "cdp.duckdb") and re.fullmatch(r"s[0-9a-f]{10}", a)
    assert store_scope(Path("x.duckdb"), name="Olive shop / prod") == "Olive-shop-prod"


def test_a_sqlite_uri_keeps_artifacts_beside_its_database_not_in_the_working_directory(tmp_path):
    db = tmp_path / "elsewhere" / "mlflow.db"
    assert tracking_config({"MLFLOW_TRACKING_URI": f"sqlite:///{db}"}, tmp_path / "mlruns") == \
        TrackingConfig(tracking_uri=f"sqlite:///{db}", artifact_location=str(tmp_path / "elsewhere" / "artifacts"))


def test_experiment_creates_the_store_folder_and_database(empty_store):
    db, experiment_id = empty_store
    assert db.is_file()
    assert MlflowClient(tracking_uri=f"sqlite:///{db}").get_experiment_by_name("warmup").experiment_id == experiment_id


def test_experiment_is_created_once_with_artifacts_under_root(config, tmp_path):
    first = experiment(config, "segments")
    assert experiment(config, "segments") == first
    assert mlflow.get_tracking_uri() == config.tracking_uri
    assert mlflow.get_registry_uri() == config.tracking_uri
    with mlflow.start_run(experiment_id=first) as run:
        mlflow.log_text("synthetic", "note.txt")
    stored = tmp_path / "mlruns" / "artifacts" / run.info.run_id / "artifacts" / "note.txt"
    assert stored.read_text() == "synthetic"


def test_registering_prints_nothing_and_links_each_version_to_its_run_and_logged_model(client, capfd):
    capfd.readouterr()
    v1, run1 = register("m_quiet", k=1.0)
    v2, run2 = register("m_quiet", k=2.0)
    printed = capfd.readouterr()
    # MLflow's fluent registration prints "Successfully registered model ..." / "Created version ...".
    assert "registered model" not in (printed.out + printed.err).lower()
    assert "created version" not in (printed.out + printed.err).lower()
    assert (v1, v2) == ("1", "2")
    for version, run_id in ((v1, run1), (v2, run2)):
        registered = client.get_model_version("m_quiet", version)
        assert registered.run_id == run_id and registered.status == "READY"
        assert registered.source.startswith("models:/m-")
        logged = client.get_logged_model(registered.source.removeprefix("models:/"))
        assert logged.source_run_id == run_id
        assert json.loads(logged.tags["mlflow.modelVersions"]) == [{"name": "m_quiet", "version": version}]
    # the registry serves the version's model (the logged model's artifacts)
    model = mlflow.pyfunc.load_model(f"models:/m_quiet/{v2}")
    assert list(model.predict(pd.DataFrame({"x": [3.0]}))) == [6.0]


# --- the promotion gate ----------------------------------------------------------------------

def test_first_version_becomes_champion_and_challenger(client):
    version, run_id = register("m_first", k=0.5)
    decision = gate(client, "m_first", version, run_id=run_id)
    assert decision == Decision(model_name="m_first", version=version, promoted=True, reason="no champion yet",
                                metric="auc", challenger_score=0.5, champion_version=None, champion_score=None,
                                compared=False)
    assert champion_and_challenger(client, "m_first") == (version, version)
    run = client.get_run(run_id).data
    assert run.metrics == {"gate_challenger_auc": 0.5}
    assert run.tags["gate.decision"] == "promoted"
    assert run.tags["gate.champion_version"] == "none"


def test_worse_version_stays_challenger_and_both_scores_are_logged(client):
    v1, _ = register("m_worse", k=0.7)
    gate(client, "m_worse", v1)
    v2, run_id = register("m_worse", k=0.6)
    score = RecordingScore()
    decision = gate(client, "m_worse", v2, run_id=run_id, score=score)

    assert (decision.promoted, decision.challenger_score, decision.champion_version, decision.champion_score) == \
        (False, 0.6, v1, 0.7)
    assert "does not beat" in decision.reason
    assert champion_and_challenger(client, "m_worse") == (v1, v2)
    # One callable measured both: the challenger (k=0.6), then the champion (k=0.7).
    assert score.seen == [0.6, 0.7]

    run = client.get_run(run_id).data
    assert run.metrics == {"gate_challenger_auc": 0.6, "gate_champion_auc": 0.7}
    assert (run.tags["gate.decision"], run.tags["gate.reason"], run.tags["gate.champion_version"]) == \
        ("kept", decision.reason, v1)
    tags = client.get_model_version("m_worse", v2).tags
    assert tags["gate.decision"] == "kept"
    assert tags["gate.champion_version"] == v1
    assert (float(tags["gate.challenger_auc"]), float(tags["gate.champion_auc"])) == (0.6, 0.7)


def test_better_version_becomes_champion_and_force_promotes_a_worse_one(client):
    v1, _ = register("m_better", k=0.6)
    gate(client, "m_better", v1)
    v2, _ = register("m_better", k=0.8)
    better = gate(client, "m_better", v2)
    assert (better.promoted, better.champion_version, better.champion_score) == (True, v1, 0.6)
    assert champion_and_challenger(client, "m_better") == (v2, v2)

    v3, run_id = register("m_better", k=0.1)
    forced = gate(client, "m_better", v3, run_id=run_id, force=True)
    assert forced.promoted and forced.reason.startswith("forced: ")
    assert (forced.champion_version, forced.champion_score) == (v2, 0.8)
    assert champion_and_challenger(client, "m_better") == (v3, v3)
    assert client.get_run(run_id).data.tags["gate.decision"] == "promoted"

    # lower is better: k=0.1 (champion) beats the former champion's 0.8 the other way round.
    lower = gate(client, "m_better", v2, higher_is_better=False)
    assert (lower.promoted, lower.champion_version) == (False, v3)
    assert champion_and_challenger(client, "m_better") == (v3, v2)

    # a tie is not strictly better
    tie = gate(client, "m_better", v1, score=lambda model: 0.5)
    assert (tie.promoted, tie.challenger_score, tie.champion_score) == (False, 0.5, 0.5)
    assert champion_and_challenger(client, "m_better") == (v3, v1)

    # a score that is not a number stops the gate before any alias moves
    with pytest.raises(ValueError, match="m_better version 2"):
        gate(client, "m_better", v2, score=lambda model: float("nan"))
    assert champion_and_challenger(client, "m_better") == (v3, v1)


# --- lineages: one store, one horizon, one feature set -----------------------------------------

def test_a_challenger_meets_only_the_champion_of_its_own_store_and_horizon(client, config):
    shop_91, shop_273 = Lineage("shop", 91, "f1"), Lineage("shop", 273, "f1")
    cdnow_91 = Lineage("cdnow", 91, "f1")
    v1, _ = register("m_lines", k=0.9)
    first = gate(client, "m_lines", v1, lineage=shop_91)
    assert first.promoted and not first.compared and "no comparison made" in first.reason
    # Another store's worse model is not measured against the shop's: it starts its own lineage.
    v2, run_id = register("m_lines", k=0.1)
    other = gate(client, "m_lines", v2, lineage=cdnow_91, run_id=run_id)
    assert (other.promoted, other.compared, other.champion_version) == (True, False, None)
    # A second horizon lives beside the first.
    v3, _ = register("m_lines", k=0.2)
    assert gate(client, "m_lines", v3, lineage=shop_273).promoted
    aliases = {k: str(v) for k, v in client.get_registered_model("m_lines").aliases.items()}
    assert {k: v for k, v in aliases.items() if k.startswith("champion")} == {
        "champion-shop-h91d": v1, "champion-cdnow-h91d": v2, "champion-shop-h273d": v3}
    assert client.get_run(run_id).data.tags["gate.compared"] == "no"
    assert client.get_model_version("m_lines", v2).tags["cdp.store"] == "cdnow"
    # Within a lineage the gate compares as before.
    v4, _ = register("m_lines", k=0.5)
    kept = gate(client, "m_lines", v4, lineage=shop_91)
    assert (kept.promoted, kept.compared, kept.champion_version, kept.champion_score) == (False, True, v1, 0.9)
    shop = TrackingConfig(config.tracking_uri, config.artifact_location, scope="shop")
    assert champion_version(shop, "m_lines", 91) == v1 and champion_version(shop, "m_lines", 273) == v3
    assert champion_horizons(shop, "m_lines") == (91, 273)
    assert champion_horizons(TrackingConfig(config.tracking_uri, scope="cdnow"), "m_lines") == (91,)
    with pytest.raises(NoChampionError, match="horizons of 91, 273 days: pass --horizon-days 91"):
        load_champion(shop, "m_lines", 90)


def test_a_changed_feature_set_starts_a_new_lineage_with_a_note(client):
    v1, _ = register("m_features", k=0.9)
    gate(client, "m_features", v1, lineage=Lineage("shop", 91, "orders-only"))
    v2, run_id = register("m_features", k=0.1)   # worse, but on another feature set: no comparison
    decision = gate(client, "m_features", v2, lineage=Lineage("shop", 91, "with-events"), run_id=run_id)
    assert decision.promoted and not decision.compared and decision.champion_score is None
    assert decision.reason == ("new lineage: champion version 1 was trained on another feature set (orders-only); "
                               "no comparison made")
    assert client.get_run(run_id).data.tags["gate.reason"] == decision.reason


def test_a_champion_that_cannot_score_the_new_data_is_no_rival(client):
    lineage = Lineage("shop", 91, "f")
    v1, _ = register("m_broken", k=0.9)
    gate(client, "m_broken", v1, lineage=lineage)
    v2, _ = register("m_broken", k=0.3)

    def score(model):
        value = float(pd.Series(model.predict(HOLDOUT)).iloc[0])
        if value == 0.9:
            raise KeyError("feature table lacks column(s) the model reads: email_opens")
        return value
    decision = gate(client, "m_broken", v2, lineage=lineage, score=score)
    assert decision.promoted and not decision.compared
    assert "champion version 1 cannot score this data (KeyError)" in decision.reason


def test_too_little_data_to_judge_keeps_a_challenger_unless_forced(client):
    v1, _ = register("m_small", k=0.9)
    model = mlflow.pyfunc.load_model(f"models:/m_small/{v1}")
    refused = decide(client, "m_small", model, metric="auc", score=RecordingScore(), refuse="only 12 held-out rows")
    assert not refused.promoted
    assert refused.reason == "not promoted: only 12 held-out rows (pass --force to promote anyway)"
    forced = decide(client, "m_small", model, metric="auc", score=RecordingScore(), refuse="x", force=True)
    assert forced.promoted and forced.reason == "no champion yet"


# --- loading the champion --------------------------------------------------------------------

def test_load_champion_returns_the_champion_and_its_version(client, config, tmp_path, monkeypatch):
    v1, _ = register("m_load", k=2.0)
    gate(client, "m_load", v1)
    v2, _ = register("m_load", k=1.0)
    gate(client, "m_load", v2)    # worse: stays challenger

    # load_champion reads the store in config, not whatever MLflow's process-wide URI says
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/elsewhere.db")
    mlflow.set_registry_uri(f"sqlite:///{tmp_path}/elsewhere.db")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(downloads))
    model, version = load_champion(config, "m_load")
    assert not (tmp_path / "elsewhere.db").exists()
    assert version == v1 == champion_version(config, "m_load")
    assert list(model.predict(pd.DataFrame({"x": [1.0, 3.0]}))) == [2.0, 6.0]
    assert list(downloads.iterdir()) == []  # the downloaded copy is gone once loaded


def test_load_champion_without_one_says_to_run_cdp_train(client, config, tmp_path):
    register("m_unpromoted", k=1.0)
    for model_name in ("m_unpromoted", "m_never_registered"):
        with pytest.raises(LookupError, match=rf"'{model_name}'.*run `cdp train`"):
            load_champion(config, model_name)

    assert champion_version(config, "m_unpromoted") is None and champion_version(config, "m_never_registered") is None
    empty = TrackingConfig.local(tmp_path / "no-store")
    with pytest.raises(NoChampionError, match="run `cdp train`"):
        load_champion(empty, "m_load")
    assert champion_version(empty, "m_load") is None
    assert not (tmp_path / "no-store").exists()


def test_versions_created_before_a_moment_are_listed_and_later_ones_are_not(client, config, tmp_path):
    from datetime import datetime, timezone

    v1, _ = register("m_before", k=1.0)
    time.sleep(0.05)
    moment = datetime.now(timezone.utc).replace(tzinfo=None)
    time.sleep(0.05)
    register("m_before", k=2.0)
    found, note = versions_created_before(config, ("m_before", "m_never_registered"), moment)
    assert note is None and [(name, version) for name, version, _, _ in found] == [("m_before", v1)]
    found, note = versions_created_before(TrackingConfig.local(tmp_path / "none"), ("m_before",), moment)
    assert found == () and "no model registry" in note and not (tmp_path / "none").exists()
