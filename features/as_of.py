"""What "as of a day" means, in one place: all data up to and including that whole day.

Every family, label and population filter cuts time here, so the point-in-time
contract (nothing at or after the first instant of the next day) has one definition.
"""

from __future__ import annotations

import datetime as dt

import ibis
from ibis import _

from cdp.errors import CdpError
from store.interface import TableStore


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


def check_as_of(as_of: dt.date, first_day: dt.date, last_day: dt.date, option: str = "--as-of",
                label_horizon_days: int | None = None) -> None:
    """Refuse an as-of day the data cannot speak for, with one line saying why.

    ``first_day`` and ``last_day`` are the first and last days with an order or event.
    Before the first day nobody has bought yet; after the last, days without data would
    read as days without purchases (every customer would look lapsed); and a label window
    (``label_horizon_days`` after the as-of day) must end by the last day, or its missing
    days would be counted as no purchase.

    Raises
    ------
    CdpError
    """
    if as_of < first_day:
        raise CdpError(f"{option} {as_of} is before the data begins ({first_day}): no customer had bought yet; "
                       f"use a day from {first_day} to {last_day}")
    if as_of > last_day:
        raise CdpError(f"{option} {as_of} is after the data ends ({last_day}): the days in between have no data "
                       f"and would read as days without purchases; use a day from {first_day} to {last_day}")
    if label_horizon_days is not None:
        end = as_of + dt.timedelta(days=label_horizon_days)
        if end > last_day:
            latest = last_day - dt.timedelta(days=label_horizon_days)
            hint = (f"the latest as-of day with a whole {label_horizon_days}-day window is {latest}"
                    if latest >= first_day else f"the data spans only {(last_day - first_day).days + 1} days")
            raise CdpError(f"a {label_horizon_days}-day label window after {as_of} ends on {end}, after the data "
                           f"ends ({last_day}): its last {(end - last_day).days} days would count as no purchase; "
                           f"{hint}")


def resolve_as_of(store: TableStore, as_of: dt.date | None = None, label_horizon_days: int | None = None,
                  option: str = "--as-of") -> dt.date:
    """``as_of`` (default: the store's last day with data), checked with `check_as_of`
    against the store's first and last days. ``store`` is an open `store.interface.TableStore`."""
    first, last = store.data_days()
    day = last if as_of is None else as_of
    check_as_of(day, first, last, option=option, label_horizon_days=label_horizon_days)
    return day
