"""Benchmark: cdp-ml against BG/NBD and Pareto/NBD on the real CDNOW data, 13 and 39 weeks.

    .venv/bin/python -m bench.cdnow_backtest --out /tmp/cdnow-bench

Calibrated to 1997-09-30 (`training.evaluate.backtest`: cdp-ml trained on what was known
then, 7 snapshots 14 days apart; BG/NBD and Pareto/NBD fitted on everyone's history as of
that day), judged on the next 13 weeks (91 days) and 39 weeks (273 days). A 39-week label
window does not fit in this cohort's history, so cdp-ml learns 13-week labels and carries
them forward (`training.horizons`, `training.purchase.carry_forward`).

Datasets: the full cohort (23,570 customers) and ``--subsamples`` seeded random 10%
samples of its *customers*: subsample k keeps every line of the master file whose
customer id is among ``numpy.random.default_rng(seed + k)``'s choice of 10% of the ids,
and is ingested and unified into its own store under ``--out`` with the shipped config's
settings. Stores and queried rows are cached under ``--out`` (``--rebuild`` redoes them).

Printed and written to ``--out``/results.json: each contender's ROC-AUC, per-customer
MAE of the mean forecast, sum|a-f|/sum a and forecast total / actual total per dataset
and horizon; cdp-ml minus BG/NBD with 95% paired bootstrap intervals; the count of
subsamples where cdp-ml beats BG/NBD on both ROC-AUC and MAE with a total no further
from the actual than BG/NBD's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "cdnow" / "cdp.toml"
MASTER = ROOT.parent / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
AS_OF = dt.date(1997, 9, 30)
FIGURES = ("purchase_roc_auc", "purchase_days_mae", "relative_error", "total_ratio")


def subsample_lines(master: Path, share: float, seed: int) -> bytes:
    """The master file's header and the lines of a seeded random ``share`` of its customers, verbatim."""
    lines = master.read_bytes().splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    ids = np.array([line.split()[0] for line in body if line.strip()])
    distinct = np.unique(ids)
    chosen = set(np.random.default_rng(seed).choice(distinct, size=round(share * len(distinct)), replace=False))
    return header + b"".join(line for line in body if line.strip() and line.split()[0] in chosen)


def prepare_store(folder: Path, master: Path, rebuild: bool) -> Path:
    """A folder with the data file, a copy of the shipped config pointing at it, and its
    ingested and unified store; returns the config path."""
    config = folder / "cdp.toml"
    store = folder / "cdnow.duckdb"
    if store.exists() and not rebuild:
        return config
    text = CONFIG.read_text().replace('path = "../../../shared/data/cdnow/CDNOW_master.txt"',
                                      f'path = "{master}"')
    if str(master) not in text:
        raise SystemExit(f"{CONFIG} no longer names the master file where this benchmark expects it")
    config.write_text(text)
    store.unlink(missing_ok=True)
    for command in ("ingest", "unify"):
        subprocess.run([sys.executable, "-m", "cdp.cli", command, "--config", str(config)], check=True,
                       cwd=ROOT, stdout=subprocess.DEVNULL)
    return config


def queried(config: Path, horizon_days: int, n_snapshots: int, step_days: int, rebuild: bool):
    """`training.evaluate.backtest_data` for a store, cached beside it."""
    from cdp.config import load_config
    from features.currency import tables_in_base_currency
    from features.engine import duckdb_tables
    from store.duckdb_store import Store
    from training.evaluate import backtest_data

    cache = config.parent / f"rows_{horizon_days}d_{n_snapshots}x{step_days}.pkl"
    if cache.exists() and not rebuild:
        return pickle.loads(cache.read_bytes())
    cfg = load_config(config)
    with Store(cfg.store.path, read_only=True) as store:
        tables = tables_in_base_currency(duckdb_tables(store.con), cfg.currency)
        data = backtest_data(tables, AS_OF, horizon_days, n_snapshots, step_days)
    cache.write_bytes(pickle.dumps(data))
    return data


