"""Benchmark: how the batch pipeline's cost grows with the data, on DuckDB and on a Spark cluster.

    .venv/bin/python -m bench.engines --customers 200000 --fractions 0.25,0.5,1

For each fraction of ``--customers`` the generator writes a shop; then ``cdp ingest``,
``cdp unify``, ``cdp features --materialize`` and ``cdp score`` run as a user runs them, each in
its own process under /usr/bin/time: once on DuckDB (a store file, in-process) and once with
``[engine] kind = "spark"`` (a Parquet store) on a local standalone cluster started here (a master
and ``--workers`` workers of 1 core and ``--worker-memory`` each, `bench.spark_cluster`).
Reported per step: wall seconds, the driver's peak RSS, and on Spark each executor's peak RSS
(its JVM plus the Python workers it started, sampled every 0.2 s from /proc). The models are
trained once, on the smallest DuckDB shop, into one registry both engines score from.

Floors, measured in the same run at every size: DuckDB's native CSV reader loading the shop's
files as text (`read_csv`, no typing), and Spark reading the same files and counting their rows
on the same cluster: what one plain scan of the data costs on each engine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import psutil

from bench.spark_cluster import standalone_cluster

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
END = date(2026, 10, 31)
STEPS = (("ingest",), ("unify",), ("features", "--materialize"), ("score", "--horizon-days", "90"))


class ExecutorMemory:
    """Peak RSS of every Spark executor (its JVM and the Python workers below it) while running."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ExecutorMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for process in psutil.process_iter(["pid", "cmdline"]):
                if "CoarseGrainedExecutorBackend" not in " ".join(process.info["cmdline"] or ()):
                    continue
                try:
                    total = process.memory_info().rss + sum(c.memory_info().rss for c in process.children(True))
                except psutil.Error:
                    continue
                self.peaks[process.pid] = max(self.peaks.get(process.pid, 0.0), total / 2**20)
            self._stop.wait(self.interval)


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS in MB) as /usr/bin/time reports them."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        done = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", report.name, *command], cwd=cwd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        seconds, kilobytes = report.read().split()[-2:]
    return float(seconds), int(kilobytes) / 1024


def write_shop(root: Path, customers: int, seed: int, registry: str, engine: str, master: str, work: Path) -> Path:
    """The generator's shop in ``root`` with a cdp.toml for ``engine``; its path."""
    timed([str(BIN / "cdp"), "sample", "--customers", str(customers), "--seed", str(seed), "--end", END.isoformat(),
           "--out", str(root)], ROOT)
    return on_engine(root / "cdp.toml", engine, "bench-engines", registry, master, work, "768m", 8)


def on_engine(config: Path, engine: str, name: str, registry: str, master: str, work: Path, executor_memory: str,
              partitions: int) -> Path:
    """Point a generated shop's cdp.toml at ``engine``: a DuckDB file, or a Parquet store on Spark at
    ``master``; the store named ``name`` in the one ``registry`` both engines' shops share."""
    text = config.read_text(encoding="utf-8")
    store = 'path = "cdp.duckdb"' if engine == "duckdb" else 'path = "store"'
    text = text.replace('path = "cdp.duckdb"', store + f'\nname = "{name}"', 1)
    text += f'\n[tracking]\nuri = "{registry}"\n'
    if engine == "spark":
        text += (f'\n[engine]\nkind = "spark"\nmaster = "{master}"\nwork_dir = "{work}"\n[engine.conf]\n'
                 f'"spark.executor.memory" = "{executor_memory}"\n"spark.sql.shuffle.partitions" = {partitions}\n')
    config.write_text(text, encoding="utf-8")
    return config


def duckdb_floor(root: Path) -> float:
    script = ("import duckdb, sys\ncon = duckdb.connect()\n"
              "for i, f in enumerate(sys.argv[1:]):\n"
              "    con.execute(f\"CREATE TABLE t{i} AS SELECT * FROM read_csv('{f}', all_varchar=true)\")\n")
    seconds, _ = timed([sys.executable, "-c", script, *map(str, sorted(root.glob("*.csv")))], ROOT)
    return seconds


def spark_floor(root: Path, master: str) -> float:
    script = ("import sys\nfrom store.spark import spark_session\nfrom pathlib import Path\n"
              "s = spark_session(Path(sys.argv[1]), master=sys.argv[2])\n"
              "print(s.read.option('header', True).csv(sys.argv[3:]).count())\ns.stop()\n")
    files = list(map(str, sorted(root.glob("*.csv"))))
    seconds, _ = timed([sys.executable, "-c", script, str(root / "floor-work"), master, *files], ROOT)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--fractions", default="0.25,0.5,1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-memory", default="1g")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "engines")
    args = parser.parse_args()

    out = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    registry = f"sqlite:///{out / 'mlflow' / 'mlflow.db'}"
    (out / "mlflow").mkdir()
    fractions = [float(f) for f in args.fractions.split(",")]
    results = []
    with standalone_cluster(out / "cluster", workers=args.workers, memory=args.worker_memory) as cluster:
        for number, fraction in enumerate(sorted(fractions)):
            customers = int(args.customers * fraction)
            for engine in ("duckdb", "spark"):
                root = out / f"{customers}-{engine}"
                config = write_shop(root, customers, args.seed, registry, engine, cluster.url, out / "work")
                floor = duckdb_floor(root) if engine == "duckdb" else spark_floor(root, cluster.url)
                row = {"customers": customers, "engine": engine, "floor_s": floor}
                for step in STEPS:
                    if step[0] == "score" and number == 0 and engine == "duckdb":
                        timed([str(BIN / "cdp"), "train", "all", "--config", str(config), "--horizon-days", "90",
                               "--force"], ROOT)
                    extra = ["--out", str(root / "scores.parquet")] if step[0] == "score" else []
                    with ExecutorMemory() as executors:
                        seconds, driver_mb = timed([str(BIN / "cdp"), *step, *extra, "--config", str(config)], ROOT)
                    row[f"{step[0]}_s"] = seconds
                    row[f"{step[0]}_driver_mb"] = round(driver_mb)
                    if engine == "spark":
                        row[f"{step[0]}_executor_mb"] = [round(v) for v in sorted(executors.peaks.values())]
                row["total_s"] = round(sum(row[f"{s[0]}_s"] for s in STEPS), 1)
                row["ratio_to_floor"] = round(row["total_s"] / floor, 1)
                results.append(row)
                print(json.dumps(row), flush=True)
                shutil.rmtree(root / "store", ignore_errors=True)
    summary = {"rows": results, "cpus": os.cpu_count(), "workers": args.workers, "worker_memory": args.worker_memory,
               "measured_at": time.strftime("%Y-%m-%d %H:%M")}
    (out / "result.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
