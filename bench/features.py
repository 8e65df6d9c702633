"""Benchmark: the feature builder on 1M customers / 20M events, against a hand-written DuckDB RFM query.

    .venv/bin/python -m bench.features --customers 1000000 --events 20000000

The unified tables (customers, orders, events) are synthesized straight into a DuckDB
store with SQL (random but seeded; the shapes of the sample generator's tables), since
the point is the builder, not ingestion. Each step runs in its own process under
/usr/bin/time. The floor is one SQL query computing recency, frequency (distinct
purchase days) and monetary value per customer: the cheapest honest RFM.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from bench.ingest_unify import timed

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
AS_OF = "2026-06-30"

SYNTHESIZE = """
SELECT setseed(0.42);
CREATE TABLE customers AS
SELECT 'c' || lpad(i::VARCHAR, 8, '0') AS customer_id, NULL::VARCHAR AS first_name, NULL::VARCHAR AS last_name,
       NULL::VARCHAR AS email, NULL::VARCHAR AS phone, NULL::VARCHAR AS external_id,
       DATE '1960-01-01' + (random() * 15000)::INTEGER AS birth_date, NULL::VARCHAR AS gender,
       (['PS','IL','JO','US','DE'])[1 + (random() * 4.999)::INTEGER] AS country, 'City' AS city,
       random() < 0.6 AS consent_email, random() < 0.3 AS consent_sms, hash(i * 7) % 10 < 3 AS consent_ads,
       TIMESTAMP '2023-07-01' + to_days((random() * 1000)::INTEGER) AS first_seen,
       TIMESTAMP '2026-10-31' AS last_seen, 0::BIGINT AS n_records, 0::BIGINT AS n_orders, 0::BIGINT AS n_events,
       'bench' AS sources
FROM range({customers}) t(i);
CREATE TABLE orders AS
SELECT 'o' || i AS order_id, 'c' || lpad((hash(i) % {customers})::VARCHAR, 8, '0') AS customer_id,
       'bench' AS source, i::VARCHAR AS source_key,
       TIMESTAMP '2023-07-01' + to_seconds((random() * 105000000)::BIGINT) AS timestamp,
       round(5 + random() * 300, 2) AS amount, 1 + (random() * 3)::BIGINT AS quantity,
       'P' || (random() * 500)::INTEGER AS product_id,
       (['olive_oil','zaatar','soap','dates','ceramics'])[1 + (random() * 4.999)::INTEGER] AS category,
       CASE WHEN random() < 0.5 THEN 'web' ELSE 'store' END AS channel, 'ILS' AS currency,
       CASE WHEN random() < 0.2 THEN 5.0 ELSE 0.0 END AS discount, random() < 0.03 AS is_return
FROM range({orders}) t(i);
CREATE TABLE events AS
SELECT 'e' || i AS event_id, 'c' || lpad((hash(i * 7) % {customers})::VARCHAR, 8, '0') AS customer_id,
       NULL::VARCHAR AS anonymous_id, 'bench' AS source, i::VARCHAR AS source_key,
       TIMESTAMP '2023-07-01' + to_seconds((random() * 105000000)::BIGINT) AS timestamp,
       (['page_view','product_view','search','add_to_cart','checkout','email_sent','email_open','email_click',
         'ad_impression','ad_click'])[1 + (random() * 9.999)::INTEGER] AS event_type,
       (['web','email','facebook','instagram','google_search'])[1 + (random() * 4.999)::INTEGER] AS channel,
       NULL::VARCHAR AS campaign, NULL::VARCHAR AS product_id, NULL::VARCHAR AS category, NULL::DOUBLE AS value
FROM range({events}) t(i);
"""

FLOOR = f"""
import duckdb, sys
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute('''
    SELECT customer_id, DATE '{AS_OF}' - max(timestamp::DATE) AS recency_days,
           count(DISTINCT timestamp::DATE) AS purchase_days, sum(amount) AS revenue_total
    FROM orders WHERE customer_id IS NOT NULL AND NOT is_return AND timestamp < DATE '{AS_OF}' + 1
    GROUP BY customer_id''').fetchall()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=5_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "features")
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    store = args.out / "cdp.duckdb"
    (args.out / "cdp.toml").write_text('[store]\npath = "cdp.duckdb"\nmemory_limit = "3GB"\n')

    import duckdb

    con = duckdb.connect(str(store))
    for statement in SYNTHESIZE.format(customers=args.customers, orders=args.orders, events=args.events).split(";"):
        if statement.strip():
            con.execute(statement)
    con.close()

    floor_s, floor_mb = timed([sys.executable, "-c", FLOOR, str(store)], ROOT)
    out_file = args.out / "features.parquet"
    build_s, build_mb = timed([str(BIN / "cdp"), "features", "--config", str(args.out / "cdp.toml"),
                               "--as-of", AS_OF, "--out", str(out_file), "--force"], ROOT)
    import pyarrow.parquet as pq

    meta = pq.read_metadata(out_file)
    result = {
        "customers": args.customers, "orders": args.orders, "events": args.events, "as_of": AS_OF,
        "floor_sql_rfm_s": floor_s, "floor_peak_mb": round(floor_mb),
        "cdp_features_s": build_s, "cdp_features_peak_mb": round(build_mb),
        "ratio_to_floor": round(build_s / floor_s, 1),
        "rows_out": meta.num_rows, "columns_out": meta.num_columns,
    }
    print(json.dumps(result, indent=2))
    (args.out / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
