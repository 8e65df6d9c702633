"""The attribution run in MLflow: parameters, totals, the table and the chart. Channels and
counts only: no customer id, email, phone or name is logged."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import mlflow
import pandas as pd

from training.tracking import TrackingConfig, experiment, log_frame

__all__ = ["EXPERIMENT", "log_attribution"]

EXPERIMENT = "cdp-attribution"


def log_attribution(config: TrackingConfig, table: pd.DataFrame, chart_png: bytes, params: Mapping[str, object],
                    metrics: Mapping[str, float]) -> str:
    """Log one run to experiment ``cdp-attribution`` and return its id."""
    experiment_id = experiment(config, EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment_id, run_name="attribution") as run:
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        log_frame(table, "attribution/attribution.csv")
        _log_bytes(chart_png, "attribution/shares.png")
        return run.info.run_id


def _log_bytes(data: bytes, artifact_file: str) -> None:
    with tempfile.TemporaryDirectory(prefix="cdp-attribution-") as folder:
        path = Path(folder) / Path(artifact_file).name
        path.write_bytes(data)
        mlflow.log_artifact(str(path), artifact_path=str(Path(artifact_file).parent))