def beats(table: pd.DataFrame | list[dict]) -> bool:
    """cdp-ml better than BG/NBD on ROC-AUC and MAE, its total no further from the actual.

    cdp-ml's total is BG/NBD's by construction (`PurchaseModel.anchor_level`), so "no
    further" is judged to a relative 1e-9: the rounding of two sums in different orders."""
    if not isinstance(table, pd.DataFrame):
        table = pd.DataFrame(table).set_index("model")
    ours, theirs = table.loc["cdp-ml"], table.loc["BG/NBD"]
    return bool(ours.purchase_roc_auc > theirs.purchase_roc_auc and ours.purchase_days_mae < theirs.purchase_days_mae
                and abs(ours.total_ratio - 1) <= abs(theirs.total_ratio - 1) + 1e-9)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/cdnow-bench"))
    parser.add_argument("--master", type=Path, default=MASTER)
    parser.add_argument("--subsamples", type=int, default=10)
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--horizons", default="91,273", help="Comma-separated horizons in days.")
    parser.add_argument("--snapshots", type=int, default=7)
    parser.add_argument("--step-days", type=int, default=14)
    parser.add_argument("--model-params", default="{}",
                        help="JSON of PurchaseModel settings over the shipped config's [model] section.")
    parser.add_argument("--no-full", action="store_true", help="Subsamples only.")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--no-anchor", action="store_true",
                        help="Leave cdp-ml's expected purchase days at the boosters' own level (no anchor_level).")
    parser.add_argument("--report", type=Path, help="Print the tables of a results.json written before; run nothing.")
    args = parser.parse_args(argv)
    if args.report:
        results = json.loads(args.report.read_text())["results"]
        for r in results:
            r["beats_bgnbd"] = beats(r["table"])
        print(report(results))
        return
    from training.evaluate import backtest_on

    args.out.mkdir(parents=True, exist_ok=True)
    datasets = [] if args.no_full else [("full", args.master)]
    for k in range(args.subsamples):
        folder = args.out / f"sample_{k}"
        folder.mkdir(exist_ok=True)
        data_file = folder / "CDNOW_sample.txt"
        if not data_file.exists() or args.rebuild:
            data_file.write_bytes(subsample_lines(args.master, args.share, args.seed + k))
        datasets.append((f"sample_{k}", data_file))
    from cdp.config import load_config

    # The shipped config's [model] settings, as `cdp evaluate` uses them; --model-params on top.
    params = {**load_config(CONFIG).model.params(), **json.loads(args.model_params)}
    results = []
    for horizon in (int(h) for h in args.horizons.split(",")):
        for name, master in datasets:
            folder = args.out / name
            folder.mkdir(exist_ok=True)
            config = prepare_store(folder, master, args.rebuild)
            started = time.perf_counter()
            data = queried(config, horizon, args.snapshots, args.step_days, args.rebuild)
            found = backtest_on(data, params, resamples=args.resamples, seed=args.seed, anchor=not args.no_anchor)
            results.append({"dataset": name, "horizon_days": horizon,
                            "label_horizon_days": found.window.label_horizon_days,
                            "customers": int(len(found.test)), "seconds": round(time.perf_counter() - started, 1),
                            "table": found.table.reset_index().to_dict("records"),
                            "differences": found.differences.reset_index().to_dict("records"),
                            "beats_bgnbd": beats(found.table)})
            print(f"{name} {horizon}d: " + "  ".join(
                f"{m}: auc {r.purchase_roc_auc:.4f} mae {r.purchase_days_mae:.4f} rel {r.relative_error:.4f} "
                f"total {r.total_ratio:.3f}" for m, r in found.table.iterrows() if m != "recency heuristic"),
                flush=True)
    (args.out / "results.json").write_text(json.dumps({"params": params, "args": {
        k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1, default=float))
    print(report(results))


def report(results: list[dict]) -> str:
    """Markdown tables of `main`'s results: the full cohort, the subsamples' means and the win count."""
    lines = []
    for horizon in sorted({r["horizon_days"] for r in results}):
        rows = [r for r in results if r["horizon_days"] == horizon]
        lines.append(f"\n### {horizon} days ({horizon // 7} weeks), labels of {rows[0]['label_horizon_days']} days\n")
        lines.append("| dataset | model | ROC-AUC | MAE (mean forecast) | Σ\\|a−f\\|/Σa | total / actual |")
        lines.append("|---|---|---|---|---|---|")
        full = [r for r in rows if r["dataset"] == "full"]
        samples = [r for r in rows if r["dataset"] != "full"]
        for r in full:
            for m in r["table"]:
                lines.append(f"| full cohort ({r['customers']:,}) | {m['model']} | {m['purchase_roc_auc']:.4f} | "
                             f"{m['purchase_days_mae']:.4f} | {m['relative_error']:.4f} | {m['total_ratio']:.3f} |")
        if samples:
            for model in [m["model"] for m in samples[0]["table"]]:
                values = {f: np.array([next(m[f] for m in r["table"] if m["model"] == model) for r in samples])
                          for f in FIGURES}
                lines.append(f"| {len(samples)} subsamples, mean (sd) | {model} | " + " | ".join(
                    f"{values[f].mean():.4f} ({values[f].std(ddof=1):.4f})" if len(samples) > 1
                    else f"{values[f].mean():.4f}" for f in FIGURES) + " |")
        lines.append("\ncdp-ml minus BG/NBD, 95% paired bootstrap over customers:\n")
        lines.append("| dataset | ROC-AUC | MAE | Σ\\|a−f\\|/Σa | beats BG/NBD |")
        lines.append("|---|---|---|---|---|")
        for r in full + samples:
            d = {x["figure"]: x for x in r["differences"]}
            lines.append(f"| {r['dataset']} | " + " | ".join(
                f"{d[f]['difference']:+.4f} ({d[f]['low_95']:+.4f} … {d[f]['high_95']:+.4f})"
                for f in ("purchase_roc_auc", "purchase_days_mae", "relative_error")) + f" | {r['beats_bgnbd']} |")
        if samples:
            lines.append(f"\ncdp-ml beats BG/NBD (ROC-AUC and MAE, total no further off) on "
                         f"{sum(r['beats_bgnbd'] for r in samples)} of {len(samples)} subsamples.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
