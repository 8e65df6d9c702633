"""A training killed inside its MLflow run does not leave the run RUNNING forever: the next
training in the same experiment marks it FAILED and says why; runs still alive, runs of
another host and runs cdp-ml did not start are left alone."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from tests.trained_shop import TrainedShop, run_cli
from training.run_owner import ENDED_NOTE, ENDED_TAG, OWNER_TAG, owner_gone, owner_tag
from training.tracking import TrackingConfig, experiment, start_run

ROOT = Path(__file__).resolve().parents[2]


def test_a_process_is_gone_once_it_has_exited_or_its_id_belongs_to_another_process():
    assert owner_gone(owner_tag()) is False                                   # this very process
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tag = owner_tag(child.pid)
        assert owner_gone(tag) is False
    finally:
        child.kill()
        child.wait()
    assert owner_gone(tag) is True                                            # exited
    host, pid, started = owner_tag().rsplit(":", 2)
    assert owner_gone(f"{host}:{pid}:{float(started) - 60:.2f}") is True      # same id, another process
    assert owner_gone(f"another-host.example:{pid}:{started}") is False       # cannot tell: left alone
    assert owner_gone("not a tag") is False


def run_and_die(root: Path, name: str) -> str:
    """A process that starts a run as `cdp train` does, prints its id, and is killed with SIGKILL inside it."""
    code = ("import os, signal, sys; from pathlib import Path\n"
            "from training.tracking import TrackingConfig, start_run\n"
            f"run = start_run(TrackingConfig.local(Path({str(root)!r})), {name!r}, 'doomed').__enter__()\n"
            "print(run.info.run_id, flush=True)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == -signal.SIGKILL, done.stderr
    return done.stdout.strip()


def test_the_next_run_in_the_experiment_marks_a_killed_run_failed_and_leaves_the_others(tmp_path):
    config = TrackingConfig.local(tmp_path / "mlruns")
    killed = run_and_die(tmp_path / "mlruns", "cdp-churn")
    client = MlflowClient(tracking_uri=config.tracking_uri)
    assert client.get_run(killed).info.status == "RUNNING"                    # what MLflow leaves behind
    experiment_id = experiment(config, "cdp-churn")
    other_host = client.create_run(experiment_id, tags={OWNER_TAG: f"elsewhere:1:{time.time():.2f}"}).info.run_id
    untagged = client.create_run(experiment_id).info.run_id
    elsewhere = run_and_die(tmp_path / "mlruns", "cdp-segments")                          # another experiment
    with start_run(config, "cdp-churn", "the next training") as current:
        assert current.info.run_id != killed
        inner = experiment(config, "cdp-churn")                               # again, with this run alive
        assert inner == experiment_id
        assert client.get_run(current.info.run_id).info.status == "RUNNING"
    run = client.get_run(killed)
    assert run.info.status == "FAILED" and run.data.tags[ENDED_TAG] == ENDED_NOTE
    assert client.get_run(current.info.run_id).info.status == "FINISHED"
    assert client.get_run(other_host).info.status == "RUNNING"
    assert client.get_run(untagged).info.status == "RUNNING"
    assert client.get_run(elsewhere).info.status == "RUNNING"                 # closed by the next segments run
    experiment(config, "cdp-segments")
    assert client.get_run(elsewhere).info.status == "FAILED"
    assert socket.gethostname() in run.data.tags[OWNER_TAG]


@pytest.fixture
def shop(trained_shop, tmp_path) -> TrainedShop:
    """A private copy of the session's trained shop with a private copy of its MLflow store."""
    shutil.copytree(trained_shop.root / "shop", tmp_path / "shop")
    shutil.copytree(trained_shop.root / "mlruns", tmp_path / "mlruns")
    return TrainedShop(root=tmp_path, config=tmp_path / "shop" / "cdp.toml",
                       tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
                       snapshot=tmp_path / "shop" / "online_features.parquet")


def running_runs(client: MlflowClient, name: str) -> list[str]:
    found = client.get_experiment_by_name(name)
    if found is None:
        return []
    return [r.info.run_id for r in client.search_runs([found.experiment_id], "attributes.status = 'RUNNING'")]


def test_cdp_train_killed_inside_its_run_is_closed_by_the_next_cdp_train(shop):
    client = MlflowClient(tracking_uri=shop.tracking_uri)
    assert running_runs(client, "cdp-churn") == []
    env = {**os.environ, "MLFLOW_TRACKING_URI": shop.tracking_uri, "PYTHONPATH": str(ROOT)}
    train = subprocess.Popen([sys.executable, "-m", "cdp.cli", "train", "churn", "--config", str(shop.config),
                              "--snapshots", "2"], env=env, cwd=shop.root, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (running := running_runs(client, "cdp-churn")):             # wait until it is inside its run
            assert train.poll() is None, "cdp train ended before its run could be caught"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        train.send_signal(signal.SIGKILL)
        train.wait()
    assert train.returncode == -signal.SIGKILL and client.get_run(running[0]).info.status == "RUNNING"
    saved = mlflow.get_tracking_uri()
    try:
        run_cli("train", "churn", "--config", str(shop.config), "--snapshots", "2", tracking_uri=shop.tracking_uri)
    finally:
        mlflow.set_tracking_uri(saved)
    killed = client.get_run(running[0])
    assert killed.info.status == "FAILED" and killed.data.tags[ENDED_TAG] == ENDED_NOTE
    assert running_runs(client, "cdp-churn") == []
