"""What "as of a day" means, in one place: all data up to and including that whole day.

Every family, label and population filter cuts time here, so the point-in-time
contract (nothing at or after the first instant of the next day) has one definition.
"""

from __future__ import annotations

import datetime as dt

import ibis
from ibis import _


def midnight(day: dt.date) -> ibis.Scalar:
    """The first instant of ``day`` as a timestamp literal."""
    return ibis.timestamp(dt.datetime.combine(day, dt.time()))


def cutoff(as_of: dt.date) -> ibis.Scalar:
    """The first instant after the as-of day: rows dated before it are known as of that day."""
    return midnight(as_of + dt.timedelta(days=1))


def purchases_until(orders: ibis.Table, as_of: dt.date) -> ibis.Table:
    """Linked orders dated on or before ``as_of`` (the whole day), with their ``day``."""
    return (orders.filter(_.customer_id.notnull(), _.timestamp < cutoff(as_of))
            .mutate(day=_.timestamp.date(), is_return=_.is_return.fill_null(False)))


def events_until(events: ibis.Table, as_of: dt.date) -> ibis.Table:
    """Linked events dated on or before ``as_of`` (the whole day), with their ``day``."""
    return events.filter(_.customer_id.notnull(), _.timestamp < cutoff(as_of)).mutate(day=_.timestamp.date())


def from_day(condition, start):
    """``condition``, restricted to days on or after ``start`` unless ``start`` is None (all time)."""
    return condition if start is None else (_.day >= start) & condition


def count_where(condition):
    """The number of rows where ``condition`` is true; NULL counts as false on every engine.

    Ibis writes ``count(where=c)`` as ``COUNT(*) FILTER (WHERE c)`` on DuckDB but as
    ``SUM(CAST(c AS BIGINT))`` on Spark, which is NULL, not 0, for a group where ``c`` is
    NULL on every row (say ``discount > 0`` when no discount is known).
    """
    return _.count(where=condition.fill_null(False))
