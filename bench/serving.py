"""Benchmark: `cdp score` of every customer and the scoring service under load, each against a floor.

    .venv/bin/python -m bench.serving --customers 1000000

The shop is `bench.training`'s (the generator's 1M customers, ingested and unified, cached
under ``bench/out/training/data``); the champions are trained once by `cdp train all` into
``--out``/mlruns and reused while the store's stamp matches.

1. **Batch.** Each command in its own process under /usr/bin/time: `cdp features
   --materialize` (features as of the last day for every customer, kept in the store and
   in the serving snapshot); `cdp score` three times, the median reported (reads those
   features, loads the three champions, writes the scores table and file); and `cdp
   score` once more after the store's snapshot is made stale, so that it builds the
   features itself (the one-command figure). Floor: the champions' bare LightGBM
   boosters predicting the very matrices they read (the purchase classifier, the
   purchase-day and revenue boosters: raw scores), on all cores, prepared beforehand and
   timed alone; LightGBM's ``pred_contrib`` for the reasons is timed beside it.
2. **Service.** `cdp serve` on that snapshot (time to ready includes scoring every
   customer once), and `bench.trivial_service` (BentoML answering a constant) beside it.
   `bench.load` (a second process on loopback) sends single-customer ``/score``
   requests: sequentially (1 client), then from 16 concurrent clients, bounded in count
   and time; the trivial service gets the same load first. Also timed: ``/score_batch``
   of 1,000 ids, sequentially.
3. **One row of features.** ``/score_features`` with the snapshot rows of random known
   customers (every feature the models read, as an app would send a customer the store
   does not hold), sequentially on one keep-alive connection, against the trivial
   service's ``/score_features`` (BentoML parsing the same bodies and answering a
   constant): p50 and p99 beside ``/score``'s, and the ratio to the floor.

    .venv/bin/python -m bench.serving --customers 20000 --service-only   # the service alone, a small shop

4. **A shared online store** (``--redis``): a throwaway ``redis-server`` (`bench.redis_server`);
   `cdp score` once more with ``CDP_ONLINE_STORE`` set (its time, the publish included, beside
   the plain `cdp score`), then `cdp serve --workers 2` reading the published answers, under
   the same sequential and concurrent ``/score`` load as the in-memory service.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from bench.ingest_unify import timed
from bench.training import BIN, END, HORIZON_DAYS, ROOT, build_store

KEY = "bench-key-0123456789abcdefghij"
FLOOR = """
import json, os, sys, time
from pathlib import Path
import pandas as pd
from training.score import champions
from training.tracking import store_scope, tracking_config
from training.pyfunc import model_frame

frame = pd.read_parquet(sys.argv[1])
store = Path(sys.argv[2])
models = champions(tracking_config(os.environ, Path("mlruns"), scope=store_scope(store)), int(sys.argv[3]))
timings = {}
for family in ("churn", "next-purchase"):
    wrapper = models[family][0].unwrap_python_model()
    est = wrapper.estimator
    X = model_frame(frame, wrapper.columns)
    X = est.btyd_.transform(X[X["recency_days"].notna()])
    x = est.preprocess_.transform(X[est.inputs_]).to_numpy()
    threads = os.cpu_count()
    boosters = {"churn": [("purchase", est.classifier_, False), ("pred_contrib", est.classifier_, True)],
                "next-purchase": [("count", est.counter_, False), ("revenue", est.spender_, False)]}[family]
    for name, model, contrib in boosters:
        start = time.perf_counter()
        model.booster_.predict(x, raw_score=not contrib, pred_contrib=contrib, num_threads=threads)
        timings[f"{family} {name}"] = round(time.perf_counter() - start, 2)
