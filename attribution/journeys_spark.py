"""Customer journeys on Spark: `attribution.journeys`' definitions, run by the executors.

The scan of every event and order, the assignment of each touch to the customer's next
order, and the cutting of non-converting runs into journeys are DataFrame operations on
the cluster; DuckDB's ``ASOF JOIN`` becomes a window over each customer's touches and
orders in time order (the first order at or after a touch). What comes back to the driver:

- each converting journey (its order, value, channels and their ages in days): time decay
  credits each touch by its own age, so these are needed touch by touch;
- the non-converting journeys already grouped into distinct paths with their counts;
- the counts of open journeys and of orders without a touch.

The paths are then built exactly as on DuckDB (`attribution.journeys._paths`), in the same
order of first occurrence, so both engines give the same `PathCounts`.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from attribution.journeys import JourneySettings, StoreJourneys, _paths

__all__ = ["journeys_on_spark"]

_US_PER_DAY = 86_400_000_000


def journeys_on_spark(events, orders, end: dt.datetime, settings: JourneySettings) -> StoreJourneys:
    """Journeys of ``events`` and ``orders`` (Spark DataFrames of the unified tables, amounts
    in the base currency) observed up to ``end`` (exclusive), as `journeys_from_touches`
    defines them."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    window_us = int(round(settings.window_days * _US_PER_DAY))
    end_us = int((end - dt.datetime(1970, 1, 1)).total_seconds()) * 1_000_000 + end.microsecond

    def micros(column):  # UTC microseconds: sessions run in UTC, so a local timestamp reads the same
        return F.unix_micros(F.col(column).cast("timestamp_ltz"))

    excluded_channels = list(settings.excluded_channels) or [""]
    excluded_types = list(settings.excluded_event_types) or [""]
    touches = (events.where(F.col("customer_id").isNotNull() & F.col("channel").isNotNull()
                            & (micros("timestamp") < end_us) & ~F.col("channel").isin(excluded_channels)
                            & ~F.col("event_type").isin(excluded_types))
               .select("customer_id", micros("timestamp").alias("ts"), "channel",
                       F.lit(None).cast("string").alias("order_id"), F.lit(None).cast("double").alias("amount"),
                       F.lit(0).alias("kind")))
    sales = (orders.where(F.col("customer_id").isNotNull() & ~F.coalesce(F.col("is_return"), F.lit(False))
                          & (micros("timestamp") < end_us))
             .select("customer_id", micros("timestamp").alias("ts"), F.lit(None).cast("string").alias("channel"),
                     "order_id", F.col("amount").cast("double").alias("amount"), F.lit(1).alias("kind")))
    # A touch belongs to the first order at or after it (an order at the very same time included).
    ahead = (Window.partitionBy("customer_id").orderBy("ts", "kind", "order_id")
             .rowsBetween(Window.currentRow, Window.unboundedFollowing))
    next_order = F.first(F.when(F.col("kind") == 1, F.struct("ts", "order_id", "amount")), ignorenulls=True)
    assigned = (touches.unionByName(sales).withColumn("next", next_order.over(ahead)).where(F.col("kind") == 0)
                .select("customer_id", "ts", "channel", F.col("next.order_id").alias("order_id"),
                        F.col("next.ts").alias("order_ts"), F.col("next.amount").alias("amount"))
                .withColumn("in_window", F.col("order_id").isNotNull()
                            & (F.col("order_ts") - F.col("ts") <= window_us))
                .localCheckpoint())

    in_order = F.sort_array(F.collect_list(F.struct("ts", "channel", "order_ts")))
    converting = (assigned.where("in_window").groupBy("order_id")
                  .agg(F.first("amount").alias("amount"), in_order.alias("touches"))
                  .select("order_id", "amount", F.transform("touches", lambda t: t["channel"]).alias("channels"),
                          F.transform("touches", lambda t: (t["order_ts"] - t["ts"]) / _US_PER_DAY).alias("ages"))
                  .orderBy("order_id"))
    converting_table = _arrow(converting, pa.schema([("order_id", pa.string()), ("amount", pa.float64()),
                                                     ("channels", pa.list_(pa.string())),
                                                     ("ages", pa.list_(pa.float64()))]))

    by_customer = Window.partitionBy("customer_id").orderBy("ts", "channel")
    runs = (assigned.where(~F.col("in_window"))
            .withColumn("breaks", (F.col("ts") - F.lag("ts").over(by_customer) > window_us).cast("int"))
            .withColumn("run", F.sum(F.coalesce(F.col("breaks"), F.lit(0))).over(by_customer)))
    in_run = Window.partitionBy("customer_id", "run")
    pieces = (runs.withColumn("piece", F.floor((F.col("ts") - F.min("ts").over(in_run)) / window_us))
              .withColumn("run_last", F.max("ts").over(in_run))
              .groupBy("customer_id", "run", "piece")
              .agg(F.sort_array(F.collect_list(F.struct("ts", "channel"))).alias("touches"),
                   F.first("run_last").alias("run_last"))
              .select("customer_id", "run", "piece", F.transform("touches", lambda t: t["channel"]).alias("channels"),
                      (F.col("run_last") + window_us > end_us).alias("open")))
    counted = pieces.groupBy("open").count().collect()
    n_open = sum(row["count"] for row in counted if row["open"])
    closed = (pieces.where(~F.col("open")).groupBy("channels")
              .agg(F.count(F.lit(1)).alias("nulls"), F.min(F.struct("customer_id", "run", "piece")).alias("first"))
              .orderBy("first").select("channels", "nulls"))
    closed_table = _arrow(closed, pa.schema([("channels", pa.list_(pa.string())), ("nulls", pa.int64())]))

    touched = assigned.where("in_window").select("order_id").distinct()
    untouched = (sales.join(touched, "order_id", "left_anti")
                 .agg(F.count(F.lit(1)).alias("n"), F.coalesce(F.sum("amount"), F.lit(0.0)).alias("value")).first())
    assigned.unpersist()
    paths = _paths(converting_table, closed_table, null_counts=closed_table.column("nulls").to_numpy())
    return StoreJourneys(paths=paths, converting_journeys=converting_table.num_rows,
                         non_converting_journeys=int(closed_table.column("nulls").to_numpy().sum()),
                         conversions_without_touches=int(untouched["n"]),
                         value_without_touches=float(untouched["value"]), open_journeys=int(n_open))


def _arrow(frame, schema: pa.Schema) -> pa.Table:
    """A DataFrame's rows on the driver as Arrow (in its order), typed as ``schema`` even when empty."""
    table = frame.toArrow()
    return table.select(schema.names).cast(schema) if table.num_rows else schema.empty_table()
