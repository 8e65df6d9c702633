"""Customer journeys from the unified store: each order's touches in the lookback window
before it, and the runs of touches that led to no order.

Definitions (all per unified customer; events and orders without a ``customer_id``
cannot be joined and are left out):

**Touch**: an event with a channel, except the shop's own channels (``web``, ``store``:
where a customer already is, not how they came) and event types that are not something
the customer did (``email_sent``, ``email_open``). Both lists are settings.

**Conversion**: an order that is not a return, with its amount (in the base currency)
as value.

**Converting journey**: the touches in the ``window_days`` before an order, and after
the customer's previous order (a touch is credited to the next order only). Orders with
no touch in their window are counted (``conversions_without_touches``) but not
attributed: no model can give them to a channel.

**Non-converting journey**: touches followed by no order within ``window_days``, grouped
per customer into runs that break at a gap longer than the window and are cut into
window-long pieces from the run's first touch. A run whose last touch lies less than
``window_days`` before the end of ``as_of`` is still open (an order may yet come) and is
left out (``open_journeys``).

Touches of one journey are ordered by time, then channel name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from attribution.paths import PathCounts, TouchAges
from cdp.errors import CdpError, SchemaError

__all__ = ["JourneySettings", "StoreJourneys", "journeys_from_tables", "journeys_from_touches"]


@dataclass(frozen=True)
class JourneySettings:
    """What makes a touch and a journey.

    Parameters
    ----------
    window_days : float
        Lookback window before a conversion (and length of a non-converting journey).
    excluded_channels : tuple of str
        Event channels that are not marketing touches.
    excluded_event_types : tuple of str
        Event types that are not touches.
    """

    window_days: float = 30.0
    excluded_channels: tuple[str, ...] = ("web", "store")
    excluded_event_types: tuple[str, ...] = ("email_sent", "email_open")

    def __post_init__(self) -> None:
        if not self.window_days > 0:
            raise CdpError(f"--window-days must be positive, not {self.window_days}")


@dataclass(frozen=True)
class StoreJourneys:
    """The store's journeys aggregated into paths, and what could not be attributed."""

    paths: PathCounts
    converting_journeys: int
    non_converting_journeys: int
    conversions_without_touches: int
    value_without_touches: float
    open_journeys: int


def journeys_from_tables(tables, as_of: dt.date, settings: JourneySettings) -> StoreJourneys:
    """Journeys of the unified store's ``events`` and ``orders`` (Ibis tables, amounts in
    the base currency) with everything up to the end of ``as_of``."""
    events, orders = tables.events, tables.orders
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    touches = events.filter(events.customer_id.notnull() & events.channel.notnull() & (events.timestamp < end)
                            & ~events.channel.isin(list(settings.excluded_channels) or [""])
                            & ~events.event_type.isin(list(settings.excluded_event_types) or [""]))
    touches = touches.select("customer_id", "timestamp", "channel").to_pyarrow()
    is_return = orders.is_return.fill_null(False)
    sales = orders.filter(orders.customer_id.notnull() & ~is_return & (orders.timestamp < end))
    sales = sales.select("customer_id", "order_id", "timestamp", "amount").to_pyarrow()
    return journeys_from_touches(touches, sales, end, settings)


