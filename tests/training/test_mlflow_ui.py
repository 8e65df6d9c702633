"""`mlflow ui` on a store `cdp train` wrote: it serves the runs, their metrics and plots, and the
registered models with their aliases.

Starts the real UI server (one worker, on a free local port, telemetry and job runners off) against a small
store (the churn family trained once on the shared sample shop) and asks it over HTTP what the
browser would ask: the same REST endpoints the UI pages call.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import mlflow
import pytest

from features.engine import duckdb_tables
from training.data import Window
from training.run import TrainSettings, train
from training.tracking import TrackingConfig

STARTUP_SECONDS = 60

pytestmark = pytest.mark.filterwarnings(
    # from MLflow's own SQLAlchemy store, not from our calls
    "ignore:The ``noload`` loader strategy is deprecated"
)


@pytest.fixture(scope="module")
def store(shop, tmp_path_factory):
    """A local store with one churn run, registered and promoted (what `cdp train churn` leaves)."""
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    saved = mlflow.get_tracking_uri()
    tracking = TrackingConfig.local(tmp_path_factory.mktemp("ui") / "mlruns")
    con = shop.connect()
    window = Window(as_of=shop.end, horizon_days=90, n_snapshots=2, step_days=30)
    (result,) = train(duckdb_tables(con), TrainSettings(window=window, families=("churn",)), tracking)
    con.close()
    mlflow.set_tracking_uri(saved)
    return tracking, result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ui(store, tmp_path_factory):
    """The base URL of `mlflow ui --backend-store-uri <store>`, stopped after the module."""
    tracking, _ = store
    port = _free_port()
    log = tmp_path_factory.mktemp("ui-log") / "mlflow-ui.log"
    # No telemetry (offline), and no background job runners (huey consumers) outliving the test.
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking.tracking_uri,
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path_factory.mktemp("ui-cwd"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(f"mlflow ui exited with {server.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow ui did not answer /health within {STARTUP_SECONDS} s:\n{log.read_text()}")
            time.sleep(0.25)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _get(base: str, endpoint: str, **params) -> tuple[str, bytes]:
    url = f"{base}{endpoint}?{urllib.parse.urlencode(params)}" if params else f"{base}{endpoint}"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200, url
        return response.headers.get_content_type(), response.read()


def _json(base: str, endpoint: str, body: dict | None = None, **params) -> dict:
    if body is None:
        return json.loads(_get(base, endpoint, **params)[1])
    request = urllib.request.Request(f"{base}{endpoint}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_the_registry_page_lists_the_model_with_champion_and_challenger_aliases(ui, store):
    _, result = store
    models = _json(ui, "/ajax-api/2.0/mlflow/registered-models/search")["registered_models"]
    churn = next(m for m in models if m["name"] == "cdp-churn")
    assert {a["alias"]: a["version"] for a in churn["aliases"]} == \
        {"champion-h90d": result.version, "challenger-h90d": result.version}   # one registry, the 90-day lineage
    version = _json(ui, "/ajax-api/2.0/mlflow/model-versions/get", name="cdp-churn",
                    version=result.version)["model_version"]
    assert version["run_id"] == result.run_id and version["status"] == "READY"
    assert {t["key"]: t["value"] for t in version["tags"]}["gate.decision"] == "promoted"


def test_the_run_page_shows_the_metrics_beside_the_baselines(ui, store):
    _, result = store
    run = _json(ui, "/ajax-api/2.0/mlflow/runs/get", run_id=result.run_id)["run"]
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert metrics["churn_roc_auc"] == pytest.approx(result.metrics["churn_roc_auc"])
    assert metrics["bgnbd_churn_roc_auc"] == pytest.approx(result.baselines["bgnbd_churn_roc_auc"])
    assert metrics["recency_churn_brier"] == pytest.approx(result.baselines["recency_churn_brier"])
    experiments = _json(ui, "/ajax-api/2.0/mlflow/experiments/search", {"max_results": 50})["experiments"]
    churn = next(e for e in experiments if e["name"] == "cdp-churn")
    found = _json(ui, "/ajax-api/2.0/mlflow/runs/search", {"experiment_ids": [churn["experiment_id"]]})["runs"]
    assert [r["info"]["run_id"] for r in found] == [result.run_id]


def test_the_artifacts_page_lists_and_serves_the_plots(ui, store):
    _, result = store
    listed = _json(ui, "/ajax-api/2.0/mlflow/artifacts/list", run_uuid=result.run_id, path="plots")["files"]
    plots = {f["path"] for f in listed}
    assert {"plots/importance.png", "plots/calibration.png", "plots/lift.png", "plots/contributions.png",
            "plots/baselines.png"} <= plots
    for path in sorted(plots):
        content_type, body = _get(ui, "/get-artifact", path=path, run_uuid=result.run_id)
        assert content_type == "image/png" and body.startswith(b"\x89PNG\r\n\x1a\n") and len(body) > 5000, path
    _, table = _get(ui, "/get-artifact", path="baselines.csv", run_uuid=result.run_id)
    assert table.decode().splitlines()[0].startswith("contender,churn_roc_auc")


def test_the_model_version_page_can_open_the_logged_model(ui, store):
    _, result = store
    version = _json(ui, "/ajax-api/2.0/mlflow/model-versions/get", name="cdp-churn",
                    version=result.version)["model_version"]
    model_id = version["source"].removeprefix("models:/")
    logged = _json(ui, f"/ajax-api/2.0/mlflow/logged-models/{model_id}")["model"]["info"]
    tags = {t["key"]: t["value"] for t in logged["tags"]}
    assert json.loads(tags["mlflow.modelVersions"]) == [{"name": "cdp-churn", "version": result.version}]
    _, mlmodel = _get(ui, f"/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files",
                      artifact_file_path="MLmodel")
    assert b"python_function" in mlmodel
