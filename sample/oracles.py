"""The best purchase predictions the generator's truth allows, to measure models against.

Both read ``truth/persons.csv``: :func:`oracle_purchase_probability` knows every latent
parameter including the dropout day; :func:`history_oracle_purchase_probability` knows
the parameters but not the dropout day, only the purchase history.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from sample.dates import day_number, to_day_numbers
from sample.world import GROUPS


def oracle_purchase_probability(persons: pd.DataFrame, as_of: dt.date, horizon_days: int) -> pd.Series:
    """Chance that each person buys on at least one of days ``as_of + 1 .. as_of + horizon_days``.

    Uses the latent truth of ``truth/persons.csv``: the first purchase is certain on
    ``first_purchase_date``; repeat purchases are a Poisson process of rate
    ``purchase_rate_per_day`` on ``[first_purchase_date + 1, death_date)``, so the chance
    is ``1 - exp(-rate * overlap_days)``. No model fitted on the observable data can do
    better; returns and invalid rows are not purchases of the model and are ignored.

    Parameters
    ----------
    persons : pandas.DataFrame
        ``truth/persons.csv`` as read (dates as ISO text or datetimes).
    as_of : datetime.date
        Last day already observed.
    horizon_days : int
        Length of the prediction window in days.

    Returns
    -------
    pandas.Series
        Probabilities indexed like ``persons``, named ``p_purchase_in_horizon``.
    """
    window_start = day_number(as_of) + 1
    window_stop = window_start + horizon_days
    birth = to_day_numbers(persons["first_purchase_date"])
    death = to_day_numbers(persons["death_date"])
    rate = persons["purchase_rate_per_day"].to_numpy(dtype=float)
    exposure_days = np.clip(np.minimum(window_stop, death) - np.maximum(window_start, birth + 1), 0, None)
    p = 1.0 - np.exp(-rate * exposure_days)
    first_in_window = (birth >= window_start) & (birth < window_stop) & (birth < death)
    return pd.Series(np.where(first_in_window, 1.0, p), index=persons.index, name="p_purchase_in_horizon")


def history_oracle_purchase_probability(persons: pd.DataFrame, last_purchase: pd.Series, end: dt.date,
                                        as_of: dt.date, horizon_days: int) -> pd.Series:
    """The same chance as :func:`oracle_purchase_probability`, for a forecaster who knows every
    latent parameter of a person (purchase rate, behavioural group and so the law of the
    dropout day) but not the dropout day itself, only the purchase history.

    That is the best any model of purchase histories can do, however clever: Bayes'
    rule over the dropout day ``d``, whose prior is the group's (``d = birth + 1 +
    ceil(Exponential(mean_lifetime_days))``, or uniform on ``end + death_days_after_end``
    and at least ``birth + 30``), given the last purchase on day ``t`` and none on days
    ``t + 1 .. as_of``: the person was alive on day ``t`` (``d > t``) and, if alive
    after it, bought nothing in the time they had (likelihood ``exp(-rate * (min(d,
    as_of + 1) - (t + 1)))``). Then ``P = sum_d posterior(d) (1 - exp(-rate * exposure(d)))``.
    The gap between the two oracles is what the dropout day is worth; a model can close
    part of it only from signals that foretell dropout (the generator fades email
    engagement before it).

    Parameters
    ----------
    persons : pandas.DataFrame
        ``truth/persons.csv`` as read, indexed by person.
    last_purchase : pandas.Series
        Each person's last purchase day on or before ``as_of`` (dates), indexed like
        ``persons``; people without one get NaN.
    end : datetime.date
        The sample's last day (``death_days_after_end`` counts from it).
    as_of, horizon_days :
        As in :func:`oracle_purchase_probability`.
    """
    groups = {g.name: g for g in GROUPS}
    a = day_number(as_of)
    end_day = day_number(end)
    stop = a + horizon_days + 1                      # every dropout day from here on looks alike
    birth = to_day_numbers(persons["first_purchase_date"])
    last = to_day_numbers(last_purchase.reindex(persons.index))
    rate = persons["purchase_rate_per_day"].to_numpy(dtype=float)
    out = np.full(len(persons), np.nan)
    for i, group_name in enumerate(persons["group"].to_numpy()):
        if last[i] > a or last[i] < birth[i]:
            continue
        group = groups[group_name]
        days = np.arange(last[i] + 1, stop + 1)       # candidate dropout days; the last one lumps the tail
        if group.death_days_after_end is None:
            mean = max(group.mean_lifetime_days, 1.0)
            k = days - birth[i] - 1                    # d = birth + 1 + k, P(k) = P(ceil(X) = k)
            prior = np.where(k >= 1, np.exp(-(k - 1) / mean) - np.exp(-k / mean), 0.0)
            prior[-1] = np.exp(-(k[-1] - 1) / mean) if k[-1] >= 1 else 1.0
        else:
            lo, hi = end_day + group.death_days_after_end[0], end_day + group.death_days_after_end[1]
            support = np.maximum(np.arange(lo, hi + 1), birth[i] + 30)
            prior = np.bincount(np.clip(support, days[0] - 1, stop) - (days[0] - 1),
                                minlength=len(days) + 1)[1:].astype(float)
        silent = np.clip(np.minimum(days, a + 1) - (last[i] + 1), 0, None)
        posterior = prior * np.exp(-rate[i] * silent)
        if posterior.sum() <= 0:
            continue
        exposure = np.clip(np.minimum(days, stop) - max(a + 1, birth[i] + 1), 0, None)
        out[i] = posterior @ (1.0 - np.exp(-rate[i] * exposure)) / posterior.sum()
    return pd.Series(out, index=persons.index, name="p_purchase_in_horizon")
