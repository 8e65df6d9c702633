"""Which label window a store's history can teach, for a forecast horizon asked of it.

A model forecasting H days ahead learns from snapshots as of D labelled with D+1 .. D+H,
all before the as-of date. A young store cannot hold such windows for a long H: CDNOW's
cohort arrived in the first quarter of 1997, so as of 1997-09-30 no 39-week window both
starts after the customers had some history and ends by the as-of date. The model then
learns a shorter window and carries it forward to H (`training.purchase.carry_forward`);
this module only decides the window, from dates, with no data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from features.snapshots import snapshot_dates

__all__ = ["TrainableWindow", "trainable_window"]


@dataclass(frozen=True)
class TrainableWindow:
    """The snapshots a run can train on for a ``horizon_days`` forecast.

    ``label_horizon_days`` is ``horizon_days`` when the history holds the full window;
    otherwise a shorter one, in whole weeks, and ``carried_forward`` is True. ``note`` says
    so in one line for the run's record (empty when nothing was shortened).
    """

    as_of: dt.date
    horizon_days: int
    label_horizon_days: int
    snapshot_dates: tuple[dt.date, ...]
    note: str

    @property
    def carried_forward(self) -> bool:
        return self.label_horizon_days < self.horizon_days


def trainable_window(first_order_day: dt.date, last_order_day: dt.date, as_of: dt.date, horizon_days: int,
                     n_snapshots: int, step_days: int, min_history_days: int = 91,
                     min_label_days: int = 28) -> TrainableWindow:
    """The label window and snapshot dates a store with orders from ``first_order_day`` to
    ``last_order_day`` can train on as of ``as_of``, for a ``horizon_days`` forecast.

    Snapshots are ``n_snapshots`` days ``step_days`` apart, the latest label window
    ending on ``as_of`` (`features.snapshots.snapshot_dates`). The earliest snapshot must
    come ``min_history_days`` after the store's first order, so that its customers have a
    history to learn from. The label window is ``horizon_days`` when that fits; else the
    longest whole number of weeks that does, kept the snapshots asked for (a few
    snapshots of a short window teach more than one of a long window), and the forecast
    is carried forward. Raises ValueError when the dates are out of order or not even a
    ``min_label_days`` window fits.
    """
    for name, value, minimum in (("horizon_days", horizon_days, 1), ("n_snapshots", n_snapshots, 1),
                                 ("step_days", step_days, 1), ("min_history_days", min_history_days, 0),
                                 ("min_label_days", min_label_days, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    if first_order_day > last_order_day:
        raise ValueError(f"the first order ({first_order_day}) is after the last ({last_order_day})")
    if not first_order_day <= as_of <= last_order_day:
        raise ValueError(f"as-of {as_of} is outside the orders ({first_order_day} .. {last_order_day})")
    earliest = first_order_day + dt.timedelta(days=min_history_days)
    # The latest snapshot is as_of - label; the earliest (n - 1) steps before it.
    longest = (as_of - earliest).days - (n_snapshots - 1) * step_days
    if longest >= horizon_days:
        label, note = horizon_days, ""
    else:
        label = longest // 7 * 7
        if label < min_label_days:
            raise ValueError(
                f"as of {as_of} the orders (from {first_order_day}) hold no {min_label_days}-day label window for "
                f"{n_snapshots} snapshots {step_days} days apart starting {min_history_days} days after the first "
                f"order: use a later as-of date or fewer snapshots")
        note = (f"{horizon_days}-day forecast carried forward from {label}-day labels: the history since "
                f"{first_order_day} holds no {horizon_days}-day label window for {n_snapshots} snapshots by {as_of}")
    dates = tuple(snapshot_dates(as_of, label, n_snapshots, step_days))
    return TrainableWindow(as_of=as_of, horizon_days=horizon_days, label_horizon_days=label,
                           snapshot_dates=dates, note=note)
