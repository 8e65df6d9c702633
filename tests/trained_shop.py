"""A trained sample shop, built once per session through the CLI, shared by the serving and the marketing tests.

`cdp sample`, `ingest`, `unify`, `train all`, `score` (which writes the feature snapshot the
service reads), as a user would, with MLflow in a throw-away local store. The fixture is
registered for every test folder by tests/conftest.py.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from cdp.cli import app

SHOP_NAME = "serving-shop"


@dataclass(frozen=True)
class TrainedShop:
    root: Path
    config: Path
    tracking_uri: str
    snapshot: Path


def private_copy(shop: TrainedShop, root: Path) -> TrainedShop:
    """A copy of ``shop``'s store and files under ``root``, for a test that changes them; the
    registry stays shared (the copy keeps the shop's name, so its champions are the shop's)."""
    shutil.copytree(shop.root / "shop", root / "shop")
    return TrainedShop(root=root, config=root / "shop" / "cdp.toml", tracking_uri=shop.tracking_uri,
                       snapshot=root / "shop" / "online_features.parquet")


def run_cli(*args: str, tracking_uri: str, log: Path | None = None) -> str:
    """Run one `cdp` command in-process; its output is appended to ``log`` (what a user would see)."""
    result = CliRunner().invoke(app, list(args), env={"MLFLOW_TRACKING_URI": tracking_uri})
    if log is not None:
        with open(log, "a", encoding="utf-8") as sink:
            sink.write(f"$ cdp {' '.join(args)}\n{result.output}\n")
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="session")
def trained_shop(tmp_path_factory) -> TrainedShop:
    root = tmp_path_factory.mktemp("serving-shop")
    tracking_uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    config = root / "shop" / "cdp.toml"
    saved = mlflow.get_tracking_uri()
    log = root / "cli.log"
    try:
        run_cli("sample", "--customers", "1000", "--seed", "3", "--end", "2026-10-31", "--out", str(root / "shop"),
                tracking_uri=tracking_uri, log=log)
        # The shop shares the session's registry with private copies that tests make of it: a
        # name, not its path, tells the registry it is the same shop.
        config.write_text(config.read_text(encoding="utf-8").replace(
            "[store]\n", f'[store]\nname = "{SHOP_NAME}"\n', 1), encoding="utf-8")
        for command in ("ingest", "unify"):
            run_cli(command, "--config", str(config), tracking_uri=tracking_uri, log=log)
        run_cli("train", "all", "--config", str(config), "--snapshots", "2", tracking_uri=tracking_uri, log=log)
        # 1,000 people leave too few held-out prospects for the gate to judge a first-purchase
        # model (it stays a challenger): promoted by hand, so the service answers prospects.
        run_cli("train", "first-purchase", "--config", str(config), "--snapshots", "2", "--force",
                tracking_uri=tracking_uri, log=log)
        run_cli("score", "--config", str(config), "--out", str(root / "scores.parquet"), tracking_uri=tracking_uri,
                log=log)
    finally:
        mlflow.set_tracking_uri(saved)
    return TrainedShop(root=root, config=config, tracking_uri=tracking_uri,
                       snapshot=root / "shop" / "online_features.parquet")