timings["rows"] = len(x)
print(json.dumps(timings))
"""


def _wait_ready(port: int, process: subprocess.Popen, log: Path, limit: float = 1800, streak: int = 1) -> float:
    """Seconds until ``/readyz`` answers 200 ``streak`` times in a row (each worker of several
    answers for itself: a long streak means every one is ready)."""
    start, seen = time.perf_counter(), 0
    while time.perf_counter() - start < limit:
        if process.poll() is not None:
            raise SystemExit(f"server on port {port} exited; see {log}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/readyz")
            seen = seen + 1 if connection.getresponse().status == 200 else 0
            if seen >= streak:
                return time.perf_counter() - start
        except OSError:
            seen = 0
        time.sleep(0.05 if seen else 0.5)
    raise SystemExit(f"server on port {port} not ready after {limit} s; see {log}")


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


def _load(port: int, ids: Path, clients: int, requests: int, seconds: float) -> dict:
    output = subprocess.run([sys.executable, "-m", "bench.load", "--url", f"http://127.0.0.1:{port}/score",
                             "--ids", str(ids), "--clients", str(clients), "--requests", str(requests),
                             "--seconds", str(seconds), "--key", KEY], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout
    return json.loads(output)


def _timed_posts(port: int, path: str, bodies: list[dict]) -> dict:
    """Sequential POSTs on one keep-alive connection: latency percentiles (ms) and errors."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
    latencies, errors = [], 0
    for body in bodies:
        start = time.perf_counter()
        connection.request("POST", path, body=json.dumps(body), headers=headers)
        response = connection.getresponse()
        response.read()
        latencies.append((time.perf_counter() - start) * 1000)
        errors += response.status != 200
    ms = np.array(latencies)
    return {"requests": len(ms), "errors": errors, "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1)}


def _feature_bodies(port: int, snapshot: Path, ids: list[str], count: int) -> list[dict]:
    """``/score_features`` bodies: the snapshot rows of ``count`` random known customers, every
    feature the served models read (``GET /versions``), missing values as null."""
    import pandas as pd

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/versions", headers={"Authorization": f"Bearer {KEY}"})
    types = json.loads(connection.getresponse().read())["feature_names"]
    chosen = random.Random(3).sample(ids, min(count, len(ids)))
    rows = pd.read_parquet(snapshot, columns=["customer_id", *types]).set_index("customer_id").loc[chosen]
    bodies = []
    for _, row in rows.iterrows():
        bodies.append({"features": {name: (None if pd.isna(row[name]) else float(row[name]) if kind == "number"
                                           else str(row[name])) for name, kind in types.items()}})
    return bodies


def _one_row(ports: dict[str, int], bodies: list[dict], warmup: int = 50) -> dict:
    """``/score_features`` on cdp-ml and on the trivial service, the same bodies in the same order,
    sequentially, after ``warmup`` requests that are not counted."""
    out = {}
    for name in ("trivial", "cdp-ml"):
        _timed_posts(ports[name], "/score_features", bodies[:warmup])
        out[name] = _timed_posts(ports[name], "/score_features", bodies)
        print(name, "/score_features", out[name], flush=True)
    return out


def _shared_store(config: Path, env: dict, ids_file: Path, args, out: Path, score_args: list[str]) -> dict:
    """`cdp score` publishing to a throwaway Redis, then `cdp serve --workers 2` on it under load."""
    from bench.redis_server import redis_server

    port = 3312
    with redis_server(out / "redis") as url:
        os.environ["CDP_ONLINE_STORE"] = url
        try:
            publish_s, publish_mb = timed(score_args, out)
            log = out / "cdp-ml-redis.log"
            with open(log, "wb") as sink:
                server = subprocess.Popen(
                    [str(BIN / "cdp"), "serve", "--config", str(config), "--port", str(port), "--poll-seconds", "3600",
                     "--workers", "2"], cwd=ROOT, env={**env, "CDP_ONLINE_STORE": url}, stdout=sink,
                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                ready = round(_wait_ready(port, server, log, streak=20), 1)
                load = {}
                for mode, clients, requests in (("sequential", 1, args.sequential_requests),
                                                ("concurrent", 16, args.concurrent_requests)):
                    load[mode] = _load(port, ids_file, clients, requests, args.seconds)
                    print("cdp-ml redis 2 workers", mode, load[mode], flush=True)
            finally:
                _stop(server)
        finally:
            os.environ.pop("CDP_ONLINE_STORE", None)
    return {"cdp_score_with_publish_s": publish_s, "cdp_score_with_publish_peak_mb": round(publish_mb),
            "ready_s": ready, "load": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "serving")
    parser.add_argument("--store", type=Path, default=ROOT / "bench" / "out" / "training" / "data",
                        help="Where bench.training keeps (or builds) the generator's store.")
    parser.add_argument("--sequential-requests", type=int, default=5000)
    parser.add_argument("--concurrent-requests", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=120, help="Time bound of each load run.")
    parser.add_argument("--batch-only", action="store_true", help="Time the batch commands, not the service.")
    parser.add_argument("--service-only", action="store_true",
                        help="Time the service, not the batch commands (they still run once to write the snapshot).")
    parser.add_argument("--feature-requests", type=int, default=2000,
                        help="Sequential /score_features requests, each a known customer's snapshot row.")
    parser.add_argument("--redis", action="store_true",
                        help="Also time the service with a shared online store (Redis) and 2 workers.")
    args = parser.parse_args()

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    build = build_store(args.store, args.customers, args.seed, rebuild=False)
    config = args.store / "cdp.toml"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{out / 'mlruns' / 'mlflow.db'}",
           "MLFLOW_DISABLE_TELEMETRY": "true", "BENTOML_DO_NOT_TRACK": "true", "CDP_API_KEY": KEY}
    os.environ.update(env)
    stamp_file = out / "trained-stamp.json"
    stamp = {"customers": args.customers, "seed": args.seed, "end": END.isoformat()}
    if not stamp_file.exists() or json.loads(stamp_file.read_text()) != stamp:
        subprocess.run(["rm", "-rf", str(out / "mlruns")], check=True)
        (out / "mlruns").mkdir()
        train_s, _ = timed([str(BIN / "cdp"), "train", "all", "--config", str(config),
                            "--horizon-days", str(HORIZON_DAYS)], out)
        stamp_file.write_text(json.dumps(stamp))
        print(f"trained the champions in {train_s:.0f} s", flush=True)

    cdp = [str(BIN / "cdp")]
    common = ["--config", str(config)]
    features_s, features_mb = timed([*cdp, "features", *common, "--materialize"], out)
    scores = out / "scores.parquet"
    score_args = [*cdp, "score", *common, "--horizon-days", str(HORIZON_DAYS), "--out", str(scores), "--force"]
    snapshot = config.with_name("online_features.parquet")
    if args.service_only:  # one `cdp score`, for the snapshot the service reads
        score_s, score_mb = timed(score_args, out)
        batch_result: dict = {"customers": None, "cdp_features_materialize_s": features_s, "cdp_score_s": score_s,
                              "note": "--service-only: the batch figures were not measured"}
    else:
        # Three runs, the median reported: the first after an install also compiles the tree
        # kernels (Numba caches them beside the code; every later process loads them).
        runs = sorted((timed(score_args, out) for _ in range(3)), key=lambda r: r[0])
        score_s, score_mb = runs[1]
        report = out / "floor.json"
        floor_s, floor_mb = timed(["sh", "-c", f'"$0" -c "$1" "$2" "$3" "$4" > "{report}"', sys.executable, FLOOR,
                                   str(snapshot), str(config.with_name("cdp.duckdb")), str(HORIZON_DAYS)], out)
        floor = json.loads(report.read_text())
        floor_predict_s = round(sum(v for k, v in floor.items() if k not in ("rows", "churn pred_contrib")), 2)
        # The one-command figure: a snapshot of another day is not used, so `cdp score` builds the features.
        earlier = (END - timedelta(days=1)).isoformat()
        timed([*cdp, "features", *common, "--materialize", "--as-of", earlier], out)
        building_s, building_mb = timed(score_args, out)
        print(f"cdp features --materialize {features_s:.1f} s; cdp score {score_s:.1f} s, {score_mb:.0f} MB "
              f"({building_s:.1f} s building the features itself); bare LightGBM {floor_predict_s:.1f} s", flush=True)
        batch_result = {"customers": None, "cdp_features_materialize_s": features_s,
                        "cdp_features_peak_mb": round(features_mb), "cdp_score_s": score_s,
                        "cdp_score_peak_mb": round(score_mb), "cdp_score_runs_s": [r[0] for r in runs],
                        "cdp_score_building_features_s": building_s,
                        "cdp_score_building_features_peak_mb": round(building_mb),
                        "floor_lightgbm_predict_s": floor_predict_s, "floor_detail_s": floor,
                        "floor_process_s": floor_s, "floor_peak_mb": round(floor_mb),
                        "ratio_to_floor": round(score_s / floor_predict_s, 1)}
    if args.batch_only:
        import pyarrow.parquet as pq

        batch_result["customers"] = pq.read_metadata(snapshot).num_rows
        result = {"customers_generated": args.customers, "store": build, "cpus": os.cpu_count(), "score": batch_result}
        print(json.dumps(result, indent=2))
        (out / "result-batch.json").write_text(json.dumps(result, indent=2))
        return

    import pyarrow.parquet as pq

    all_ids = pq.read_table(snapshot, columns=["customer_id"]).column(0).to_pylist()
    ids = random.Random(1).sample(all_ids, min(100_000, len(all_ids)))
    ids_file = out / "ids.txt"
    ids_file.write_text("\n".join(ids))

    servers = {}
    ports = {"cdp-ml": 3310, "trivial": 3311}
    commands = {
        "cdp-ml": [str(BIN / "cdp"), "serve", "--config", str(config), "--port", str(ports["cdp-ml"]),
                   "--poll-seconds", "3600"],
        "trivial": [sys.executable, "-m", "bentoml", "serve", "bench.trivial_service:Constant", "--port",
                    str(ports["trivial"])],
    }
    result: dict = {"customers_generated": args.customers, "store": build, "cpus": os.cpu_count()}
    try:
        for name, command in commands.items():
            log = out / f"{name}.log"
            with open(log, "wb") as sink:
                servers[name] = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                                 start_new_session=True)
        ready = {name: round(_wait_ready(ports[name], servers[name], out / f"{name}.log"), 1) for name in commands}
        load = {}
        for mode, clients, requests in (("sequential", 1, args.sequential_requests),
                                        ("concurrent", 16, args.concurrent_requests)):
            for name in ("trivial", "cdp-ml"):
                load[f"{name} {mode}"] = _load(ports[name], ids_file, clients, requests, args.seconds)
                print(name, mode, load[f"{name} {mode}"], flush=True)
        rng = random.Random(2)
        batch = _timed_posts(ports["cdp-ml"], "/score_batch",
                             [{"customer_ids": rng.sample(ids, 1000)} for _ in range(20)])
        one_row = _one_row(ports, _feature_bodies(ports["cdp-ml"], snapshot, ids, args.feature_requests))
    finally:
        for process in servers.values():
            _stop(process)
    shared = _shared_store(config, env, ids_file, args, out, score_args) if args.redis else None

    result |= {
        "score": batch_result | {"customers": len(all_ids)},
        "service": {"ready_s": ready, "load": load, "score_batch_1000": batch,
                    "score_features": one_row["cdp-ml"], "trivial_score_features": one_row["trivial"],
                    "score_features_p99_ratio": round(one_row["cdp-ml"]["p99_ms"] / one_row["trivial"]["p99_ms"], 2),
                    "score_features_p50_ratio": round(one_row["cdp-ml"]["p50_ms"] / one_row["trivial"]["p50_ms"], 2),
                    "sequential_p99_ratio": round(load["cdp-ml sequential"]["p99_ms"]
                                                  / load["trivial sequential"]["p99_ms"], 2),
                    "concurrent_throughput_share": round(load["cdp-ml concurrent"]["throughput_rps"]
                                                         / load["trivial concurrent"]["throughput_rps"], 2)},
    }
    if shared is not None:
        result["service"]["redis_2_workers"] = shared | {
            "concurrent_throughput_vs_in_memory": round(shared["load"]["concurrent"]["throughput_rps"]
                                                        / load["cdp-ml concurrent"]["throughput_rps"], 2)}
    print(json.dumps(result, indent=2))
    (out / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
