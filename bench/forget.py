"""Benchmark: `cdp forget` (one person, then a batch file) with the store file rebuilt, against
DuckDB's own copy of the same file as the floor.

    .venv/bin/python -m bench.forget --customers 200000

The store is the generator's shop (`cdp sample`, `cdp ingest`, `cdp unify`, `cdp features
--materialize`, so the materialized features and the serving snapshot are there to be
rewritten too), built once and cached under ``--out``/data while its stamp matches
(``--rebuild`` forces it). Each measurement runs on a fresh copy of that store, in its own
process under /usr/bin/time (wall time and peak RSS). The floor is what the rebuild
cannot do without: `COPY FROM DATABASE` of the same file into a new one, in one bare
DuckDB process. Before and after each forget the benchmark counts, byte for byte, the
erased people's emails the store file holds in clear (at this size DuckDB compresses most
strings, so "before" is lower than the number of people: the fault tests' small stores are
where the byte search has its control).
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
END = date(2026, 10, 31)

FLOOR = """
import duckdb, sys
con = duckdb.connect()
con.execute("ATTACH ? AS src (READ_ONLY)", [sys.argv[1]])
con.execute("ATTACH ? AS dst", [sys.argv[2]])
con.execute("COPY FROM DATABASE src TO dst")
con.execute("DETACH dst")
"""


def timed(command: list[str], cwd: Path, check: bool = True) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS in MB) as /usr/bin/time reports them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}  # the store's own registry
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", report.name, *command], cwd=cwd, check=check,
                       stdout=subprocess.DEVNULL, env=env)
        seconds, kilobytes = report.read().split()[-2:]
    return float(seconds), int(kilobytes) / 1024


def build_store(data: Path, customers: int, seed: int, rebuild: bool) -> dict:
    stamp_file = data / "bench-stamp.json"
    stamp = {"customers": customers, "seed": seed, "end": END.isoformat()}
    if not rebuild and stamp_file.exists() and json.loads(stamp_file.read_text()).get("stamp") == stamp:
        return json.loads(stamp_file.read_text())["build"] | {"cached": True}
    if data.exists():
        shutil.rmtree(data)
    cdp = str(BIN / "cdp")
    build = {}
    build["generate_s"], _ = timed([cdp, "sample", "--customers", str(customers), "--seed", str(seed),
                                    "--end", END.isoformat(), "--out", str(data)], ROOT)
    config = str(data / "cdp.toml")
    for step in ("ingest", "unify"):
        build[f"{step}_s"], _ = timed([cdp, step, "--config", config], ROOT)
    build["materialize_s"], _ = timed([cdp, "features", "--config", config, "--materialize"], ROOT)
    stamp_file.write_text(json.dumps({"stamp": stamp, "build": build}, indent=2))
    return build


def people(store: Path, count: int) -> list[tuple[str, str]]:
    """``count`` customers with an email, spread over the id range: (customer id, email). Not
    those whose email is part of another customer's (``akhatib99@…`` in ``ranakhatib99@…``):
    a byte search cannot tell them apart."""
    import duckdb

    with duckdb.connect(str(store), read_only=True) as con:
        return con.execute("""
            WITH candidates AS (SELECT customer_id, email FROM customers WHERE email IS NOT NULL
                                ORDER BY hash(customer_id) LIMIT ? * 3),
                 others AS (SELECT DISTINCT email_norm AS email FROM source_customers WHERE email_norm IS NOT NULL
                            UNION SELECT DISTINCT email_norm FROM source_orders WHERE email_norm IS NOT NULL)
            SELECT c.customer_id, c.email FROM candidates c
            WHERE NOT EXISTS (SELECT 1 FROM others o WHERE o.email <> c.email AND contains(o.email, c.email))
            ORDER BY hash(c.customer_id) LIMIT ?""", [count, count]).fetchall()


def holds(path: Path, values: list[str]) -> int:
    data = path.read_bytes()
    return sum(value.encode() in data for value in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "forget")
    args = parser.parse_args()

    data = args.out / "data"
    build = build_store(data, args.customers, args.seed, args.rebuild)
    store = data / "cdp.duckdb"
    chosen = people(store, args.batch + 1)
    work = args.out / "work"
    cdp = str(BIN / "cdp")

    def fresh_copy() -> Path:
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(data, work)
        return work / "cdp.duckdb"

    copy = fresh_copy()
    size_before = copy.stat().st_size
    floor_target = args.out / "floor.duckdb"
    floor_target.unlink(missing_ok=True)
    floor_s, floor_mb = timed([sys.executable, "-c", FLOOR, str(copy), str(floor_target)], ROOT)
    floor_size = floor_target.stat().st_size
    floor_target.unlink()

    one_id, one_email = chosen[0]
    one_before = holds(copy, [one_email])  # 0 when DuckDB compressed it (FSST): a byte search then proves little
    one_s, one_mb = timed([cdp, "forget", "--config", str(work / "cdp.toml"), "--customer-id", one_id,
                           "--actor", "bench"], ROOT)
    one_left = holds(copy, [one_email])
    size_after_one = copy.stat().st_size

    copy = fresh_copy()
    batch = chosen[1:]
    requests = args.out / "requests.csv"
    requests.write_text("customer_id\n" + "".join(f"{c}\n" for c, _ in batch), encoding="utf-8")
    emails = [e for _, e in batch]
    before = holds(copy, emails)
    batch_s, batch_mb = timed([cdp, "forget", "--config", str(work / "cdp.toml"), "--file", str(requests),
                               "--actor", "bench"], ROOT)
    batch_left = holds(copy, emails)

    import duckdb

    with duckdb.connect(str(store), read_only=True) as con:
        rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                for t in ("customers", "source_orders", "source_events", "orders", "events")}
    result = {
        "customers_generated": args.customers, "rows": rows, "build": build,
        "store_mb": round(size_before / 2**20, 1),
        "floor_copy_from_database_s": floor_s, "floor_peak_mb": round(floor_mb),
        "floor_file_mb": round(floor_size / 2**20, 1),
        "forget_one_s": one_s, "forget_one_peak_mb": round(one_mb),
        "forget_one_ratio_to_floor": round(one_s / floor_s, 1),
        "store_mb_after_one": round(size_after_one / 2**20, 1),
        "one_email_in_file_before": one_before, "one_email_still_in_file": one_left,
        "batch_people": len(batch), "batch_emails_in_file_before": before,
        "forget_batch_s": batch_s, "forget_batch_peak_mb": round(batch_mb),
        "forget_batch_ratio_to_floor": round(batch_s / floor_s, 1),
        "forget_batch_per_person_s": round(batch_s / len(batch), 3),
        "batch_emails_still_in_file": batch_left,
        "cpus": os.cpu_count(),
    }
    shutil.rmtree(work)
    (args.out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
