"""Benchmark: one row of features scored in-process, as ``/score_features`` does, without HTTP.

    .venv/bin/python -m bench.one_row --config bench/out/training/data/cdp.toml \
        --tracking-uri sqlite:///bench/out/serving/mlruns/mlflow.db

The store's served champions (the ``champion`` alias of every family) score ``--rows``
random rows of its serving snapshot, one at a time, each sent as a name → value mapping
as an app sends it: `serving.scoring.feature_row` → `serving.scoring.score_rows`, the
service's own path, timed per request after ``--warm`` untimed ones. The typical values
the reasons compare with are the snapshot's, as in the service.

Floor, in the same run: the churn champion's bare LightGBM Booster predicting those rows'
already preprocessed features, one row per call (the least any scoring of a row costs).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cdp.config import load_config
from serving.models import ModelSet, RegistryChampions
from serving.scoring import feature_row, score_rows
from store.snapshot import ServingSnapshot
from training.reasons import typical_values
from training.risk_bands import ChurnRiskBands
from training.score import _python_model
from training.tracking import MODEL_NAMES, store_tracking


def _percentiles(times: list[float]) -> dict[str, float]:
    values = np.array(times) * 1000
    return {"p50_ms": round(float(np.percentile(values, 50)), 2), "p99_ms": round(float(np.percentile(values, 99)), 2),
            "min_ms": round(float(values.min()), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="The store's cdp.toml.")
    parser.add_argument("--tracking-uri", help="MLflow of the champions (default: the store's own).")
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--warm", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    config = load_config(args.config)
    env = {"MLFLOW_TRACKING_URI": args.tracking_uri} if args.tracking_uri else {}
    source = RegistryChampions(store_tracking(config, env), args.horizon_days)
    families = [family for family in MODEL_NAMES if source.champion_version(family) is not None]
    models = ModelSet({family: source.load(family) for family in families})
    snapshot = pd.read_parquet(ServingSnapshot.beside(config.store.path).path)
    typical = typical_values(snapshot)
    types = models.feature_types()
    bands = ChurnRiskBands()
    day = pd.Timestamp(snapshot["features_as_of"].iloc[0]).date()
    chosen = snapshot.sample(min(args.rows + args.warm, len(snapshot)), random_state=args.seed)
    bodies = [{name: (None if pd.isna(record[name]) else float(record[name]) if kind == "number"
                      else str(record[name])) for name, kind in types.items()}
              for record in chosen.to_dict("records")]

    def one(body: dict) -> dict:
        return score_rows(feature_row(body, models, day), models, bands, typical)[0]

    for body in bodies[:args.warm]:
        one(body)
    times = []
    for body in bodies[args.warm:]:
        start = time.perf_counter()
        one(body)
        times.append(time.perf_counter() - start)

    # Floor: the churn classifier's Booster on each buyer's preprocessed row, one call per row.
    churn = _python_model(models.models["churn"].pyfunc).estimator
    buyers = chosen[chosen["recency_days"].notna()]
    prepared = churn.prepare(buyers)
    matrix = np.ascontiguousarray(prepared.x.to_numpy(dtype=np.float64))
    booster = churn.classifier_.booster_
    for row in matrix[:args.warm]:
        booster.predict(row[None, :], raw_score=True, num_threads=1)
    floor = []
    for row in matrix[args.warm:]:
        start = time.perf_counter()
        booster.predict(row[None, :], raw_score=True, num_threads=1)
        floor.append(time.perf_counter() - start)

    result = {"rows": len(times), "families": families, "versions": models.versions,
              "score_features_in_process": _percentiles(times), "bare_booster_predict": _percentiles(floor),
              "cpus": os.cpu_count()}
    result["ratio_p50"] = round(result["score_features_in_process"]["p50_ms"]
                                / max(result["bare_booster_predict"]["p50_ms"], 1e-3), 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
