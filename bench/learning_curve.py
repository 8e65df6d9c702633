"""Benchmark: how much held-out quality the training sample size buys (learning curves).

    .venv/bin/python -m bench.learning_curve --customers 200000

`cdp train` fits its models in one process (the driver, when the engine is Spark) on a hash
sample of ``[training] max_customers`` customers. This measures what that costs in quality.

The generator's shop of ``--customers`` (cached like `bench.training`'s) gives the labelled
snapshots of every customer, built once as `cdp train` builds them (4 snapshots 30 days
apart, 90-day labels, as of the shop's last day). A fixed fifth of the customers, chosen by
a hash of their id, is never trained on: the latest snapshot of those who had bought is the
evaluation set of every point. From the other customers, nested hash samples of each size
are drawn (a sample of 10,000 holds the sample of 5,000, as `cdp train`'s hash sample
does); each is split as `cdp train` splits it (older snapshots train; half of the latest
tunes early stopping and calibration) and `training.purchase.PurchaseModel` is fitted with
its defaults: the churn classifier, then the purchase-days and revenue boosters on it.
Sizes up to ``--repeat-below`` are drawn ``--repeats`` times with different salts, so the
spread a small sample adds is seen. Reported per size: the evaluation set's churn ROC-AUC,
PR-AUC and Brier score, purchase-days MAE and Poisson deviance, the fit's seconds, and the
snapshot rows the driver holds (MB).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import pandas as pd

from bench.training import build_store

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000)


def ranks(customer_ids: pd.Series, salt: str) -> pd.Series:
    """A stable pseudo-random order of customers (0 = drawn first), by a salted hash of the id."""
    hashed = pd.util.hash_pandas_object(customer_ids.astype(str) + salt, index=False).to_numpy()
    return pd.Series(hashed, index=customer_ids.to_numpy()).rank(method="first").astype(int) - 1


def snapshots_of(config_path: Path) -> tuple[pd.DataFrame, dt.date, float]:
    """Every customer's labelled snapshots (`training.data.labelled_snapshots`), the as-of day
    and the seconds they took."""
    from cdp.config import load_config
    from features.engine import store_tables
    from store.duckdb_store import Store
    from training.data import Window, labelled_snapshots
    from training.evaluate import order_days

    config = load_config(config_path)
    with Store(config.store.path, read_only=True) as store:
        tables = store_tables(store, config)
        _, last = order_days(tables)
        start = time.perf_counter()
        frame = labelled_snapshots(tables, Window(as_of=last, horizon_days=90, n_snapshots=4, step_days=30))
        return frame, last, time.perf_counter() - start


def fit_and_measure(train: pd.DataFrame, tune: pd.DataFrame, test: pd.DataFrame) -> dict:
    from training.purchase import PurchaseModel, classification_metrics
    from training.run import _purchase_days_metrics

    start = time.perf_counter()
    churn = PurchaseModel(horizon_days=90, parts=("purchase",)).fit(train, tune)
    count = PurchaseModel(horizon_days=90, parts=("count", "revenue")).fit(train, tune, purchase_from=churn)
    seconds = time.perf_counter() - start
    churned = test["churned"].to_numpy(int)
    quality = classification_metrics(churned, churn.predict(test)["churn_probability"].to_numpy(), prefix="churn_")
    quality |= _purchase_days_metrics(test["purchase_days_in_horizon"].to_numpy(float),
                                      count.predict(test)["expected_purchases"].to_numpy(float))
    keep = ("churn_roc_auc", "churn_pr_auc", "churn_brier", "purchase_days_mae", "purchase_days_poisson_deviance")
    return {k: round(quality[k], 4) for k in keep} | {
        "fit_s": round(seconds, 1), "train_rows": len(train), "tune_rows": len(tune),
        "driver_mb": round((train.memory_usage(deep=True).sum() + tune.memory_usage(deep=True).sum()) / 2**20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--repeat-below", type=int, default=25_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "learning_curve")
    args = parser.parse_args()

    from training.purchase import holdout_split

    build = build_store(args.out / "data", args.customers, args.seed, rebuild=False)
    print(json.dumps({"shop": build}), flush=True)
    snapshots, as_of, snapshot_s = snapshots_of(args.out / "data" / "cdp.toml")
    customers = pd.Series(snapshots["customer_id"].unique())
    evaluation = set(customers[holdout_split(customers, share=0.2, salt="learning-curve")])
    pool = customers[~customers.isin(evaluation)]
    latest = snapshots["as_of"] == snapshots["as_of"].max()
    test = snapshots[latest & snapshots["customer_id"].isin(evaluation)].reset_index(drop=True)
    print(json.dumps({"as_of": as_of.isoformat(), "snapshot_rows": len(snapshots), "snapshot_s": round(snapshot_s, 1),
                      "pool_customers": len(pool), "evaluation_customers": len(test)}), flush=True)

    results = []
    sizes = sorted(int(s) for s in args.sizes.split(",") if int(s) < len(pool)) + [len(pool)]
    for size in sizes:
        for repeat in range(args.repeats if size <= args.repeat_below else 1):
            order = ranks(pool, f"draw-{repeat}")
            drawn = set(order[order < size].index)
            rows = snapshots[snapshots["customer_id"].isin(drawn)]
            newest = rows["as_of"] == rows["as_of"].max()
            held = rows[newest].reset_index(drop=True)
            tune = held[~holdout_split(held["customer_id"])]  # the half `cdp train` tunes on
            point = {"customers": size, "draw": repeat} | fit_and_measure(rows[~newest], tune, test)
            results.append(point)
            print(json.dumps(point), flush=True)
    (args.out / "results.json").write_text(json.dumps({"shop": build, "points": results}, indent=2))
    frame = pd.DataFrame(results)
    summary = frame.groupby("customers").agg(
        draws=("draw", "count"), roc_auc=("churn_roc_auc", "mean"), roc_auc_sd=("churn_roc_auc", "std"),
        pr_auc=("churn_pr_auc", "mean"), brier=("churn_brier", "mean"), mae=("purchase_days_mae", "mean"),
        deviance=("purchase_days_poisson_deviance", "mean"), deviance_sd=("purchase_days_poisson_deviance", "std"),
        fit_s=("fit_s", "mean"), driver_mb=("driver_mb", "mean"))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.round(4))


if __name__ == "__main__":
    main()
