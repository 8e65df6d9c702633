"""Benchmark: `cdp train all` on the sample generator's shop of 1M customers, against a bare LightGBM fit.

    .venv/bin/python -m bench.training --customers 1000000

The store is the generator's own: `cdp sample --customers N --seed 1 --end 2026-10-31`,
then `cdp ingest` and `cdp unify`, so customers, orders and events carry the generator's
purchase and dropout behaviour, identifiers and mess. Building it takes minutes at 1M, so
it is cached under ``--out``/data and reused while its stamp (customers, seed, end) matches
(``--rebuild`` forces it); its timings are reported but are not the benchmark.

The timed step is `cdp train all --horizon-days 90` with the CLI's defaults (4 snapshots,
30 days apart; a hash sample of about 50,000 customers, `--max-customers`) in its own
process under /usr/bin/time, with a fresh local MLflow store (``./mlruns`` of an empty
working directory).

A second run of the same training, in-process with each stage function wrapped in a
timer, gives the per-stage breakdown and records every LightGBM fit (objective, rows,
columns, trees grown, threads). The floor then repeats those fits, bare, in its own
process: the same boosters with the same settings (tree counts, leaves, sampling,
threads) on the very matrices and targets the run fitted, saved by the breakdown run, but
without validation sets, BG/NBD starting margins, snapshots, calibration, predictions,
segments or MLflow. It is the cost of the boosting alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

from bench.ingest_unify import timed

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
END = date(2026, 10, 31)
HORIZON_DAYS = 90
# The default 1500MB is too little for `cdp unify` of 1M customers (16M records); the
# benchmark's own config says so rather than the generator's template.
UNIFY_MEMORY_LIMIT = "8GB"

GENERATE = """
import datetime as dt, sys
from pathlib import Path
import sample
sample.write_sample(Path(sys.argv[1]), n_customers=int(sys.argv[2]), seed=int(sys.argv[3]),
                    end=dt.date.fromisoformat(sys.argv[4]))
"""

FLOOR = """
import json, sys, time
from pathlib import Path
import lightgbm as lgb
import numpy as np
folder = Path(sys.argv[1])
seconds = []
for i, b in enumerate(json.loads((folder / "boosters.json").read_text())):
    x, y = np.load(folder / f"{i}.x.npy"), np.load(folder / f"{i}.y.npy")
    model = getattr(lgb, b["class"])(**(b["params"] | {"n_estimators": b["trees"]}))
    start = time.perf_counter()
    model.fit(x, y)
    seconds.append(round(time.perf_counter() - start, 2))