def journeys_from_touches(touches: pa.Table, orders: pa.Table, end: dt.datetime,
                          settings: JourneySettings) -> StoreJourneys:
    """Journeys of ``touches`` (customer_id, timestamp, channel) and ``orders``
    (customer_id, order_id, timestamp, amount), observed up to ``end`` (exclusive)."""
    window_us = int(round(settings.window_days * 86_400_000_000))
    con = duckdb.connect()
    try:
        con.register("touch_rows", touches)
        con.register("order_rows", orders)
        con.execute("SET threads TO 2")
        con.execute(f"""
            CREATE TEMP TABLE assigned AS
            WITH t AS (SELECT customer_id, timestamp AS ts, channel FROM touch_rows),
                 o AS (SELECT customer_id, order_id, timestamp AS ts, amount FROM order_rows)
            SELECT t.customer_id, t.ts, t.channel, o.order_id, o.ts AS order_ts, o.amount,
                   o.order_id IS NOT NULL AND epoch_us(o.ts) - epoch_us(t.ts) <= {window_us} AS in_window
            FROM t ASOF LEFT JOIN o ON t.customer_id = o.customer_id AND o.ts >= t.ts""")
        converting = con.sql("""
            SELECT order_id, any_value(amount) AS amount,
                   list(channel ORDER BY ts, channel) AS channels,
                   list((epoch_us(order_ts) - epoch_us(ts)) / 86400e6 ORDER BY ts, channel) AS ages
            FROM assigned WHERE in_window GROUP BY order_id ORDER BY order_id""").to_arrow_table()
        non_converting = con.sql(f"""
            WITH u AS (SELECT customer_id, ts, channel,
                              epoch_us(ts) - lag(epoch_us(ts)) OVER w > {window_us} AS breaks
                       FROM assigned WHERE NOT in_window WINDOW w AS (PARTITION BY customer_id ORDER BY ts, channel)),
                 r AS (SELECT *, sum(CASE WHEN breaks THEN 1 ELSE 0 END) OVER w AS run
                       FROM u WINDOW w AS (PARTITION BY customer_id ORDER BY ts, channel)),
                 c AS (SELECT *, (epoch_us(ts) - min(epoch_us(ts)) OVER (PARTITION BY customer_id, run))
                                 // {window_us} AS piece,
                              max(epoch_us(ts)) OVER (PARTITION BY customer_id, run) AS run_last FROM r)
            SELECT list(channel ORDER BY ts, channel) AS channels,
                   any_value(run_last) + {window_us} > epoch_us(?::TIMESTAMP) AS open
            FROM c GROUP BY customer_id, run, piece ORDER BY customer_id, run, piece""", params=[end]).to_arrow_table()
        untouched = con.execute("""
            SELECT count(*), coalesce(sum(amount), 0) FROM order_rows o
            WHERE order_id NOT IN (SELECT order_id FROM assigned WHERE in_window)""").fetchone()
        assert untouched is not None  # an aggregate always has its one row
    finally:
        con.close()
    closed = non_converting.filter(pc.invert(non_converting.column("open")))
    n_open = non_converting.num_rows - closed.num_rows
    paths = _paths(converting, closed)
    return StoreJourneys(paths=paths, converting_journeys=converting.num_rows,
                         non_converting_journeys=closed.num_rows, conversions_without_touches=int(untouched[0]),
                         value_without_touches=float(untouched[1]), open_journeys=n_open)


def _paths(converting: pa.Table, non_converting: pa.Table, null_counts: np.ndarray | None = None) -> PathCounts:
    """The journeys' channel lists grouped into distinct paths, as :meth:`PathCounts.from_paths`
    groups them (channels sorted, paths in order of first occurrence, converting journeys
    first), with the touch ages of the converting journeys pointing at their path's row.
    ``null_counts``: how many journeys each row of ``non_converting`` stands for (one each
    when not given; Spark hands over non-converting journeys already grouped by path)."""
    if converting.num_rows + non_converting.num_rows == 0:
        raise SchemaError("the store has no journeys: no customer has an event with a marketing channel "
                          "(ad, social, email click, search, direct visit) before the as-of day")
    n_conv = converting.num_rows
    lists = pa.chunked_array(converting.column("channels").chunks + non_converting.column("channels").chunks,
                             type=converting.column("channels").type).combine_chunks()
    lengths = pc.list_value_length(lists).to_numpy().astype(np.int64)
    flat = pc.list_flatten(lists)
    channels = tuple(sorted(pc.unique(flat).to_pylist()))
    codes = pc.index_in(flat, value_set=pa.array(channels, flat.type)).to_numpy()
    # Each journey's codes, left-aligned and padded with -1, as one fixed-width byte string to group by.
    code_type = np.int8 if len(channels) < 128 else np.int32
    width = int(lengths.max())
    journey = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    position = np.arange(len(codes)) - np.repeat(starts, lengths)
    padded = np.full((len(lengths), width), -1, dtype=code_type)
    padded[journey, position] = codes
    keys = padded.view(np.dtype((np.void, width * padded.itemsize))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    by_first = np.argsort(first)
    rank = np.empty_like(by_first)
    rank[by_first] = np.arange(len(by_first))
    row_of = rank[inverse.ravel()]
    n_paths = len(first)

    flags = np.concatenate([np.ones(n_conv), np.zeros(non_converting.num_rows)])
    amount = np.nan_to_num(converting.column("amount").to_numpy(zero_copy_only=False).astype(np.float64))
    value = np.concatenate([amount, np.zeros(non_converting.num_rows)])
    weights = np.concatenate([np.zeros(n_conv), np.ones(non_converting.num_rows) if null_counts is None
                              else np.asarray(null_counts, dtype=np.float64)])
    conversions, values, nulls = (np.bincount(row_of, weights=w, minlength=n_paths) for w in (flags, value, weights))
    conv_lengths = lengths[:n_conv]
    conv_touches = int(conv_lengths.sum())
    ages = np.array(converting.column("ages").combine_chunks().flatten(), dtype=np.float64) if n_conv \
        else np.zeros(0)
    touch_ages = TouchAges(journey=journey[:conv_touches], path=np.repeat(row_of[:n_conv], conv_lengths),
                           position=position[:conv_touches], age_days=ages, conversion=np.ones(conv_touches),
                           value=np.repeat(amount, conv_lengths))
    return PathCounts(channels, padded[first[by_first]].astype(np.int32), lengths[first[by_first]], conversions,
                      values, nulls, touch_ages)
