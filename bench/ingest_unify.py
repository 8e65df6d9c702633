"""Benchmark: `cdp ingest` + `cdp unify` on generated data, against a raw DuckDB load as the floor.

    .venv/bin/python -m bench.ingest_unify --customers 200000

Each step runs in its own process under /usr/bin/time, so its wall time and peak memory
(max RSS) are its own. The floor is DuckDB's native CSV reader loading the same files as
text into tables (no typing, validation, normalization or linking): what a single
hand-written query costs on this machine, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS in MB) as /usr/bin/time reports them."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", report.name, *command], cwd=cwd, check=True,
                       stdout=subprocess.DEVNULL)
        seconds, kilobytes = report.read().split()[-2:]
    return float(seconds), int(kilobytes) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "ingest_unify")
    args = parser.parse_args()

    out = args.out
    if out.exists():
        shutil.rmtree(out)
    cdp = str(BIN / "cdp")
    gen_s, _ = timed([cdp, "sample", "--customers", str(args.customers), "--seed", str(args.seed),
                      "--end", date(2026, 10, 31).isoformat(), "--out", str(out)], ROOT)
    files = sorted(p for p in out.glob("*.csv"))
    floor_script = (
        "import duckdb, sys\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "for i, f in enumerate(sys.argv[2:]):\n"
        "    con.execute(f\"CREATE TABLE t{i} AS SELECT * FROM read_csv('{f}', all_varchar=true)\")\n"
    )
    floor_db = out / "floor.duckdb"
    floor_s, floor_mb = timed([sys.executable, "-c", floor_script, str(floor_db), *map(str, files)], ROOT)
    config = str(out / "cdp.toml")
    ingest_s, ingest_mb = timed([cdp, "ingest", "--config", config], ROOT)
    unify_s, unify_mb = timed([cdp, "unify", "--config", config], ROOT)
    reingest_s, _ = timed([cdp, "ingest", "--config", config], ROOT)

    import duckdb

    con = duckdb.connect(str(out / "cdp.duckdb"), read_only=True)
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
              for t in ("source_customers", "source_orders", "source_events", "rejects", "customers")}
    con.close()
    result = {
        "customers_generated": args.customers,
        "rows": counts,
        "generate_s": gen_s,
        "floor_duckdb_read_csv_s": floor_s, "floor_mb": round(floor_mb),
        "ingest_s": ingest_s, "ingest_peak_mb": round(ingest_mb),
        "unify_s": unify_s, "unify_peak_mb": round(unify_mb),
        "ingest_plus_unify_s": round(ingest_s + unify_s, 2),
        "ratio_to_floor": round((ingest_s + unify_s) / floor_s, 1),
        "reingest_unchanged_s": reingest_s,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    (out / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
