"""Training sets from several as-of snapshots whose label windows all end on or before a date.

A snapshot as of D pairs features (data up to and including day D) with labels (the
``horizon_days`` days after D). Rolling snapshots back from ``end`` so that the latest
label window ends on ``end`` keeps everything after ``end`` — the evaluation period —
out of training, features and labels alike.

Nothing here runs a query: callers pass closures that build the features and labels of
one as-of date on whatever engine they like and return pandas DataFrames.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import pandas as pd


def _check_whole_days(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")


def snapshot_dates(end: dt.date, horizon_days: int, n_snapshots: int, step_days: int) -> list[dt.date]:
    """``n_snapshots`` as-of dates ``step_days`` apart, oldest first, the latest being ``end - horizon_days``.

    The label window of as-of D is D+1 .. D+``horizon_days``, so the latest window ends
    exactly on ``end`` and every earlier one before it. Windows overlap when
    ``step_days < horizon_days``; that is allowed (more snapshots, correlated labels).

    Raises ValueError for a non-date ``end`` or for counts that are not whole numbers >= 1.
    """
    if not isinstance(end, dt.date) or isinstance(end, dt.datetime):
        raise ValueError(f"end must be a datetime.date, got {end!r}")
    _check_whole_days("horizon_days", horizon_days, 1)
    _check_whole_days("n_snapshots", n_snapshots, 1)
    _check_whole_days("step_days", step_days, 1)
    latest = end - dt.timedelta(days=horizon_days)
    return [latest - dt.timedelta(days=step_days * k) for k in reversed(range(n_snapshots))]


def training_set(
    build: Callable[[dt.date], pd.DataFrame],
    labels: Callable[[dt.date], pd.DataFrame],
    dates: Sequence[dt.date],
) -> pd.DataFrame:
    """Features and labels of each as-of date, inner-joined on ``customer_id`` and stacked.

    ``build(d)`` and ``labels(d)`` each return one row per ``customer_id`` as of ``d``. The
    result has an ``as_of`` column (``datetime64[s]``, midnight of the as-of day) first,
    then the feature columns, then the label columns; rows are ordered by ``as_of`` then
    ``customer_id``. A customer appears once per snapshot they are in.

    Raises ValueError when ``dates`` is empty or repeats a date, or when features and
    labels share a column other than ``customer_id``.
    """
    if len(dates) == 0:
        raise ValueError("dates is empty: give at least one as-of date (see snapshot_dates)")
    if len(set(dates)) != len(dates):
        raise ValueError(f"dates repeats an as-of date: {sorted(dates)}")
    frames = []
    for as_of in sorted(dates):
        features, outcome = build(as_of), labels(as_of)
        shared = (set(features.columns) & set(outcome.columns)) - {"customer_id"}
        if shared:
            raise ValueError(f"features and labels as of {as_of} share columns {sorted(shared)}")
        snapshot = features.merge(outcome, on="customer_id", how="inner", validate="one_to_one")
        snapshot.insert(0, "as_of", pd.Series(pd.Timestamp(as_of), index=snapshot.index, dtype="datetime64[s]"))
        frames.append(snapshot.sort_values("customer_id", kind="stable"))
    return pd.concat(frames, ignore_index=True)
