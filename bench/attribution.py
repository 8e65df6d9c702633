"""Benchmark: 1M journeys attributed with every model, against a bare DuckDB GROUP BY of the paths.

    .venv/bin/python -m bench.attribution --journeys 1000000

Journeys are synthesized with the sample generator's channel model (``sample.CHANNELS``:
exposure probabilities, noisy-OR conversion, funnel-ordered touch lags), one customer per
journey, as the touch and order tables the store would hold. Timed in this process, DuckDB at 2 threads:

``floor``   one DuckDB query: each journey's path (``string_agg`` ordered by time) and a
            GROUP BY path counting conversions, value and nulls — the least any attribution
            must do;
``journeys`` :func:`attribution.journeys.journeys_from_touches`: touches assigned to the next
            order within 30 days (ASOF join), non-converting runs, aggregation into paths;
``models``  every model of ``cdp attribution --models all`` on those paths.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time

import duckdb
import numpy as np
import pyarrow as pa

from attribution.credit import MODEL_NAMES, attribute
from attribution.journeys import JourneySettings, journeys_from_touches
from sample import BASE_CONVERSION, CHANNELS

START = dt.datetime(2025, 1, 1)


def synthesize(n_journeys: int, seed: int) -> tuple[pa.Table, pa.Table, dt.datetime]:
    """Touches (customer_id, timestamp, channel) and orders (customer_id, order_id, timestamp, amount)."""
    rng = np.random.default_rng(seed)
    k = len(CHANNELS)
    exposure = np.array([c.exposure_probability for c in CHANNELS])
    effect = np.array([c.true_effect for c in CHANNELS])
    exposed = rng.random((n_journeys, k)) < exposure
    none = ~exposed.any(axis=1)
    exposed[none, rng.integers(0, k, none.sum())] = True  # a journey has at least one touch
    p = 1 - (1 - BASE_CONVERSION) * np.prod(1 - exposed * effect, axis=1)
    converted = rng.random(n_journeys) < p
    end_s = rng.integers(40 * 86_400, 340 * 86_400, n_journeys)
    j, c = np.nonzero(exposed)
    lo = np.array([ch.lag_days[0] for ch in CHANNELS])[c]
    hi = np.array([ch.lag_days[1] for ch in CHANNELS])[c]
    time_s = end_s[j] - ((lo + rng.random(len(j)) * (hi - lo)) * 86_400).astype(np.int64)
    names = [ch.name for ch in CHANNELS]
    customer = pa.array(np.char.add("c", j.astype(str)))
    touches = pa.table({"customer_id": customer,
                        "timestamp": pa.array((np.datetime64(START) + time_s.astype("timedelta64[s]"))
                                              .astype("datetime64[us]")),
                        "channel": pa.DictionaryArray.from_arrays(pa.array(c, pa.int32()), names).cast(pa.string())})
    conv = np.flatnonzero(converted)
    orders = pa.table({"customer_id": pa.array(np.char.add("c", conv.astype(str))),
                       "order_id": pa.array(np.char.add("o", conv.astype(str))),
                       "timestamp": pa.array((np.datetime64(START) + end_s[conv].astype("timedelta64[s]"))
                                             .astype("datetime64[us]")),
                       "amount": rng.gamma(2.0, 60.0, len(conv)).round(2)})
    return touches, orders, START + dt.timedelta(days=400)


def floor(touches: pa.Table, orders: pa.Table) -> int:
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.register("t", touches)
    con.register("o", orders)
    rows = con.sql("""
        WITH p AS (SELECT t.customer_id, string_agg(channel, ' > ' ORDER BY timestamp, channel) AS path
                   FROM t GROUP BY t.customer_id)
        SELECT path, count(o.order_id) AS conversions, sum(o.amount) AS value,
               count(*) - count(o.order_id) AS nulls
        FROM p LEFT JOIN o USING (customer_id) GROUP BY path""").fetchall()
    con.close()
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    t0 = time.perf_counter()
    touches, orders, end = synthesize(args.journeys, args.seed)
    t1 = time.perf_counter()
    n_floor_paths = floor(touches, orders)
    t2 = time.perf_counter()
    found = journeys_from_touches(touches, orders, end, JourneySettings(window_days=30))
    t3 = time.perf_counter()
    per_model = {}
    for name in MODEL_NAMES:
        s = time.perf_counter()
        attribute(found.paths, (name,))
        per_model[name] = round(time.perf_counter() - s, 3)
    t4 = time.perf_counter()
    table = attribute(found.paths, MODEL_NAMES)
    sums = table.groupby("model")["conversions"].sum()
    print(json.dumps({
        "journeys": args.journeys, "touches": touches.num_rows, "orders": orders.num_rows,
        "converting_journeys": found.converting_journeys, "non_converting_journeys": found.non_converting_journeys,
        "distinct_paths": found.paths.n_paths, "floor_distinct_paths": n_floor_paths,
        "synthesize_s": round(t1 - t0, 2), "floor_s": round(t2 - t1, 2), "journeys_s": round(t3 - t2, 2),
        "models_s": round(t4 - t3, 2), "journeys_plus_models_s": round(t4 - t2, 2),
        "times_floor": round((t4 - t2) / (t2 - t1), 1), "per_model_s": per_model,
        "max_sum_error": float((sums - found.paths.total_conversions).abs().max()),
    }, indent=1))


if __name__ == "__main__":
    main()