print(json.dumps(seconds))
"""


def build_store(data: Path, customers: int, seed: int, rebuild: bool) -> dict:
    """Generate, ingest and unify the sample shop into ``data`` unless a matching one is there."""
    stamp_file = data / "bench-stamp.json"
    stamp = {"customers": customers, "seed": seed, "end": END.isoformat()}
    if not rebuild and stamp_file.exists() and json.loads(stamp_file.read_text()).get("stamp") == stamp:
        return json.loads(stamp_file.read_text())["build"] | {"cached": True}
    if data.exists():
        shutil.rmtree(data)
    gen_s, gen_mb = timed([sys.executable, "-c", GENERATE, str(data), str(customers), str(seed), END.isoformat()],
                          ROOT)
    toml = data / "cdp.toml"
    text = toml.read_text()
    toml.write_text(text.replace('path = "cdp.duckdb"\n',
                                 f'path = "cdp.duckdb"\nmemory_limit = "{UNIFY_MEMORY_LIMIT}"\n', 1))
    config = str(toml)
    ingest_s, ingest_mb = timed([str(BIN / "cdp"), "ingest", "--config", config], ROOT)
    unify_s, unify_mb = timed([str(BIN / "cdp"), "unify", "--config", config], ROOT)
    for source in data.glob("*.csv"):   # 1.8 GB that training never reads again
        source.unlink()

    import duckdb

    con = duckdb.connect(str(data / "cdp.duckdb"), read_only=True)
    rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("customers", "orders", "events")}
    rows["buyers"] = con.execute("SELECT count(DISTINCT customer_id) FROM orders "
                                 "WHERE customer_id IS NOT NULL AND NOT is_return").fetchall()[0][0]
    con.close()
    build = {"generate_s": gen_s, "generate_peak_mb": round(gen_mb), "ingest_s": ingest_s,
             "ingest_peak_mb": round(ingest_mb), "unify_s": unify_s, "unify_peak_mb": round(unify_mb), "rows": rows}
    stamp_file.write_text(json.dumps({"stamp": stamp, "build": build}, indent=2))
    return build | {"cached": False}


# ------------------------------------------------------------------ per-stage breakdown

def breakdown(config: Path, work: Path) -> dict:
    """`cdp train all`'s work in-process (the CLI's defaults), each stage timed.

    Only the outermost timed stage counts, so nothing is counted twice; "other" is the rest
    of a family's time (metrics, baselines, splits). Every LightGBM fit is also recorded
    (objective, rows, columns, trees grown, threads, seconds): the floor repeats them.
    """
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    import lightgbm as lgb
    import numpy as np

    import training.run as run
    from cdp.config import load_config
    from features.currency import tables_in_base_currency
    from features.engine import duckdb_tables
    from store.duckdb_store import Store
    from training.categories import CategoryRecommender
    from training.purchase import PurchaseModel
    from training.segments import CustomerSegmenter
    from training.tracking import TrackingConfig

    seconds: dict[str, float] = defaultdict(float)
    state = {"family": "data", "depth": 0, "saving": 0.0}   # seconds spent saving matrices, not counted
    boosters: list[dict] = []

    def stage(name, fn):
        def wrapped(*args, **kwargs):
            state["depth"] += 1
            start, saving = time.perf_counter(), state["saving"]
            try:
                return fn(*args, **kwargs)
            finally:
                state["depth"] -= 1
                if state["depth"] == 0:
                    seconds[f"{state['family']}: {name}"] += time.perf_counter() - start - (state["saving"] - saving)
        return wrapped

    def family_run(fn, family):
        def wrapped(*args, **kwargs):
            state["family"] = family(args)
            start, saving = time.perf_counter(), state["saving"]
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[f"{state['family']}: total"] += time.perf_counter() - start - (state["saving"] - saving)
                state["family"] = "data"
        return wrapped

    def recorded(fit):
        def wrapped(self, X, y, *args, **kwargs):
            start = time.perf_counter()
            out = fit(self, X, y, *args, **kwargs)
            seconds_fit = round(time.perf_counter() - start, 2)
            i, saving = len(boosters), time.perf_counter()
            np.save(work / "boosters" / f"{i}.x.npy", np.asarray(X, dtype=np.float64))
            np.save(work / "boosters" / f"{i}.y.npy", np.asarray(y))
            state["saving"] += time.perf_counter() - saving
            params = {k: v for k, v in self.get_params().items() if isinstance(v, (int, float, str, bool, type(None)))}
            boosters.append({"family": state["family"], "class": type(self).__name__,
                             "objective": params["objective"] or "binary",
                             "rows": X.shape[0], "columns": X.shape[1], "trees": self.booster_.current_iteration(),
                             "validated": kwargs.get("eval_X") is not None, "threads": params["n_jobs"],
                             "seconds": seconds_fit, "params": params})
            return out
        return wrapped

    lgb.LGBMClassifier.fit = recorded(lgb.LGBMClassifier.fit)
    lgb.LGBMRegressor.fit = recorded(lgb.LGBMRegressor.fit)
    run.sample_customers = stage("hash sample of customers (count)", run.sample_customers)
    run.labelled_snapshots = stage("labelled snapshots (features + labels + category history, 4 dates)",
                                   run.labelled_snapshots)
    run.features_as_of = stage("features as of the day", run.features_as_of)
    run._train_segments = family_run(run._train_segments, lambda a: "segments")
    run._train_purchase = family_run(run._train_purchase, lambda a: a[0])
    run._register = stage("MLflow: log and register the model", run._register)
    run.decide = stage("MLflow: gate (load and score the champion and the challenger)", run.decide)
    run._log_churn_artifacts = stage("artifacts: importance, calibration, lift, contributions",
                                     run._log_churn_artifacts)
    run._log_baselines = stage("MLflow: baselines table and plot", run._log_baselines)
    run.baseline_metrics = stage("baselines (BG/NBD, Gamma-Gamma, recency)", run.baseline_metrics)
    run.log_frame = stage("MLflow: log tables", run.log_frame)
    run.mlflow.log_figure = stage("MLflow: log plots", run.mlflow.log_figure)
    run.mlflow.start_run = stage("MLflow: start run", run.mlflow.start_run)
    CustomerSegmenter.fit = stage("fit (KMeans and GMM candidates)", CustomerSegmenter.fit)
    CustomerSegmenter.profile = stage("profile (predict everyone)", CustomerSegmenter.profile)
    PurchaseModel.fit = stage("fit (BG/NBD, preprocessing, LightGBM, calibration)", PurchaseModel.fit)
    PurchaseModel.predict = stage("predict held-out customers", PurchaseModel.predict)
    CategoryRecommender.fit = stage("category recommender", CategoryRecommender.fit)

    (work / "boosters").mkdir()
    cfg = load_config(config)
    tracking = TrackingConfig.local(work / "mlruns")
    start = time.perf_counter()
    with Store(cfg.store.path, read_only=True) as store:
        tables = tables_in_base_currency(duckdb_tables(store.con), cfg.currency)
        settings = run.TrainSettings(window=run.horizon_window(END, HORIZON_DAYS, 4, 30))
        run.train(tables, settings, tracking)
    total = time.perf_counter() - start - state["saving"]
    stages = {k: round(v, 1) for k, v in sorted(seconds.items())}
    for family in ("segments", "churn", "next-purchase"):
        parts = sum(v for k, v in seconds.items() if k.startswith(f"{family}: ") and not k.endswith("total"))
        stages[f"{family}: other"] = round(seconds[f"{family}: total"] - parts, 1)
    stages["total in-process"] = round(total, 1)
    stages["of which LightGBM fits"] = round(sum(b["seconds"] for b in boosters), 1)
    (work / "boosters" / "boosters.json").write_text(json.dumps(boosters))
    return {"stages_s": stages, "boosters": boosters, "max_customers": settings.max_customers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "training")
    parser.add_argument("--rebuild", action="store_true", help="Regenerate the store even if a matching one is cached.")
    parser.add_argument("--breakdown-child", nargs=2, metavar=("CONFIG", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.breakdown_child:
        result = breakdown(Path(args.breakdown_child[0]), Path(args.breakdown_child[1]))
        Path(args.breakdown_child[1], "breakdown.json").write_text(json.dumps(result, indent=2))
        return

    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / "data"
    build = build_store(data, args.customers, args.seed, args.rebuild)
    config = data / "cdp.toml"
    os.environ.pop("MLFLOW_TRACKING_URI", None)   # each run its own fresh ./mlruns

    with tempfile.TemporaryDirectory(prefix="cdp-bench-train-") as work:
        work = Path(work)
        (work / "train").mkdir()
        train_s, train_mb = timed([str(BIN / "cdp"), "train", "all", "--config", str(config),
                                   "--horizon-days", str(HORIZON_DAYS)], work / "train")
        (work / "breakdown").mkdir()
        stages_s, stages_mb = timed([sys.executable, "-m", "bench.training", "--breakdown-child", str(config),
                                     str(work / "breakdown")], ROOT)
        stages = json.loads((work / "breakdown" / "breakdown.json").read_text())
        boosters = stages["boosters"]
        report = work / "floor.json"
        floor_s, floor_mb = timed(["sh", "-c", f'"$0" -c "$1" "$2" > "{report}"', sys.executable, FLOOR,
                                   str(work / "breakdown" / "boosters")], work)
        for booster, seconds in zip(boosters, json.loads(report.read_text())):
            booster["floor_seconds"] = seconds
            del booster["params"]

    result = {
        "customers_generated": args.customers, "store": build, "as_of": END.isoformat(), "horizon_days": HORIZON_DAYS,
        "max_customers": stages["max_customers"],
        "floor_lightgbm_s": floor_s, "floor_peak_mb": round(floor_mb),
        "cdp_train_all_s": train_s, "cdp_train_all_peak_mb": round(train_mb),
        "ratio_to_floor": round(train_s / floor_s, 1),
        "breakdown_run_s": stages_s, "breakdown_run_peak_mb": round(stages_mb),
        "stages_s": stages["stages_s"], "boosters": boosters, "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    (args.out / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
